"""The training stage (problems 3.1, 3.3-3.5, 4.2-4.5): the handout's pipelines, run briefly on
the course's ResNet-20 and real images with the student's functions in the sandbox.

Everything but the student's functions is the grader's (model, data, optimizer, criterion; a
reference-pruned starting model where a pipeline needs one), and accuracy and sparsity are
measured by trusted code on the weights that come back (``autograder.training``). Accuracy
thresholds are calibrated from the reference (``autograder.calibration``); a setting without a
calibration fails every accuracy test with the command that makes one. Each pipeline runs once per session; its
tests judge the same outcome.
"""
from __future__ import annotations

import numpy as np
import pytest
from gradescope_utils.autograder_utils.decorators import number, tags, visibility

from autograder import pictures, stand_ins
from autograder.calibration import EQUAL_WITHIN, Calibration, NotCalibrated
from autograder.checks import fail
from autograder.memo import OutcomeMemo
from autograder.training.budget import (ITERATIVE_QAT_BITS, PTQ_BITS, QAT_BITS, SPARSE_QAT_BITS,
                                        SPARSITY_Q)
from autograder.training.judging import distinct_values, mask_disagreements, weights_moved
from autograder.training.memory import require_memory
from autograder.training.pipelines import Pipelines
from autograder.training.setting import Setting

TOTAL_SPARSITY_TOLERANCE = 1e-4  # 3.5, 4.5: one global threshold hits 80% to a few weights
LAYER_SPARSITY_TOLERANCE = 1e-3  # 3.4: or one weight, in layers too small to hit 80% closer


class TrainingRun:
    """The pipelines of one session, each run at most once, failures replayed to every test."""

    def __init__(self, sandbox, options):
        self.setting = Setting.resolve(options.hw4_data, options.hw4_checkpoint,
                                       options.resolved_device())
        require_memory(self.setting)  # a staff error on every test here, before any training
        self.pipelines = Pipelines(sandbox, self.setting)
        self._outcomes = OutcomeMemo()

    def outcome(self, key: str, run):
        """``run()``'s Outcome, run once per session (``autograder.memo``)."""
        __tracebackhide__ = True
        return self._outcomes.get(key, run)

    def calibration(self) -> Calibration:
        try:
            return Calibration.load(self.setting)
        except NotCalibrated as error:
            pytest.fail(str(error), pytrace=False)

    def threshold(self, check: str) -> float:
        return self.calibration().thresholds[check]


@pytest.fixture(scope="module")
def training(sandbox, grading_options) -> TrainingRun:
    return TrainingRun(sandbox, grading_options)


def require_accuracy(what: str, accuracy: float, threshold: float, untrained_hint: str, *,
                     quantized: bool = False) -> None:
    pictures.attach("accuracy", label=what, accuracy=accuracy, threshold=threshold)
    if accuracy < threshold:
        where = f" {stand_ins.STUDENT_QUANTIZER_NOTE}" if quantized and stand_ins.in_handout() else ""
        fail(f"{what}: accuracy {accuracy:.4f}{where}, expected at least {threshold:.4f} (calibrated "
             f"on the reference with the same data and budget). {untrained_hint}")


def require_training(what: str, start: dict, outcome, function: str) -> None:
    """Fail unless fine-tuning moved some weight of ``start`` ({prunable layer: weight}).

    Accuracy alone cannot tell a loop that never calls ``optimizer.step()`` from one that
    trains: its forward passes in train mode still refit batch norm's statistics to the pruned
    weights, which recovers much of a brief budget's accuracy. A step moves weights; none moved
    means none was taken.
    """
    if start and not weights_moved(start, outcome.state):
        fail(f"{what}: fine-tuning left every prunable weight exactly as it was. Does "
             f"`{function}` call `optimizer.step()` after `loss.backward()`?")


# -- 3.1 -------------------------------------------------------------------------------------

@number("3.1.11")
@visibility("visible")
@tags("lab2", "train")
def test_pretrained_model_evaluates(training):
    """lab2.py and lab3.py import, and the pretrained ResNet-20 through the student's STE at
    bit None scores the reference's accuracy."""
    expected = training.calibration().pretrained
    got = training.outcome("pretrained", training.pipelines.pretrained).accuracy
    if abs(got - expected) > EQUAL_WITHIN:
        fail(f"the pretrained model through `STE.apply(w, None)` scores {got:.4f}, expected "
             f"{expected:.4f}: with bit None, STE.forward must return w unchanged.")


