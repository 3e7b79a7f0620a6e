"""Child-side probes of the training stage: run a pipeline of the handout with the student's
functions, on the grader's own model, data, optimizer and criterion, and return the trained
weights as plain arrays, with what was observed between optimizer steps.

Inputs every training probe shares (built by ``autograder.training.pipelines``):
- ``state``: the starting network, a state dict of ndarrays (the 128 entries of ResNet-20);
- ``x_train`` uint8 (N, 32, 32, 3), ``y_train`` int64 (N,): the images the trainloader draws from;
- ``batch_size``, ``seed``, ``device`` ("cpu" or "cuda").

The grader owns the trainloader: it is a ``_WatchedLoader`` that yields a fixed number of
seeded batches and calls back after every optimizer step (when the next batch is requested, and
once more when the loop asks past the last one), so a probe can look at the network mid-epoch.
The notebook global ``device`` of the student's modules is set to the grader's device, so the
student's ``.to(device)`` and the grader's model agree.

Nothing here judges: trusted code (``autograder.training.pipelines``) measures accuracy and sparsity on
the returned weights and decides.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn as nn
import torch.utils.deterministic

from autograder.errors import InvalidOutput
from autograder.probes import plain, student, student_function, student_ste
from hw4.data import Dataset, train_loader
from hw4.resnet import FP_Conv, FP_Linear, ResNetCIFAR, prunable_layers
from hw4.training import course_criterion, course_optimizer, train_epoch

LAST_PRUNE_EPOCH = 9  # the course's schedule: 8, 16, ..., 80% before epochs 0..9


def _warm_up_optimizer() -> None:
    """Build and step one SGD optimizer, at import, that is in the zygote.

    torch's optimizers import ``torch._dynamo`` lazily at first use, and with it stdlib modules
    (cProfile, ...) that the sandbox user may be unable to read where Python lives in a private
    folder. Done once here, every child inherits the loaded modules.

    The gradient is set by hand, not by ``backward()``: autograd's engine counts the CUDA
    devices when it first runs, which initialises the CUDA driver in the zygote, and a child
    forked after that fails its first CUDA call with "initialization error".
    """
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=0.1, momentum=0.9, weight_decay=1e-4)
    parameter.grad = torch.ones(1)
    optimizer.step()
    optimizer.zero_grad()


_warm_up_optimizer()


# -- set-up ----------------------------------------------------------------------------------

def _deterministic(seed: int, device: str) -> None:
    """Seed everything and ask torch for deterministic kernels (warn only: the student's code
    may use an op without a deterministic variant, which is not a fault)."""
    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    np.random.seed(seed)
    # torch.use_deterministic_algorithms would import torch._inductor (seconds, and modules the
    # sandbox user may not read); the flag it sets is this one.
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    # With the flag on, torch also fills every new tensor's memory with NaN, which guards only
    # against ops that read memory they never wrote (none of the course's do) and costs some 9%
    # of a training step on CPU (benchmarks/train_stage.py).
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False


def _student_module(name: str, device: str):
    """The student's module ``name``, its notebook global ``device`` pointed at ours."""
    module = student(name)
    module.device = device
    return module


def _student_ste(device: str):
    """The student's ``lab3.STE`` (``probes.student_ste``), its module's ``device`` ours."""
    return student_ste(_student_module("lab3", device))


def _network(inputs: dict, device: str, Nbits=None, ste=None, keep_zeros=False) -> ResNetCIFAR:
    """The grader's ResNet-20 holding ``inputs["state"]``, on ``device``, in train mode."""
    net = ResNetCIFAR(num_layers=20, Nbits=Nbits, ste=ste, keep_zeros=keep_zeros)
    state = {key: torch.from_numpy(np.array(value)) for key, value in inputs["state"].items()}
    net.load_state_dict(state, strict=True)
    return net.to(device).train()


def _dataset(inputs: dict) -> Dataset:
    x, y = inputs["x_train"], inputs["y_train"]
    return Dataset("graded", x, y, x[:0], y[:0], tuple(str(i) for i in range(10)))


