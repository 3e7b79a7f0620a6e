"""Lab 1's panel: the student's 200-step run beside the reference's, log L and every weight.

The loss is computed here from the paths and the problem's X and Y (the handout's objective),
not by the student's ``loss``: the picture shows where the weights went, whatever ``loss`` says.
"""
from __future__ import annotations

import numpy as np

# Paths that differ by more than this (any weight, absolute) have parted: the trajectory
# tests' own tolerance (tests/grading/lab1_judges.py's TRAJECTORY_ATOL) unless one is given.
DEFAULT_TOLERANCE = 1e-4


def divergence_step(student: np.ndarray, reference: np.ndarray, tolerance: float) -> int | None:
    """The first step at which the two paths differ by more than ``tolerance``, or None."""
    steps = min(len(student), len(reference))
    gap = np.abs(student[:steps] - reference[:steps]).max(axis=1)
    apart = np.flatnonzero(~(gap <= tolerance))  # a NaN in the student's path counts as apart
    return int(apart[0]) if apart.size else None


def data_loss(path: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """L(W) = sum_i (X_i . W - y_i)^2 at every row W of ``path``."""
    return ((path @ X.T - Y) ** 2).sum(axis=1)


def draw_trajectories(panel, records: list[dict]) -> str:
    """Left: log L over the steps; right: each weight. Solid lines are the student's, dashed
    the reference's, one colour per weight; a vertical line marks the step where they part.
    Returns the run's title (the call and its steps), for the figure's caption."""
    data = records[-1]
    student = np.asarray(data["student"], dtype=np.float64)
    reference = np.asarray(data["reference"], dtype=np.float64)
    X, Y = np.asarray(data["X"], dtype=np.float64), np.asarray(data["Y"], dtype=np.float64)
    from matplotlib.ticker import LogLocator, NullLocator  # the caller, draw, imported matplotlib

    tiny = np.finfo(np.float64).tiny  # a loss of exactly 0 cannot sit on a log axis
    panel.subplots_adjust(left=0.08, wspace=0.22)
    ax_loss, ax_w = panel.subplots(1, 2)
    ax_loss.semilogy(np.maximum(data_loss(reference, X, Y), tiny), "k--", label="reference")
    with np.errstate(all="ignore"):
        ax_loss.semilogy(np.maximum(data_loss(student, X, Y), tiny), "C3", label="yours")
    ax_loss.set(xlabel="step", ylabel="L(W), log scale", title="loss")
    # A loss that reaches 1e-30 spans 30 decades: a few labelled ticks, no minor ones (each
    # tick label is measured at every draw, and they would overlap anyway).
    ax_loss.yaxis.set_major_locator(LogLocator(numticks=5))
    ax_loss.yaxis.set_minor_locator(NullLocator())
    ax_loss.legend(loc="best", fontsize="small")
    for i in range(reference.shape[1]):
        ax_w.plot(reference[:, i], "--", color=f"C{i}", alpha=0.6)
        ax_w.plot(student[:, i], color=f"C{i}", label=f"W[{i}]")
    ax_w.set(xlabel="step", ylabel="weight", title="weights (dashed: reference)")
    ax_w.legend(loc="best", fontsize="x-small", ncol=2)
    step = divergence_step(student, reference, float(data.get("tolerance") or DEFAULT_TOLERANCE))
    if step is not None:
        for axes in (ax_loss, ax_w):
            axes.axvline(step, color="0.3", linewidth=1, linestyle=":")
        ax_w.annotate(f"parts from the reference at step {step}", xy=(step, 0.02),
                      xycoords=("data", "axes fraction"), fontsize="small")
    return str(data.get("title", ""))
