"""Lab 1 (problems 2.1-2.6): the probe calls of the visible and hidden tests and their judges.

``lab1_calls`` lists a group's calls by cache key; ``lab1_values`` prefetches them as one batch
(one sandbox child) and returns one call's values. Each ``judge_*`` takes the fixture cases and
what the probe reported, and raises ``autograder.checks.WrongAnswer`` with a student-facing
message on the first wrong case; ``hidden=True`` keeps inputs and values out of the messages.
Expected values come from the fixtures (``autograder.expected``); every comparison is made
here, in the trusted process: the probes only report facts.
"""
from __future__ import annotations

import numpy as np

from autograder import pictures
from autograder.checks import WrongAnswer, as_real, check_array, check_scalar, fail, recognise, show, subject, which_input

# Lab 1 tolerances. Inputs are float64 and so is the reference, but a student may compute in
# float32 or through torch. One step is a handful of operations (X @ W over <= 8 terms, a
# residual, X^T @ r, a scaled update): each rounding costs <= eps32 = 1.2e-7 relative to the
# magnitudes involved, so rtol 1e-5 and atol 1e-5 * (1 + max|expected|) hold with a margin of
# ~10x. Wrong formulas move results by >= 1e-2 on these inputs.
STEP_RTOL = 1e-5
# 200-step trajectories: measured float32-versus-float64 deviation of the reference after 200
# steps is <= 5e-6 on every handout run (GD contracts errors on the row space of X; in its null
# space they only add up, 200 x ~1e-8). 1e-4 leaves 20x margin and is far below the 1e-2 a wrong
# rule moves the final W (HOMEWORK.md's values are given to 3 decimals).
TRAJECTORY_ATOL = 1e-4


# The arguments of each Lab 1 function, in order: the fixtures' field names.
LAB1_ARGS = {
    "loss": ("W", "X", "Y"),
    "gradient": ("W", "X", "Y"),
    "gd_step": ("W", "X", "Y", "lr"),
    "projected_gd_step": ("W", "X", "Y", "lr", "k"),
    "subgradient_l1_step": ("W", "X", "Y", "lr", "lam"),
    "soft_threshold": ("W", "threshold"),
    "proximal_l1_step": ("W", "X", "Y", "lr", "threshold"),
    "trimmed_l1_step": ("W", "X", "Y", "lr", "threshold", "h"),
}


def step_atol(expected) -> float:
    return 1e-5 * (1.0 + float(np.max(np.abs(expected))))


def lab1_context(case: dict, names: tuple[str, ...]) -> str:
    """The inputs of one Lab 1 case, one ``name = value`` per line (for a code block)."""
    lines = []
    for n in names:
        if case.get(n) is not None:
            text = show(case[n])
            lines.append(f"{n} = " + text.replace("\n", "\n" + " " * (len(n) + 3)))
    return "\n".join(lines)


def lab1_args(case: dict, names: tuple[str, ...]) -> dict:
    """``{"args": [...]}`` for the probe; a None optional argument is left to its default."""
    args = []
    for n in names:
        if case.get(n) is None:
            break  # later arguments are defaults too
        args.append(case[n])
    return {"args": args}


def lab1_calls(expected, group: str) -> dict[str, tuple]:
    """Every Lab 1 probe call of ``group``, by cache key: one ``lab1.call`` per function with
    its cases and, for the step rules, its 200-step run. Tests prefetch them as one batch."""
    runs = expected("lab1_trajectories")
    calls = {}
    for fn, names in LAB1_ARGS.items():
        run = [c for c in runs if c["fn"] == fn]
        calls[f"{group}-lab1-{fn}"] = ("lab1.call", {
            "fn": fn, "cases": [lab1_args(c, names) for c in expected(f"lab1_{fn}")],
            "trajectory": trajectory_inputs(run[0]) if run else None})
    return calls


def lab1_values(probe, expected, fn: str, group: str) -> tuple[list[dict], list[dict], dict]:
    """(cases, 200-step runs, probe values) of one Lab 1 function, from the group's batch."""
    __tracebackhide__ = True  # a failed call's report is the student's message, not our frames
    calls = lab1_calls(expected, group)
    probe.prefetch(calls)
    key = f"{group}-lab1-{fn}"
    runs = [c for c in expected("lab1_trajectories") if c["fn"] == fn]
    return expected(f"lab1_{fn}"), runs, probe(key, *calls[key])


def lab1_results(probe, expected, fn: str, group: str) -> tuple[list[dict], list[dict]]:
    """(cases, the student's result for each) of one Lab 1 function in ``group``."""
    __tracebackhide__ = True
    cases, _, values = lab1_values(probe, expected, fn, group)
    return cases, values["results"]


