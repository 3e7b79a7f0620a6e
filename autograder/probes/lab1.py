"""Child-side probes for Lab 1 (runs beside the student's code, returns plain data only).

Fairness: a step function that calls the student's own ``gradient`` (or ``soft_threshold``)
inherits that helper's bug. Each step is therefore run twice: once as submitted, once with
``lab1.gradient`` and ``lab1.soft_threshold`` replaced by the formulas the handout prints. The
grading test accepts the step when either run matches the reference, so one bug costs the
points of one function.
"""
from __future__ import annotations

import numpy as np

from autograder.probes import plain, student, student_function

STEPS_USING_HELPERS = ("gd_step", "projected_gd_step", "subgradient_l1_step",
                       "proximal_l1_step", "trimmed_l1_step")


def _handout_gradient(W, X, Y):
    """The handout's formula: 2 X^T (X W - y)."""
    W, X, Y = (np.asarray(a, dtype=np.float64) for a in (W, X, Y))
    return 2.0 * X.T @ (X @ W - Y)


def _handout_soft_threshold(W, threshold):
    """The handout's formula: sign(v) * max(|v| - threshold, 0)."""
    W = np.asarray(W, dtype=np.float64)
    return np.sign(W) * np.maximum(np.abs(W) - threshold, 0.0)


def _describe(value, what):
    """The plain data of one returned value: its type, and its array when it is array-like."""
    report = {"type": f"{type(value).__module__}.{type(value).__qualname__}", "value": None}
    if isinstance(value, (np.ndarray, np.generic)) or type(value).__module__.startswith("torch"):
        report["value"] = plain(value, what=what)
    elif isinstance(value, (bool, int, float)):
        report["value"] = value
    return report


def _run_case(module, name, args, kwargs):
    """One call on copies of the inputs: what it returned, and the inputs as the call left them.

    Only facts go back: the trusted side compares ``after`` with the inputs it sent (a check
    made here could be fooled by student code that patches NumPy). ``aliased`` lists the
    arguments the function returned as its result (object identity, seen only here).
    """
    copies = [a.copy() if type(a) is np.ndarray else a for a in args]
    out = student_function("lab1", name)(*copies, **kwargs)
    report = _describe(out, f"{name}'s return value")
    report["after"] = [plain(c, what=f"argument {i} after the call") if type(c) is np.ndarray
                       else None for i, c in enumerate(copies)]
    report["aliased"] = [i for i, c in enumerate(copies) if type(c) is np.ndarray and out is c]
    return report


def _with_handout_helpers(module, run):
    """``run()`` with the module's helpers replaced by the handout's formulas, then restored."""
    saved = {name: module.__dict__.get(name) for name in ("gradient", "soft_threshold")}
    module.gradient, module.soft_threshold = _handout_gradient, _handout_soft_threshold
    try:
        return run()
    finally:
        for name, value in saved.items():
            if value is None:
                module.__dict__.pop(name, None)
            else:
                setattr(module, name, value)


def _both_ways(module, name, run):
    """``{"own": ..., "helpers": ...}``: as submitted, and with the handout's helpers.

    A run that raises is reported as None with its error; when both raise, the first error
    propagates so the student sees their own exception.
    """
    outcome, first_error = {}, None
    for label in ("own", "helpers"):
        if label == "helpers" and name not in STEPS_USING_HELPERS:
            outcome[label] = None
            continue
        try:
            outcome[label] = run() if label == "own" else _with_handout_helpers(module, run)
            outcome[f"{label}_error"] = None
        except Exception as error:  # the student's exception, reported or re-raised below
            first_error = first_error or error
            outcome[label] = None
            outcome[f"{label}_error"] = f"{type(error).__name__}: {error}"
    if outcome["own"] is None and outcome["helpers"] is None and first_error is not None:
        raise first_error
    return outcome


def call(inputs: dict) -> dict:
    """Run ``inputs["fn"]`` on each case ``{"args": [...], "kwargs": {...}}``.

    Returns ``{"results": [{"own": report, "helpers": report or None, ...}]}`` where a report
    is ``{"type", "value", "after": [each argument after the call, None if not an array],
    "aliased": [indices of arguments returned as the result]}``. With
    ``inputs["trajectory"]`` (the inputs of ``trajectory``), its result comes back too, under
    "trajectory": one sandbox call serves all the tests of one function.
    """
    module = student("lab1")
    name = inputs["fn"]
    results = []
    for case in inputs["cases"]:
        args, kwargs = list(case["args"]), dict(case.get("kwargs") or {})
        results.append(_both_ways(module, name, lambda: _run_case(module, name, args, kwargs)))
    if inputs.get("trajectory") is not None:
        return {"results": results, "trajectory": trajectory(inputs["trajectory"])}
    return {"results": results}


def trajectory(inputs: dict) -> dict:
    """Iterate ``inputs["fn"]`` ``steps`` times from ``W0``: ``W <- fn(W, X, Y, lr, *extra)``.

    Returns ``{"own": final W or None, "helpers": final W or None}`` (float64 arrays), and
    ``own_path`` / ``helpers_path``: every W from W0 on, shape (steps + 1, n), for the
    feedback's picture (None when a step returned something that is not a plain array of W0's
    shape; the final W is judged all the same).
    """
    module = student("lab1")
    name = inputs["fn"]
    X, Y, lr = np.asarray(inputs["X"]), np.asarray(inputs["Y"]), inputs["lr"]
    extra = list(inputs.get("extra") or [])

    def run():
        step = student_function("lab1", name)
        W = np.array(inputs["W0"], dtype=np.float64)
        path = [W.copy()]
        for _ in range(int(inputs["steps"])):
            W = step(W, X.copy(), Y.copy(), lr, *extra)
            path.append(_path_row(W, path[0].shape))
        final = plain(np.asarray(W, dtype=np.float64), what=f"{name}'s trajectory")
        rows = None if any(row is None for row in path) else np.stack(path)
        return {"final": final, "path": rows}

    outcome = _both_ways(module, name, run)
    for label in ("own", "helpers"):
        result = outcome[label]
        outcome[label] = None if result is None else result["final"]
        outcome[f"{label}_path"] = None if result is None else result["path"]
    return outcome


def _path_row(W, shape) -> np.ndarray | None:
    """A float64 copy of one step's W for the path, or None (the path is then not drawn)."""
    try:
        row = plain(W, what="a step's W").astype(np.float64)
    except Exception:  # an InvalidOutput here is the judge's to report, on the final W
        return None
    return row if row.shape == shape else None
