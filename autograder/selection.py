"""Whether a run grades all the tests of its stage and visibility, or a part its user chose.

A real grade (``grade``, Gradescope) always runs every test of its configuration, so a test
that is missing is a fault of the grader, reported as such (the expected count, the rubric
groups no test covers). A student in the handout may run a part of the visible tests, with a
file argument (``pytest tests/grading/visible/test_lab1.py``, a ``::`` node id), ``-k``, ``-m``
or ``--deselect``: with ``--allow-partial`` (the handout's ``pytest.ini`` sets it) such a run
grades what it selected and reports nothing of the rest.
"""
from __future__ import annotations

from pathlib import Path


def narrowed_by_user(config) -> bool:
    """Whether the command line chose a part of the tests pytest would collect by default."""
    option = config.option
    if getattr(option, "keyword", "") or getattr(option, "markexpr", "") \
            or getattr(option, "deselect", None):
        return True
    roots = [(config.rootpath / entry).resolve() for entry in config.getini("testpaths")] \
        or [config.rootpath.resolve()]
    for arg in config.args:
        if "::" in arg:
            return True
        path = (Path(config.invocation_params.dir) / arg).resolve()
        if any(root in path.parents for root in roots):  # a file or folder inside the suite
            return True
    return False


def partial(config) -> bool:
    """Whether this run grades a part only: ``--allow-partial`` and a user's narrowing."""
    return bool(config.getoption("allow_partial", False)) and narrowed_by_user(config)