# The handout's sparsity parameters (2.3's k, 2.6's h). Students often write them as literals;
# code right for every case the handout asks earns most of the problem's points, so the tests at
# the handout's value carry most of the weight and the other values the rest.
HANDOUT_VALUE = {"projected_gd_step": ("k", 2), "trimmed_l1_step": ("h", 3)}


def at_handout_value(fn: str, cases: list[dict], results: list[dict], *,
                     handout: bool) -> tuple[list[dict], list[dict]]:
    """(cases, results) of ``fn`` whose k or h is the handout's (left at the default, or given
    as that value) when ``handout``, else the others."""
    parameter, value = HANDOUT_VALUE[fn]
    kept = [(case, result) for case, result in zip(cases, results)
            if (case.get(parameter) in (None, value)) == handout]
    return [case for case, _ in kept], [result for _, result in kept]


def check_lab1(probe, expected, fn: str, group: str, *, handout: bool | None = None,
               **options) -> None:
    """Judge every case of ``fn`` in ``group`` with ``judge_lab1`` (``options`` passed on);
    with ``handout`` True or False, only the cases ``at_handout_value`` keeps."""
    __tracebackhide__ = True
    cases, results = lab1_results(probe, expected, fn, group)
    if handout is not None:
        cases, results = at_handout_value(fn, cases, results, handout=handout)
    judge_lab1(fn, cases, results, names=LAB1_ARGS[fn], hidden=group == "hidden", **options)


def check_lab1_trajectory(probe, expected, fn: str, group: str) -> None:
    """Judge the 200-step run of ``fn`` in ``group``."""
    __tracebackhide__ = True
    _, runs, values = lab1_values(probe, expected, fn, group)
    show_trajectory(runs[0], values["trajectory"])
    judge_trajectory(runs[0], values["trajectory"], hidden=group == "hidden")


def changed_inputs(case: dict, names: tuple[str, ...], after: list) -> list[str]:
    """The names of the array arguments that ``after`` (the arguments as the call left them,
    reported by the probe) shows different from what was sent: values, shape or dtype."""
    sent = lab1_args(case, names)["args"]
    changed = []
    for name, given, now in zip(names, sent, list(after) + [None] * len(sent)):
        if type(given) is np.ndarray and not (
                type(now) is np.ndarray and now.shape == given.shape and now.dtype == given.dtype
                and np.array_equal(now, given)):
            changed.append(name)
    return changed


def _check_report(name: str, case: dict, report: dict | None, *, names, hidden, hints_for,
                  which: str = ""):
    who = subject(name, which)
    if report is None:
        fail(f"{who} raised an exception.", hidden=hidden)
    context = lab1_context(case, names)
    changed = changed_inputs(case, names, report["after"])
    if changed:
        fail(f"{who} modified its input(s) {', '.join(f'`{n}`' for n in changed)} in place; "
             "return a new array and leave the inputs unchanged (e.g. `W = W - lr * g`, not "
             "`W -= lr * g`).", context=context, hidden=hidden)
    if report["aliased"]:
        fail(f"{who} returned one of its inputs; return a new array.",
             context=context, hidden=hidden)
    if report["type"] != "numpy.ndarray":
        # The handout asks for an ndarray (the stubs say so): a list is rejected with the fix,
        # and costs this function's points only (steps are also run with the handout's helpers).
        fix = (" Convert it before returning: `return np.array(result)`."
               if report["type"] in ("builtins.list", "builtins.tuple") else "")
        fail(f"{who} should return a NumPy array (`numpy.ndarray`), but returned "
             f"`{report['type']}`.{fix}", context=context, hidden=hidden)
    expected = case["expected"]
    got = report["value"]
    check_array(name, expected, got, rtol=STEP_RTOL, atol=step_atol(expected), context=context,
                which=which, hidden=hidden, hints=hints_for(got))


def judge_lab1(name: str, cases: list[dict], results: list[dict], *, names: tuple[str, ...],
               hidden: bool = False, start: str | None = "W") -> None:
    """Each case passes when the submitted call matches the reference, or (for a step) when the
    same step run with the handout's ``gradient`` / ``soft_threshold`` does: a bug in a helper
    is charged to the helper only."""
    for index, (case, result) in enumerate(zip(cases, results)):
        origin = np.zeros_like(case["expected"]) if start is None else case[start]
        which = which_input(index, len(cases), hidden=hidden)

        def hints_for(got, case=case, origin=origin):
            return recognise(got, expected=case["expected"], start=origin,
                             variants=case.get("variants", {}))

        try:
            _check_report(name, case, result["own"], names=names, hidden=hidden,
                          hints_for=hints_for, which=which)
        except WrongAnswer as first:
            if result.get("helpers") is None:
                raise
            try:
                _check_report(name, case, result["helpers"], names=names, hidden=hidden,
                              hints_for=lambda got: [], which=which)
            except WrongAnswer:
                raise first from None


