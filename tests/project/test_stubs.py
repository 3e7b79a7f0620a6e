"""The student stubs: every graded function raises NotImplementedError, and the stubs and the
reference agree on names, signatures and provided constants (the submission contract).

Stubs are imported by file path under private names, so they never clash with ``lab1`` etc.
"""
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from reference import answers as ref_answers
from reference import lab1 as ref_lab1
from reference import lab2 as ref_lab2
from reference import lab3 as ref_lab3

STUDENT_DIR = Path(__file__).resolve().parents[2] / "student"
REFERENCE = {"lab1": ref_lab1, "lab2": ref_lab2, "lab3": ref_lab3, "answers": ref_answers}


def load_stub(name):
    spec = importlib.util.spec_from_file_location(f"_stub_{name}", STUDENT_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stubs():
    return {name: load_stub(name) for name in REFERENCE}


def public_api(module):
    """Functions and classes defined in ``module`` itself, by name (imports excluded)."""
    return {name: obj for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module.__name__}


@pytest.mark.parametrize("name", ["lab1", "lab2", "lab3"])
def test_same_names_and_signatures(stubs, name):
    stub, ref = public_api(stubs[name]), public_api(REFERENCE[name])
    assert sorted(stub) == sorted(ref)
    for fn_name, stub_obj in stub.items():
        if inspect.isclass(stub_obj):
            for method in ("forward", "backward"):
                assert (inspect.signature(getattr(stub_obj, method))
                        == inspect.signature(getattr(ref[fn_name], method))), f"{fn_name}.{method}"
        else:
            assert inspect.signature(stub_obj) == inspect.signature(ref[fn_name]), fn_name


def test_lab1_constants_match_reference(stubs):
    stub = stubs["lab1"]
    for const in ("X", "Y", "W0"):
        value = getattr(stub, const)
        assert value.dtype == np.float64
        np.testing.assert_array_equal(value, getattr(ref_lab1, const))
    assert (stub.LR, stub.STEPS) == (ref_lab1.LR, ref_lab1.STEPS) == (0.02, 200)


def test_device_global(stubs):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    for name in ("lab2", "lab3"):
        assert stubs[name].device == REFERENCE[name].device == expected
    assert not hasattr(stubs["lab1"], "torch")  # Lab 1 is NumPy only


def test_answers_stub_is_blank(stubs):
    assert list(stubs["answers"].TRUE_FALSE) == list(ref_answers.TRUE_FALSE)
    assert all(value is None for value in stubs["answers"].TRUE_FALSE.values())


LAB1_CALLS = {
    "loss": (), "gradient": (), "gd_step": (0.02,), "projected_gd_step": (0.02, 2),
    "subgradient_l1_step": (0.02, 0.5), "proximal_l1_step": (0.02, 0.01),
    "trimmed_l1_step": (0.02, 0.1, 3),
}


@pytest.mark.parametrize("fn_name", [*LAB1_CALLS, "soft_threshold"])
def test_lab1_stub_raises(stubs, fn_name):
    lab1 = stubs["lab1"]
    W = lab1.W0.copy()
    args = (W, 0.1) if fn_name == "soft_threshold" else (W, lab1.X, lab1.Y, *LAB1_CALLS[fn_name])
    with pytest.raises(NotImplementedError):
        getattr(lab1, fn_name)(*args)


def tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))


def lab2_calls():
    net = tiny_net()
    loader = [(torch.randn(2, 3, 4, 4), torch.tensor([0, 1]))]
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    return {
        "prune_by_percentage": lambda lab2: lab2.prune_by_percentage(net[0], 50.0),
        "finetune_after_prune": lambda lab2: lab2.finetune_after_prune(
            net, loader, nn.CrossEntropyLoss(), optimizer, True),
        "finetune_after_prune(prune=False)": lambda lab2: lab2.finetune_after_prune(
            net, loader, nn.CrossEntropyLoss(), optimizer, False),
        "iterative_prune_percentage": lambda lab2: lab2.iterative_prune_percentage(0),
        "global_prune_by_percentage": lambda lab2: lab2.global_prune_by_percentage(net, 50.0),
        "layer_sparsity": lambda lab2: lab2.layer_sparsity(net[0]),
    }


@pytest.mark.parametrize("call", list(lab2_calls()))
def test_lab2_stub_raises(stubs, call):
    with pytest.raises(NotImplementedError):
        lab2_calls()[call](stubs["lab2"])


@pytest.mark.parametrize("args", [(2,), (4, False), (2, True)])
def test_lab3_stub_raises_when_quantizing(stubs, args):
    with pytest.raises(NotImplementedError):
        stubs["lab3"].STE.apply(torch.tensor([-1.0, 0.0, 0.5]), *args)


def test_lab3_stub_passes_float_weights_through(stubs):
    # The provided ResNet calls STE.apply(weight, None) in Lab 2, before Lab 3 is written,
    # so the handout's bit None / 0 branches must work in the stub.
    STE = stubs["lab3"].STE
    w = torch.tensor([-1.0, 0.25, 2.0], requires_grad=True)
    out = STE.apply(w, None)
    torch.testing.assert_close(out, w.detach(), rtol=0, atol=0)
    out.sum().backward()
    torch.testing.assert_close(w.grad, torch.ones(3), rtol=0, atol=0)
    assert torch.all(STE.apply(w, 0) == 0)
