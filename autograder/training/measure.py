"""The training stage's measurements that need torch, run in a short-lived trusted process.

``Sandbox.run_trusted`` runs each function here in a fresh fork of the sandbox's zygote: a
process that has torch and ``hw4`` loaded but never imported student code, and that is not
confined (it reads the reference and the checkpoint). It costs the grade only what it
allocates, and it ends before the next sandbox call trains, so the grading process needs no
torch and the grade never holds two copies of it.

    starting_states({"checkpoint": path or None})
        -> {"pretrained", "pruned", "global_pruned": state dicts of arrays, "prunable": [names]}
    accuracies({"networks": [{"state", "Nbits", "keep_zeros"}, ...], "x_test", "y_test",
                "device"}) -> {"accuracies": [top-1 accuracy of each network]}

Accuracy is top-1 on the given test images, in eval mode, with the reference's STE for a
quantized network, deterministic kernels and the threads the call was given (the budget's).
In the student handout, which has no reference, the starting models come from the build and the
quantizer is the student's (``autograder.stand_ins``).
"""
from __future__ import annotations

import numpy as np

from autograder.training.budget import EVAL_BATCH, SPARSITY_Q

TRUSTED_FUNCTIONS = ("starting_states", "accuracies")


def _state_arrays(net) -> dict:
    return {key: value.detach().cpu().numpy().copy() for key, value in net.state_dict().items()}


def starting_states(inputs: dict) -> dict:
    """The pretrained model, the same pruned to 80% per layer and globally by the reference.

    The global prune is 4.4's sparse model: the course quantizes "the best 80%-sparse model",
    the global one; it also recovers in far fewer steps than the layer-wise one, which a brief
    budget needs."""
    import torch

    from autograder import stand_ins
    from autograder.staff import reference
    from autograder.training.setting import file_digest
    from hw4.resnet import ResNetCIFAR, load_pretrained, prunable_layers
    pretrained = _state_arrays(load_pretrained(inputs.get("checkpoint")))
    prunable = [name for name, _ in prunable_layers(ResNetCIFAR(20))]
    digest = file_digest(inputs.get("checkpoint"))
    shipped = {kind: stand_ins.starting_state(kind, digest) for kind in stand_ins.KINDS}
    if all(state is not None for state in shipped.values()):  # the handout, on its checkpoint
        return {"pretrained": pretrained, "pruned": shipped["layerwise"],
                "global_pruned": shipped["global"], "prunable": prunable}
    lab2 = reference("lab2")

    def pruned(prune) -> dict:
        net = ResNetCIFAR(20)
        net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in pretrained.items()})
        prune(net, prunable_layers(net))
        return _state_arrays(net)

    return {"pretrained": pretrained,
            "pruned": pruned(lambda net, layers: [lab2.prune_by_percentage(layer, SPARSITY_Q)
                                                  for _, layer in layers]),
            "global_pruned": pruned(lambda net, layers: lab2.global_prune_by_percentage(net, SPARSITY_Q)),
            "prunable": prunable}


def _deterministic() -> None:
    """Deterministic kernels, without NaN-filling new tensors (slower, no more deterministic).

    ``torch.use_deterministic_algorithms`` would import torch._inductor (seconds per process);
    the flag it sets is this one."""
    import torch
    import torch.utils.deterministic
    torch._C._set_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False


def accuracies(inputs: dict) -> dict:
    """Top-1 accuracy of ResNet-20 holding each network's state, quantized to its ``Nbits``
    (None: float) with the reference's STE (in the handout, the student's) and its
    ``keep_zeros``."""
    from autograder import stand_ins
    from autograder.staff import reference
    from hw4.data import Dataset, test_loader
    from hw4.resnet import ResNetCIFAR
    from hw4.training import evaluate
    import torch
    _deterministic()
    device = inputs["device"]
    x_test, y_test = np.asarray(inputs["x_test"]), np.asarray(inputs["y_test"])
    data = Dataset("measured", x_test[:0], y_test[:0], x_test, y_test, tuple(str(i) for i in range(10)))
    loader = test_loader(data, batch_size=EVAL_BATCH)
    handout = stand_ins.in_handout()
    results = []
    for network in inputs["networks"]:
        Nbits = network["Nbits"]
        state = {key: torch.from_numpy(np.array(value)) for key, value in network["state"].items()}
        if Nbits is not None and handout:
            results.append(_with_student_quantizer(state, int(Nbits), bool(network["keep_zeros"]),
                                                   loader, device))
            continue
        ste = reference("lab3").STE if Nbits is not None else None
        net = ResNetCIFAR(20, Nbits=None if Nbits is None else int(Nbits), ste=ste,
                          keep_zeros=bool(network["keep_zeros"]))
        net.load_state_dict(state, strict=True)
        with torch.no_grad():  # the same values as with autograd, without its graph's memory
            results.append(evaluate(net.to(device), loader, device))
    return {"accuracies": results}


def _with_student_quantizer(state: dict, Nbits: int, keep_zeros: bool, loader, device) -> float:
    """The handout's quantized accuracy, with the student's own STE: what it raises is theirs
    to read (a StudentException naming the stand-in), not a fault of the grader."""
    import torch

    from autograder import stand_ins
    from autograder.errors import StudentException
    from hw4.resnet import ResNetCIFAR
    from hw4.training import evaluate
    try:
        net = ResNetCIFAR(20, Nbits=Nbits, ste=stand_ins.student_quantizer(), keep_zeros=keep_zeros)
        net.load_state_dict(state, strict=True)
        with torch.no_grad():
            return evaluate(net.to(device), loader, device)
    except Exception as error:
        raise StudentException(f"your `STE` raised {type(error).__name__}: {error} while the "
                               f"handout measured {Nbits}-bit accuracy "
                               f"{stand_ins.STUDENT_QUANTIZER_NOTE}") from None
