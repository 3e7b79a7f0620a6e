"""Verdict helpers of the training stage, on plain arrays (NumPy only).

The grading tests (``tests/grading/train/test_training.py``) judge with these; the weights come
back from a sandbox child, the layer names from the trusted measuring process
(``autograder.training.measure.starting_states``).
"""
from __future__ import annotations

import numpy as np

from autograder.training.budget import SPARSITY_Q


def sparsity(state: dict, prunable: list[str]) -> tuple[dict, float]:
    """({prunable layer: fraction of exact zeros}, total fraction) of a state dict of arrays;
    ``prunable``: the layers' names (their weights are ``<name>.weight``)."""
    zeros = {name: int(np.count_nonzero(state[f"{name}.weight"] == 0)) for name in prunable}
    sizes = {name: state[f"{name}.weight"].size for name in prunable}
    return ({name: zeros[name] / sizes[name] for name in prunable},
            sum(zeros.values()) / sum(sizes.values()))


def mask_disagreements(before: dict, after: dict, q: float = SPARSITY_Q, rtol: float = 1e-5) -> dict:
    """Compare a global prune's result with the reference rule on the same weights.

    ``before`` / ``after``: {prunable layer: weight} around the student's global prune at ``q``.
    The reference keeps |w| >= t, t the q-th percentile of all |w| (float64, linear). Weights
    within ``rtol`` of t are ties (either side is correct). Returns, per layer, how many
    positions disagree outside the ties plus how many kept weights changed value.
    """
    names = list(before)
    magnitudes = np.concatenate([np.abs(before[name]).astype(np.float64).ravel() for name in names])
    threshold = float(np.percentile(magnitudes, q))
    result = {}
    for name in names:
        w = np.abs(before[name].astype(np.float64))
        kept = after[name] != 0
        tie = np.abs(w - threshold) <= rtol * max(threshold, 1e-30)
        wrong = int(np.count_nonzero((kept != (w >= threshold)) & ~tie))
        changed = int(np.count_nonzero(kept & (after[name] != before[name])))
        result[name] = wrong + changed
    return result


def distinct_values(forward: dict) -> dict:
    """{layer: number of distinct values of its forward (quantized) weight}."""
    return {name: int(np.unique(weight).size) for name, weight in forward.items()}


def weights_moved(start: dict, state: dict) -> int:
    """How many weights of ``start`` ({prunable layer: weight}) differ in ``state`` (a state dict):
    0 when training took no optimizer step."""
    return sum(int(np.count_nonzero(state[f"{name}.weight"] != weight)) for name, weight in start.items())
