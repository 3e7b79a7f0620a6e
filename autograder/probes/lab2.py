"""Child-side probes for Lab 2: build layers and networks from plain data, call the student's
pruning code, and report the weights it left (plain arrays) and how it treated the Parameter.

Models and data are placed where the student's module global ``device`` points (the course
notebook's convention), falling back to the device the grader asked for. Only facts come back
(weights after the call, object identity, dtype and device names): every verdict is made on the
trusted side.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from autograder.errors import GraderError
from autograder.probes import device as grader_device
from autograder.probes import plain, student, student_function

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _device(module, inputs):
    return str(getattr(module, "device", None) or grader_device())


def build_layer(weight: np.ndarray, bias=None) -> nn.Module:
    """An ``nn.Conv2d`` (4-d weight) or ``nn.Linear`` (2-d weight) holding exactly these values."""
    if weight.ndim == 4:
        out_channels, in_channels, kh, kw = weight.shape
        layer = nn.Conv2d(in_channels, out_channels, (kh, kw), bias=bias is not None)
    else:
        out_features, in_features = weight.shape
        layer = nn.Linear(in_features, out_features, bias=bias is not None)
    layer = layer.to(TORCH_DTYPES[str(weight.dtype)])
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        if bias is not None:
            layer.bias.copy_(torch.from_numpy(bias))
    return layer


def _returned(value) -> dict:
    """What a pruning function returned, as facts: its type's name and, for an array or
    tensor, its shape (the trusted side decides whether that is None or a mask)."""
    kind = type(value)
    shape = list(value.shape) if isinstance(value, (torch.Tensor, np.ndarray)) else None
    return {"type": f"{kind.__module__}.{kind.__qualname__}", "shape": shape}


def prune(inputs: dict) -> dict:
    """``prune_by_percentage(layer, q)`` on each case ``{"weight", "bias" (or None), "q"}``.

    Reports per case, as facts: the weight and bias after the call (CPU arrays), whether
    ``layer.weight`` is still the same object and a Parameter (identity, seen only here), its
    dtype and device and the device it started on, and what the function returned.
    """
    module = student("lab2")
    device = _device(module, inputs)
    results = []
    for case in inputs["cases"]:
        layer = build_layer(case["weight"], case.get("bias")).to(device)
        parameter = layer.weight
        returned = student_function("lab2", "prune_by_percentage")(layer, case["q"])
        weight = layer.weight
        results.append({
            "weight": plain(weight, what="layer.weight after prune_by_percentage"),
            "same_parameter": weight is parameter,
            "is_parameter": isinstance(weight, nn.Parameter),
            "dtype": str(weight.dtype).replace("torch.", ""),
            "device": str(weight.device) if isinstance(weight, torch.Tensor) else "",
            "expected_device": str(parameter.device),
            "bias": None if layer.bias is None else plain(layer.bias, what="layer.bias"),
            "returned": _returned(returned),
        })
    return {"results": results}


def sparsity(inputs: dict) -> dict:
    """``layer_sparsity(layer)`` on a layer built from each of ``inputs["weights"]``."""
    module = student("lab2")
    device = _device(module, inputs)
    values = []
    for weight in inputs["weights"]:
        value = student_function("lab2", "layer_sparsity")(build_layer(weight).to(device))
        values.append(_reported(value, "layer_sparsity's return value"))
    return {"values": values}


def _reported(value, what: str):
    """A returned number as data for the trusted side: tensors and numpy values as ndarrays
    (``plain``), ints, floats and None as they are, anything else as ``"<TypeName>"`` for the
    judge to name in its message."""
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        value = plain(value, what=what)
    if isinstance(value, (int, float, np.ndarray)) or value is None:
        return value
    return f"<{type(value).__qualname__}>"


def iterative(inputs: dict) -> dict:
    """``iterative_prune_percentage(epoch)`` for each of ``inputs["epochs"]``."""
    function = student_function("lab2", "iterative_prune_percentage")
    values = []
    for epoch in inputs["epochs"]:
        values.append(_reported(function(int(epoch)), "iterative_prune_percentage's return value"))
    return {"values": values}


def global_prune(inputs: dict) -> dict:
    """``global_prune_by_percentage(net, q)`` on a ResNet-20 holding ``inputs["weights"]``.

    ``inputs["names"]`` and ``inputs["weights"]`` give every Conv2d/Linear weight of the net
    (id_mapping included), in ``named_modules`` order; the trusted side made them, so it knows
    the weights before. Returns ``{"names": [...], "weights": [...]}`` after the call.
    """
    from hw4.resnet import ResNetCIFAR
    module = student("lab2")
    net = ResNetCIFAR(num_layers=20)
    layers = [(name, layer) for name, layer in net.named_modules()
              if isinstance(layer, (nn.Conv2d, nn.Linear))]
    if [name for name, _ in layers] != list(inputs["names"]):
        raise GraderError("the ResNet-20 layers differ from the inputs' names")
    with torch.no_grad():
        for (_, layer), weight in zip(layers, inputs["weights"]):
            layer.weight.copy_(torch.from_numpy(weight))
    net = net.to(_device(module, inputs))
    student_function("lab2", "global_prune_by_percentage")(net, inputs["q"])
    layers = [(name, layer) for name, layer in net.named_modules()
              if isinstance(layer, (nn.Conv2d, nn.Linear))]
    return {"names": [name for name, _ in layers],
            "weights": [plain(layer.weight, what=f"{name}.weight") for name, layer in layers]}


class RecordingLoader:
    """A train loader that snapshots the network's weights before yielding each batch.

    The snapshot taken before batch i+1 shows the weights after the optimizer step (and any
    masking) of batch i; a last one is taken when the loop asks for the batch after the last.
    """

    def __init__(self, net, batches, device):
        self.net, self.device = net, device
        self.batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
        self.snapshots = []
        self.dataset = [None] * sum(len(y) for _, y in self.batches)  # for len(loader.dataset)
        self.batch_size = len(self.batches[0][1])

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            self.snapshots.append(weights_of(self.net))
            yield batch
        self.snapshots.append(weights_of(self.net))


def tiny_net() -> nn.Module:
    """A small CNN of the provided layer types: FP_Conv(3->4, 3x3) -> ReLU -> pool -> FP_Linear(16->10)."""
    from hw4.resnet import FP_Conv, FP_Linear
    return nn.Sequential(FP_Conv(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), FP_Linear(16, 10))


def weights_of(net) -> list[np.ndarray]:
    """The weight of every Conv2d/Linear of ``net``, as CPU arrays, in definition order."""
    return [plain(m.weight, what="a layer's weight") for m in net.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))]


def finetune_both(inputs: dict) -> dict:
    """``finetune`` with prune=True, then with prune=False, on fresh copies of the same inputs:
    ``{"prune": report, "no_prune": report}`` (one sandbox call for both tests of 3.3)."""
    return {"prune": finetune(dict(inputs, prune=True)),
            "no_prune": finetune(dict(inputs, prune=False))}


def finetune(inputs: dict) -> dict:
    """One epoch of the student's ``finetune_after_prune`` on ``tiny_net`` (``tiny_finetune``)."""
    module = student("lab2")
    return tiny_finetune(student_function("lab2", "finetune_after_prune"), inputs,
                         _device(module, inputs))


def tiny_finetune(finetune_after_prune, inputs: dict, device: str) -> dict:
    """One ``finetune_after_prune`` epoch of ``tiny_net`` from ``inputs["weights"]`` (pruned).

    SGD with momentum and weight decay, so unmasked pruned weights regrow after one step. The
    fixtures run the reference through this same function, so its figures (how many pruned
    weights regrow with prune=False) are measured on the same network, optimizer and batches.
    Returns ``{"snapshots": [[weights per layer] per batch + 1], "steps": optimizer.step calls,
    "final": [weights per layer] after the call}``.
    """
    net = tiny_net()
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for layer, weight in zip(layers, inputs["weights"]):
            layer.weight.copy_(torch.from_numpy(weight))
    net = net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=inputs["lr"], momentum=0.9, weight_decay=1e-3)
    steps = []
    original_step = optimizer.step

    def counted_step(*args, **kwargs):
        steps.append(1)
        return original_step(*args, **kwargs)

    optimizer.step = counted_step
    loader = RecordingLoader(net, inputs["batches"], device)
    finetune_after_prune(net, loader, nn.CrossEntropyLoss(), optimizer, bool(inputs["prune"]))
    return {"snapshots": loader.snapshots, "steps": len(steps), "final": weights_of(net)}
