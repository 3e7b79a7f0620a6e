"""``python -m autograder fixtures``: the expected values of the grading tests, from reference/.

Writes ``fixtures/expected/{visible,hidden}/<name>.npz``: per test case its inputs (fixed seeds,
so regrades give the same scores), the reference's output, and ``variant_<hint>`` arrays: what
a known mistake returns on that input, which ``autograder.checks.recognise`` turns into hints.
``--check`` regenerates in memory and fails when a committed file differs (a stale fixture).

The file format, and ``load`` that the grading tests read the cases with, live in
``autograder.expected``. This module imports reference/ and runs in the trusted process only.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from autograder.expected import EXPECTED_DIR, GROUPS, encode
from autograder.paths import ensure_provided_importable
from autograder.staff import reference


def _lab1_cases(group: str) -> dict[str, list[dict]]:
    """Random W, X, Y per step function; hidden: more rows, more columns, other k, h, lr."""
    ref = reference("lab1")
    rng = np.random.default_rng(11 if group == "visible" else 12)
    shapes = [(3, 5), (3, 5)] if group == "visible" else [(6, 5), (3, 8), (4, 6)]
    lrs = [0.02, 0.05] if group == "visible" else [0.01, 0.03, 0.02]
    problems = []
    for (rows, cols), lr in zip(shapes, lrs):
        W = rng.normal(size=cols)
        W[rng.integers(cols)] = 0.0  # an exact zero: sign(0) = 0 in the subgradient
        problems.append((W, rng.normal(size=(rows, cols)), 3 * rng.normal(size=rows), lr))
    if group == "visible":
        problems.append((ref.W0.copy(), ref.X, ref.Y, ref.LR))  # the handout's first step

    def step_case(W, X, Y, lr, **extra):
        return dict(W=W, X=X, Y=Y, lr=lr, **extra)

    out: dict[str, list[dict]] = {name: [] for name in (
        "loss", "gradient", "gd_step", "projected_gd_step", "subgradient_l1_step",
        "soft_threshold", "proximal_l1_step", "trimmed_l1_step")}
    ks = [None, 3, None] if group == "visible" else [1, 4, None]
    hs = [None, 2, None] if group == "visible" else [None, 4, 1]  # None: the handout's default
    lams = [0.5, 2.0, 0.2] if group == "visible" else [1.0, 0.3, 3.0]
    taus = [0.3, 0.1, 0.02] if group == "visible" else [0.5, 0.05, 0.2]
    for i, (W, X, Y, lr) in enumerate(problems):
        k, h, lam, tau = ks[i], hs[i], lams[i], taus[i]
        grad = ref.gradient(W, X, Y)
        out["loss"].append(step_case(W, X, Y, None, expected=ref.loss(W, X, Y)))
        out["gradient"].append(step_case(W, X, Y, None, expected=grad))
        kk, hh = 2 if k is None else k, 3 if h is None else h
        by_row = _per_sample_variants(ref, W, X, Y, lr, kk=kk, hh=hh, lam=lam, tau=tau)
        out["gd_step"].append(step_case(W, X, Y, lr, expected=ref.gd_step(W, X, Y, lr),
                                        variants=by_row["gd_step"]))
        projection = ref.projected_gd_step(W, X, Y, 0.0, kk)  # lr 0: the projection alone
        smallest = W - lr * grad
        smallest[np.argsort(-np.abs(smallest), kind="stable")[:len(W) - kk]] = 0.0
        out["projected_gd_step"].append(step_case(
            W, X, Y, lr, k=k, expected=ref.projected_gd_step(W, X, Y, lr, kk),
            variants={"projected_before_step": ref.gd_step(projection, X, Y, lr),
                      "kept_smallest": smallest, **by_row["projected_gd_step"]}))
        out["subgradient_l1_step"].append(step_case(
            W, X, Y, lr, lam=lam, expected=ref.subgradient_l1_step(W, X, Y, lr, lam),
            variants=by_row["subgradient_l1_step"]))
        V = 2 * W  # values on both sides of the threshold
        out["soft_threshold"].append(dict(W=V, threshold=tau, expected=ref.soft_threshold(V, tau),
                                          variants={"no_sign": np.maximum(np.abs(V) - tau, 0)}))
        step = ref.gd_step(W, X, Y, lr)
        out["proximal_l1_step"].append(step_case(
            W, X, Y, lr, threshold=tau, expected=ref.proximal_l1_step(W, X, Y, lr, tau),
            variants={"threshold_before_step": ref.gd_step(ref.soft_threshold(W, tau), X, Y, lr),
                      "no_sign": np.maximum(np.abs(step) - tau, 0), **by_row["proximal_l1_step"]}))
        largest = step.copy()
        top = np.argsort(-np.abs(step), kind="stable")[:hh]
        largest[top] = ref.soft_threshold(step[top], tau)
        out["trimmed_l1_step"].append(step_case(
            W, X, Y, lr, threshold=tau, h=h, expected=ref.trimmed_l1_step(W, X, Y, lr, tau, hh),
            variants={"trimmed_largest": largest, "trimmed_all": ref.soft_threshold(step, tau),
                      **by_row["trimmed_l1_step"]}))
    return out


def _per_sample_variants(ref, W, X, Y, lr, *, kk, hh, lam, tau) -> dict[str, dict]:
    """What each step returns when a student updates W once per sample (row of X) instead of
    once per full-batch step: the whole step applied row after row ("per_sample"), or the
    per-row gradient updates followed by one projection, penalty or threshold
    ("per_sample__then_once"). Both carry the hint "per_sample"."""
    extra = {"gd_step": (), "projected_gd_step": (kk,), "subgradient_l1_step": (lam,),
             "proximal_l1_step": (tau,), "trimmed_l1_step": (tau, hh)}
    descended = W.copy()
    for row in range(len(Y)):
        descended = ref.gd_step(descended, X[row:row + 1], Y[row:row + 1], lr)
    once = {"projected_gd_step": ref.projected_gd_step(descended, X, Y, 0.0, kk),
            "subgradient_l1_step": descended - lr * lam * np.sign(W),
            "proximal_l1_step": ref.soft_threshold(descended, tau),
            "trimmed_l1_step": ref.trimmed_l1_step(descended, X, Y, 0.0, tau, hh)}
    variants = {}
    for name, args in extra.items():
        stepped = W.copy()
        for row in range(len(Y)):
            stepped = getattr(ref, name)(stepped, X[row:row + 1], Y[row:row + 1], lr, *args)
        variants[name] = {"per_sample": stepped}
        if name in once:
            variants[name]["per_sample__then_once"] = once[name]
    return variants


def _lab1_trajectories(group: str) -> list[dict]:
    """200 steps from W0 on the handout's problem (visible) or a shifted target (hidden)."""
    ref = reference("lab1")
    Y = ref.Y if group == "visible" else ref.Y + np.array([1.0, -0.5, 0.5])
    runs = [("gd_step", []), ("projected_gd_step", [2]), ("subgradient_l1_step", [0.5]),
            ("proximal_l1_step", [0.01]), ("trimmed_l1_step", [0.04, 3])]
    if group == "hidden":
        runs = [("gd_step", []), ("projected_gd_step", [3]), ("subgradient_l1_step", [1.0]),
                ("proximal_l1_step", [0.02]), ("trimmed_l1_step", [0.1, 2])]
    cases = []
    for fn, extra in runs:
        path = [ref.W0.copy()]  # every W from W0 on: the reference's side of the picture
        for _ in range(ref.STEPS):
            path.append(getattr(ref, fn)(path[-1], ref.X, Y, ref.LR, *extra))
        cases.append(dict(fn=fn, extra=np.asarray(extra, dtype=np.float64),
                          extra_is_int=np.array([isinstance(a, int) for a in extra], bool), X=ref.X, Y=Y,
                          W0=ref.W0, lr=ref.LR, steps=ref.STEPS, expected=path[-1],
                          path=np.stack(path)))
    return cases


