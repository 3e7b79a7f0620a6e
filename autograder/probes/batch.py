"""Child-side probe that answers several probe calls in one sandbox child, each outcome as data.

A forked child costs tens of milliseconds of CPU (fork and exit of a process that holds torch),
and a grade asks about thirty questions. ``batch.run`` answers one lab's questions in one child.

Isolation inside the batch, as far as one process allows:
- before each sub-call the student modules are dropped from ``sys.modules``, so each sub-call
  imports them afresh (module globals start clean, as in a fresh child);
- the process-wide settings student code commonly changes (``autograder.probes.state``: grad
  mode, default dtype, thread count, NumPy's error handling, working directory...) are put back
  as they were, and random, NumPy and torch are seeded again;
- a sub-call that raises is reported as its error, never propagated: one function's exception
  costs only the tests that asked about that function.
A sub-call that ends, crashes or hangs the process fails the whole batch; the trusted side then
asks each question again in its own child (``autograder.sandbox.client.Sandbox.run_batch``), so
the failure is charged to the function that caused it. Before each sub-call the batch notes its
index and start (``probes.note_batch_progress``): a sub-call that hangs for its whole time
limit is charged the timeout at once, and is not run, and waited for, a second time.

Every sub-call prints into the child's one capture file; ``output_spans`` says which bytes of it
each sub-call wrote, so that a test is shown the output of the call it judges, not the lab's.
"""
from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

from autograder import probes
from autograder.errors import GraderError
from autograder.probes.outcome import classify, success
from autograder.probes.state import GlobalState


def _fresh_state(settings: GlobalState, seed: int) -> None:
    """Undo what the previous sub-call may have left: student modules, torch and NumPy state."""
    for name in probes.STUDENT_MODULES:
        sys.modules.pop(name, None)
    probes.restore_harness()
    settings.restore()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _output_offset() -> int:
    """How many bytes the child's capture file holds now (stdout and stderr share it), once
    what Python buffers is written; -1 when it cannot be told (fd 1 is not a file any more)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a stream the student replaced or closed
            pass
    try:
        return os.lseek(1, 0, os.SEEK_CUR)
    except OSError:
        return -1


def run(inputs: dict) -> dict:
    """Run each ``{"probe": name, "inputs": {...}}`` of ``inputs["calls"]`` in order.

    Returns ``{"results": [...], "output_spans": [[start, end], ...]}``: one message per call,
    as the sandbox child writes for a single call (``autograder.probes.outcome``), and the byte
    range of the capture file each call printed. Nested batches are refused (GraderError).
    """
    settings, seed = GlobalState.capture(), int(inputs.get("seed", 0))
    results, spans = [], []
    for index, call in enumerate(inputs["calls"]):
        if call["probe"].startswith("batch."):
            raise GraderError("batch.run does not nest")
        _fresh_state(settings, seed)
        start = _output_offset()
        probes.note_batch_progress(index, start)
        try:
            results.append(success(probes.run_probe(call["probe"], call["inputs"])))
        except BaseException as error:  # reported as data; SystemExit too, see the docstring
            results.append(classify(error, probes.device()))
        spans.append([start, _output_offset()])
    return {"results": results, "output_spans": spans}
