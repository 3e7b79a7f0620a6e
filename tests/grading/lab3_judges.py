"""Lab 3 (problems 4.1 and 4.4): the STE's probe calls and their judges.

``lab3_calls`` lists a group's calls by cache key; ``lab3_results`` prefetches them as one batch
(one sandbox child) and pairs each fixture case with the probe's report. Each ``judge_ste_*``
raises ``autograder.checks.WrongAnswer`` with a student-facing message on the first wrong case;
``hidden=True`` keeps inputs and values out of the messages. Every comparison is made here, in
the trusted process.
"""
from __future__ import annotations

import numpy as np

from autograder import pictures
from autograder.checks import HINTS, check_array, check_form, fail, recognise, show, subject, which_input

def ste_inputs(cases: list[dict], *, grad: bool = False) -> dict:
    return {"cases": [{"w": c["w"], "bit": c.get("bit"), "keep_zeros": c.get("keep_zeros"),
                       **({"grad": c["grad"]} if grad else {})} for c in cases]}


# 4.1's forward cases, asked in one call; the hidden tests have no bit None/0 cases.
LAB3_FORWARD = {"visible": ("lab3_vector", "lab3_random", "lab3_special"),
                "hidden": ("lab3_vector", "lab3_random")}


def lab3_calls(expected, group: str) -> dict[str, tuple]:
    """Every Lab 3 probe call of ``group``, by cache key (one batch per group): 4.1's forward
    cases together, the straight-through gradient (visible), and keep_zeros (4.4) apart."""
    forward = [c for fixture in LAB3_FORWARD[group] for c in expected(fixture)]
    calls = {f"{group}-lab3-forward": ("lab3.ste", ste_inputs(forward)),
             f"{group}-lab3-keep-zeros": ("lab3.ste", ste_inputs(expected("lab3_keep_zeros")))}
    if group == "visible":
        calls[f"{group}-lab3-grad"] = ("lab3.ste", ste_inputs(expected("lab3_grad"), grad=True))
    return calls


def lab3_results(probe, expected, fixture: str, group: str) -> list[tuple[dict, dict]]:
    """(case, report) pairs of one Lab 3 fixture, from the group's batch; each case carries
    ``"which"`` ("input 2 of 3"), the input's name in messages."""
    __tracebackhide__ = True
    calls = lab3_calls(expected, group)
    probe.prefetch(calls)
    forward = LAB3_FORWARD[group]
    if fixture in forward:
        key = f"{group}-lab3-forward"
        first = sum(len(expected(f)) for f in forward[:forward.index(fixture)])
    else:
        key, first = f"{group}-lab3-{fixture[len('lab3_'):].replace('_', '-')}", 0
    results = probe(key, *calls[key])["results"]
    cases = expected(fixture)
    return [(dict(case, which=which_input(i, len(cases), hidden=group == "hidden")), report)
            for i, (case, report) in enumerate(zip(cases, results[first:first + len(cases)]))]


def ste_context(case: dict) -> str:
    flag = "" if case.get("keep_zeros") is None else f", keep_zeros={case['keep_zeros']}"
    return f"w = {show(case['w'])}, bit = {case.get('bit')}{flag}"


def _ste_output(case: dict, report: dict, *, hidden: bool) -> np.ndarray:
    context, who = ste_context(case), subject("STE.forward", case["which"])
    w, after = case["w"], report["w_after"]
    if type(after) is not np.ndarray or after.shape != w.shape or not np.array_equal(after, w):
        fail(f"{who} modified w in place; return a new tensor and leave w unchanged (the "
             "network keeps training the full-precision weights).", context=context, hidden=hidden)
    if not report["type"].startswith("torch.") or report["out"] is None:
        fail(f"{who} should return a torch.Tensor, but returned `{report['type']}`.",
             context=context, hidden=hidden)
    if report["dtype"] != str(w.dtype):
        fail(f"{who} returned dtype {report['dtype']} for a {w.dtype} w; keep w's dtype (a "
             "float64 result breaks the network's float32 layers).", context=context, hidden=hidden)
    return report["out"]


def ste_tolerance(w: np.ndarray) -> float:
    """float32 slack: alpha * R + beta is ~4 float32 operations on values <= max|w|, so
    8 eps32 * max|w| bounds its rounding; a wrong level is off by alpha / (2**bit - 1)."""
    return 8 * float(np.finfo(np.float32).eps) * max(float(np.abs(w).max()), 1e-30)


def _matches(expected, got, near_tie, tol, level) -> np.ndarray:
    """Elementwise agreement; at a rounding tie (|frac - 0.5| < 1e-4) one level either way."""
    error = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    return (error <= tol) | (near_tie & (np.abs(error - level) <= tol))


