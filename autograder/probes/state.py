"""The process-wide settings of a sandbox child that student code commonly changes at import.

Students write settings at the top of a lab file: ``torch.set_default_dtype(torch.float64)``
for precision, a seed, ``torch.set_grad_enabled(False)``, ``np.seterr(all="raise")``, an
``os.chdir`` to their notebook's folder. Those lines run when the grader imports the file, in
the child that then builds the grader's networks, tensors and loaders. ``GlobalState`` records
the grader's settings before student code runs and puts them back after it, so what the grader
builds is built the same way whatever a submission's import did (a float64 default would make
the grader's network float64 while its batches stay float32).

Only settings are restored, never objects: a tensor the student made at import keeps its dtype.
Patches of numpy or torch themselves are not undone (verdicts never rest on them).
"""
from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class GlobalState:
    """A snapshot of the grader's settings in this process; ``restore`` puts them back."""

    cwd: str
    default_dtype: torch.dtype
    default_device: torch.device
    grad_enabled: bool
    anomaly: bool
    deterministic: bool
    deterministic_warn_only: bool
    threads: int
    matmul_precision: str
    cudnn: tuple[bool, bool, bool]
    numpy_errors: dict
    warning_filters: list
    python_random: object
    numpy_random: dict
    torch_random: torch.Tensor
    cuda_random: list | None

    @classmethod
    def capture(cls) -> GlobalState:
        """The settings as they are now (the grader's, when no student code ran yet)."""
        cudnn = torch.backends.cudnn
        return cls(
            cwd=os.getcwd(),
            default_dtype=torch.get_default_dtype(),
            default_device=torch.get_default_device(),
            grad_enabled=torch.is_grad_enabled(),
            anomaly=torch.is_anomaly_enabled(),
            deterministic=torch.are_deterministic_algorithms_enabled(),
            deterministic_warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
            threads=torch.get_num_threads(),
            matmul_precision=torch.get_float32_matmul_precision(),
            cudnn=(cudnn.enabled, cudnn.benchmark, cudnn.deterministic),
            numpy_errors=np.geterr(),
            warning_filters=list(warnings.filters),
            python_random=random.getstate(),
            numpy_random=np.random.get_state(legacy=False),
            torch_random=torch.get_rng_state(),
            # Only when CUDA is already up: querying it would initialise it in every child.
            cuda_random=torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        )

    def restore(self) -> None:
        """Put every recorded setting back (the working directory, modes, seeds' states)."""
        os.chdir(self.cwd)
        torch.set_default_dtype(self.default_dtype)
        if torch.get_default_device() != self.default_device:
            # None is torch's own default (CPU) without a device mode on every call
            torch.set_default_device(None if self.default_device.type == "cpu" else self.default_device)
        torch.set_grad_enabled(self.grad_enabled)
        torch.set_anomaly_enabled(self.anomaly)
        # torch.use_deterministic_algorithms would import torch._inductor; the flag is this one.
        torch._C._set_deterministic_algorithms(self.deterministic,
                                               warn_only=self.deterministic_warn_only)
        torch.set_num_threads(self.threads)
        torch.set_float32_matmul_precision(self.matmul_precision)
        cudnn = torch.backends.cudnn
        cudnn.enabled, cudnn.benchmark, cudnn.deterministic = self.cudnn
        np.seterr(**self.numpy_errors)
        if warnings.filters != self.warning_filters:
            warnings.filters[:] = self.warning_filters
            warnings._filters_mutated()  # drop the "already warned" caches of the old filters
        random.setstate(self.python_random)
        np.random.set_state(self.numpy_random)
        torch.set_rng_state(self.torch_random)
        if self.cuda_random is not None:
            torch.cuda.set_rng_state_all(self.cuda_random)
