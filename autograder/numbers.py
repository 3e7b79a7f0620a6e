"""Problem and test numbers: the one parser.

A grading test's ``@number`` is ``"<problem>.<test>"``: ``"2.3.1"`` is test 1 of problem 2.3
(rubric.toml's ``[problems."2.3"]``). Within a problem:
- unit-stage tests are numbered from 1 (visible tests first, then hidden ones);
- training-stage tests (``tests/grading/train/``) are numbered from 11, so ``"3.3.11"`` is the
  first training-stage test of problem 3.3 and never collides with a unit-stage test.
The stage that scores a test comes from its folder, not its number; the numbers keep
``grade --list`` and Gradescope's table readable.
"""
from __future__ import annotations

TRAINING_STAGE_FIRST = 11  # the first test number of a problem's training-stage tests


def parts(number) -> list[str]:
    """``"2.3.1"`` -> ``["2", "3", "1"]``."""
    return str(number).split(".")


def prefixes(number) -> list[str]:
    """The number and its shorter prefixes, longest first: ``"1.10.2"`` -> ``["1.10.2",
    "1.10", "1"]`` (a rubric matches the longest, so 1.10.2 is 1.10's, not 1.1's)."""
    split = parts(number)
    return [".".join(split[:cut]) for cut in range(len(split), 0, -1)]


def problem_number(number) -> str:
    """The problem a test number names: its first two parts (``"2.3.1"`` -> ``"2.3"``)."""
    return ".".join(parts(number)[:2])


def number_key(number) -> tuple:
    """Sort key in the homework's order: ``"1.9"`` before ``"1.10"``; a part that is not a
    number (``"?"``) sorts after every number."""
    return tuple(int(part) if part.isdigit() else float("inf") for part in parts(number))
