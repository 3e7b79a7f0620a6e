"""The provided ResNet-20: structure, state-dict names, quantization hooks, checkpoint loading."""
from __future__ import annotations

import argparse
import re

import pytest
import torch
import torch.nn as nn

from hw4.resnet import FP_Conv, FP_Linear, ResNetCIFAR, load_pretrained, prunable_layers


class RecordingSTE(torch.autograd.Function):
    """An STE that rounds weights to a grid of 1/4 and records every call's arguments."""

    calls: list = []

    @staticmethod
    def forward(ctx, w, bit, keep_zeros=False):
        RecordingSTE.calls.append((tuple(w.shape), bit, keep_zeros))
        return torch.round(w * 4) / 4

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None


@pytest.fixture(autouse=True)
def _fresh_calls():
    RecordingSTE.calls = []


def test_state_dict_has_the_course_keys():
    state = ResNetCIFAR().state_dict()
    assert len(state) == 128
    for key in ("head_conv.0.conv.weight", "head_conv.1.running_var",
                "body_op.0.conv1.0.conv.weight", "body_op.8.conv2.1.num_batches_tracked",
                "body_op.3.id_mapping.0.conv.weight", "body_op.6.id_mapping.1.bias",
                "final_fc.linear.weight", "final_fc.linear.bias"):
        assert key in state
    assert not any("id_mapping" in key for key in state if key.startswith(("body_op.0.", "body_op.4.")))
    assert tuple(state["body_op.6.id_mapping.0.conv.weight"].shape) == (64, 32, 1, 1)
    assert tuple(state["final_fc.linear.weight"].shape) == (10, 64)
    assert not any(key.endswith("conv.bias") for key in state)


def test_prunable_layers_are_the_twenty_outside_id_mapping():
    layers = prunable_layers(ResNetCIFAR())
    names = [name for name, _ in layers]
    assert len(layers) == 20
    assert names[0] == "head_conv.0.conv" and names[-1] == "final_fc.linear"
    assert "body_op.8.conv2.0.conv" in names
    assert all("id_mapping" not in name for name in names)
    assert all(isinstance(module, (nn.Conv2d, nn.Linear)) for _, module in layers)
    assert sum(module.weight.numel() for _, module in layers) == 268_336


def test_forward_shapes_and_downsampling():
    net = ResNetCIFAR().eval()
    x = torch.randn(2, 3, 32, 32)
    assert net(x).shape == (2, 10)
    assert net.body_op[3].conv1[0].conv.stride == (2, 2)
    assert net.body_op[6].id_mapping[0].conv.stride == (2, 2)
    assert net.body_op[4].id_mapping is None


def test_fp_conv_calls_the_injected_ste_with_nbits():
    layer = FP_Conv(3, 4, 3, padding=1, Nbits=3, ste=RecordingSTE)
    x = torch.randn(1, 3, 8, 8)
    out = layer(x)
    assert RecordingSTE.calls == [((4, 3, 3, 3), 3, False)]
    expected = nn.functional.conv2d(x, torch.round(layer.conv.weight * 4) / 4, padding=1)
    torch.testing.assert_close(out, expected)


def test_keep_zeros_is_passed_to_the_ste():
    FP_Linear(5, 2, Nbits=4, ste=RecordingSTE, keep_zeros=True)(torch.randn(1, 5))
    assert RecordingSTE.calls == [((2, 5), 4, True)]


def test_float_layers_use_the_weight_as_is():
    layer = FP_Conv(3, 4, 3, padding=1, Nbits=None, ste=RecordingSTE)
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(layer(x), layer.conv(x))
    assert RecordingSTE.calls == []


def test_quantized_network_keeps_head_and_fc_in_float():
    net = ResNetCIFAR(Nbits=2, ste=RecordingSTE).eval()
    net(torch.randn(1, 3, 32, 32))
    assert net.head_conv[0].Nbits is None and net.final_fc.Nbits is None
    shapes = [shape for shape, _, _ in RecordingSTE.calls]
    assert len(shapes) == 18 + 2  # every block conv plus the two id_mapping convs
    assert (16, 3, 3, 3) not in shapes and (10, 64) not in shapes
    assert {bit for _, bit, _ in RecordingSTE.calls} == {2}


def test_gradients_flow_through_the_ste():
    net = ResNetCIFAR(Nbits=4, ste=RecordingSTE)
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    assert net.body_op[0].conv1[0].conv.weight.grad is not None


def test_missing_student_ste_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "lab3", None)  # makes `import lab3` fail
    with pytest.raises(ImportError, match="from lab3 import STE"):
        ResNetCIFAR(Nbits=4)


def test_embedded_checkpoint_loads_strictly():
    net = load_pretrained()
    assert not net.training
    reloaded = ResNetCIFAR()
    reloaded.load_state_dict(net.state_dict(), strict=True)


def test_load_pretrained_refuses_a_foreign_state_dict(tmp_path):
    state = ResNetCIFAR().state_dict()
    del state["final_fc.linear.bias"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(RuntimeError, match="final_fc.linear.bias"):
        load_pretrained(tmp_path / "partial.pt")


def test_evaluate_command_prints_the_accuracy(capsys):
    from autograder import evaluate as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--limit", "40", "--nbits", "4", "--device", "cpu"])
    assert command.run(args) == 0
    printed = capsys.readouterr().out
    accuracy = float(re.search(r"accuracy (\d\.\d{4})", printed).group(1))
    net = load_pretrained(args.checkpoint, Nbits=4, ste=command.reference_ste())
    from hw4.data import load_dataset, test_loader
    from hw4.training import evaluate
    assert accuracy == pytest.approx(evaluate(net, test_loader(load_dataset(args.data), limit=40)), abs=1e-4)
    assert "4 bits" in printed and "40 test images" in printed


def test_evaluate_command_reports_a_missing_checkpoint(tmp_path, capsys):
    from autograder import evaluate as command

    args = argparse.Namespace(checkpoint=str(tmp_path / "none.pt"), data=None, nbits=None,
                              limit=10, device="cpu")
    assert command.run(args) == 2
    assert "none.pt" in capsys.readouterr().out
