"""Child-side probe for Lab 3: the student's ``STE`` forward output and the gradient it passes
back to ``w`` for a given upstream gradient, on tensors built from plain data."""
from __future__ import annotations

import numpy as np
import torch

from autograder.probes import device as grader_device
from autograder.probes import plain, student, student_ste


def ste(inputs: dict) -> dict:
    """``STE.apply(w, bit)`` (or ``STE.apply(w, bit, keep_zeros)`` when the case gives
    ``keep_zeros``) on each case ``{"w", "bit", "keep_zeros"?, "grad"?}``.

    With ``grad``, ``out.backward(grad)`` is called and ``w.grad`` reported (None when the
    backward produced none). Reports per case ``{"out", "grad", "w_after", "type", "dtype",
    "device"}``: facts only. ``w_after`` is w as the call left it; the trusted side compares it
    with the w it sent (a check made here could be fooled by a patched ``torch.equal``).
    """
    module = student("lab3")
    device = str(getattr(module, "device", None) or grader_device())
    STE = student_ste(module)
    results = []
    for case in inputs["cases"]:
        w = torch.tensor(case["w"], device=device, requires_grad=case.get("grad") is not None)
        args = (w, case["bit"]) if case.get("keep_zeros") is None else (
            w, case["bit"], bool(case["keep_zeros"]))
        out = STE.apply(*args)
        report = {"w_after": plain(w.detach().cpu(), what="w after STE.apply"), "grad": None,
                  "type": f"{type(out).__module__}.{type(out).__qualname__}", "out": None,
                  "dtype": "", "device": ""}
        if isinstance(out, torch.Tensor):
            report.update(out=plain(out.detach().cpu(), what="STE.forward's output"),
                          dtype=str(out.dtype).replace("torch.", ""), device=str(out.device))
            if case.get("grad") is not None and out.requires_grad:
                out.backward(torch.tensor(case["grad"], device=device, dtype=out.dtype))
                if w.grad is not None:
                    report["grad"] = plain(w.grad.detach().cpu(), what="the gradient w.r.t. w")
        elif isinstance(out, np.ndarray):
            report["out"] = plain(out, what="STE.forward's output")
        results.append(report)
    return {"results": results}
