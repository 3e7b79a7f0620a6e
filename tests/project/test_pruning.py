"""The one pruning rule (autograder.pruning) and its three callers.

Every convention a correct solution may use (NumPy's percentile or torch's quantile, kthvalue and
topk; ``>`` or ``>=``; ties at the threshold) is accepted, the known wrong prunes are not, the
rule's verdict matches a brute-force reading of its definition, and one layer's check, the unit
stage's global judge and the training stage's pattern check give the same verdict on one mask.
"""
import sys

import numpy as np
import pytest
import torch

from autograder.checks import WrongAnswer, check_pruned
from autograder.paths import GRADING_TESTS_DIR
from autograder.training.judging import mask_disagreements
from autograder.pruning import review_mask, threshold_band

sys.path.insert(0, str(GRADING_TESTS_DIR))
from lab2_judges import judge_global  # noqa: E402  (the unit stage's global judge)


def weights(shape=(40, 25), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def tied_weights(seed=0) -> np.ndarray:
    """Three magnitudes only, each held by about a third of the weights."""
    rng = np.random.default_rng(seed)
    return rng.choice([-0.3, -0.2, -0.1, 0.1, 0.2, 0.3], size=(12, 20)).astype(np.float32)


# Each maps (weight, q) to the mask of kept weights a correct solution computes.
def _numpy_greater(w, q):
    return np.abs(w) > np.percentile(np.abs(w), q)


def _numpy_greater_equal(w, q):
    return np.abs(w) >= np.percentile(np.abs(w), q)


def _quantile_float32(w, q, strict=False):
    magnitude = torch.from_numpy(w).abs()
    threshold = torch.quantile(magnitude.flatten(), q / 100)
    return (magnitude > threshold if strict else magnitude >= threshold).numpy()


def _kthvalue(w, q, strict=True, rounding=round):
    magnitude = torch.from_numpy(w).abs()
    k = max(1, int(rounding(q / 100 * magnitude.numel())))
    threshold = magnitude.flatten().kthvalue(k).values
    return (magnitude > threshold if strict else magnitude >= threshold).numpy()


def _topk(w, q):
    """Keeps the n - int(q/100 * n) largest: splits a tie block at the cut, if any."""
    magnitude = torch.from_numpy(w).abs().flatten()
    keep = magnitude.numel() - int(q / 100 * magnitude.numel())
    kept = torch.zeros(magnitude.numel(), dtype=torch.bool)
    kept[magnitude.topk(keep).indices] = True
    return kept.reshape(w.shape).numpy()


CONVENTIONS = {
    "np.percentile, >": _numpy_greater,
    "np.percentile, >=": _numpy_greater_equal,
    "torch.quantile float32, >=": _quantile_float32,
    "torch.quantile float32, >": lambda w, q: _quantile_float32(w, q, strict=True),
    "kthvalue(round), >": _kthvalue,
    "kthvalue(round), >=": lambda w, q: _kthvalue(w, q, strict=False),
    "kthvalue(int), >": lambda w, q: _kthvalue(w, q, rounding=int),
    "kthvalue(ceil), >=": lambda w, q: _kthvalue(w, q, strict=False, rounding=np.ceil),
    "topk": _topk,
}


@pytest.mark.parametrize("q", [8.0, 33.3, 50.0, 60.0, 80.0, 95.0])
@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_every_correct_convention_is_accepted(convention, q):
    for w in (weights(), weights((7, 30), seed=1), tied_weights()):
        review = review_mask(np.abs(w), CONVENTIONS[convention](w, q), q)
        assert review.accepted, (convention, q, w.shape, review.zeros, review.fewest, review.most)


def test_ties_at_the_threshold_may_fall_on_either_side():
    w = np.repeat(np.array([0.1, 0.2, 0.3, 0.4], np.float32), 5)  # blocks of 5; target 10
    magnitude = np.abs(w)
    # The band runs from the 9th smallest |w| (0.2) to the 11th (0.3, where a float32 quantile
    # may round to): a threshold at either block, with > or >=, is a correct pruning.
    assert threshold_band(magnitude, 50.0) == (pytest.approx(0.2), pytest.approx(0.3))
    for kept in (magnitude > 0.2, magnitude >= 0.2, magnitude >= 0.3, magnitude > 0.3):
        assert review_mask(magnitude, kept, 50.0).accepted
    split = magnitude > 0.1
    split[5:7] = False  # two of the tied 0.2 pruned, three kept: a topk cut
    assert review_mask(magnitude, split, 50.0).accepted
    for kept in (magnitude >= 0.1, magnitude > 0.4):  # nothing pruned; everything pruned
        review = review_mask(magnitude, kept, 50.0)
        assert not review.accepted and not review.count_ok
    assert (review.fewest, review.most) == (5, 15)


def test_a_count_two_off_without_ties_is_refused():
    w = weights()
    magnitude = np.abs(w)
    ordered = np.sort(magnitude.ravel())
    for zeros in (798, 802):  # q = 80 of 1000: 799 to 801 zeros
        review = review_mask(magnitude, magnitude > ordered[zeros - 1], 80.0)
        assert not review.accepted and not review.count_ok and review.one_threshold
    for zeros in (799, 800, 801):
        assert review_mask(magnitude, magnitude > ordered[zeros - 1], 80.0).accepted


WRONG = {
    "largest pruned": lambda w, q: np.abs(w) < np.percentile(np.abs(w), q),
    "q as a fraction": lambda w, q: np.abs(w) >= np.percentile(np.abs(w), q / 100),
    "signed percentile": lambda w, q: w >= np.percentile(w, q),
    "one weight swapped": lambda w, q: _swapped(_numpy_greater(w, q), w),
}


def _swapped(kept: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The largest pruned weight kept and the smallest kept one pruned: the count stays right."""
    magnitude, kept = np.abs(w).ravel(), kept.ravel().copy()
    pruned_at, kept_at = np.flatnonzero(~kept), np.flatnonzero(kept)
    largest_pruned = pruned_at[np.argmax(magnitude[pruned_at])]
    smallest_kept = kept_at[np.argmin(magnitude[kept_at])]
    kept[largest_pruned], kept[smallest_kept] = True, False
    return kept.reshape(w.shape)


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_known_wrong_prunes_are_refused(mistake):
    w = weights()
    kept = WRONG[mistake](w, 80.0)
    review = review_mask(np.abs(w), kept, 80.0)
    assert not review.accepted
    assert review.misplaced.any()


def _accepted_by_definition(magnitude: np.ndarray, kept: np.ndarray, q: float) -> bool:
    """The rule read literally: some threshold t in the band keeps every |w| > t and prunes
    every |w| < t (weights equal to t may go either way). A t between two magnitudes explains
    no more masks than the larger of the two, so the magnitudes in the band are the candidates."""
    lowest, highest = threshold_band(magnitude, q)
    return any(np.all(kept[magnitude > t]) and not np.any(kept[magnitude < t])
               for t in np.unique(magnitude) if lowest <= t <= highest)


def test_the_verdict_is_the_definitions_on_random_masks():
    rng = np.random.default_rng(3)
    checked = {True: 0, False: 0}
    for trial in range(3000):
        n = int(rng.integers(1, 13))
        magnitude = rng.choice([0.0, 0.1, 0.2, 0.3, 0.4], size=n).astype(np.float32)
        q = float(rng.choice([0.0, 10.0, 37.5, 50.0, 80.0, 100.0]))
        cut = rng.choice(magnitude)
        kept = magnitude > cut if rng.random() < 0.5 else magnitude >= cut
        flips = rng.random(n) < rng.choice([0.0, 0.1, 0.3])
        kept = kept ^ flips
        review = review_mask(magnitude, kept, q)
        expected = _accepted_by_definition(magnitude, kept, q)
        assert review.accepted == expected, (magnitude, kept, q)
        assert review.accepted == (review.count_ok and review.one_threshold), (magnitude, kept, q)
        checked[expected] += 1
    assert min(checked.values()) > 300  # both verdicts were exercised


# -- the three callers agree --------------------------------------------------------------------

def _network(seed=0) -> dict[str, np.ndarray]:
    """Three prunable layers of different scales and one id_mapping layer."""
    rng = np.random.default_rng(seed)
    return {"conv1": (rng.normal(size=(8, 4, 3, 3)) / 6).astype(np.float32),
            "conv2": (rng.normal(size=(8, 8, 3, 3)) / 8).astype(np.float32),
            "block.id_mapping": rng.normal(size=(8, 4, 1, 1)).astype(np.float32),
            "fc": (rng.normal(size=(10, 8)) / 3).astype(np.float32)}


def _global_prune(original: dict, rule, q: float) -> dict:
    prunable = [name for name in original if "id_mapping" not in name]
    flat = np.concatenate([original[name].ravel() for name in prunable])
    kept = rule(flat, q)
    sizes = np.cumsum([original[name].size for name in prunable])[:-1]
    after = dict(original)
    for name, layer_kept in zip(prunable, np.split(kept, sizes)):
        after[name] = np.where(layer_kept.reshape(original[name].shape), original[name], 0)
    return after


def _passes(judge, *args, **kwargs) -> bool:
    try:
        judge(*args, **kwargs)
    except WrongAnswer:
        return False
    return True


MASKS = dict(CONVENTIONS, **WRONG)


@pytest.mark.parametrize("q", [60.0, 80.0])
@pytest.mark.parametrize("mask", sorted(MASKS))
def test_the_three_callers_give_one_verdict(mask, q):
    original = _network()
    after = _global_prune(original, MASKS[mask], q)
    prunable = [name for name in original if "id_mapping" not in name]
    flat_before = np.concatenate([original[name].ravel() for name in prunable])
    flat_after = np.concatenate([after[name].ravel() for name in prunable])
    verdict = review_mask(np.abs(flat_before), flat_after != 0, q).accepted
    assert verdict == (mask in CONVENTIONS)

    report = {"names": list(after), "weights": list(after.values())}
    assert _passes(judge_global, original, report, q=q) == verdict
    disagreements = mask_disagreements({n: original[n] for n in prunable},
                                       {n: after[n] for n in prunable}, q=q)
    assert (sum(disagreements.values()) == 0) == verdict
    # One layer alone, pruned by the same convention.
    layer = original["conv2"]
    alone = np.where(MASKS[mask](layer, q), layer, 0).astype(layer.dtype)
    assert _passes(check_pruned, "prune_by_percentage", layer, alone, q=q) == \
        review_mask(np.abs(layer), alone != 0, q).accepted
    assert _passes(check_pruned, "prune_by_percentage", layer, alone, q=q) == \
        (mask in CONVENTIONS)
