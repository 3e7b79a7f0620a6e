"""True/False answers read from the written report, for a submission without ``answers.py``.

Students answer problem 1 in their report (a PDF, a markdown or text file, or their notebooks'
markdown cells) with lines such as ``Problem 1.1: True, because ...``, ``1.1 True``,
``a. Problem 1.1: False, because ...``, ``(1.3) F`` or ``**1.4** False``. A line answers a
question when it starts (after list markers, a letter, bold or heading marks, and an optional
"Problem"/"Question"/"Q") with its number; the answer is the first verdict word after the number
(True/False anywhere on the line, T/F only right after it), or the first word of the next line
when the number stands alone. A question answered twice with the same verdict is fine; with
different verdicts, or not at all, it is that question's clear message and gets no answer.

``answers_module`` turns what was read into an ``answers.py`` of plain literals, which is graded
through the sandbox like a submitted one. PDF text is extracted with pypdf in a child process
with a memory, CPU and wall-clock limit, since a PDF is untrusted input.
"""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

QUESTIONS = tuple(f"1.{i}" for i in range(1, 11))
TEXT_SUFFIXES = (".md", ".markdown", ".txt")
PDF_SUFFIX = ".pdf"
MAX_PDF_BYTES = 32 * 2**20
MAX_PDF_PAGES = 200
MAX_TEXT_CHARS = 2 * 2**20      # text kept from one report
PDF_TIMEOUT_S = 30.0
PDF_MEMORY_BYTES = 1 * 2**30

_NUMBER = re.compile(r"""^\s*
    (?:[-*+>]\s*)*                          # list or quote markers
    (?:\d+[.)]\s+)?                         # a numbered list item
    (?:\(?[a-j]\)\s*|[a-j][.)]\s*)?         # (a) a) a.
    [*_#\s]*                                # bold, italics, heading marks
    (?:(?:problem|question|q)[\s.]*)?       # Problem 1.1, Q1.1
    [*_\s]*\(?\s*
    1\.(?P<minor>10|[1-9])(?![\d.]*\d)      # 1.1 .. 1.10, not 1.11 or 1.1.2
    \s*\)?
    (?P<rest>.*)$""", re.IGNORECASE | re.VERBOSE)
_WORD = re.compile(r"\b(true|false)\b", re.IGNORECASE)
_LETTER = re.compile(r"^[\s*_:.)\-–—=]*(t|f)\b", re.IGNORECASE)
_MARKUP_ONLY = re.compile(r"^[\s*_:.)\-–—=]*$")


@dataclass(frozen=True)
class Reading:
    """What was read: ``answers`` {question: bool}, ``problems`` {question: student message},
    and ``lines`` {question: ["where: line", ...]}, the lines each answer was read from."""

    answers: dict
    problems: dict
    lines: dict
    searched: str = "no report"

    def summary(self) -> str:
        """Every question as read, with the line it was read from, so a student can contest a
        misread; one line of feedback."""
        rows = []
        for question in QUESTIONS:
            if question in self.answers:
                rows.append(f"{question} {self.answers[question]} ({self.lines[question][0]})")
            elif self.lines[question]:
                rows.append(f"{question} both True and False ({'; '.join(self.lines[question][:4])})")
            else:
                rows.append(f"{question} no answer found")
        return f"searched {self.searched}: " + "; ".join(rows)


def _verdict(rest: str, following: str | None) -> tuple[bool | None, bool]:
    """(verdict, whether it was read from ``following``, the next non-empty line)."""
    letter = _LETTER.match(rest)
    if letter:
        return letter.group(1).lower() == "t", False
    word = _WORD.search(rest)
    if word:
        return word.group(1).lower() == "true", False
    if following is not None and _MARKUP_ONLY.match(rest):
        return _verdict(following, None)[0], True
    return None, False


