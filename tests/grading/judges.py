"""Per-problem judging shared by the visible and hidden grading tests (trusted side).

Each ``judge_*`` takes the fixture cases and what the probe reported, and raises
``autograder.checks.WrongAnswer`` with a student-facing message on the first wrong case.
``hidden=True`` keeps inputs and values out of the messages. No solution code lives here:
expected values come from the fixtures, properties are checked from data. Every comparison is
made here, in the trusted process: the probes only report facts (the inputs as a call left
them, what it returned), which student code cannot turn into a verdict.

``lab1_calls`` / ``lab2_calls`` / ``lab3_calls`` list a group's probe calls by cache key; the
``*_values`` helpers prefetch them as one batch (one sandbox child per lab and group) and
return one call's values.
"""
from __future__ import annotations

import functools

import numpy as np

from autograder.checks import (HINTS, WrongAnswer, as_real, check_array, check_form,
                               check_pruned, check_scalar, fail, recognise, show, subject)

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


def which_input(index: int, count: int, *, hidden: bool = False) -> str:
    """``"input 2 of 3"`` (``"hidden input 2 of 3"``): the case a message is about."""
    return f"{'hidden ' if hidden else ''}input {index + 1} of {count}"


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


def check_lab1(probe, expected, fn: str, group: str, **options) -> None:
    """Judge every case of ``fn`` in ``group`` with ``judge_lab1`` (``options`` passed on)."""
    __tracebackhide__ = True
    cases, results = lab1_results(probe, expected, fn, group)
    judge_lab1(fn, cases, results, names=LAB1_ARGS[fn], hidden=group == "hidden", **options)


def check_lab1_trajectory(probe, expected, fn: str, group: str) -> None:
    """Judge the 200-step run of ``fn`` in ``group``."""
    __tracebackhide__ = True
    _, runs, values = lab1_values(probe, expected, fn, group)
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
        fail(f"{who} should return a NumPy array (`numpy.ndarray`), but returned "
             f"`{report['type']}`.", context=context, hidden=hidden)
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


# --------------------------------------------------------------------------------- Lab 2
def prune_inputs(cases: list[dict]) -> dict:
    return {"cases": [{"weight": c["weight"], "bias": c.get("bias"), "q": float(c["q"])}
                      for c in cases]}


def layer_kind(weight: np.ndarray) -> str:
    return (f"{'Conv2d' if weight.ndim == 4 else 'Linear'} weight of shape {weight.shape}, "
            f"{weight.dtype}")


MASK_TYPES = ("torch.Tensor", "torch.nn.parameter.Parameter", "numpy.ndarray")


def judge_prune(case: dict, report: dict, *, hidden: bool = False) -> None:
    """In place on the same Parameter, same dtype and device, bias untouched, a None or mask
    return, and the magnitude-pruning properties of ``check_pruned``."""
    weight, q = case["weight"], float(case["q"])
    bias = case.get("bias")
    what = f"a {layer_kind(weight)}{'' if bias is None else ' with a bias'}, q = {q:g}"
    name = "prune_by_percentage"
    if not report["is_parameter"] or not report["same_parameter"]:
        fail(f"**{name}** replaced `layer.weight`; change its values in place (e.g. "
             "`layer.weight.data[mask] = 0` or under `torch.no_grad()`), so the optimizer "
             "keeps training the same Parameter.", context=what, hidden=hidden)
    if report["device"] != report["expected_device"]:
        fail(f"**{name}** moved the weight from {report['expected_device']} to {report['device']}.",
             context=what, hidden=hidden)
    returned = report["returned"]
    is_mask = returned["type"] in MASK_TYPES and tuple(returned["shape"] or ()) == weight.shape
    if returned["type"] != "builtins.NoneType" and not is_mask:
        shape = "" if returned["shape"] is None else f" of shape {tuple(returned['shape'])}"
        fail(f"**{name}** returned `{returned['type']}`{shape}; return None (or the mask, of "
             "the weight's shape).", context=what, hidden=hidden)
    check_pruned(name, weight, report["weight"], q=q, context=what, hidden=hidden)
    if bias is not None:
        after = report["bias"]
        if type(after) is not np.ndarray or after.shape != bias.shape or \
                not np.array_equal(after, bias):
            zeroed = int(((after == 0) & (bias != 0)).sum()) if type(after) is np.ndarray and \
                after.shape == bias.shape else 0
            fail(f"**{name}** changed the layer's bias; prune only `layer.weight` and leave "
                 "`layer.bias` as it is.", context=what, hidden=hidden,
                 details=f"- {zeroed} of {bias.size} bias values were set to 0",
                 hints=["the bias was pruned too: loop over `layer.weight` only, not "
                        "`layer.parameters()`."] if zeroed else [])


