"""Lab 1 (problems 2.1-2.6), hidden: the same checks as the visible tests on other inputs:
more rows (6x5), more columns (3x8), a 4x6 problem, other learning rates, k in {1, 4} and
h in {1, 4} beside the handout's defaults, other lambda and tau, and 200-step runs on a
shifted target y. The handout's k = 2 and h = 3 carry most of 2.3's and 2.6's points."""
from gradescope_utils.autograder_utils.decorators import number, tags, visibility, weight

from lab1_judges import (at_handout_value, check_lab1, check_lab1_trajectory, judge_at_most_k,
                         judge_loss, lab1_results)

HANDOUT_WEIGHT = 6  # the handout's k = 2 and h = 3 against 1 for each test at other values

GROUP = "hidden"


@number("2.1.3")
@visibility("after_published")
@tags("lab1", "loss")
def test_loss_other_shapes(probe, expected):
    """loss on problems with more rows, more columns and another shape."""
    cases, results = lab1_results(probe, expected, "loss", GROUP)
    judge_loss(cases, results, hidden=True)


@number("2.1.4")
@visibility("after_published")
@tags("lab1", "gradient")
def test_gradient_other_shapes(probe, expected):
    """gradient on problems with more rows, more columns and another shape; inputs unchanged."""
    check_lab1(probe, expected, "gradient", GROUP, start=None)


@number("2.2.3")
@visibility("after_published")
@tags("lab1", "gd")
def test_gd_step_other_shapes(probe, expected):
    """gd_step on other shapes and learning rates; inputs unchanged."""
    check_lab1(probe, expected, "gd_step", GROUP)


@number("2.2.4")
@visibility("after_published")
@tags("lab1", "gd", "convergence")
def test_gd_converges_other_target(probe, expected):
    """200 gd_step steps from W0 on the handout's X with another y."""
    check_lab1_trajectory(probe, expected, "gd_step", GROUP)


@number("2.3.4")
@visibility("after_published")
@tags("lab1", "projected")
def test_projected_other_k(probe, expected):
    """projected_gd_step on other shapes with k = 1 and k = 4."""
    check_lab1(probe, expected, "projected_gd_step", GROUP, handout=False)


@number("2.3.5")
@visibility("after_published")
@tags("lab1", "projected")
def test_projected_at_most_k_other_k(probe, expected):
    """projected_gd_step leaves at most k nonzeros for k = 1 and 4."""
    cases, results = lab1_results(probe, expected, "projected_gd_step", GROUP)
    judge_at_most_k(*at_handout_value("projected_gd_step", cases, results, handout=False),
                    hidden=True)


@number("2.3.8")
@visibility("after_published")
@weight(HANDOUT_WEIGHT)
@tags("lab1", "projected")
def test_projected_handout_k_other_shape(probe, expected):
    """projected_gd_step on another shape with the default k = 2: the step, at most k nonzeros."""
    check_lab1(probe, expected, "projected_gd_step", GROUP, handout=True)
    cases, results = lab1_results(probe, expected, "projected_gd_step", GROUP)
    judge_at_most_k(*at_handout_value("projected_gd_step", cases, results, handout=True),
                    hidden=True)


@number("2.3.6")
@visibility("after_published")
@tags("lab1", "projected", "convergence")
def test_projected_converges_other(probe, expected):
    """200 projected steps with another k on another y."""
    check_lab1_trajectory(probe, expected, "projected_gd_step", GROUP)


@number("2.4.3")
@visibility("after_published")
@tags("lab1", "subgradient")
def test_subgradient_other(probe, expected):
    """subgradient_l1_step on other shapes and lambdas, W holding an exact 0."""
    check_lab1(probe, expected, "subgradient_l1_step", GROUP)


@number("2.4.4")
@visibility("after_published")
@tags("lab1", "subgradient", "convergence")
def test_subgradient_converges_other(probe, expected):
    """200 subgradient steps with another lambda on another y."""
    check_lab1_trajectory(probe, expected, "subgradient_l1_step", GROUP)


@number("2.5.4")
@visibility("after_published")
@tags("lab1", "proximal")
def test_soft_threshold_other(probe, expected):
    """soft_threshold on other vectors and thresholds."""
    check_lab1(probe, expected, "soft_threshold", GROUP, start=None)


@number("2.5.5")
@visibility("after_published")
@tags("lab1", "proximal")
def test_proximal_other(probe, expected):
    """proximal_l1_step on other shapes and thresholds."""
    check_lab1(probe, expected, "proximal_l1_step", GROUP)


@number("2.5.6")
@visibility("after_published")
@tags("lab1", "proximal", "convergence")
def test_proximal_converges_other(probe, expected):
    """200 proximal steps with another threshold on another y."""
    check_lab1_trajectory(probe, expected, "proximal_l1_step", GROUP)


@number("2.6.3")
@visibility("after_published")
@tags("lab1", "trimmed")
def test_trimmed_other_h(probe, expected):
    """trimmed_l1_step on other shapes with h = 1 and 4."""
    check_lab1(probe, expected, "trimmed_l1_step", GROUP, handout=False)


@number("2.6.6")
@visibility("after_published")
@weight(HANDOUT_WEIGHT)
@tags("lab1", "trimmed")
def test_trimmed_handout_h_other_shape(probe, expected):
    """trimmed_l1_step on another shape with the default h = 3."""
    check_lab1(probe, expected, "trimmed_l1_step", GROUP, handout=True)


@number("2.6.4")
@visibility("after_published")
@tags("lab1", "trimmed", "convergence")
def test_trimmed_converges_other(probe, expected):
    """200 trimmed-L1 steps with another threshold and h on another y."""
    check_lab1_trajectory(probe, expected, "trimmed_l1_step", GROUP)