def find_answers(text: str, where: str) -> list[tuple[str, bool, str]]:
    """(question, verdict, "where: `line`") for every answer line of ``text``."""
    lines = text.splitlines()
    found = []
    for index, line in enumerate(lines):
        match = _NUMBER.match(line)
        if not match:
            continue
        following = next((l for l in lines[index + 1:index + 4] if l.strip()), None)
        verdict, two_lines = _verdict(match.group("rest"), following)
        if verdict is not None:
            shown = (line.strip() + (" / " + following.strip() if two_lines else "")).replace("`", "'")
            found.append((f"1.{match.group('minor')}", verdict, f"{where}: `{shown[:120]}`"))
    return found


def read_answers(texts: list[tuple[str, str]]) -> Reading:
    """The answers in ``texts`` [(where, text), ...], every question accounted for."""
    seen: dict[str, list[tuple[bool, str]]] = {}
    for where, text in texts:
        for question, verdict, line in find_answers(text[:MAX_TEXT_CHARS], where):
            seen.setdefault(question, []).append((verdict, line))
    searched = ", ".join(f"`{where}`" for where, _ in texts) or "no report"
    answers, problems, lines = {}, {}, {}
    for question in QUESTIONS:
        readings = seen.get(question, [])
        lines[question] = [line for _, line in readings]
        verdicts = {verdict for verdict, _ in readings}
        if not readings:
            problems[question] = (f"no answer found in your report (searched {searched}); write "
                                  f"a line like `Problem {question}: True`.")
        elif len(verdicts) > 1:
            problems[question] = (f"answered both True and False in your report ("
                                  + "; ".join(lines[question][:4]) + "); give one answer.")
        else:
            answers[question] = verdicts.pop()
    return Reading(answers, problems, lines, searched)


def answers_module(reading: Reading) -> str:
    """An ``answers.py`` holding the answers read (plain literals only); questions without a
    single answer are left out, so their tests fail and say why."""
    body = "".join(f'    "{q}": {reading.answers[q]!r},\n' for q in QUESTIONS if q in reading.answers)
    return ('"""Problem 1, read by the grader from your report (you did not submit answers.py)."""\n'
            "\nTRUE_FALSE = {\n" + body + "}\n")


def pdf_text(data: bytes, name: str) -> tuple[str, str | None]:
    """(text, problem): the text of a PDF's pages, extracted in a limited child process;
    ``problem`` is a student-facing message when it could not be read."""
    if len(data) > MAX_PDF_BYTES:
        return "", f"`{name}` is larger than {MAX_PDF_BYTES // 2**20} MB; it was not read."
    root = str(Path(__file__).resolve().parent.parent)
    code = (f"import sys; sys.path.insert(0, {root!r}); "
            "from autograder.report_answers import _pdf_child; _pdf_child()")
    try:
        done = subprocess.run([sys.executable, "-I", "-c", code], input=data, capture_output=True,
                              timeout=PDF_TIMEOUT_S, preexec_fn=_limit_child)
    except subprocess.TimeoutExpired:
        return "", f"`{name}` took too long to read; it was not read."
    if done.returncode != 0:
        return "", f"`{name}` could not be read as a PDF."
    return done.stdout.decode("utf-8", errors="replace")[:MAX_TEXT_CHARS], None


def _limit_child() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (PDF_MEMORY_BYTES, PDF_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (int(PDF_TIMEOUT_S), int(PDF_TIMEOUT_S) + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _pdf_child() -> None:
    """Child side of ``pdf_text``: PDF bytes on stdin, page texts on stdout."""
    import io
    import logging

    from pypdf import PdfReader

    logging.disable(logging.CRITICAL)  # pypdf warns on every odd object; the exit code decides
    reader = PdfReader(io.BytesIO(sys.stdin.buffer.read()))
    written = 0
    for page in reader.pages[:MAX_PDF_PAGES]:
        text = (page.extract_text() or "") + "\n"
        sys.stdout.buffer.write(text.encode("utf-8", errors="replace"))
        written += len(text)
        if written > MAX_TEXT_CHARS:
            break
    sys.stdout.buffer.flush()
