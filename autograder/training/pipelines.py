"""The training stage's runner: build inputs, run a probe of ``autograder.probes.train`` in the
sandbox, and have the returned weights measured by trusted code.

    setting = Setting.resolve(data=None, checkpoint=None, device="auto")
    pipelines = Pipelines(sandbox, setting)
    outcome = pipelines.masked_finetune()      # 3.3
    outcome.accuracy, outcome.observed         # measured by trusted code; observed in the child

Student code runs only in the sandbox child. The starting models (the pretrained checkpoint,
pruned by the reference) and every accuracy are computed by ``autograder.training.measure`` in
a trusted fork of the sandbox's zygote (``Sandbox.run_trusted``); this process checks what comes
back and computes sparsity with NumPy, so it never imports torch. Thresholds live in
``autograder.calibration``; this module only measures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from autograder.errors import InvalidOutput
from autograder.training.budget import (IMAGES_PER_SECOND_FLOOR, ITERATIVE_QAT_BITS, PTQ_BITS,
                                        QAT_BITS, SPARSE_QAT_BITS)
from autograder.training.judging import sparsity
from autograder.training.memory import release_free_memory
from autograder.training.setting import Setting

MEASURE = "autograder.training.measure"
MEASURE_TIMEOUT = 300.0  # building the starting models or evaluating a few networks on 0.5 vCPU


@dataclass
class Outcome:
    """What one pipeline produced: ``accuracy`` measured by trusted code, the rest observed or
    measured here."""
    accuracy: float
    layer_sparsity: dict = field(default_factory=dict)   # {prunable layer: fraction of zeros}
    total_sparsity: float = 0.0                           # over all prunable weights
    observed: dict = field(default_factory=dict)         # the probe's observations, as returned
    seconds: float = 0.0                                  # the sandboxed call's wall time
    state: dict = field(default_factory=dict, repr=False)  # the trained weights, checked


class Pipelines:
    """Runs the training stage's pipelines for one submission (``sandbox``) in one ``setting``."""

    def __init__(self, sandbox, setting: Setting):
        setting.check_enough_images()  # before any training: calibrate and grade alike
        self.sandbox = sandbox
        self.setting = setting
        self.budget = setting.budget

    # -- starting models, built by trusted code ---------------------------------------------------

    @cached_property
    def _starting(self) -> dict:
        checkpoint = str(self.setting.checkpoint) if self.setting.checkpoint is not None else None
        return self._trusted("starting_states", {"checkpoint": checkpoint})

    @property
    def pretrained_state(self) -> dict:
        return self._starting["pretrained"]

    @property
    def pruned_state(self) -> dict:
        """The pretrained model, every prunable layer pruned to 80% by the reference."""
        return self._starting["pruned"]

    @property
    def global_pruned_state(self) -> dict:
        """The pretrained model pruned to 80% globally by the reference: 4.4's sparse model."""
        return self._starting["global_pruned"]

    @property
    def prunable(self) -> list[str]:
        """ResNet-20's prunable layers (``hw4.resnet.prunable_layers``), in order."""
        return self._starting["prunable"]

    # -- measuring ------------------------------------------------------------------------------

    def _trusted(self, function: str, inputs: dict) -> dict:
        release_free_memory()
        return self.sandbox.run_trusted(f"{MEASURE}:{function}", inputs, timeout=MEASURE_TIMEOUT,
                                        threads=self.budget.threads).values

    def accuracies(self, networks: list[tuple[dict, int | None, bool]]) -> list[float]:
        """Top-1 accuracy of ResNet-20 holding each (state, Nbits, keep_zeros), quantized with
        the reference's STE, on the setting's test images, in one trusted process."""
        x_test, y_test = self.setting.test_split()
        found = self._trusted("accuracies", {
            "networks": [{"state": self._checked_state(state), "Nbits": Nbits, "keep_zeros": keep_zeros}
                         for state, Nbits, keep_zeros in networks],
            "x_test": x_test, "y_test": y_test, "device": self.setting.device})["accuracies"]
        return [float(value) for value in found]

    def accuracy(self, state: dict, Nbits=None, keep_zeros: bool = False) -> float:
        """Top-1 accuracy of ResNet-20 holding ``state``, quantized with the reference's STE."""
        return self.accuracies([(state, Nbits, keep_zeros)])[0]

    def _checked_state(self, state) -> dict:
        """A returned state dict, refused unless it has every key and shape; each value cast to
        the checkpoint's dtype."""
        expected = self.pretrained_state
        if type(state) is not dict or set(state) != set(expected):
            raise InvalidOutput("the trained network came back without the ResNet-20 state dict.")
        checked = {}
        for key, value in state.items():
            reference_value = expected[key]
            if type(value) is not np.ndarray or value.shape != reference_value.shape:
                raise InvalidOutput(f"the trained network's `{key}` has the wrong shape.")
            checked[key] = value.astype(reference_value.dtype, copy=False)
        return checked

    def with_forward_weights(self, forward: dict) -> dict:
        """The pretrained state with each quantized layer's weight replaced by ``forward[layer]``."""
        state = dict(self.pretrained_state)
        for name, weight in forward.items():
            key = f"{name}.conv.weight"
            if key not in state or type(weight) is not np.ndarray or weight.shape != state[key].shape:
                raise InvalidOutput(f"STE's output for `{name}` does not have the weight's shape.")
            state[key] = weight.astype(np.float32)
        return state

    # -- running --------------------------------------------------------------------------------

    def _run(self, probe: str, steps: int, **inputs):
        x_train, y_train = self.setting.train_split()
        inputs.update(x_train=x_train, y_train=y_train, batch_size=self.budget.batch_size,
                      seed=self.setting.seed, device=self.setting.device)
        timeout = 60.0 + steps * self.budget.batch_size / IMAGES_PER_SECOND_FLOOR
        release_free_memory()  # the child trains while this process waits: give it the room
        return self.sandbox.run(f"train.{probe}", inputs, timeout=timeout,
                                threads=self.budget.threads, seed=self.setting.seed)

    def _measured(self, result, Nbits=None, keep_zeros=False) -> Outcome:
        values = result.values
        checked = self._checked_state(values["state"])
        layers, total = sparsity(checked, self.prunable)
        observed = {key: value for key, value in values.items() if key != "state"}
        return Outcome(self.accuracy(checked, Nbits, keep_zeros), layers, total, observed,
                       result.elapsed, checked)

    # -- one method per check ----------------------------------------------------------------------

    def pretrained(self) -> Outcome:
        """3.1: the student's lab files import; the pretrained model through their STE at None."""
        result = self.sandbox.run("train.quantize", {
            "state": self.pretrained_state, "bits": [None], "modules": ["lab2", "lab3"],
            "device": self.setting.device}, timeout=120.0, threads=self.budget.threads)
        forward = result.values["weights"][0]
        return Outcome(self.accuracy(self.with_forward_weights(forward)), observed={},
                       seconds=result.elapsed)

    def post_training_quantization(self) -> dict[int, float]:
        """4.2: {bits: accuracy of the pretrained model with the student's STE output}."""
        result = self.sandbox.run("train.quantize", {
            "state": self.pretrained_state, "bits": list(PTQ_BITS), "modules": ["lab3"],
            "device": self.setting.device}, timeout=120.0, threads=self.budget.threads)
        states = [(self.with_forward_weights(forward), None, False)
                  for forward in result.values["weights"]]
        return dict(zip(PTQ_BITS, self.accuracies(states)))

    def masked_finetune(self) -> Outcome:
        """3.3: the reference-pruned model, one short epoch of the student's masked fine-tuning."""
        batches = self.budget.masked_batches
        result = self._run("masked_finetune", batches, state=self.pruned_state, batches=batches)
        return self._measured(result)

    def iterative_prune(self, mode: str, Nbits=None) -> Outcome:
        """3.4 (``mode="layer"``), 3.5 (``"global"``), 4.5 (``"global"``, 4 bits, keep_zeros)."""
        budget = self.budget
        batches = budget.epochs * budget.batches_per_epoch
        keep_zeros = Nbits is not None
        result = self._run("iterative_prune", batches, state=self.pretrained_state, mode=mode,
                           Nbits=Nbits, keep_zeros=keep_zeros, epochs=budget.epochs,
                           batches_per_epoch=budget.batches_per_epoch)
        return self._measured(result, Nbits=Nbits, keep_zeros=keep_zeros)

    def quantized_finetune(self, bits: int, sparse: bool = False) -> Outcome:
        """4.3 (dense, ``bits``) and 4.4 (``sparse``: the globally 80%-pruned model, keep_zeros)."""
        batches = self.budget.sparse_qat_batches if sparse else self.budget.qat_batches
        state = self.global_pruned_state if sparse else self.pretrained_state
        result = self._run("quantized_finetune", batches, state=state, Nbits=bits,
                           keep_zeros=sparse, batches=batches)
        return self._measured(result, Nbits=bits, keep_zeros=sparse)

    # -- broken baselines, for calibration --------------------------------------------------------

    def untrained_accuracies(self) -> dict:
        """What a solution that never trains reaches: each pipeline's starting point, measured."""
        pruned, global_pruned, pretrained = self.pruned_state, self.global_pruned_state, self.pretrained_state
        networks = {"pruned": (pruned, None, False), "global": (global_pruned, None, False),
                    "4.4": (global_pruned, SPARSE_QAT_BITS, True),
                    "4.5": (global_pruned, ITERATIVE_QAT_BITS, True),
                    **{f"4.3/{bits}": (pretrained, bits, False) for bits in QAT_BITS}}
        found = dict(zip(networks, self.accuracies(list(networks.values()))))
        result = {"3.3": found["pruned"], "3.4": found["pruned"], "3.5": found["global"],
                  "4.4": found["4.4"], "4.5": found["4.5"]}
        for bits in QAT_BITS:
            result[f"4.3/{bits}"] = found[f"4.3/{bits}"]
        return result