def _state_out(net: nn.Module) -> dict:
    """Every entry of ``net``'s state dict as a CPU ndarray; student-made tensors are checked."""
    return {key: plain(value, what=f"the network's `{key}` after training")
            for key, value in net.state_dict().items()}


def quantized_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, FP_Conv/FP_Linear) of the layers whose forward quantizes (Nbits is not None)."""
    return [(name, module) for name, module in net.named_modules()
            if isinstance(module, (FP_Conv, FP_Linear)) and module.Nbits is not None]


def _weight(module: nn.Module) -> torch.Tensor:
    return module.conv.weight if isinstance(module, FP_Conv) else module.linear.weight


class _WatchedLoader:
    """A trainloader of ``batches`` seeded batches that calls ``after_step()`` between them.

    ``after_step`` runs when the training loop asks for the next batch (the previous step and
    whatever the loop did after it are done) and when it asks past the last batch. Attributes
    other than iteration and ``len`` are those of the underlying DataLoader.
    """

    def __init__(self, loader, batches: int, after_step=None):
        self._loader, self._batches, self._after_step = loader, batches, after_step
        self.steps_seen = 0

    def __len__(self):
        return self._batches

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def __iter__(self):
        for index, batch in enumerate(self._loader):
            if index == self._batches:
                break
            if index > 0:
                self._observe()
            yield batch
        self._observe()

    def _observe(self):
        self.steps_seen += 1
        if self._after_step is not None:
            self._after_step()


def _loader(inputs: dict, epoch: int, batches: int, after_step=None) -> _WatchedLoader:
    """Epoch ``epoch``'s batches: shuffling and augmentation seeded by (seed, epoch)."""
    seed = int(inputs["seed"]) * 1000 + 2 * epoch  # train_loader uses seed and seed + 1
    loader = train_loader(_dataset(inputs), batch_size=int(inputs["batch_size"]), seed=seed)
    return _WatchedLoader(loader, batches, after_step)


# -- observations ----------------------------------------------------------------------------

def _zero_masks(net: nn.Module) -> dict[str, torch.Tensor]:
    """{layer name: bool tensor, True where the weight is exactly 0} for the prunable layers."""
    return {name: layer.weight.detach() == 0 for name, layer in prunable_layers(net)}


def _revived(net: nn.Module, zeros: dict[str, torch.Tensor]) -> int:
    """How many weights that were 0 in ``zeros`` are nonzero now, over all prunable layers."""
    return sum(int((layer.weight.detach()[zeros[name]] != 0).sum())
               for name, layer in prunable_layers(net))


def _parameters_replaced(net: nn.Module, originals: dict[str, nn.Parameter]) -> list[str]:
    """Names of prunable layers whose ``weight`` is no longer the Parameter the optimizer holds."""
    return [name for name, layer in prunable_layers(net) if layer.weight is not originals[name]]


def _weights(net: nn.Module) -> dict[str, nn.Parameter]:
    return {name: layer.weight for name, layer in prunable_layers(net)}


def _forward_weights(net: nn.Module, bit, keep_zeros: bool) -> dict:
    """{layer: the student's STE output for that layer's float weight} over the quantized layers."""
    result = {}
    for name, module in quantized_layers(net):
        weight = _weight(module).detach()
        with torch.no_grad():
            wq = module.ste.apply(weight, bit, True) if keep_zeros else module.ste.apply(weight, bit)
        result[name] = plain(wq, what=f"STE.apply(weight of `{name}`, {bit})")
        if result[name].shape != tuple(weight.shape):
            raise InvalidOutput(f"STE.forward must return a tensor of the weight's shape: for "
                                f"`{name}` it returned shape {result[name].shape}, expected "
                                f"{tuple(weight.shape)}.")
    return result


# -- probes ----------------------------------------------------------------------------------