def _prune_reference(weight: np.ndarray, q: float) -> np.ndarray:
    """The reference's pruning of a copy of ``weight``."""
    import torch
    ref = reference("lab2")
    layer = torch.nn.Linear(1, 1, bias=False)
    layer.weight = torch.nn.Parameter(torch.from_numpy(weight.copy()))
    ref.prune_by_percentage(layer, q)
    return layer.weight.detach().numpy().copy()


def _lab2_cases(group: str) -> dict[str, list[dict]]:
    rng = np.random.default_rng(21 if group == "visible" else 22)
    f32 = np.float32
    if group == "visible":
        layers = [(rng.normal(size=(8, 4, 3, 3)).astype(f32), None, 80.0),
                  (rng.normal(size=(10, 32)).astype(f32), rng.normal(size=10).astype(f32), 60.0)]
    else:
        ties = rng.choice([-0.3, -0.2, -0.1, 0.1, 0.2, 0.3], size=(12, 20)).astype(f32)
        partly_zero = rng.normal(size=(16, 8, 3, 3)).astype(f32)
        partly_zero[rng.random(partly_zero.shape) < 0.3] = 0.0
        layers = [(rng.normal(size=(16, 3, 3, 3)).astype(f32), None, 50.0),
                  (rng.normal(size=(10, 64)).astype(f32), None, 95.0),
                  (ties, None, 50.0),
                  (rng.normal(size=(6, 4, 5, 5)).astype(f32), rng.normal(size=6).astype(f32), 80.0),
                  (rng.normal(size=(7, 30)), rng.normal(size=7), 70.0),  # float64
                  (partly_zero, None, 50.0)]
    prune = [dict(weight=w, bias=b, q=q, expected=_prune_reference(w, q)) for w, b, q in layers]

    # (shape, number of exact zeros): none, all, and some
    known = [((4, 25), 0), ((3, 2, 2, 2), 24), ((10, 10), 37)] if group == "visible" else [
        ((8, 3, 3, 3), 5), ((12, 12), 143), ((2, 5), 10), ((6, 7), 0)]
    sparsity = []
    for shape, zeros in known:
        weight = (rng.random(shape) + 0.1).astype(f32)  # no accidental zeros
        weight.flat[rng.permutation(weight.size)[:zeros]] = 0.0
        sparsity.append(dict(weight=weight, expected=zeros / weight.size))

    epochs = list(range(10)) if group == "visible" else [9, 3, 0, 10, 11, 15, 19, 5]
    iterative = [dict(epoch=e, expected=reference("lab2").iterative_prune_percentage(e))
                 for e in epochs]
    names, shapes = _resnet_layers()
    seeds = [(0, 80.0)] if group == "visible" else [(1, 60.0)]
    global_prune = [dict(seed=s, q=q, names=names, shapes=shapes) for s, q in seeds]
    return {"lab2_prune": prune, "lab2_sparsity": sparsity, "lab2_iterative": iterative,
            "lab2_global": global_prune, "lab2_finetune": _finetune_cases(group)}


