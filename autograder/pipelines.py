"""The training stage's pipelines, trusted side: build inputs, run a probe of
``autograder.probes.train`` in the sandbox, and measure the returned weights ourselves.

    setting = Setting.resolve(data=None, checkpoint=None, device="auto")
    pipelines = Pipelines(sandbox, setting)
    outcome = pipelines.masked_finetune()      # 3.3
    outcome.accuracy, outcome.revived          # measured here; observed in the child

Student code runs only in the sandbox child. Here, the grader's own ResNet-20 (``hw4``), the
reference's pruning (to make the pruned starting model) and the reference's STE (to evaluate a
quantized network) do the rest; the reference is loaded by ``autograder.staff`` under
private module names, so it never meets the student's modules. Accuracy is top-1 on the first
``budget.test_images`` test images, in eval mode, with deterministic kernels and a fixed number
of threads. Thresholds live in ``autograder.calibration``; this module only measures.
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from autograder import paths
from autograder.errors import GraderError, InvalidOutput
from autograder.staff import reference

SPARSITY_Q = 80.0         # the course's target: 80% of the prunable weights
PTQ_BITS = (6, 5, 4, 3, 2)
QAT_BITS = (4, 3, 2)
SPARSE_QAT_BITS = 4       # 4.4: the 80%-sparse model quantized to 4 bits with keep_zeros
ITERATIVE_QAT_BITS = 4    # 4.5, with keep_zeros: a pruned network's zeros stay zeros when quantized
EVAL_BATCH = 100          # the course's test batch; a larger one costs the grading process more heap
IMAGES_PER_SECOND_FLOOR = 40.0  # timeouts assume at least this training speed (half a vCPU)


@dataclass(frozen=True)
class Budget:
    """How much each pipeline trains, per device type. Changing any field needs a new calibration.

    batch_size: the training batch (the course's 256 on a GPU; smaller on CPU, where the
    activations of a batch are most of a training call's memory). train_images / test_images: the first N images of
    each split are used (both splits are class-interleaved, so every prefix is balanced).
    masked_batches (3.3), qat_batches (4.3, per width), sparse_qat_batches (4.4): optimizer steps.
    epochs and batches_per_epoch (3.4, 3.5, 4.5): the schedule's short epochs; the first 10 prune.
    threads: torch threads, in the child and for evaluation here (results depend on it).
    """
    name: str
    batch_size: int
    train_images: int
    test_images: int
    masked_batches: int
    qat_batches: int
    sparse_qat_batches: int
    epochs: int
    batches_per_epoch: int
    threads: int


# CPU: the same 22,016 image passes as 86 batches of the course's 256, in 344 batches of 64, on
# one thread. A step at batch 64 needs some 500 MB less than at 256 (benchmarks/grade_in_cgroup.py),
# which takes the whole grade from 1.31 GB to 0.84 GB (cgroup peak), and one thread is what half a vCPU (Gradescope's
# default) runs without torch's threads spinning on each other's quota.
# GPU: the course's batch.
BUDGETS = {
    "cpu": Budget("short", batch_size=64, train_images=5000, test_images=1000, masked_batches=48,
                  qat_batches=24, sparse_qat_batches=32, epochs=16, batches_per_epoch=4, threads=1),
    "cuda": Budget("long", batch_size=256, train_images=10000, test_images=10000, masked_batches=40,
                   qat_batches=20, sparse_qat_batches=20, epochs=20, batches_per_epoch=4, threads=4),
}


# Peak memory of a whole grade (unit and training stages), every process together, with CPU
# wheels, in a 1.5 GB memory cgroup (benchmarks/grade_in_cgroup.py --tier 1.5gb): 841 MB charged
# to the cgroup (802 MiB), 838 MiB of PSS summed over the processes. The requirement leaves a
# little room over it. Gradescope's default 768 MB is still below it: the grading process holds
# some 290 MB of its own (torch and the trusted side's evaluations) while a child trains.
STAGE_MEMORY = {"cpu": int(0.85 * 2**30)}


def require_memory(setting: "Setting", limit: int | None = None) -> None:
    """Raise GraderError, with what to change, when the machine's memory limit (``limit``, or
    ``autograder.machine.memory_limit()``) is below what the stage needs on this device type.

    Without it, an undersized container (Gradescope's default is 768 MB) kills a child halfway
    through fine-tuning, and the reference itself would fail as if out of memory.
    """
    from autograder.machine import memory_limit
    needed = STAGE_MEMORY.get(setting.device_type)
    limit = memory_limit() if limit is None else limit
    if needed is None or limit is None or limit >= needed:
        return
    raise GraderError(
        f"the training stage needs {needed / 2**30:.2f} GiB of memory on {setting.device_type} "
        f"(fine-tuning ResNet-20 beside the grader), and this machine allows "
        f"{limit / 2**20:.0f} MiB. On Gradescope raise the autograder's memory in the "
        f"assignment's settings (the 1.5 GB setting fits), or set HW4_STAGE=unit in run_autograder to "
        f"grade the unit stage alone; then regrade.")


def file_digest(path: Path | None) -> str:
    """First 16 hex digits of the sha256 of a file (None: the embedded checkpoint)."""
    from hw4.resnet import embedded_checkpoint
    digest = hashlib.sha256(Path(path or embedded_checkpoint()).read_bytes())
    return digest.hexdigest()[:16]


def arrays_digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _prefixes(dataset, budget: Budget):
    """``dataset`` holding copies of the two prefixes ``budget`` uses, so that the rest of a large
    data set (CIFAR-10's 10,000 test images: 29 MiB) is freed before any child trains."""
    n, m = budget.train_images, budget.test_images
    return replace(dataset, x_train=dataset.x_train[:n].copy(),
                               y_train=dataset.y_train[:n].copy(),
                               x_test=dataset.x_test[:m].copy(), y_test=dataset.y_test[:m].copy())


@dataclass(frozen=True)
class Setting:
    """What a training-stage run is measured on: data, checkpoint, device and budget.

    ``key`` names its calibration file; ``fingerprint`` pins the images and checkpoint used.
    """
    dataset: object  # hw4.data.Dataset
    checkpoint: Path | None
    device: str      # "cpu" or "cuda"
    budget: Budget
    seed: int = 0

    @classmethod
    def resolve(cls, data=None, checkpoint=None, device: str = "auto", seed: int = 0) -> "Setting":
        """Options or environment (HW4_DATA, HW4_CHECKPOINT) first, the embedded defaults last."""
        import os
        paths.ensure_provided_importable()
        from hw4.data import load_dataset
        data = data or os.environ.get("HW4_DATA") or None
        checkpoint = checkpoint or os.environ.get("HW4_CHECKPOINT") or None
        from autograder.machine import resolve_device
        device = resolve_device(device)
        device_type = "cuda" if device.startswith("cuda") else "cpu"
        budget = BUDGETS[device_type]
        return cls(_prefixes(load_dataset(data), budget), Path(checkpoint) if checkpoint else None,
                   device, budget, seed)

    @property
    def device_type(self) -> str:
        return "cuda" if self.device.startswith("cuda") else "cpu"

    @property
    def key(self) -> str:
        return f"{self.dataset.name}-{self.device_type}-{self.budget.name}"

    @cached_property
    def fingerprint(self) -> dict:
        budget = self.budget
        return {"checkpoint": file_digest(self.checkpoint),
                "train": arrays_digest(*self.train_split()),
                "test": arrays_digest(self.dataset.x_test[:budget.test_images],
                                      self.dataset.y_test[:budget.test_images]),
                "budget": asdict(budget)}

    def train_split(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.budget.train_images
        return self.dataset.x_train[:n], self.dataset.y_train[:n]


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    glibc keeps what an evaluation's activations or the dataset's temporaries freed, some 150 MiB
    in this process, and the machine's memory limit counts it while a sandbox child trains.
    Trimming once per call costs milliseconds; trimming inside the training loop would cost
    page faults on every step, so the child is left alone.
    """
    import ctypes
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this interpreter runs on
    except (OSError, AttributeError):  # not glibc: macOS, musl
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


# -- outcomes ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one pipeline produced: ``accuracy`` measured here, the rest observed or measured."""
    accuracy: float
    layer_sparsity: dict = field(default_factory=dict)   # {prunable layer: fraction of zeros}
    total_sparsity: float = 0.0                           # over all prunable weights
    observed: dict = field(default_factory=dict)         # the probe's observations, as returned
    seconds: float = 0.0                                  # the sandboxed call's wall time
    state: dict = field(default_factory=dict, repr=False)  # the trained weights, checked


def sparsity(state: dict) -> tuple[dict, float]:
    """({prunable layer: fraction of exact zeros}, total fraction) of a ResNet-20 state dict."""
    from hw4.resnet import ResNetCIFAR, prunable_layers
    names = [name for name, _ in prunable_layers(ResNetCIFAR(20))]
    zeros = {name: int(np.count_nonzero(state[f"{name}.weight"] == 0)) for name in names}
    sizes = {name: state[f"{name}.weight"].size for name in names}
    return ({name: zeros[name] / sizes[name] for name in names},
            sum(zeros.values()) / sum(sizes.values()))


def mask_disagreements(before: dict, after: dict, q: float = SPARSITY_Q, rtol: float = 1e-5) -> dict:
    """Compare a global prune's result with the reference rule on the same weights.

    ``before`` / ``after``: {prunable layer: weight} around the student's global prune at ``q``.
    The reference keeps |w| >= t, t the q-th percentile of all |w| (float64, linear). Weights
    within ``rtol`` of t are ties (either side is correct). Returns, per layer, how many
    positions disagree outside the ties plus how many kept weights changed value.
    """
    names = list(before)
    magnitudes = np.concatenate([np.abs(before[name]).astype(np.float64).ravel() for name in names])
    threshold = float(np.percentile(magnitudes, q))
    result = {}
    for name in names:
        w = np.abs(before[name].astype(np.float64))
        kept = after[name] != 0
        tie = np.abs(w - threshold) <= rtol * max(threshold, 1e-30)
        wrong = int(np.count_nonzero((kept != (w >= threshold)) & ~tie))
        changed = int(np.count_nonzero(kept & (after[name] != before[name])))
        result[name] = wrong + changed
    return result


def distinct_values(forward: dict) -> dict:
    """{layer: number of distinct values of its forward (quantized) weight}."""
    return {name: int(np.unique(weight).size) for name, weight in forward.items()}


# -- the pipelines ----------------------------------------------------------------------------

class Pipelines:
    """Runs the training stage's pipelines for one submission (``sandbox``) in one ``setting``."""

    def __init__(self, sandbox, setting: Setting):
        self.sandbox = sandbox
        self.setting = setting
        self.budget = setting.budget

    # -- starting models, built here ----------------------------------------------------------

    @cached_property
    def pretrained_state(self) -> dict:
        from hw4.resnet import load_pretrained
        net = load_pretrained(self.setting.checkpoint)
        return {key: value.detach().cpu().numpy().copy() for key, value in net.state_dict().items()}

    @cached_property
    def pruned_state(self) -> dict:
        """The pretrained model, every prunable layer pruned to 80% by the reference."""
        prune = reference("lab2").prune_by_percentage
        return self._pruned(lambda net, layers: [prune(layer, SPARSITY_Q) for _, layer in layers])

    @cached_property
    def global_pruned_state(self) -> dict:
        """The pretrained model pruned to 80% globally by the reference: 4.4's sparse model.

        The course quantizes "the best 80%-sparse model", the global one; it also recovers in
        far fewer steps than the layer-wise one, which a brief budget needs."""
        prune = reference("lab2").global_prune_by_percentage
        return self._pruned(lambda net, layers: prune(net, SPARSITY_Q))

    def _pruned(self, prune) -> dict:
        from hw4.resnet import ResNetCIFAR, prunable_layers
        net = ResNetCIFAR(20)
        net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.pretrained_state.items()})
        prune(net, prunable_layers(net))
        return {key: value.detach().cpu().numpy().copy() for key, value in net.state_dict().items()}

    @cached_property
    def _test_loader(self):
        from hw4.data import test_loader
        return test_loader(self.setting.dataset, batch_size=EVAL_BATCH, limit=self.budget.test_images)

    # -- measuring ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _deterministic(self):
        import torch.utils.deterministic as flags
        threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        fill = flags.fill_uninitialized_memory
        torch.set_num_threads(self.budget.threads)
        torch.use_deterministic_algorithms(True)
        flags.fill_uninitialized_memory = False  # NaN-filling new tensors: slower, no more deterministic
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)
            flags.fill_uninitialized_memory = fill

    def accuracy(self, state: dict, Nbits=None, keep_zeros: bool = False) -> float:
        """Top-1 accuracy of ResNet-20 holding ``state``, quantized with the reference's STE."""
        from hw4.resnet import ResNetCIFAR
        from hw4.training import evaluate
        ste = reference("lab3").STE if Nbits is not None else None
        net = ResNetCIFAR(20, Nbits=Nbits, ste=ste, keep_zeros=keep_zeros)
        net.load_state_dict(self._checked_state(state), strict=True)
        with self._deterministic():
            return evaluate(net.to(self.setting.device), self._test_loader, self.setting.device)

    def _checked_state(self, state) -> dict:
        """A returned state dict as tensors, refused unless it has every key, shape and dtype kind."""
        expected = self.pretrained_state
        if type(state) is not dict or set(state) != set(expected):
            raise InvalidOutput("the trained network came back without the ResNet-20 state dict.")
        tensors = {}
        for key, value in state.items():
            reference_value = expected[key]
            if type(value) is not np.ndarray or value.shape != reference_value.shape:
                raise InvalidOutput(f"the trained network's `{key}` has the wrong shape.")
            tensors[key] = torch.from_numpy(value.astype(reference_value.dtype, copy=False))
        return tensors

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
        state = values["state"]
        checked = {k: v.numpy() for k, v in self._checked_state(state).items()}
        layers, total = sparsity(checked)
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
        return {bits: self.accuracy(self.with_forward_weights(forward))
                for bits, forward in zip(PTQ_BITS, result.values["weights"])}

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
        pruned, global_pruned = self.accuracy(self.pruned_state), self.accuracy(self.global_pruned_state)
        result = {"3.3": pruned, "3.4": pruned, "3.5": global_pruned,
                  "4.4": self.accuracy(self.global_pruned_state, SPARSE_QAT_BITS, keep_zeros=True),
                  "4.5": self.accuracy(self.global_pruned_state, ITERATIVE_QAT_BITS, keep_zeros=True)}
        for bits in QAT_BITS:
            result[f"4.3/{bits}"] = self.accuracy(self.pretrained_state, bits)
        return result