def quantize(inputs: dict) -> dict:
    """3.1 and 4.2: the student's ``STE.apply(w, bit)`` on every quantized layer of the network.

    Inputs: ``state``, ``bits`` (a list of ints or None), ``modules`` (student modules that must
    import, e.g. ["lab2", "lab3"]), ``device``. Returns ``{"weights": [{layer: ndarray}, ...]}``,
    one dict per bit, in order. The trusted side evaluates the network with these weights.
    """
    device = inputs["device"]
    for name in inputs["modules"]:
        _student_module(name, device)
    net = _network(inputs, device, Nbits=8, ste=_student_ste(device))  # Nbits: which layers quantize
    return {"weights": [_forward_weights(net, bit, keep_zeros=False) for bit in inputs["bits"]]}


def masked_finetune(inputs: dict) -> dict:
    """3.3: one short epoch of the student's ``finetune_after_prune(..., prune=True)``.

    Inputs: the shared ones plus ``batches``. The model arrives pruned (by the reference, in the
    trusted process). Returns ``state`` (after training), ``revived`` (after each step, how many
    weights that were 0 at the start are nonzero), ``steps`` and ``replaced`` (prunable layers
    whose weight Parameter was swapped).
    """
    device = inputs["device"]
    _deterministic(int(inputs["seed"]), device)
    _student_module("lab2", device)
    finetune = student_function("lab2", "finetune_after_prune")
    net = _network(inputs, device)
    zeros, originals = _zero_masks(net), _weights(net)
    revived: list[int] = []
    loader = _loader(inputs, 0, int(inputs["batches"]), lambda: revived.append(_revived(net, zeros)))
    optimizer = course_optimizer(net)
    finetune(net, loader, course_criterion(), optimizer, prune=True)
    return {"state": _state_out(net), "revived": revived, "steps": loader.steps_seen,
            "replaced": _parameters_replaced(net, originals)}


def iterative_prune(inputs: dict) -> dict:
    """3.4, 3.5 and 4.5: the course's iterative schedule with the student's functions.

    Inputs: the shared ones plus ``mode`` ("layer": the student's ``iterative_prune_percentage``
    and ``prune_by_percentage`` on each prunable layer; "global": the course's q = 8 (e + 1) and
    the student's ``global_prune_by_percentage``), ``epochs``, ``batches_per_epoch``, ``Nbits``
    (None, or a width for quantization-aware training with the student's STE) and
    ``keep_zeros`` (passed to the quantized layers). Before epoch e
    the schedule prunes to q(e) (when not None); epoch e runs the student's
    ``finetune_after_prune`` with ``prune = e >= 9``.

    Returns ``state``, ``schedule`` (q per epoch, None where nothing was pruned), ``revived``
    (per epoch, per step: weights zero at the epoch's start and nonzero after the step),
    ``before_last_prune`` and ``after_last_prune`` ({layer: weight} around the q = 80 prune),
    ``replaced``.
    """
    device = inputs["device"]
    _deterministic(int(inputs["seed"]), device)
    lab2 = _student_module("lab2", device)
    Nbits = inputs.get("Nbits")
    ste = _student_ste(device) if Nbits is not None else None
    finetune = student_function("lab2", "finetune_after_prune")
    if inputs["mode"] == "layer":
        schedule_of = student_function("lab2", "iterative_prune_percentage")
        prune_layer = student_function("lab2", "prune_by_percentage")

        def prune(q):
            for _, layer in prunable_layers(net):
                prune_layer(layer, q)
    else:
        def schedule_of(epoch):
            return 8.0 * (epoch + 1) if epoch <= LAST_PRUNE_EPOCH else None
        prune_global = student_function("lab2", "global_prune_by_percentage")

        def prune(q):
            prune_global(net, q)
    del lab2

    net = _network(inputs, device, Nbits=Nbits, ste=ste, keep_zeros=bool(inputs.get("keep_zeros")))
    originals = _weights(net)
    optimizer = course_optimizer(net)
    criterion = course_criterion()
    schedule, revived, around_last = [], [], {}
    for epoch in range(int(inputs["epochs"])):
        q = schedule_of(epoch)
        if q is not None:
            q = float(plain(q, what=f"iterative_prune_percentage({epoch})"))
            if epoch == LAST_PRUNE_EPOCH:
                around_last["before"] = _weight_arrays(net)
            prune(q)
            if epoch == LAST_PRUNE_EPOCH:
                around_last["after"] = _weight_arrays(net)
        schedule.append(q)
        zeros, epoch_revived = _zero_masks(net), []
        loader = _loader(inputs, epoch, int(inputs["batches_per_epoch"]),
                         lambda: epoch_revived.append(_revived(net, zeros)))
        finetune(net, loader, criterion, optimizer, prune=epoch >= LAST_PRUNE_EPOCH)
        revived.append(epoch_revived)
    return {"state": _state_out(net), "schedule": schedule, "revived": revived,
            "before_last_prune": around_last.get("before", {}),
            "after_last_prune": around_last.get("after", {}),
            "replaced": _parameters_replaced(net, originals)}


