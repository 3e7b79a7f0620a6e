"""The two kinds of failure a grade can meet, told apart in status and message.

A ``SubmissionError`` is the student's: its ``message`` is markdown written for the student
and costs the points of the test it stops. A ``GraderError`` is ours: it is reported as an
internal grading error, with the traceback kept for course staff.
"""
from __future__ import annotations


class GraderError(Exception):
    """A fault of the grader or its environment, never the student's."""


class SubmissionError(Exception):
    """The submission's code failed; ``message`` says what and where, for the student."""

    kind = "error"

    def __init__(self, message: str, *, details: str = ""):
        super().__init__(message)
        self.message = message
        self.details = details  # extra student-safe text, e.g. a traceback of their own files

    def __str__(self) -> str:
        return self.message if not self.details else f"{self.message}\n\n{self.details}"


class NotImplementedYet(SubmissionError):
    kind = "not_implemented"


class MissingFile(SubmissionError):
    kind = "missing_file"


class ImportFailed(SubmissionError):
    kind = "import_failed"


class MissingFunction(SubmissionError):
    kind = "missing_function"


class StudentException(SubmissionError):
    kind = "exception"


class TimedOut(SubmissionError):
    kind = "timeout"


class Crashed(SubmissionError):
    kind = "crashed"


class OutOfMemory(SubmissionError):
    kind = "out_of_memory"


class NoResult(SubmissionError):
    kind = "no_result"


class InvalidOutput(SubmissionError):
    kind = "invalid_output"


SUBMISSION_ERRORS = {cls.kind: cls for cls in (
    SubmissionError, NotImplementedYet, MissingFile, ImportFailed, MissingFunction,
    StudentException, TimedOut, Crashed, OutOfMemory, NoResult, InvalidOutput)}


def from_kind(kind: str, message: str, details: str = "") -> SubmissionError:
    """Rebuild a SubmissionError from the plain data a sandbox child reported."""
    return SUBMISSION_ERRORS.get(kind, SubmissionError)(message, details=details)
