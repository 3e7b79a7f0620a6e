"""Lab 3 (problems 4.1 and 4.4), visible: the STE forward on the handout's test vector and on
random tensors, bit None and 0, the straight-through gradient, and keep_zeros."""
from gradescope_utils.autograder_utils.decorators import number, tags, visibility

from lab3_judges import (judge_ste_grad, judge_ste_grid, judge_ste_keep_zeros, judge_ste_special,
                    lab3_results, show_levels)

GROUP = "visible"


@number("4.1.1")
@visibility("visible")
@tags("lab3", "ste")
def test_handout_vector(probe, expected):
    """STE.apply(w, 2) on the handout's w = [-1, -0.5, 0, 0.3, 1] gives [-1, -1/3, 1/3, 1/3, 1]
    (the 0 is quantized like any value: zeros are kept only with keep_zeros=True)."""
    for case, report in lab3_results(probe, expected, "lab3_vector", GROUP):
        show_levels(case, report)
        judge_ste_grid(case, report)


@number("4.1.2")
@visibility("visible")
@tags("lab3", "ste")
def test_random_tensors(probe, expected):
    """STE.apply(w, bit) on random float32 tensors (64,), (8,4,3,3), (10,16) at bits 2, 4, 8,
    and on an all-positive and an all-negative vector holding exact zeros (alpha and beta span
    every weight, the zeros included):
    at most 2**bit levels, min and max preserved, error <= alpha / (2 (2**bit - 1)), and the
    reference's values (float32 slack; one level either way at an exact rounding tie). Also
    STE.apply(w, None) returns w unchanged and STE.apply(w, 0) returns zeros."""
    for case, report in lab3_results(probe, expected, "lab3_random", GROUP):
        judge_ste_grid(case, report)
    for case, report in lab3_results(probe, expected, "lab3_special", GROUP):
        judge_ste_special(case, report)


@number("4.1.3")
@visibility("visible")
@tags("lab3", "ste", "backward")
def test_straight_through_gradient(probe, expected):
    """out = STE.apply(w, bit) for bits 2 and 6, out.backward(g): w.grad equals g exactly."""
    for case, report in lab3_results(probe, expected, "lab3_grad", GROUP):
        judge_ste_grad(case, report)


@number("4.4.1")
@visibility("visible")
@tags("lab3", "keep-zeros")
def test_keep_zeros(probe, expected):
    """STE.apply(w, bit, True) on random tensors with 40% exact zeros (bits 2, 4) and on the
    handout's vector: zeros stay exactly 0 and the other values are quantized, with alpha and
    beta over all weights or over the nonzero weights only (both accepted)."""
    for case, report in lab3_results(probe, expected, "lab3_keep_zeros", GROUP):
        judge_ste_keep_zeros(case, report)