# -- 3.3 -------------------------------------------------------------------------------------

def masked(training):
    return training.outcome("3.3", training.pipelines.masked_finetune)


def _check_parameters_kept(outcome, function: str) -> None:
    if outcome.observed["replaced"]:
        fail(f"`{function}` replaced the weight Parameter of {outcome.observed['replaced'][0]} "
             f"(and {len(outcome.observed['replaced']) - 1} more): the optimizer still holds the "
             "old one. Change weights in place (`layer.weight.data`, or under `torch.no_grad()`).")


@number("3.3.11")
@visibility("visible")
@tags("lab2", "train", "pruning")
def test_finetune_keeps_pruned_weights_zero(training):
    """finetune_after_prune(prune=True) on the reference's 80%-pruned model: after every
    optimizer step, every weight that was 0 at the start is still exactly 0, and the epoch
    covers every batch of the trainloader."""
    outcome = masked(training)
    _check_parameters_kept(outcome, "finetune_after_prune")
    batches = training.setting.budget.masked_batches
    if outcome.observed["steps"] != batches:
        fail(f"`finetune_after_prune` trained on {outcome.observed['steps']} of the {batches} batches "
             "of the trainloader; one epoch goes through every batch.")
    revived = outcome.observed["revived"]
    for step, count in enumerate(revived, start=1):
        if count:
            fail(f"after optimizer step {step}, {count} weights that were 0 when "
                 "`finetune_after_prune` started were no longer 0: with prune=True, re-apply the "
                 "mask of the initially nonzero weights after every `optimizer.step()`.")


@number("3.3.12")
@visibility("visible")
@tags("lab2", "train", "pruning")
def test_finetune_recovers_accuracy(training):
    """The 80%-pruned model, fine-tuned briefly with finetune_after_prune, moves some weight
    and reaches the calibrated accuracy."""
    threshold = training.threshold("3.3")
    outcome = masked(training)
    pruned = training.pipelines.pruned_state
    require_training("masked fine-tuning of the 80%-pruned model",
                     {name: pruned[f"{name}.weight"] for name in outcome.layer_sparsity}, outcome,
                     "finetune_after_prune")
    require_accuracy("masked fine-tuning of the 80%-pruned model", outcome.accuracy,
                     threshold, "Does `finetune_after_prune` train (forward, loss, backward, "
                     "optimizer.step) on every batch?")


# -- 3.4 -------------------------------------------------------------------------------------

def iterative(training):
    return training.outcome("3.4", lambda: training.pipelines.iterative_prune("layer"))


@number("3.4.11")
@visibility("visible")
@tags("lab2", "train", "pruning")
def test_iterative_pruning_ends_at_80_percent_per_layer(training):
    """The iterative schedule (student's iterative_prune_percentage, prune_by_percentage,
    finetune_after_prune) leaves every prunable layer 80% sparse (within 0.1% or one weight)."""
    outcome = iterative(training)
    pictures.attach("sparsity", layers=list(outcome.layer_sparsity), reference_label="80% per layer",
                    student=list(outcome.layer_sparsity.values()),
                    reference=[SPARSITY_Q / 100] * len(outcome.layer_sparsity))
    _check_parameters_kept(outcome, "prune_by_percentage")
    schedule = outcome.observed["schedule"]
    off = {}
    for name, fraction in outcome.layer_sparsity.items():
        size = training.pipelines.pretrained_state[f"{name}.weight"].size
        if abs(fraction - SPARSITY_Q / 100) > max(LAYER_SPARSITY_TOLERANCE, 1.0 / size):
            off[name] = fraction
    if off:
        listed = ", ".join(f"{name} {fraction:.4f}" for name, fraction in list(off.items())[:4])
        fail(f"after the iterative schedule, {len(off)} layers are not 80% sparse: {listed}.",
             details=f"q per epoch from iterative_prune_percentage: {schedule}")


@number("3.4.12")
@visibility("visible")
@tags("lab2", "train", "pruning")
def test_iterative_pruning_accuracy(training):
    """The iteratively pruned model is fine-tuned after its last prune (some weight moves) and
    reaches the calibrated accuracy."""
    threshold = training.threshold("3.4")
    outcome = iterative(training)
    require_training("iterative pruning, after the last prune", outcome.observed["after_last_prune"],
                     outcome, "finetune_after_prune")
    require_accuracy("iterative pruning", outcome.accuracy, threshold,
                     "Check the schedule and that each epoch trains.")


