"""Lab 2 (problems 3.2-3.5, unit parts), hidden: other layers (shapes, q = 50/95, ties, a bias,
float64, partly zero), other sparsities, epochs after the schedule and out of order, a longer
finetune at 70% pruning, and global pruning of another seeded ResNet-20 at another q."""
from gradescope_utils.autograder_utils.decorators import number, tags, visibility

from lab2_judges import (finetune_run, judge_finetune, judge_global, judge_iterative, judge_prune, judge_sparsity,
                    lab2_values, resnet_weights)

GROUP = "hidden"
PRUNE_CASES = {  # test name -> (fixture index, what the docstring says)
    "conv_q50": 0, "linear_q95": 1, "ties": 2, "bias": 3, "float64": 4, "partly_zero": 5}


def pruned(probe, expected, index):
    __tracebackhide__ = True
    cases = expected("lab2_prune")
    results = lab2_values(probe, expected, "prune", GROUP)["results"]
    judge_prune(cases[index], results[index], hidden=True)


@number("3.2.3")
@visibility("after_published")
@tags("lab2", "pruning")
def test_prune_conv_q50(probe, expected):
    """prune_by_percentage on a Conv2d of another shape at q = 50."""
    pruned(probe, expected, PRUNE_CASES["conv_q50"])


@number("3.2.4")
@visibility("after_published")
@tags("lab2", "pruning")
def test_prune_linear_q95(probe, expected):
    """prune_by_percentage on a Linear of another shape at q = 95."""
    pruned(probe, expected, PRUNE_CASES["linear_q95"])


@number("3.2.5")
@visibility("after_published")
@tags("lab2", "pruning")
def test_prune_ties(probe, expected):
    """prune_by_percentage on a Linear whose |w| take few values (ties at the threshold):
    a mask that prunes or keeps the whole tied block is accepted."""
    pruned(probe, expected, PRUNE_CASES["ties"])


@number("3.2.6")
@visibility("after_published")
@tags("lab2", "pruning")
def test_prune_keeps_bias(probe, expected):
    """prune_by_percentage on a Conv2d with a bias: the bias is untouched."""
    pruned(probe, expected, PRUNE_CASES["bias"])


@number("3.2.7")
@visibility("after_published")
@tags("lab2", "pruning")
def test_prune_float64(probe, expected):
    """prune_by_percentage on a float64 Linear with a bias: dtype kept."""
    pruned(probe, expected, PRUNE_CASES["float64"])


@number("3.2.8")
@visibility("after_published")
@tags("lab2", "pruning")
def test_prune_partly_zero(probe, expected):
    """prune_by_percentage on a Conv2d already about 30% zero, at q = 50."""
    pruned(probe, expected, PRUNE_CASES["partly_zero"])


@number("3.3.4")
@visibility("after_published")
@tags("lab2", "sparsity")
def test_layer_sparsity_other(probe, expected):
    """layer_sparsity on a Conv2d and Linear layers with other zero counts (none, all, some)."""
    values = lab2_values(probe, expected, "sparsity", GROUP)["values"]
    judge_sparsity(expected("lab2_sparsity"), values, hidden=True)


@number("3.3.5")
@visibility("after_published")
@tags("lab2", "finetune")
def test_finetune_keeps_zeros_longer(probe, expected):
    """finetune_after_prune(prune=True) for more batches on a network pruned 70% by the
    reference: pruned weights exactly 0 after every step, one step per batch, training happens."""
    judge_finetune(*finetune_run(probe, expected, True, GROUP), hidden=True)


@number("3.3.6")
@visibility("after_published")
@tags("lab2", "finetune")
def test_finetune_without_prune_longer(probe, expected):
    """finetune_after_prune(prune=False) on the same network: one step per batch, training,
    and the pruned weights regrow as in the reference's epoch."""
    judge_finetune(*finetune_run(probe, expected, False, GROUP), hidden=True)


@number("3.4.2")
@visibility("after_published")
@tags("lab2", "iterative")
def test_iterative_after_and_out_of_order(probe, expected):
    """iterative_prune_percentage for epochs asked out of order, and after epoch 9 (None or 80)."""
    values = lab2_values(probe, expected, "iterative", GROUP)["values"]
    judge_iterative(expected("lab2_iterative"), values, hidden=True)


@number("3.5.2")
@visibility("after_published")
@tags("lab2", "global-pruning")
def test_global_prune_other(probe, expected):
    """global_prune_by_percentage on another seeded ResNet-20 at another q: one threshold,
    id_mapping untouched, kept weights unchanged, total fraction of q."""
    case = expected("lab2_global")[0]
    report = lab2_values(probe, expected, "global", GROUP)
    judge_global(resnet_weights(case), report, q=case["q"], hidden=True)
