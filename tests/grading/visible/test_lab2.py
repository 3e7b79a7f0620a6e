"""Lab 2 (problems 3.2-3.5, unit parts), visible: pruning single layers, layer sparsity,
masked finetuning on a tiny network, the iterative schedule, and global pruning of ResNet-20.

Inputs that depend on other problems come from the reference (a network the reference pruned),
so a bug in one function costs only that function's points.
"""
from gradescope_utils.autograder_utils.decorators import number, tags, visibility

from lab2_judges import (finetune_run, judge_finetune, judge_global, judge_iterative, judge_prune, judge_sparsity,
                    lab2_values, resnet_weights)

GROUP = "visible"


def pruned(probe, expected):
    __tracebackhide__ = True
    return expected("lab2_prune"), lab2_values(probe, expected, "prune", GROUP)["results"]


@number("3.2.1")
@visibility("visible")
@tags("lab2", "pruning")
def test_prune_conv(probe, expected):
    """prune_by_percentage on a random Conv2d (8x4x3x3) at q = 80: the fraction pruned (one
    element of slack), smallest |w| pruned, kept values unchanged, same Parameter/dtype/device,
    None or a mask returned."""
    cases, results = pruned(probe, expected)
    judge_prune(cases[0], results[0])


@number("3.2.2")
@visibility("visible")
@tags("lab2", "pruning")
def test_prune_linear(probe, expected):
    """prune_by_percentage on a random Linear (10x32) with a bias at q = 60: the same
    properties, and the bias is untouched."""
    cases, results = pruned(probe, expected)
    judge_prune(cases[1], results[1])


@number("3.3.1")
@visibility("visible")
@tags("lab2", "sparsity")
def test_layer_sparsity(probe, expected):
    """layer_sparsity on layers with 0 zeros, all zeros and 37 of 100 zeros."""
    values = lab2_values(probe, expected, "sparsity", GROUP)["values"]
    judge_sparsity(expected("lab2_sparsity"), values)


@number("3.3.2")
@visibility("visible")
@tags("lab2", "finetune")
def test_finetune_keeps_zeros(probe, expected):
    """finetune_after_prune(prune=True) for 3 batches on a small CNN pruned 50% by the reference
    (SGD with momentum and weight decay): one step per batch, training happens, and every pruned
    weight is exactly 0 after every optimizer step."""
    judge_finetune(*finetune_run(probe, expected, True, GROUP))


@number("3.3.3")
@visibility("visible")
@tags("lab2", "finetune")
def test_finetune_without_prune_trains(probe, expected):
    """finetune_after_prune(prune=False) on the same network: one step per batch, the weights
    change, and the pruned weights regrow (at least half as many per layer as in the
    reference's epoch: momentum and weight decay give them gradient)."""
    judge_finetune(*finetune_run(probe, expected, False, GROUP))


@number("3.4.1")
@visibility("visible")
@tags("lab2", "iterative")
def test_iterative_schedule(probe, expected):
    """iterative_prune_percentage(epoch) for epochs 0..9 is 8 (epoch + 1)."""
    values = lab2_values(probe, expected, "iterative", GROUP)["values"]
    judge_iterative(expected("lab2_iterative"), values)


@number("3.5.1")
@visibility("visible")
@tags("lab2", "global-pruning")
def test_global_prune(probe, expected):
    """global_prune_by_percentage on a ResNet-20 with seeded random weights at q = 80: one
    threshold across the 20 prunable layers, id_mapping layers untouched, kept weights
    unchanged, and q% of all prunable weights at 0, within one element (weights tied at the
    threshold may go either way)."""
    case = expected("lab2_global")[0]
    report = lab2_values(probe, expected, "global", GROUP)
    judge_global(resnet_weights(case), report, q=case["q"])
