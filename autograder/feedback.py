"""Verdict and feedback policy: what a test's phases earn, and what a student may read.

``phase_verdict`` turns one pytest phase (setup, call, teardown) into plain data where the
exception object is still at hand, so the verdict also travels from xdist workers;
``graded_result`` makes the one ``TestResult`` of a test from its phase verdicts.

Rules:
- ``SubmissionError``: its student-facing ``message``, no traceback.
- ``AssertionError`` (and ``pytest.fail``): the message, no grader traceback.
- ``GraderError`` or any other exception: "Internal grading error"; the traceback goes to
  ``staff_detail`` (hidden from students on Gradescope).
- Hidden tests never show their output: a passed/failed line, the ``@hide_errors`` text, the kind
  of a submission error, or the message of ``autograder.report.StudentFeedback``, which the test's
  author writes to say what failed without revealing inputs.
- Errors, skips, xfails, timeouts and crashes are failed with 0; max_score is kept. A setup or
  teardown error scores 0 and says which phase failed.
- A failed visible test ends with the first lines of what the student's calls it judged printed
  (``printed_excerpt``: at most ``PRINTED_LINES`` lines of ``PRINTED_LINE_CHARS`` characters);
  a hidden one never shows output.

``student_text`` is the same text for one failing phase: what a student's terminal shows in
place of pytest's traceback (``autograder.terminal``).
"""
from __future__ import annotations

import pytest

from autograder.errors import SubmissionError
from autograder.report import StudentFeedback, TestResult, not_graded
from autograder.scoring import TestMeta

INTERNAL_ERROR = ("**Internal grading error**: this test could not be graded because of a fault "
                  "in the grader, not in your code. Course staff have the details.")
_GENERIC_BY_KIND = {
    "not_implemented": "The function this test calls is not implemented yet.",
    "missing_file": "A file this test needs is missing from the submission.",
    "import_failed": "Your file could not be imported (syntax or import error).",
    "missing_function": "A function this test calls is missing from your file.",
    "exception": "Your code raised an exception on this hidden test.",
    "timeout": "Your code ran out of time on this hidden test.",
    "crashed": "Your code crashed on this hidden test.",
    "out_of_memory": "Your code ran out of memory on this hidden test.",
    "no_result": "Your code exited without returning a result on this hidden test.",
    "invalid_output": "Your code returned a value of the wrong type, shape or dtype.",
}
PRINTED_LINES = 20  # of what the student's code printed, a failed visible test shows this many lines
PRINTED_LINE_CHARS = 200  # and this many characters of each


