"""Lab 1 (problems 2.1-2.6), visible: one full-batch step of each function on random W, X, Y
(and the handout's first step from W0), then 200 steps on the handout's problem.

A step is accepted when it matches the reference step, or when the same step run with the
handout's ``gradient`` / ``soft_threshold`` does (so a helper's bug costs only the helper).
"""
from gradescope_utils.autograder_utils.decorators import number, tags, visibility, weight

from lab1_judges import (at_handout_value, check_lab1, check_lab1_trajectory, judge_at_most_k,
                         judge_loss, lab1_results)

HANDOUT_WEIGHT = 3  # the handout's k = 2 and h = 3 against 1 for the tests at other values

GROUP = "visible"


@number("2.1.1")
@visibility("visible")
@tags("lab1", "loss")
def test_loss(probe, expected):
    """loss(W, X, Y) on random 3x5 problems and the handout's W0: the sum of squared residuals."""
    cases, results = lab1_results(probe, expected, "loss", GROUP)
    judge_loss(cases, results)


@number("2.1.2")
@visibility("visible")
@tags("lab1", "gradient")
def test_gradient(probe, expected):
    """gradient(W, X, Y) on random 3x5 problems and the handout's W0: 2 X^T (X W - y), inputs
    unchanged, a new float ndarray of W's shape."""
    check_lab1(probe, expected, "gradient", GROUP, start=None)


@number("2.2.1")
@visibility("visible")
@tags("lab1", "gd")
def test_gd_step(probe, expected):
    """gd_step(W, X, Y, lr) on random 3x5 problems (lr 0.02, 0.05) and the handout's first step:
    one full-batch step, inputs unchanged."""
    check_lab1(probe, expected, "gd_step", GROUP)


@number("2.2.2")
@visibility("visible")
@tags("lab1", "gd", "convergence")
def test_gd_converges(probe, expected):
    """200 gd_step steps from W0 on the handout's problem reach the minimum-norm solution
    [0.7476, -2.3894, 0.1226, -0.0313, 1.5649] (within 1e-4 of the reference)."""
    check_lab1_trajectory(probe, expected, "gd_step", GROUP)


@number("2.3.1")
@visibility("visible")
@weight(HANDOUT_WEIGHT)
@tags("lab1", "projected")
def test_projected_gd_step(probe, expected):
    """projected_gd_step on random problems with the handout's k = 2 (the default): the
    gradient step, then the k largest |V| kept; inputs unchanged."""
    check_lab1(probe, expected, "projected_gd_step", GROUP, handout=True)


@number("2.3.2")
@visibility("visible")
@weight(HANDOUT_WEIGHT)
@tags("lab1", "projected")
def test_projected_at_most_k(probe, expected):
    """projected_gd_step's output has at most k = 2 nonzero entries (same inputs as 2.3.1)."""
    cases, results = lab1_results(probe, expected, "projected_gd_step", GROUP)
    judge_at_most_k(*at_handout_value("projected_gd_step", cases, results, handout=True))


@number("2.3.7")
@visibility("visible")
@tags("lab1", "projected")
def test_projected_other_k(probe, expected):
    """projected_gd_step with k = 3 passed as an argument: the same checks, at most k nonzeros."""
    check_lab1(probe, expected, "projected_gd_step", GROUP, handout=False)
    cases, results = lab1_results(probe, expected, "projected_gd_step", GROUP)
    judge_at_most_k(*at_handout_value("projected_gd_step", cases, results, handout=False))


@number("2.3.3")
@visibility("visible")
@weight(HANDOUT_WEIGHT)
@tags("lab1", "projected", "convergence")
def test_projected_converges(probe, expected):
    """200 projected steps (k = 2) from W0 reach [0, -3, 0, 0, 1]."""
    check_lab1_trajectory(probe, expected, "projected_gd_step", GROUP)


@number("2.4.1")
@visibility("visible")
@tags("lab1", "subgradient")
def test_subgradient_step(probe, expected):
    """subgradient_l1_step on random problems (lam 0.5, 2, 0.2; W holds an exact 0, where
    sign(0) = 0); inputs unchanged."""
    check_lab1(probe, expected, "subgradient_l1_step", GROUP)


@number("2.4.2")
@visibility("visible")
@tags("lab1", "subgradient", "convergence")
def test_subgradient_converges(probe, expected):
    """200 subgradient steps (lam = 0.5) from W0 end at the reference's W."""
    check_lab1_trajectory(probe, expected, "subgradient_l1_step", GROUP)


@number("2.5.1")
@visibility("visible")
@tags("lab1", "proximal")
def test_soft_threshold(probe, expected):
    """soft_threshold(v, tau) on random vectors with entries on both sides of tau:
    sign(v) max(|v| - tau, 0)."""
    check_lab1(probe, expected, "soft_threshold", GROUP, start=None)


@number("2.5.2")
@visibility("visible")
@tags("lab1", "proximal")
def test_proximal_step(probe, expected):
    """proximal_l1_step on random problems (tau 0.3, 0.1, 0.02): gradient step, then soft
    threshold; inputs unchanged."""
    check_lab1(probe, expected, "proximal_l1_step", GROUP)


@number("2.5.3")
@visibility("visible")
@tags("lab1", "proximal", "convergence")
def test_proximal_converges(probe, expected):
    """200 proximal steps (tau = 0.01) from W0 reach [0, -2.95, 0, 0, 0.958]."""
    check_lab1_trajectory(probe, expected, "proximal_l1_step", GROUP)


@number("2.6.1")
@visibility("visible")
@weight(HANDOUT_WEIGHT)
@tags("lab1", "trimmed")
def test_trimmed_step(probe, expected):
    """trimmed_l1_step on random problems with the handout's h = 3 (the default): only the h
    smallest |V| are soft-thresholded; inputs unchanged."""
    check_lab1(probe, expected, "trimmed_l1_step", GROUP, handout=True)


@number("2.6.5")
@visibility("visible")
@tags("lab1", "trimmed")
def test_trimmed_other_h(probe, expected):
    """trimmed_l1_step with h = 2 passed as an argument: the same checks."""
    check_lab1(probe, expected, "trimmed_l1_step", GROUP, handout=False)


@number("2.6.2")
@visibility("visible")
@weight(HANDOUT_WEIGHT)
@tags("lab1", "trimmed", "convergence")
def test_trimmed_converges(probe, expected):
    """200 trimmed-L1 steps (tau = 0.04, h = 3) from W0 reach [0, -3, 0, 0, 1] with no bias."""
    check_lab1_trajectory(probe, expected, "trimmed_l1_step", GROUP)
