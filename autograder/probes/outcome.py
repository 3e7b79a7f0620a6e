"""The outcome of one probe call as a message, child side: the one encoder of the call protocol.

A call's message is ``{"ok": True, "values": {...}}`` or ``{"ok": False, "error": {"kind",
"message", "details"}}``, where kind is a ``SubmissionError`` kind or ``"grader"``. The sandbox
child writes one per call (``autograder.sandbox.child``), ``batch.run`` one per sub-call; the
trusted side decodes both in one place (``autograder.sandbox.client.decode``).
"""
from __future__ import annotations

import os
import traceback

from autograder import probes
from autograder.errors import GraderError, SubmissionError

_CUDA_SIGNS = ("Torch not compiled with CUDA enabled", "NVIDIA driver", "No CUDA GPUs are available",
               "CUDA", "cuda")
_MEMORY_SIGNS = ("can't allocate memory", "not enough memory", "out of memory", "Cannot allocate memory")


def success(values: dict) -> dict:
    return {"ok": True, "values": values}


def failure(kind: str, message: str, details: str = "") -> dict:
    return {"ok": False, "error": {"kind": kind, "message": message, "details": details}}


def classify(error: BaseException, device: str) -> dict:
    """The failure message of ``error`` for the trusted side: whose fault, what, and where in
    the student's files."""
    if isinstance(error, SubmissionError):
        return failure(error.kind, error.message, error.details)
    if isinstance(error, GraderError):
        return failure("grader", str(error), traceback.format_exc())
    frames = probes.student_frames(error)
    escaped_from = probes.raised_by_student(error)
    where = f"`{frames[-1].name}` in `{os.path.basename(frames[-1].filename)}`" if frames \
        else f"`{escaped_from}`" if escaped_from else "your code"
    details = probes.format_student_traceback(error)
    if not isinstance(error, Exception):  # SystemExit, KeyboardInterrupt, pytest's outcomes
        return failure("no_result", f"{where} raised `{probes.describe(error)}`, which ends the "
                       f"process instead of returning a result. Return values; do not exit.", details)
    if isinstance(error, NotImplementedError):
        return failure("not_implemented", f"{where} is not implemented yet (it raised "
                       f"NotImplementedError).", details)
    if isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and
                                          any(sign in str(error) for sign in _MEMORY_SIGNS)):
        return failure("out_of_memory", f"{where} ran out of memory (`{probes.describe(error)}`).",
                       details)
    if not frames and not escaped_from:
        return failure("grader", f"the probe failed: {probes.describe(error)}", traceback.format_exc())
    if device == "cpu" and isinstance(error, (RuntimeError, AssertionError, AttributeError)) and \
            any(sign in str(error) for sign in _CUDA_SIGNS):
        return failure("exception", f"{where} tried to use a GPU (CUDA), but the grader has no GPU "
                       f"(`{probes.describe(error)}`). Do not call `.cuda()` or write `\"cuda\"`: "
                       f"use the `device` global of your lab file, e.g. `.to(device)`.", details)
    return failure("exception", f"{where} raised `{probes.describe(error)}`.", details)