def printed_excerpt(outputs: list[str]) -> str:
    """The first lines of ``outputs`` (what the calls a test judged printed) as markdown, or ""
    when they printed nothing."""
    lines = [line for text in outputs for line in text.splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    if not any(line.strip() for line in lines):
        return ""
    shown = [line if len(line) <= PRINTED_LINE_CHARS else line[:PRINTED_LINE_CHARS] + " [...]"
             for line in lines[:PRINTED_LINES]]
    which = (f"the first {PRINTED_LINES} of {len(lines)} lines" if len(lines) > PRINTED_LINES
             else "all of it")
    body = "\n".join(shown).replace("```", "` ` `")  # the student's text cannot close the block
    return f"What your code printed ({which}):\n```\n{body}\n```"


def phase_verdict(meta: TestMeta, call, report, *, partial=None, board=None, printed=()) -> dict:
    """One phase's verdict as plain data: kind, score fraction, student and staff text.

    ``partial``: the value the test gave ``set_score`` (call phase only); ``board``: its
    leaderboard value; ``printed``: what the student's calls the phase judged printed (kept
    for a failed visible test only).
    """
    verdict = {"meta": meta.as_data(), "when": report.when, "kind": "passed", "fraction": 1.0,
               "message": "", "safe": False, "staff": "", "leaderboard": board, "printed": ""}
    if partial is not None:
        weight = meta.weight if meta.weight else 1.0
        verdict["fraction"] = min(1.0, max(0.0, float(partial) / weight))
    if hasattr(report, "wasxfail"):
        verdict.update(kind="skipped", fraction=0.0,
                       message="expected failure (xfail): tests that may fail score 0.")
    elif report.passed:
        pass
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        verdict.update(kind="skipped", fraction=0.0, message=f"skipped: {reason}")
    else:
        verdict.update(_failure(call.excinfo, report))
        if partial is None:
            verdict["fraction"] = 0.0
        if meta.group != "hidden" and not meta.hide_errors:
            verdict["printed"] = printed_excerpt(list(printed))
    return verdict


def _failure(excinfo, report) -> dict:
    error = excinfo.value if excinfo is not None else None
    if isinstance(error, SubmissionError):
        return {"kind": "submission_error", "submission_kind": error.kind,
                "message": str(error), "staff": ""}
    if isinstance(error, (AssertionError, pytest.fail.Exception)):
        text = str(error).strip() or "the test's check failed."
        return {"kind": "failed", "message": text, "safe": isinstance(error, StudentFeedback),
                "staff": report.longreprtext}
    if error is None:  # no exception: e.g. a strict xfail that passed
        return {"kind": "failed", "message": f"the test failed: {str(report.longrepr)[:300]}",
                "staff": ""}
    return {"kind": "internal_error", "message": INTERNAL_ERROR, "staff": report.longreprtext}


def internal_error(nodeid: str, name: str, output: str, staff_detail: str = "") -> TestResult:
    """A failed entry, worth nothing, for a fault of the grader outside any test
    (a grading file that does not import, a count of tests that does not match)."""
    return TestResult(nodeid=nodeid, name=name, number="0", problem="", score=0.0, max_score=0.0,
                      status="failed", kind="internal_error", output=output,
                      staff_detail=staff_detail)


def graded_result(meta: TestMeta, phases: list[dict]) -> TestResult:
    """One result from a test's phase verdicts: the first phase that did not pass decides."""
    call = next((p for p in phases if p["when"] == "call"), None)
    decisive = next((p for p in phases if p["kind"] != "passed"), call)
    if decisive is None:  # setup passed but the call never came
        return not_graded(meta.placeholder(), "the test did not run")
    if meta.config_error:
        decisive = {**decisive, "kind": "internal_error", "fraction": 0.0, "message": INTERNAL_ERROR,
                    "staff": f"grading test {meta.nodeid} {meta.config_error}"}
    fraction = decisive["fraction"] if decisive is call else 0.0  # setup/teardown errors: 0
    score = meta.max_score * fraction
    passed = decisive["kind"] == "passed" and fraction >= 1.0
    board = call.get("leaderboard") if call else None
    return TestResult(
        nodeid=meta.nodeid, name=meta.name, number=meta.number, problem=meta.problem,
        score=score, max_score=meta.max_score, status="passed" if passed else "failed",
        output=_student_output(meta, decisive, passed, score), visibility=meta.visibility,
        tags=meta.tags, stage=meta.stage, group=meta.group, bonus=meta.bonus,
        kind=decisive["kind"], staff_detail=decisive.get("staff", "") or "",
        leaderboard=(meta.leaderboard[0], board, meta.leaderboard[1])
        if meta.leaderboard and isinstance(board, (int, float, str)) else None)


def student_text(meta: TestMeta, verdict: dict) -> str:
    """What a student reads of one failing phase's verdict: the text its test's result shows."""
    return _student_output(meta, verdict, False, meta.max_score * verdict["fraction"])


def _student_output(meta: TestMeta, verdict: dict, passed: bool, score: float) -> str:
    text = _student_text(meta, verdict, passed, score)
    if not passed and verdict.get("printed") and verdict["kind"] != "internal_error":
        text = f"{text}\n\n{verdict['printed']}"
    if verdict["when"] != "call" and verdict["kind"] != "passed":  # say which phase failed
        phase = "setting up" if verdict["when"] == "setup" else "cleaning up after"
        text = f"Error while {phase} this test. {text}"
    return text


def _student_text(meta: TestMeta, verdict: dict, passed: bool, score: float) -> str:
    partial = "" if passed or score <= 0 else f"Partial credit: {score:.4g} / {meta.max_score:.4g}.\n\n"
    if passed:
        return "Passed."
    kind, message = verdict["kind"], verdict["message"]
    if kind == "internal_error":
        return INTERNAL_ERROR
    if meta.hide_errors:
        return partial + str(meta.hide_errors)
    if meta.group == "hidden":
        if verdict.get("safe"):
            return partial + message
        if kind == "submission_error":
            return partial + _GENERIC_BY_KIND.get(verdict.get("submission_kind"),
                                                  "Your code failed on this hidden test.")
        if kind == "passed":  # partial credit on a passing call
            return partial.strip()
        return partial + "This hidden test failed; its inputs are not shown."
    if kind == "failed" and not verdict.get("safe"):  # raw assertion text: keep it verbatim
        return partial + "```\n" + message + "\n```"
    return partial + message