# -- 3.5 -------------------------------------------------------------------------------------

def global_iterative(training):
    return training.outcome("3.5", lambda: training.pipelines.iterative_prune("global"))


def _check_total_sparsity(outcome, what: str) -> None:
    if abs(outcome.total_sparsity - SPARSITY_Q / 100) > TOTAL_SPARSITY_TOLERANCE:
        fail(f"{what}: the prunable layers together are {outcome.total_sparsity:.6f} sparse, "
             f"expected 0.8 (within {TOTAL_SPARSITY_TOLERANCE}).")


@number("3.5.11")
@visibility("visible")
@tags("lab2", "train", "pruning")
def test_global_pruning_total_sparsity(training):
    """Iterative global pruning leaves 80% of all prunable weights at 0 (within 1e-4)."""
    outcome = global_iterative(training)
    _check_parameters_kept(outcome, "global_prune_by_percentage")
    _check_total_sparsity(outcome, "after iterative global pruning")


@number("3.5.12")
@visibility("visible")
@tags("lab2", "train", "pruning")
def test_global_pruning_pattern(training):
    """At the last (80%) global prune, the weights zeroed in every layer are those of one
    threshold over all layers at q = 80 (within one element; ties either way), and kept weights
    keep their values."""
    observed = global_iterative(training).observed
    wrong = {name: count for name, count in mask_disagreements(
        observed["before_last_prune"], observed["after_last_prune"]).items() if count}
    if wrong:
        listed = ", ".join(f"{name} ({count})" for name, count in list(wrong.items())[:4])
        fail(f"the global prune at q = 80 zeroed other weights than one threshold over all "
             f"prunable layers would, in {len(wrong)} layers: {listed}. The threshold is the "
             "80th percentile of |w| over ALL prunable weights concatenated.")


@number("3.5.13")
@visibility("visible")
@tags("lab2", "train", "pruning")
def test_global_pruning_accuracy(training):
    """The globally pruned model is fine-tuned after its last prune (some weight moves) and
    reaches the calibrated accuracy."""
    threshold = training.threshold("3.5")
    outcome = global_iterative(training)
    require_training("iterative global pruning, after the last prune",
                     outcome.observed["after_last_prune"], outcome, "finetune_after_prune")
    require_accuracy("iterative global pruning", outcome.accuracy, threshold,
                     "Check the global threshold and that each epoch trains.")


# -- 4.2 -------------------------------------------------------------------------------------

def _post_training_test(bits: int, index: int):
    @number(f"4.2.{10 + index}")
    @visibility("visible")
    @tags("lab3", "train", "quantization")
    def test(training):
        expected = training.calibration().ptq[bits]
        got = training.outcome("4.2", training.pipelines.post_training_quantization)[bits]
        if abs(got - expected) > EQUAL_WITHIN:
            fail(f"post-training quantization to {bits} bits scores {got:.4f} with your STE, "
                 f"expected {expected:.4f} (the reference's, on the same images).")

    test.__name__ = test.__qualname__ = f"test_post_training_quantization_{bits}_bits"
    test.__doc__ = (f"The pretrained model with every residual-block conv quantized to {bits} bits "
                    "by the student's STE scores the reference's accuracy (within 0.5%).")
    return test


for _index, _bits in enumerate(PTQ_BITS, start=1):
    globals()[f"test_post_training_quantization_{_bits}_bits"] = _post_training_test(_bits, _index)


# -- 4.3 -------------------------------------------------------------------------------------

def qat(training, bits):
    return training.outcome(f"4.3/{bits}", lambda: training.pipelines.quantized_finetune(bits))


def _check_quantized_and_gradients(training, bits: int) -> None:
    outcome = qat(training, bits)
    levels = distinct_values(outcome.observed["forward"])
    too_many = {name: count for name, count in levels.items() if count > 2 ** bits}
    if too_many:
        name, count = next(iter(too_many.items()))
        fail(f"at {bits} bits, the forward weight of {name} takes {count} distinct values "
             f"(and {len(too_many) - 1} more layers exceed it), at most {2 ** bits} expected.")
    steps = outcome.observed["steps"]
    starved = [name for name, count in outcome.observed["grads"].items() if count < steps]
    if starved:
        fail(f"during quantization-aware training at {bits} bits, the float weights of {starved[0]} "
             f"(and {len(starved) - 1} more layers) got no gradient at some steps: STE.backward "
             "must pass the gradient through (return g, None, None).")