def judge_loss(cases: list[dict], results: list[dict], *, hidden: bool = False) -> None:
    names = LAB1_ARGS["loss"]
    for index, (case, result) in enumerate(zip(cases, results)):
        report = result["own"]
        context = lab1_context(case, names)
        which = which_input(index, len(cases), hidden=hidden)
        changed = changed_inputs(case, names, report["after"])
        if changed:
            fail(f"{subject('loss', which)} modified its input(s) "
                 f"{', '.join(f'`{n}`' for n in changed)}; leave them unchanged.",
                 context=context, hidden=hidden)
        check_scalar("loss", case["expected"], report["value"], rtol=STEP_RTOL,
                     atol=1e-5 * (1 + abs(case["expected"])), context=context, which=which,
                     hidden=hidden, hints=_scalar_ratio_hints(case["expected"], report["value"],
                                                              rows=len(case["X"])))


def _scalar_ratio_hints(expected: float, got, *, rows: int) -> list[str]:
    value = as_real(got)
    if value is None or expected == 0:
        return []
    if np.isclose(value, expected / 2, rtol=1e-4):
        return ["L has no 1/2 factor: L(W) = sum_i (X_i . W - y_i)^2."]
    if np.isclose(value, expected / rows, rtol=1e-4):
        return ["L is a sum over the samples, not a mean: L(W) = sum_i (X_i . W - y_i)^2."]
    if np.isclose(value, expected ** 0.5, rtol=1e-4):
        return ["L is the sum of squared residuals: no mean and no square root."]
    return []


def judge_trajectory(case: dict, result: dict, *, hidden: bool = False) -> None:
    """The final W after ``steps`` steps from W0 matches the reference's (either run)."""
    name = f"{case['fn']} iterated {case['steps']} times from W0"
    context = (lab1_context(case, ("X", "Y", "W0", "lr"))
               + f"\nextra arguments = {show(case['extra'])}")
    candidates = [result.get("own"), result.get("helpers")]
    errors = []
    for got in candidates:
        if got is None:
            continue
        try:
            check_array(name, case["expected"], got, rtol=0.0, atol=TRAJECTORY_ATOL,
                        context=context, hidden=hidden)
            return
        except WrongAnswer as error:
            errors.append(error)
    if errors:
        raise errors[0]
    fail(f"**{name}** raised an exception.", hidden=hidden)


def trajectory_inputs(case: dict) -> dict:
    extra = [int(a) if is_int else float(a) for a, is_int in zip(
        np.atleast_1d(case["extra"]), np.atleast_1d(case["extra_is_int"]))]
    return {"fn": case["fn"], "X": case["X"], "Y": case["Y"], "W0": case["W0"],
            "lr": case["lr"], "steps": case["steps"], "extra": extra}


def judge_at_most_k(cases: list[dict], results: list[dict], *, hidden: bool = False) -> None:
    """A projected step leaves at most k nonzero entries (k = 2 by default)."""
    for index, (case, result) in enumerate(zip(cases, results)):
        report = result["own"] or result["helpers"]
        k = 2 if case.get("k") is None else case["k"]
        who = subject("projected_gd_step", which_input(index, len(cases), hidden=hidden))
        if report is None or type(report["value"]) is not np.ndarray:
            fail(f"{who} did not return an array.", hidden=hidden)
        nonzero = int(np.count_nonzero(report["value"]))
        if nonzero > k:
            fail(f"{who} returned {nonzero} nonzero entries; the projection onto k-sparse "
                 f"vectors keeps at most k = {k}.",
                 context=lab1_context(case, LAB1_ARGS["projected_gd_step"]), hidden=hidden)


@pictures.never_fails
def show_trajectory(case: dict, result: dict) -> None:
    """Attach the picture of a 200-step run: the student's path (the run judged correct if one
    is, else their own) beside the reference's. A no-op in hidden tests."""
    runs = [(result.get(label), result.get(f"{label}_path")) for label in ("own", "helpers")]
    runs = [(final, path) for final, path in runs if path is not None]
    if not runs:
        return
    matching = [path for final, path in runs if type(final) is np.ndarray
                and final.shape == case["expected"].shape
                and np.all(np.abs(final - case["expected"]) <= TRAJECTORY_ATOL)]
    extra = ", ".join(f"{v:g}" for v in np.atleast_1d(case["extra"]))
    pictures.attach("trajectory", student=(matching or [runs[0][1]])[0], reference=case["path"],
                    X=case["X"], Y=case["Y"], tolerance=TRAJECTORY_ATOL,
                    title=f"{case['fn']}(W, X, Y, lr={case['lr']:g}{', ' + extra if extra else ''})"
                          f", {case['steps']} steps from W0")
