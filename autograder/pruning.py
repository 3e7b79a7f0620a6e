"""The one rule of magnitude pruning: is a mask a pruning of these weights at ``q`` percent?

Pruning at ``q`` percent zeroes the weights whose |w| lies below the q-th percentile of |w|.
Correct solutions find that threshold in different ways (``np.percentile`` in float64 with linear
interpolation, ``torch.quantile`` in float32, ``kthvalue`` or ``topk`` at ``round`` or ``int`` of
q/100 * n) and compare with ``|w| > t`` or ``|w| >= t``. Every one of them takes as its threshold
a magnitude between two order statistics of |w|: the last one pruned or the first one kept at
the target position q/100 * n, that position rounded either way. With the magnitudes sorted
ascending into ``m`` and ``target = q/100 * n``, that is the band
``m[floor(target) - 1] <= t <= m[ceil(target)]`` (indices clipped to the array).

A mask is accepted when some threshold in that band explains it:
- every |w| below the band is pruned and every |w| above it is kept, and
- no pruned |w| is larger than a kept |w| (one threshold; weights tied at the threshold may fall
  on either side, as ``>`` and ``>=`` put them, or be split, as ``kthvalue`` and ``topk`` do).
The accepted numbers of zeros follow: from #(|w| < band) to #(|w| <= band).

One layer (``autograder.checks.check_pruned``), a global prune in the unit stage
(``judge_global`` in tests/grading/lab2_judges.py) and the training stage's global prune
(``autograder.training.judging.mask_disagreements``) are all judged by ``review_mask``; the
callers word the messages. Whether the kept weights kept their values is the callers' check too:
it is about values, not about the mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MaskReview:
    """What ``review_mask`` found about one mask.

    ``zeros``: how many weights the mask prunes; ``fewest`` / ``most``: the accepted range of
    that number. ``largest_pruned`` / ``smallest_kept``: magnitudes (``-inf`` / ``inf`` when
    nothing is pruned / kept). ``misplaced``: per weight, True where the mask breaks the rule
    (kept below the band, pruned above it, or kept inside the band below a pruned weight); no
    position is misplaced exactly when the mask is accepted.
    """
    zeros: int
    fewest: int
    most: int
    largest_pruned: float
    smallest_kept: float
    misplaced: np.ndarray

    @property
    def count_ok(self) -> bool:
        return self.fewest <= self.zeros <= self.most

    @property
    def one_threshold(self) -> bool:
        """No pruned |w| is larger than a kept |w|."""
        return self.largest_pruned <= self.smallest_kept

    @property
    def accepted(self) -> bool:
        """The mask is a pruning at q percent: ``count_ok`` and ``one_threshold`` together."""
        return not self.misplaced.any()


def threshold_band(magnitudes: np.ndarray, q: float) -> tuple[float, float]:
    """(lowest, highest) threshold a correct pruning of ``magnitudes`` at ``q`` percent may use:
    ``m[floor(target) - 1]`` and ``m[ceil(target)]`` of the sorted magnitudes ``m``, with
    ``target = q / 100 * m.size``."""
    ordered = np.sort(np.asarray(magnitudes).ravel())
    if ordered.size == 0:
        return 0.0, 0.0
    target = q / 100.0 * ordered.size
    last = ordered.size - 1
    lowest = ordered[min(max(int(np.floor(target)) - 1, 0), last)]
    highest = ordered[min(max(int(np.ceil(target)), 0), last)]
    return float(lowest), float(highest)


def review_mask(magnitudes: np.ndarray, kept: np.ndarray, q: float) -> MaskReview:
    """Judge the mask ``kept`` (True: the weight stays) of weights with |w| = ``magnitudes``
    (any shape, the same for both) as a pruning at ``q`` percent, by the rule above.

    NumPy arrays of any real dtype; the comparisons are exact in that dtype. For a global
    prune, pass every prunable layer's magnitudes and mask concatenated."""
    magnitudes = np.asarray(magnitudes)
    kept = np.asarray(kept, dtype=bool)
    if kept.shape != magnitudes.shape:
        raise ValueError(f"a mask of shape {kept.shape} for weights of shape {magnitudes.shape}")
    lowest, highest = threshold_band(magnitudes, q)
    pruned = ~kept
    largest_pruned = float(magnitudes[pruned].max()) if pruned.any() else -np.inf
    smallest_kept = float(magnitudes[kept].min()) if kept.any() else np.inf
    inside = (magnitudes >= lowest) & (magnitudes <= highest)
    pruned_inside = pruned & inside
    # Inside the band either side is right, as long as one threshold separates the two sides.
    cut = magnitudes[pruned_inside].max() if pruned_inside.any() else -np.inf
    misplaced = ((kept & (magnitudes < lowest)) | (pruned & (magnitudes > highest))
                 | (kept & inside & (magnitudes < cut)))
    return MaskReview(zeros=int(pruned.sum()), fewest=int((magnitudes < lowest).sum()),
                      most=int((magnitudes <= highest).sum()), largest_pruned=largest_pruned,
                      smallest_kept=smallest_kept, misplaced=misplaced)