def _resnet_layers() -> tuple[np.ndarray, np.ndarray]:
    """The name and weight shape of every Conv2d/Linear of ResNet-20 (id_mapping included), in
    ``named_modules`` order; shapes padded with 0 to 4 dimensions. The grading tests draw the
    weights from these with NumPy (``lab2_judges.resnet_weights`` in tests/grading), so the trusted side needs no torch."""
    import torch

    ensure_provided_importable()
    from hw4.resnet import ResNetCIFAR
    layers = [(name, tuple(m.weight.shape)) for name, m in ResNetCIFAR(num_layers=20).named_modules()
              if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    return (np.array([name for name, _ in layers]),
            np.array([shape + (0,) * (4 - len(shape)) for _, shape in layers], dtype=np.int64))


def _finetune_cases(group: str) -> list[dict]:
    """The tiny network of the finetune probe, pruned by the reference, and its batches, with
    ``regrown_no_prune``: per layer, how many of its pruned weights the reference's epoch with
    prune=False leaves nonzero (momentum and weight decay give them gradient)."""
    import torch

    from autograder.probes.lab2 import tiny_finetune, tiny_net
    ref = reference("lab2")
    seed = 31 if group == "visible" else 32
    torch.manual_seed(seed)
    net = tiny_net()
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    for layer in layers:
        ref.prune_by_percentage(layer, 50.0 if group == "visible" else 70.0)
    rng = np.random.default_rng(seed)
    batches = 3 if group == "visible" else 4
    case = {"lr": 0.05}
    for i, layer in enumerate(layers):
        case[f"weight{i}"] = layer.weight.detach().numpy().copy()
    for b in range(batches):
        case[f"x{b}"] = rng.normal(size=(8, 3, 8, 8)).astype(np.float32)
        case[f"y{b}"] = rng.integers(0, 10, size=8).astype(np.int64)
    weights = [case[f"weight{i}"] for i in range(len(layers))]
    inputs = {"weights": weights, "lr": case["lr"], "prune": False,
              "batches": [[case[f"x{b}"], case[f"y{b}"]] for b in range(batches)]}
    with torch.random.fork_rng():
        final = tiny_finetune(ref.finetune_after_prune, inputs, "cpu")["final"]
    case["regrown_no_prune"] = np.array([int(((w == 0) & (f != 0)).sum())
                                         for w, f in zip(weights, final)], dtype=np.int64)
    return [case]  # the probe runs it with prune=True and with prune=False


def _quantize_variant(w: np.ndarray, bit: int, *, levels: int, rounding) -> np.ndarray:
    """A wrong quantizer for hints: ``levels`` intervals and ``rounding`` in place of round."""
    w64 = w.astype(np.float64)
    alpha, beta = w64.max() - w64.min(), w64.min()
    return (alpha * rounding((w64 - beta) / alpha * levels) / levels + beta).astype(w.dtype)


def _ste_reference(w: np.ndarray, bit, keep_zeros=None) -> np.ndarray:
    import torch
    ref = reference("lab3")
    args = (torch.from_numpy(w), bit) if keep_zeros is None else (torch.from_numpy(w), bit, keep_zeros)
    return ref.STE.apply(*args).detach().numpy().copy()


def _ste_case(w: np.ndarray, bit: int) -> dict:
    """Inputs, reference output and mistake variants of one ``STE.apply(w, bit)``."""
    w64 = w.astype(np.float64)
    scaled = (w64 - w64.min()) / (w64.max() - w64.min()) * (2 ** bit - 1)
    near_tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-4  # float32 may round either way
    expected = _ste_reference(w, bit)
    variants = {"step_pow": _quantize_variant(w, bit, levels=2 ** bit, rounding=np.round),
                "floor": _quantize_variant(w, bit, levels=2 ** bit - 1, rounding=np.floor),
                "no_beta": (expected - w.min()).astype(w.dtype)}
    if (w == 0).any():
        variants["zeros_restored"] = _ste_reference(w, bit, True)
    return dict(w=w, bit=bit, expected=expected, near_tie=near_tie, variants=variants)


def _ste_keep_zeros_case(w: np.ndarray, bit: int) -> dict:
    """Both accepted 4.4 conventions: the mask after quantizing over all weights, or alpha and
    beta over the nonzero weights only."""
    nonzero = w != 0
    over_nonzero = np.zeros_like(w)
    over_nonzero[nonzero] = _ste_reference(w[nonzero], bit)
    masked = _ste_reference(w, bit) * nonzero
    inverted = _ste_reference(w, bit) * ~nonzero
    return dict(w=w, bit=bit, keep_zeros=True, expected=masked, expected_nonzero=over_nonzero,
                variants={"keep_zeros_inverted": inverted})


def _one_signed_with_zeros(group: str) -> list[tuple[np.ndarray, int]]:
    """All-positive and all-negative weights with exact zeros: their full range (0 included)
    differs from their nonzero range, so a 4.1 quantizer that takes alpha and beta over the
    nonzero weights only (right for 4.4's keep_zeros alone) is caught. Own generator: the other
    cases keep their draws."""
    rng = np.random.default_rng(45 if group == "visible" else 46)
    cases = []
    for sign, size, bit in ([(1, 12, 2), (-1, 10, 3)] if group == "visible"
                            else [(1, 40, 4), (-1, 27, 2), (1, 9, 3)]):
        w = sign * (np.abs(rng.normal(size=size)) + 0.05)
        w[rng.permutation(size)[:size // 3]] = 0.0
        cases.append((w.astype(np.float32), bit))
    return cases


def _lab3_cases(group: str) -> dict[str, list[dict]]:
    rng = np.random.default_rng(41 if group == "visible" else 42)
    f32 = np.float32
    if group == "visible":
        vectors = [_ste_case(np.array([-1, -0.5, 0, 0.3, 1], f32), 2)]
    else:
        vectors = [_ste_case(np.array([-0.8, 0, 0.1, 0.5, 1.2], f32), 2),
                   _ste_case(np.array([0, 0.25, -0.7, 0, 2.0, -1.5], f32), 3)]
    shapes = [(64,), (8, 4, 3, 3), (10, 16)] if group == "visible" else [
        (200,), (16, 8, 3, 3), (33, 7), (5,)]
    bits = [2, 4, 8] if group == "visible" else [1, 3, 5, 6, 7]
    random_cases = [_ste_case((rng.normal(size=shapes[i % len(shapes)]) * (0.1 + i)).astype(f32), bit)
                    for i, bit in enumerate(bits)]
    random_cases += [_ste_case(w, bit) for w, bit in _one_signed_with_zeros(group)]
    keep = []
    for i, bit in enumerate([2, 4] if group == "visible" else [3, 5, 6]):
        w = rng.normal(size=(6, 5, 3, 3) if i % 2 else (50,)).astype(f32) * 0.2
        w[rng.random(w.shape) < 0.4] = 0.0
        keep.append(_ste_keep_zeros_case(w, bit))
    if group == "visible":  # the 4.1 test vector with zeros kept
        keep.append(_ste_keep_zeros_case(np.array([-1, -0.5, 0, 0.3, 1], f32), 2))
    special = [dict(w=rng.normal(size=(4, 6)).astype(f32), bit=bit) for bit in (None, 0)]
    grads = [dict(w=rng.normal(size=(5, 7)).astype(f32), bit=bit,
                  grad=rng.normal(size=(5, 7)).astype(f32)) for bit in (2, 6)]
    return {"lab3_vector": vectors, "lab3_random": random_cases, "lab3_keep_zeros": keep,
            "lab3_special": special, "lab3_grad": grads}


def generate() -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{group: {name: arrays}}`` for every fixture file."""
    import torch  # generation only: the grading process loads fixtures without torch
    files: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for group in GROUPS:
        torch.manual_seed(0)
        named = {f"lab1_{name}": cases for name, cases in _lab1_cases(group).items()}
        named["lab1_trajectories"] = _lab1_trajectories(group)
        named.update(_lab2_cases(group))
        named.update(_lab3_cases(group))
        files[group] = {name: encode(cases) for name, cases in named.items()}
    return files


def _same(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    if not path.is_file():
        return False
    with np.load(path, allow_pickle=False) as data:
        return sorted(data.files) == sorted(arrays) and all(
            data[key].dtype == arrays[key].dtype and np.array_equal(data[key], arrays[key])
            for key in arrays)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="verify the committed fixtures are current; write nothing")
    parser.add_argument("--out", type=Path, default=EXPECTED_DIR,
                        help=f"where to write the fixtures (default {EXPECTED_DIR})")


def run(args: argparse.Namespace) -> int:
    """Write (or with ``--check`` verify) every fixture; returns 0, or 1 when any is stale."""
    files, stale = generate(), []
    for group, named in files.items():
        folder = Path(args.out) / group
        present = {p.stem for p in folder.glob("*.npz")} if folder.is_dir() else set()
        stale += [f"{group}/{name}.npz (no longer generated)" for name in present - set(named)]
        for name, arrays in named.items():
            path = folder / f"{name}.npz"
            if args.check:
                if not _same(path, arrays):
                    stale.append(f"{group}/{name}.npz")
                continue
            folder.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            np.savez_compressed(buffer, **arrays)
            path.write_bytes(buffer.getvalue())
    if args.check and stale:
        print("stale fixtures (run `python -m autograder fixtures`):\n  " + "\n  ".join(stale))
        return 1
    print("fixtures are current" if args.check else f"wrote fixtures under {args.out}")
    return 0
