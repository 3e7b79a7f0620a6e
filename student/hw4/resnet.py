"""The course's ResNet-20 for CIFAR-10, with fixed-point quantizable convolutions.

Layout (HOMEWORK.md section 3), which fixes the state-dict keys of the course checkpoint:
``head_conv`` (full precision) -> ``body_op`` (9 ``ResNet_Block``, 16/32/64 channels) ->
average pool -> ``final_fc`` (full precision). Every weight layer is an ``FP_Conv`` or
``FP_Linear`` wrapping a plain ``nn.Conv2d`` / ``nn.Linear``, so keys read
``head_conv.0.conv.weight``, ``body_op.3.id_mapping.0.conv.weight``, ``final_fc.linear.weight``.

Quantization: when ``Nbits`` is not None a layer's forward uses ``ste.apply(weight, Nbits)``
(``ste.apply(weight, Nbits, True)`` with ``keep_zeros``) instead of the float weight. The STE is
injectable: pass the class as ``ste``; left as None, it is the student's ``lab3.STE``, imported
only when a quantized layer is built, as in the course notebook.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from hw4.checkpoint import EMBEDDED_CHECKPOINT_CANDIDATES, embedded_checkpoint  # noqa: F401  (re-exported)


def _student_ste():
    """The student's ``STE`` from ``lab3.py``: the default quantizer of a quantized network."""
    try:
        from lab3 import STE
    except Exception as error:  # ImportError, or anything lab3.py raises at import time
        raise ImportError(
            "Nbits is set but no STE was given, and `from lab3 import STE` failed "
            f"({type(error).__name__}: {error}). Put lab3.py on sys.path or pass ste=..."
        ) from error
    return STE


def _quantized(weight: torch.Tensor, Nbits, ste, keep_zeros: bool) -> torch.Tensor:
    """The weight a layer computes with: float when ``Nbits`` is None, else the STE's output."""
    if Nbits is None:
        return weight
    if keep_zeros:
        return ste.apply(weight, Nbits, True)
    return ste.apply(weight, Nbits)


class FP_Conv(nn.Module):
    """An ``nn.Conv2d`` (stored as ``.conv``, no bias) whose weight is quantized to ``Nbits``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 Nbits=None, ste=None, keep_zeros=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.Nbits = Nbits
        self.keep_zeros = keep_zeros
        self.ste = ste if ste is not None or Nbits is None else _student_ste()

    def forward(self, x):
        weight = _quantized(self.conv.weight, self.Nbits, self.ste, self.keep_zeros)
        return F.conv2d(x, weight, None, self.conv.stride, self.conv.padding)  # (B, C_out, H', W')


class FP_Linear(nn.Module):
    """An ``nn.Linear`` (stored as ``.linear``, with bias) whose weight is quantized to ``Nbits``."""

    def __init__(self, in_features, out_features, Nbits=None, ste=None, keep_zeros=False):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.Nbits = Nbits
        self.keep_zeros = keep_zeros
        self.ste = ste if ste is not None or Nbits is None else _student_ste()

    def forward(self, x):
        weight = _quantized(self.linear.weight, self.Nbits, self.ste, self.keep_zeros)
        return F.linear(x, weight, self.linear.bias)  # (B, out_features)


class ResNet_Block(nn.Module):
    """Two 3x3 convolutions plus a shortcut; a 1x1 ``id_mapping`` where the channels change."""

    def __init__(self, in_chs, out_chs, strides, Nbits=None, ste=None, keep_zeros=False):
        super().__init__()
        quant = dict(Nbits=Nbits, ste=ste, keep_zeros=keep_zeros)
        self.conv1 = nn.Sequential(
            FP_Conv(in_chs, out_chs, 3, stride=strides, padding=1, **quant),
            nn.BatchNorm2d(out_chs), nn.ReLU())
        self.conv2 = nn.Sequential(
            FP_Conv(out_chs, out_chs, 3, stride=1, padding=1, **quant),
            nn.BatchNorm2d(out_chs))
        if in_chs != out_chs:
            self.id_mapping = nn.Sequential(
                FP_Conv(in_chs, out_chs, 1, stride=strides, padding=0, **quant),
                nn.BatchNorm2d(out_chs))
        else:
            self.id_mapping = None
        self.final_activation = nn.ReLU()

    def forward(self, x):  # x: (B, in_chs, H, W)
        out = self.conv2(self.conv1(x))  # (B, out_chs, H/stride, W/stride)
        shortcut = self.id_mapping(x) if self.id_mapping is not None else x
        return self.final_activation(shortcut + out)


class ResNetCIFAR(nn.Module):
    """ResNet-``num_layers`` for 32x32x3 images and 10 classes, as in the course notebook.

    The residual blocks are quantized to ``Nbits`` (None: full precision) with ``ste``; the head
    convolution and the final linear layer always stay full precision.
    """

    def __init__(self, num_layers=20, Nbits=None, ste=None, keep_zeros=False):
        super().__init__()
        if Nbits is not None and ste is None:
            ste = _student_ste()
        self.head_conv = nn.Sequential(
            FP_Conv(3, 16, 3, stride=1, padding=1, Nbits=None),
            nn.BatchNorm2d(16), nn.ReLU())
        blocks_per_stage = (num_layers - 2) // 6
        blocks, in_chs, out_chs = [], 16, 16
        for stage in range(3):
            for index in range(blocks_per_stage):
                strides = 1
                if index == 0 and stage > 0:  # the first block of stages 2 and 3 halves H, W
                    strides, out_chs = 2, out_chs * 2
                blocks.append(ResNet_Block(in_chs, out_chs, strides, Nbits, ste, keep_zeros))
                in_chs = out_chs
        self.body_op = nn.Sequential(*blocks)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.final_fc = FP_Linear(64, 10, Nbits=None)

    def forward(self, x):  # x: (B, 3, 32, 32), normalized
        out = self.body_op(self.head_conv(x))  # (B, 64, 8, 8)
        features = self.avg_pool(out).flatten(1)  # (B, 64)
        return self.final_fc(features)  # (B, 10) logits


def prunable_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every ``nn.Conv2d`` / ``nn.Linear`` of ``net`` outside the ``id_mapping`` shortcuts.

    Returns ``[(module name, module)]`` in definition order; for ResNet-20, 20 layers holding
    268,336 weights, from ``head_conv.0.conv`` to ``final_fc.linear``.
    """
    return [(name, module) for name, module in net.named_modules()
            if isinstance(module, (nn.Conv2d, nn.Linear)) and "id_mapping" not in name]


def load_pretrained(path=None, Nbits=None, ste=None, keep_zeros=False, device="cpu") -> ResNetCIFAR:
    """A ResNet-20 with the checkpoint at ``path`` (None: the embedded one), strictly loaded.

    The checkpoint is a plain state dict read with ``weights_only=True``. Returns the network
    on ``device``, in eval mode.
    """
    net = ResNetCIFAR(num_layers=20, Nbits=Nbits, ste=ste, keep_zeros=keep_zeros)
    state = torch.load(Path(path) if path is not None else embedded_checkpoint(),
                       map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()