def resnet_weights(case: dict) -> dict[str, np.ndarray]:
    """Seeded random weights for every Conv2d/Linear of ResNet-20, by layer name, in order.

    Drawn here with NumPy from the fixture's names, shapes and seed (the scale of PyTorch's
    default init, 1/sqrt(fan_in), so layers differ in scale as in a real network and a per-layer
    threshold differs from the global one). The probe loads them into the network, so the
    trusted side knows the weights before without building the network or importing torch.
    """
    layers = tuple((str(name), tuple(int(d) for d in padded if d > 0))
                   for name, padded in zip(case["names"], case["shapes"]))
    return _drawn_weights(int(case["seed"]), layers)


@functools.lru_cache(maxsize=4)
def _drawn_weights(seed: int, layers: tuple) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in layers:
        weight = (rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
        weight.flags.writeable = False  # shared by the tests of a session
        weights[name] = weight
    return weights


def global_inputs(case: dict) -> dict:
    weights = resnet_weights(case)
    return {"names": list(weights), "weights": list(weights.values()), "q": float(case["q"])}


def lab2_calls(expected, group: str) -> dict[str, tuple]:
    """Every Lab 2 probe call of ``group``, by cache key (one batch per group)."""
    finetune = expected("lab2_finetune")[0]
    return {
        f"{group}-lab2-prune": ("lab2.prune", prune_inputs(expected("lab2_prune"))),
        f"{group}-lab2-sparsity": ("lab2.sparsity",
                                   {"weights": [c["weight"] for c in expected("lab2_sparsity")]}),
        f"{group}-lab2-finetune": ("lab2.finetune_both", finetune_inputs(finetune)),
        f"{group}-lab2-iterative": ("lab2.iterative",
                                    {"epochs": [c["epoch"] for c in expected("lab2_iterative")]}),
        f"{group}-lab2-global": ("lab2.global_prune", global_inputs(expected("lab2_global")[0]),
                                 60.0),  # ResNet-20 on a slow machine
    }


def lab2_values(probe, expected, what: str, group: str) -> dict:
    """The probe values of one Lab 2 question (``prune``, ``sparsity``, ``finetune``,
    ``iterative`` or ``global``), from the group's batch."""
    __tracebackhide__ = True
    calls = lab2_calls(expected, group)
    probe.prefetch(calls)
    key = f"{group}-lab2-{what}"
    name, inputs, *timeout = calls[key]
    return probe(key, name, inputs, timeout=timeout[0] if timeout else 30.0)


def finetune_run(probe, expected, prune: bool, group: str) -> tuple[dict, dict]:
    """(case, report) of the group's finetune with ``prune``: one sandbox call runs both
    finetunes (prune=True and prune=False) of the fixture."""
    __tracebackhide__ = True
    case = expected("lab2_finetune")[0]
    reports = lab2_values(probe, expected, "finetune", group)
    return dict(case, prune=prune), reports["prune" if prune else "no_prune"]


def judge_global(original: dict[str, np.ndarray], report: dict, *, q: float,
                 hidden: bool = False) -> None:
    """One threshold over the 20 prunable layers, id_mapping untouched, fraction within one
    element per layer (plus ties) of q."""
    after = dict(zip(report["names"], report["weights"]))
    name = "global_prune_by_percentage"
    if sorted(after) != sorted(original):
        fail(f"**{name}** changed the network's layers.", hidden=hidden)
    prunable = [n for n in original if "id_mapping" not in n]
    for layer in original:
        got = after[layer]
        if type(got) is not np.ndarray or got.shape != original[layer].shape:
            fail(f"**{name}**: `{layer}.weight` has the wrong type or shape after pruning.",
                 hidden=hidden)
        if "id_mapping" in layer and not np.array_equal(got, original[layer]):
            fail(f"**{name}** changed `{layer}`: the id_mapping shortcut layers are not "
                 "prunable and stay dense.", hidden=hidden)
    before = np.concatenate([original[n].ravel() for n in prunable])
    got = np.concatenate([after[n].ravel() for n in prunable])
    kept = got != 0
    changed = kept & (got != before)
    if changed.any():
        fail(f"**{name}** changed {int(changed.sum())} weight(s) it kept; pruning only sets "
             "weights to 0.", hidden=hidden)
    magnitude = np.abs(before)
    pruned = ~kept & (before != 0)
    if pruned.any() and kept.any() and magnitude[pruned].max() > magnitude[kept].min():
        per_layer = {n: float(np.mean(after[n] == 0)) for n in prunable}
        spread = max(per_layer.values()) - min(per_layer.values())
        fail(f"**{name}** did not use one threshold across the prunable layers: a pruned |w| "
             f"({magnitude[pruned].max():.4g}) is larger than a kept |w| "
             f"({magnitude[kept].min():.4g}).", hidden=hidden,
             hints=["each layer looks pruned at the same fraction: use ONE threshold, the "
                    "q-th percentile of |w| over all prunable layers together."]
             if spread < 0.01 else [])
    zeros, target = int((~kept).sum()), q / 100 * got.size
    slack = len(prunable) + 1
    if abs(zeros - target) > slack and not _tied_count(magnitude, zeros):
        fail(f"**{name}** left {zeros} of {got.size} prunable weights at 0 "
             f"({zeros / got.size:.4%}); q = {q:g}% should give {target:.0f} +- {slack}.",
             hidden=hidden)


def _tied_count(magnitude: np.ndarray, zeros: int) -> bool:
    """True when ``zeros`` ends exactly at a block of tied magnitudes (a valid mask)."""
    ordered = np.sort(magnitude)
    return 0 < zeros < ordered.size and ordered[zeros - 1] == ordered[zeros]


def judge_sparsity(cases: list[dict], values: list, *, hidden: bool = False) -> None:
    # The fraction is a count over numel: a float32 computation is exact to ~1e-7.
    for case, value in zip(cases, values):
        check_scalar("layer_sparsity", case["expected"], value, rtol=0.0, atol=1e-6,
                     context=f"a {layer_kind(case['weight'])} with "
                             f"{int((case['weight'] == 0).sum())} zeros", hidden=hidden)


def finetune_inputs(case: dict) -> dict:
    weights = [case[k] for k in sorted(k for k in case if k.startswith("weight"))]
    batches = [[case[f"x{b}"], case[f"y{b}"]]
               for b in range(sum(k.startswith("x") for k in case))]
    return {"weights": weights, "batches": batches, "lr": case["lr"], "prune": case.get("prune")}


def judge_finetune(case: dict, report: dict, *, hidden: bool = False) -> None:
    """One optimizer step per batch; training changed the kept weights; with prune=True every
    pruned weight is exactly 0 after every step."""
    inputs = finetune_inputs(case)
    batches = len(inputs["batches"])
    name = f"finetune_after_prune(..., prune={bool(case['prune'])})"
    what = f"a small CNN with {len(inputs['weights'])} pruned layers, {batches} batches"
    if report["steps"] != batches:
        fail(f"**{name}** called optimizer.step() {report['steps']} times over {batches} "
             "batches; train one epoch: one step per batch.", context=what, hidden=hidden)
    final = report["final"]
    if all(np.array_equal(w, f) for w, f in zip(inputs["weights"], final)):
        fail(f"**{name}** did not change the weights: no training happened.",
             context=what, hidden=hidden)
    if not case["prune"]:
        return
    for step, snapshot in enumerate(report["snapshots"][1:], start=1):
        for index, (before, now) in enumerate(zip(inputs["weights"], snapshot)):
            revived = (before == 0) & (now != 0)
            if revived.any():
                fail(f"**{name}**: after optimizer step {step}, {int(revived.sum())} pruned "
                     f"weight(s) of layer {index} are no longer 0. Record the mask of nonzero "
                     "weights before training and re-apply it after EVERY optimizer.step().",
                     context=what, hidden=hidden,
                     hints=["a mask recomputed from the current weights, or never re-applied, "
                            "lets momentum and weight decay revive pruned weights."])


def judge_iterative(cases: list[dict], values: list, *, hidden: bool = False) -> None:
    for case, value in zip(cases, values):
        epoch = case["epoch"]
        if case.get("expected") is None:
            if value is None or (as_real(value) is not None and abs(as_real(value) - 80) < 1e-9):
                continue
            fail(f"**iterative_prune_percentage** returned {show(value)} for epoch {epoch}; "
                 "after the 10 pruning epochs return None (or 80).",
                 context=f"epoch = {epoch}", hidden=hidden)
        check_scalar("iterative_prune_percentage", case["expected"], value, rtol=0.0,
                     atol=1e-9, context=f"epoch = {epoch} (0-based)", hidden=hidden,
                     hints=["epochs are 0-based: prune 8 * (epoch + 1) percent."]
                     if as_real(value) == 8.0 * epoch else [])


# --------------------------------------------------------------------------------- Lab 3
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
