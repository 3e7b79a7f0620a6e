"""Pictures in the student's feedback: data recorded while a visible test runs, drawn later.

A grading test (or a judge) calls ``attach(kind, **data)`` with plain numbers or NumPy arrays
that came back from the sandbox or from the fixtures; nothing is drawn then. The plugin
(``autograder.plugin``) opens a ``recording`` around the call of each visible test only, so a
hidden test's ``attach`` is a no-op and its output can never carry a picture. The records
travel with the test's report (plain lists, so they cross from xdist workers too) and
``autograder.pictures.session`` draws one PNG per problem, in the trusted process, once the
session's tests are done: matplotlib (about 40 MiB resident) is imported then, and only by a
run that has something to draw, never beside the sandbox's processes.

Kinds (one panel each; ``autograder.pictures.draw`` maps them to their drawers):
- ``trajectory`` (Lab 1): ``student`` and ``reference`` paths of W, shape (steps + 1, n), and
  the problem's ``X``, ``Y``; log L is computed here from them.
- ``sparsity`` (Lab 2): ``layers`` (names), ``student`` and ``reference`` fractions of zeros
  (``zeros_fraction`` computes one); ``reference_label`` when the other bars are a target.
- ``accuracy`` (training stage): ``label``, ``accuracy`` and the calibrated ``threshold``.
- ``levels`` (Lab 3): ``w`` (the input), ``student`` and ``reference`` quantized values, ``bit``.

``attach`` never raises, and a helper decorated with ``never_fails`` neither: a picture that
cannot be recorded is simply absent.
"""
from __future__ import annotations

import contextlib
import functools
import math

import numpy as np

KINDS = ("trajectory", "sparsity", "accuracy", "levels")
# A record is at most this many numbers: a 200-step path of 5 weights is ~1000 each side.
MAX_VALUES = 20_000

_recording: list | None = None  # the running visible test's records, else None


def attach(kind: str, **data) -> None:
    """Record a picture panel of ``kind`` for the running test's problem (see the module doc).

    Values are copied to plain lists now, so later changes to the arrays do not reach the
    picture. Outside a recording (a hidden test, a judge called from a script) nothing happens.
    """
    if _recording is None or kind not in KINDS:
        return
    try:
        record = {name: plain(value) for name, value in data.items()}
        if _count(record) <= MAX_VALUES:
            _recording.append({"kind": kind, "data": record})
    except Exception:  # a picture is never worth a test's verdict
        return


def never_fails(prepare):
    """Decorate a judge's helper that prepares a picture's data and calls ``attach``: whatever
    it raises is swallowed, so a picture's preparation can never change a test's verdict."""
    @functools.wraps(prepare)
    def quietly(*args, **kwargs) -> None:
        if _recording is None:  # nothing would be kept: skip the work (hidden tests)
            return
        try:
            prepare(*args, **kwargs)
        except Exception:
            return
    return quietly


@contextlib.contextmanager
def recording(enabled: bool):
    """Collect the ``attach`` calls made inside the block into the yielded list (left empty
    when not ``enabled``, which is how hidden tests get none)."""
    global _recording
    records: list = []
    previous, _recording = _recording, (records if enabled else None)
    try:
        yield records
    finally:
        _recording = previous


def zeros_fraction(weight) -> float | None:
    """The fraction of exact zeros of an array (None for anything else: nothing is drawn)."""
    if type(weight) is not np.ndarray or weight.size == 0:
        return None
    return float(np.mean(weight == 0))


def plain(value):
    """``value`` as JSON-like data: arrays and NumPy scalars to (nested) lists of floats, NaN
    and infinities to None. Strings, None and booleans pass unchanged."""
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and any(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        number = float(array)
        return number if math.isfinite(number) else None
    return array.tolist() if np.isfinite(array).all() else [plain(v) for v in array]


def _count(data) -> int:
    if isinstance(data, dict):
        return sum(_count(v) for v in data.values())
    if isinstance(data, list):
        return sum(_count(v) for v in data)
    return 1
