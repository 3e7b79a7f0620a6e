"""Lab 2 (problems 3.2-3.5): the probe calls of the visible and hidden tests and their judges.

``lab2_calls`` lists a group's calls by cache key; ``lab2_values`` prefetches them as one batch
(one sandbox child) and returns one call's values. Each ``judge_*`` raises
``autograder.checks.WrongAnswer`` with a student-facing message on the first wrong case;
``hidden=True`` keeps inputs and values out of the messages. Magnitude pruning, of one layer
(``check_pruned``) or of all prunable layers at once (``judge_global``), is judged by the one rule
of ``autograder.pruning``. Every comparison is made here, in the trusted process.
"""
from __future__ import annotations

import functools

import numpy as np

from autograder import pictures
from autograder.checks import as_real, check_pruned, check_scalar, fail, show
from autograder.pruning import review_mask


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
    show_prune_sparsity(case, report)
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
    """One threshold over the 20 prunable layers, id_mapping untouched, kept weights unchanged,
    and the mask over all prunable layers together accepted by
    ``autograder.pruning.review_mask`` (the number of zeros in its range)."""
    after = dict(zip(report["names"], report["weights"]))
    name = "global_prune_by_percentage"
    show_global_sparsity(original, after, q=q)
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
    review = review_mask(np.abs(before), kept, q)
    if not review.one_threshold:
        per_layer = {n: float(np.mean(after[n] == 0)) for n in prunable}
        spread = max(per_layer.values()) - min(per_layer.values())
        fail(f"**{name}** did not use one threshold across the prunable layers: a pruned |w| "
             f"({review.largest_pruned:.4g}) is larger than a kept |w| "
             f"({review.smallest_kept:.4g}).", hidden=hidden,
             hints=["each layer looks pruned at the same fraction: use ONE threshold, the "
                    "q-th percentile of |w| over all prunable layers together."]
             if spread < 0.01 else [])
    if not review.accepted:
        zeros = review.zeros
        fail(f"**{name}** left {zeros} of {got.size} prunable weights at 0 "
             f"({zeros / got.size:.4%}); q = {q:g}% should give between {review.fewest} and "
             f"{review.most}.", hidden=hidden)


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
    pruned weight is exactly 0 after every step; with prune=False pruned weights regrow as
    they do in the reference's epoch (``judge_regrowth``)."""
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
        judge_regrowth(case, inputs["weights"], final, name=name, context=what, hidden=hidden)
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


REGROWTH_SHARE = 0.5  # of the reference's regrown weights, per layer


def judge_regrowth(case: dict, before: list, final: list, *, name: str, context: str,
                   hidden: bool) -> None:
    """With prune=False the mask is not applied: momentum and weight decay give the pruned
    weights gradient, so in the reference's epoch nearly all of them end nonzero
    (``case["regrown_no_prune"]``, per layer). Pass when each layer regrows at least
    ``REGROWTH_SHARE`` of the reference's count: any training without the mask regrows about as
    many (another zero_grad placement, another dtype, other biases), one that masks regrows none."""
    for index, (weight, after, reference) in enumerate(zip(before, final, case["regrown_no_prune"])):
        pruned = weight == 0
        regrown = int((pruned & (after != 0)).sum())
        if regrown < REGROWTH_SHARE * int(reference):
            fail(f"**{name}**: after the epoch, {regrown} of the {int(pruned.sum())} pruned "
                 f"weights of layer {index} are nonzero; training without the mask regrows "
                 f"{int(reference)} of them. With `prune=False`, do not re-apply the mask: "
                 "train every weight.", context=context, hidden=hidden,
                 hints=["the mask is re-applied whatever `prune` says: apply it only "
                        "`if prune:`."] if regrown == 0 else [])


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


# -- pictures (autograder.pictures): per-layer sparsity, the student's beside the reference's --

@pictures.never_fails
def show_prune_sparsity(case: dict, report: dict) -> None:
    """One bar pair for a layer pruned by ``prune_by_percentage`` (the fixture holds the
    reference's pruned weight)."""
    label = f"{'conv' if case['weight'].ndim == 4 else 'linear'}, q = {float(case['q']):g}"
    pictures.attach("sparsity", layers=[label],
                    student=[pictures.zeros_fraction(report["weight"])],
                    reference=[pictures.zeros_fraction(case["expected"])])


@pictures.never_fails
def show_global_sparsity(original: dict[str, np.ndarray], after: dict, *, q: float) -> None:
    """The 20 prunable layers after a global prune; the reference's side is what one threshold
    at the q-th percentile of every prunable |w| leaves (the reference's rule: ties aside,
    which no random float32 weights have, both of its masks give the same zeros)."""
    prunable = [name for name in original if "id_mapping" not in name]
    threshold = np.percentile(np.concatenate([np.abs(original[n]).ravel() for n in prunable]), q)
    pictures.attach("sparsity", layers=prunable,
                    student=[pictures.zeros_fraction(after.get(n)) for n in prunable],
                    reference=[float(np.mean(np.abs(original[n]) < threshold)) for n in prunable])
