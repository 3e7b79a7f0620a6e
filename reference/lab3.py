"""Lab 3 (reference): fixed-point quantization with a straight-through estimator (STE).

The forward pass quantizes a weight tensor to 2**bit levels spread over [min(w), max(w)]
(dynamic scaling); the backward pass passes the upstream gradient through unchanged, so the
full-precision weights accumulate the updates.
"""
import torch

device = "cuda" if torch.cuda.is_available() else "cpu"


class STE(torch.autograd.Function):
    """Called positionally: ``STE.apply(w, bit)`` or ``STE.apply(w, bit, keep_zeros)``."""

    @staticmethod
    def forward(ctx, w, bit, keep_zeros=False):
        """4.1 / 4.4: w (any shape, float) -> wq (same shape, dtype, device)."""
        if bit is None:
            return w
        if bit == 0:
            return w * 0
        alpha = w.max() - w.min()        # scale: the range of w
        beta = w.min()                   # bias: the lowest value
        ws = (w - beta) / alpha          # in [0, 1]
        step = 2 ** bit - 1
        R = torch.round(ws * step) / step  # 2**bit levels in [0, 1]
        wq = alpha * R + beta
        if keep_zeros:
            # 4.4: pruned weights (exact zeros) must stay pruned after quantization
            wq = torch.where(w != 0, wq, torch.zeros_like(wq))
        return wq

    @staticmethod
    def backward(ctx, g):
        # straight-through: dL/dw := dL/dwq; no gradient for bit and keep_zeros
        return g, None, None