def judge_ste_grid(case: dict, report: dict, *, hidden: bool = False) -> None:
    """Levels <= 2**bit, min and max preserved, error <= alpha / (2 (2**bit - 1)), and the
    reference's grid (one level of slack at exact rounding ties). ``case["which"]`` names the
    input in messages (see ``lab3_results``)."""
    got = _ste_output(case, report, hidden=hidden)
    w, bit, context, which = case["w"], case["bit"], ste_context(case), case["which"]
    who = subject("STE.forward", which)
    check_form("STE.forward", case["expected"], got, context=context, which=which, hidden=hidden)
    tol = ste_tolerance(w)
    alpha = float(w.max()) - float(w.min())
    level = alpha / (2 ** bit - 1)
    hints = recognise(got, variants=case.get("variants", {}), rtol=1e-5, atol=tol)
    levels = np.unique(got)
    distinct = 1 + int((np.diff(levels) > tol).sum()) if levels.size else 0
    if distinct > 2 ** bit:
        fail(f"{who} produced {distinct} distinct values; {bit} bits allow at most {2 ** bit}.",
             context=context, hidden=hidden, hints=hints)
    for label, want, have in (("min", w.min(), got.min()), ("max", w.max(), got.max())):
        if abs(float(want) - float(have)) > tol:
            fail(f"{who} did not preserve the {label} of w.", context=context, hidden=hidden,
                 hints=hints, details=f"- expected {label} `{float(want):.8g}`, got "
                                      f"`{float(have):.8g}`")
    error = np.abs(got.astype(np.float64) - w)
    if error.max() > level / 2 + tol:
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(error), error.shape))
        fail(f"{who}: its quantization error {error.max():.4g} exceeds half a level, "
             f"alpha / (2 (2**bit - 1)) = {level / 2:.4g}; {int((error > level / 2 + tol).sum())} "
             f"of {error.size} elements do.", context=context, hidden=hidden, hints=hints,
             details=f"- worst element at index {worst}: w `{float(w[worst]):.8g}`, got "
                     f"`{float(got[worst]):.8g}`, expected `{float(case['expected'][worst]):.8g}`")
    ok = _matches(case["expected"], got, case["near_tie"], tol, level)
    if not ok.all():
        check_array("STE.forward", case["expected"], got, rtol=0.0, atol=tol, context=context,
                    which=which, hidden=hidden, hints=hints)


def judge_ste_keep_zeros(case: dict, report: dict, *, hidden: bool = False) -> None:
    """Zeros stay exactly 0; the others lie on the grid of either accepted convention."""
    got = _ste_output(case, report, hidden=hidden)
    w, context, which = case["w"], ste_context(case), case["which"]
    check_form("STE.forward", case["expected"], got, context=context, which=which, hidden=hidden)
    hints = recognise(got, variants=case.get("variants", {}), atol=ste_tolerance(w))
    zeros = w == 0
    if (got[zeros] != 0).any():
        fail(f"{subject('STE.forward', which)} with keep_zeros=True turned "
             f"{int((got[zeros] != 0).sum())} pruned zero(s) into nonzero values; zeros must "
             "stay exactly 0.", context=context, hidden=hidden, hints=hints)
    tol = ste_tolerance(w)
    for expected in (case["expected"], case["expected_nonzero"]):
        error = np.abs(got.astype(np.float64) - expected)
        # no tie slack here: the fixtures' keep_zeros inputs hold no value near a rounding tie
        if (error[~zeros] <= tol).all():
            return
    check_array("STE.forward (keep_zeros=True)", case["expected"], got, rtol=0.0, atol=tol,
                context=context, which=which, hidden=hidden, hints=hints)


def judge_ste_special(case: dict, report: dict, *, hidden: bool = False) -> None:
    got = _ste_output(case, report, hidden=hidden)
    if case.get("bit") is None:
        check_array("STE.forward with bit=None", case["w"], got, rtol=0.0, atol=0.0,
                    context=ste_context(case), which=case["which"], hidden=hidden)
    else:
        check_array("STE.forward with bit=0", np.zeros_like(case["w"]), got, rtol=0.0, atol=0.0,
                    context=ste_context(case), which=case["which"], hidden=hidden)


def judge_ste_grad(case: dict, report: dict, *, hidden: bool = False) -> None:
    """The straight-through estimator: dL/dw is exactly the upstream gradient."""
    context = ste_context(case)
    if report["grad"] is None:
        fail(f"{subject('STE.backward', case['which'])} produced no gradient for w: the "
             "straight-through estimator returns the upstream gradient unchanged.",
             context=context, hidden=hidden, hints=[HINTS["no_pass_through"]])
    check_array("the gradient w.r.t. w through STE", case["grad"], report["grad"], rtol=0.0,
                atol=0.0, context=context, which=case["which"], hidden=hidden,
                hints=[HINTS["no_pass_through"]])


@pictures.never_fails
def show_levels(case: dict, report: dict) -> None:
    """Attach the picture of the quantizer on the handout's vector: each w's quantized value,
    the student's against the reference's."""
    got = report.get("out")
    pictures.attach("levels", w=case["w"], reference=case["expected"], bit=case["bit"],
                    student=got if type(got) is np.ndarray and got.shape == case["w"].shape
                    else None)
