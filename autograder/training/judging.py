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


def mask_disagreements(before: dict, after: dict, q: float = SPARSITY_Q) -> dict:
    """Judge a global prune's result by the pruning rule (``autograder.pruning.review_mask``).

    ``before`` / ``after``: {prunable layer: weight} around the student's global prune at ``q``.
    The rule judges the mask of all layers together (one threshold, ties at it either way).
    Returns, per layer, how many of its positions the rule calls misplaced plus how many kept
    weights changed value: all 0 for a correct global prune.
    """
    from autograder.pruning import review_mask
    names = list(before)
    magnitudes = np.concatenate([np.abs(before[name]).ravel() for name in names])
    kept = np.concatenate([(after[name] != 0).ravel() for name in names])
    misplaced = np.split(review_mask(magnitudes, kept, q).misplaced,
                         np.cumsum([before[name].size for name in names])[:-1])
    result = {}
    for name, wrong in zip(names, misplaced):
        changed = int(np.count_nonzero((after[name] != 0) & (after[name] != before[name])))
        result[name] = int(np.count_nonzero(wrong)) + changed
    return result


def distinct_values(forward: dict) -> dict:
    """{layer: number of distinct values of its forward (quantized) weight}."""
    return {name: int(np.unique(weight).size) for name, weight in forward.items()}


def weights_moved(start: dict, state: dict) -> int:
    """How many weights of ``start`` ({prunable layer: weight}) differ in ``state`` (a state dict):
    0 when training took no optimizer step."""
    return sum(int(np.count_nonzero(state[f"{name}.weight"] != weight)) for name, weight in start.items())