def _weight_arrays(net: nn.Module) -> dict:
    return {name: plain(layer.weight, what=f"the weight of `{name}`")
            for name, layer in prunable_layers(net)}


def quantized_finetune(inputs: dict) -> dict:
    """4.3 and 4.4: brief quantization-aware training with the student's STE.

    Inputs: the shared ones plus ``Nbits``, ``keep_zeros`` and ``batches``. The grader's own loop
    (``hw4.training.train_epoch``) trains; with ``keep_zeros`` the model arrives pruned and the
    grader re-applies the starting mask to the float weights after every step, so that what is
    checked is the STE alone. Returns ``state``, ``forward`` ({layer: STE output} after
    training), ``grads`` ({layer: [steps where the float weight had a nonzero gradient]} counted
    as a number per layer), ``forward_zeros_lost`` (after each step, pruned weights whose STE
    output was nonzero) and ``steps``.
    """
    device = inputs["device"]
    _deterministic(int(inputs["seed"]), device)
    Nbits, keep_zeros = int(inputs["Nbits"]), bool(inputs["keep_zeros"])
    ste = _student_ste(device)
    net = _network(inputs, device, Nbits=Nbits, ste=ste, keep_zeros=keep_zeros)
    zeros = _zero_masks(net)
    layers = quantized_layers(net)
    grads = {name: 0 for name, _ in layers}
    lost: list[int] = []

    def after_step():
        for name, module in layers:
            grad = _weight(module).grad
            if grad is not None and bool(torch.any(grad != 0)):
                grads[name] += 1
        if keep_zeros:
            with torch.no_grad():
                for name, layer in prunable_layers(net):
                    layer.weight.masked_fill_(zeros[name], 0.0)
            lost.append(_forward_zeros_lost(net, zeros, Nbits))

    loader = _loader(inputs, 0, int(inputs["batches"]), after_step)
    train_epoch(net, loader, course_criterion(), course_optimizer(net), device, progress=False)
    return {"state": _state_out(net), "forward": _forward_weights(net, Nbits, keep_zeros),
            "grads": grads, "forward_zeros_lost": lost, "steps": loader.steps_seen}


def _forward_zeros_lost(net: nn.Module, zeros: dict, Nbits: int) -> int:
    """Pruned weights (0 at the start) whose quantized forward weight is not 0."""
    prunable = dict(prunable_layers(net))
    lost = 0
    for name, module in quantized_layers(net):
        inner = f"{name}.conv" if isinstance(module, FP_Conv) else f"{name}.linear"
        if inner not in prunable:
            continue
        with torch.no_grad():
            wq = module.ste.apply(_weight(module).detach(), Nbits, True)
        wq = torch.as_tensor(plain(wq, what=f"STE.apply(weight of `{name}`, {Nbits}, True)"))
        lost += int((wq[zeros[inner].cpu()] != 0).sum())
    return lost

