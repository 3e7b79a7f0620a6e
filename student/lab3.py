"""Lab 3: fixed-point quantization with a straight-through estimator (STE).

The provided ResNet-20 (``hw4.resnet``) quantizes the weights of every residual-block conv in
its forward pass by calling ``STE.apply(weight, Nbits)`` (``STE.apply(weight, Nbits, True)``
for problem 4.4). ``Function.apply`` takes positional arguments only: never ``bit=...``.

You write ``STE.forward``. The straight-through ``backward`` is provided: the gradient with
respect to the quantized weights is passed unchanged to the full-precision weights.
"""
import numpy as np
import torch

device = "cuda" if torch.cuda.is_available() else "cpu"


class STE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, bit, keep_zeros=False):
        """Problem 4.1 (and 4.4 with keep_zeros=True): quantize a weight tensor to ``bit`` bits.

        w: a float tensor of any shape. Returns wq, a tensor of w's shape, dtype and device
        (computing alpha and beta with NumPy is accepted as long as wq is such a tensor).
        - bit is None: no quantization, return w.
        - bit == 0: return w * 0.
        - otherwise, the dynamic-scaling linear quantizer:
            alpha = max(w) - min(w), beta = min(w)      (over the whole tensor)
            ws = (w - beta) / alpha                      (in [0, 1])
            step = 2 ** bit - 1
            R = round(ws * step) / step                  (2 ** bit levels)
            wq = alpha * R + beta
          Example: w = [-1, -0.5, 0, 0.3, 1], bit = 2 -> [-1, -1/3, 1/3, 1/3, 1].
        - keep_zeros=True (problem 4.4 ONLY): weights that are exactly 0 in w (pruned weights)
          must be exactly 0 in wq: with keep_zeros, the example gives [-1, -1/3, 0, 1/3, 1].
          Accepted: restoring the zeros after quantizing (mask), or also computing alpha and
          beta over the nonzero weights only.
          With keep_zeros=False (problems 4.1-4.3) zeros are quantized like any other weight:
          do NOT restore them.
        """
        if bit is None:
            wq = w
        elif bit == 0:
            wq = w * 0
        else:
            # Lab 3 (a), your code here:
            # Compute alpha (scale) for dynamic scaling
            # alpha =
            # Compute beta (bias) for dynamic scaling
            # beta =
            # Scale w with alpha and beta so that all elements in ws are between 0 and 1
            # ws =
            step = 2 ** bit - 1
            # Quantize ws with a linear quantizer to "step" number of levels
            # R =
            # Scale the quantized weight R back with alpha and beta
            # wq =
            raise NotImplementedError("STE.forward: dynamic-scaling linear quantizer")
            if keep_zeros:
                # Lab 3 (d), your code here, ONLY when keep_zeros is True:
                # restore the zero elements of w in wq (e.g. with a mask of w != 0)
                raise NotImplementedError("STE.forward: keep the zeros of w when keep_zeros=True")
        return wq

    @staticmethod
    def backward(ctx, g):
        # Provided: the straight-through estimator. The gradient of the quantized weights is
        # used as the gradient of the full-precision weights; bit and keep_zeros get none.
        return g, None, None
