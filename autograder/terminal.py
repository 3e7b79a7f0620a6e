"""What a terminal shows of a grading run: the student's view by default, the staff's on request.

A student who runs ``pytest`` in the handout (and a TA's ``grade``) reads each failed grading
test as a TA's comment: the text its result carries on Gradescope (what was wrong, on which
input, expected versus got, the hint, then the first lines the student's code printed), in
place of pytest's traceback through the test, the judges and ``autograder.checks``. That holds
for the failures written for students (``StudentFeedback``, which ``WrongAnswer`` is, and
``SubmissionError``, whose traceback is already cut to the student's own files). Any other
failure keeps pytest's report: it is the grader's fault, and its traceback is for staff.

The staff view (``staff_view``) keeps pytest's tracebacks and adds the ``[staff]`` lines (the
sandbox's defences, the details of internal grading errors): asked for with ``-v``,
``--tb=long`` or ``--staff-log``, which ``grade -v`` and Gradescope's run (whose output only
staff read) pass.
"""
from __future__ import annotations

from autograder import feedback
from autograder.errors import SubmissionError
from autograder.report import StudentFeedback
from autograder.scoring import TestMeta

STAFF_PREFIX = "[staff] "


def staff_view(config) -> bool:
    """Whether this run shows staff what students do not see (a run without pytest's terminal
    plugin, ``grade``'s, has no -v or --tb)."""
    return bool(config.getoption("staff_log", False) or (config.getoption("verbose", 0) or 0) > 0
                or config.getoption("tbstyle", "auto") == "long")


def show_to_student(report, excinfo, meta: TestMeta, verdict: dict) -> None:
    """Replace a failed phase's traceback with its student-facing text, when the failure was
    written for students (see the module's docstring)."""
    error = excinfo.value if excinfo is not None else None
    if report.failed and isinstance(error, (StudentFeedback, SubmissionError)):
        report.longrepr = feedback.student_text(meta, verdict)


def defences_line(box) -> str | None:
    """The staff line naming the defences a started Sandbox ran with (the README's security
    table); None when it never started (nothing ran, nothing to report)."""
    if getattr(box, "_zygote", None) is None:
        return None
    try:
        defences = box.capabilities
    except Exception as error:
        defences = {"unknown": repr(error)}
    shown = ", ".join(f"{key}={value}" for key, value in sorted(defences.items()))
    return f"{STAFF_PREFIX}sandbox defences: {shown}"


def staff_lines(results, defences: str | None) -> list[str]:
    """The staff lines of a run: its sandbox's defences, then each internal grading error."""
    lines = [defences] if defences else []
    return lines + [f"{STAFF_PREFIX}internal grading error in {entry}" for entry in results.staff_log]