def _qat_tests(bits: int, index: int):
    @number(f"4.3.{10 + 2 * index - 1}")
    @visibility("visible")
    @tags("lab3", "train", "quantization")
    def test_levels(training):
        _check_quantized_and_gradients(training, bits)

    @number(f"4.3.{10 + 2 * index}")
    @visibility("visible")
    @tags("lab3", "train", "quantization")
    def test_accuracy(training):
        threshold = training.threshold(f"4.3/{bits}")
        require_accuracy(f"quantization-aware training at {bits} bits", qat(training, bits).accuracy,
                         threshold, "Check STE.forward's quantizer.", quantized=True)

    test_levels.__name__ = test_levels.__qualname__ = f"test_qat_{bits}_bits_quantizes_and_passes_gradients"
    test_levels.__doc__ = (f"Brief quantization-aware training at {bits} bits: each quantized layer's "
                           f"forward weights take at most {2 ** bits} values, and every step's "
                           "gradient reaches the float weights of every such layer.")
    test_accuracy.__name__ = test_accuracy.__qualname__ = f"test_qat_{bits}_bits_accuracy"
    test_accuracy.__doc__ = f"Brief quantization-aware training at {bits} bits reaches the calibrated accuracy."
    return test_levels, test_accuracy


for _index, _bits in enumerate(QAT_BITS, start=1):
    for _test in _qat_tests(_bits, _index):
        globals()[_test.__name__] = _test


# -- 4.4 -------------------------------------------------------------------------------------

def sparse_qat(training):
    return training.outcome("4.4", lambda: training.pipelines.quantized_finetune(
        SPARSE_QAT_BITS, sparse=True))


@number("4.4.11")
@visibility("visible")
@tags("lab3", "train", "quantization", "pruning")
def test_sparse_qat_keeps_zeros(training):
    """The reference's globally 80%-pruned model quantized to 4 bits with keep_zeros: through
    brief QAT, every pruned weight's quantized forward value stays exactly 0."""
    outcome = sparse_qat(training)
    for step, lost in enumerate(outcome.observed["forward_zeros_lost"], start=1):
        if lost:
            fail(f"after step {step} of quantization-aware training, {lost} pruned weights were "
                 "nonzero in the quantized forward weights: with keep_zeros=True, STE.forward "
                 "must return 0 wherever w is 0.")
    pruned = training.pipelines.global_pruned_state
    for name, weight in outcome.observed["forward"].items():
        zeros = pruned[f"{name}.conv.weight"] == 0
        if np.any(weight[zeros] != 0):
            fail(f"after quantization-aware training, the quantized forward weight of {name} is "
                 "nonzero where the weight was pruned: keep_zeros=True must keep the zeros.")


@number("4.4.12")
@visibility("visible")
@tags("lab3", "train", "quantization", "pruning")
def test_sparse_qat_accuracy(training):
    """The sparse 4-bit model reaches the calibrated accuracy after brief QAT."""
    threshold = training.threshold("4.4")
    require_accuracy("quantization-aware training of the 80%-sparse model",
                     sparse_qat(training).accuracy, threshold, "Check STE.forward with keep_zeros.",
                     quantized=True)


# -- 4.5 -------------------------------------------------------------------------------------

def global_qat(training):
    return training.outcome("4.5", lambda: training.pipelines.iterative_prune(
        "global", Nbits=ITERATIVE_QAT_BITS))


@number("4.5.11")
@visibility("visible")
@tags("lab3", "train", "quantization", "pruning")
def test_global_pruning_with_qat_sparsity(training):
    """Iterative global pruning of the 4-bit quantized model (keep_zeros) leaves 80% of the
    prunable weights at 0 (within 1e-4)."""
    outcome = global_qat(training)
    _check_parameters_kept(outcome, "global_prune_by_percentage")
    _check_total_sparsity(outcome, "after iterative global pruning with 4-bit QAT")


@number("4.5.12")
@visibility("visible")
@tags("lab3", "train", "quantization", "pruning")
def test_global_pruning_with_qat_accuracy(training):
    """Iterative global pruning with 4-bit QAT reaches the calibrated accuracy."""
    threshold = training.threshold("4.5")
    require_accuracy("iterative global pruning with 4-bit QAT", global_qat(training).accuracy,
                     threshold, "Check global pruning, fine-tuning and STE.", quantized=True)
