"""Lab 3 (problems 4.1 and 4.4), hidden: other vectors with zeros that plain quantization moves,
random tensors of other shapes at bits 1, 3, 5, 6, 7, and keep_zeros at bits 3, 5, 6."""
from gradescope_utils.autograder_utils.decorators import number, tags, visibility

from lab3_judges import judge_ste_grid, judge_ste_keep_zeros, lab3_results

GROUP = "hidden"


@number("4.1.5")
@visibility("after_published")
@tags("lab3", "ste")
def test_other_vectors(probe, expected):
    """STE.apply(w, bit) on short vectors holding zeros (not kept without keep_zeros)."""
    for case, report in lab3_results(probe, expected, "lab3_vector", GROUP):
        judge_ste_grid(case, report, hidden=True)


@number("4.1.6")
@visibility("after_published")
@tags("lab3", "ste")
def test_other_bits_and_shapes(probe, expected):
    """STE.apply(w, bit) on random tensors of other shapes at bits 1, 3, 5, 6, 7, and on
    one-signed vectors holding exact zeros."""
    for case, report in lab3_results(probe, expected, "lab3_random", GROUP):
        judge_ste_grid(case, report, hidden=True)


@number("4.4.2")
@visibility("after_published")
@tags("lab3", "keep-zeros")
def test_keep_zeros_other(probe, expected):
    """STE.apply(w, bit, True) on other sparse tensors at bits 3, 5, 6."""
    for case, report in lab3_results(probe, expected, "lab3_keep_zeros", GROUP):
        judge_ste_keep_zeros(case, report, hidden=True)
