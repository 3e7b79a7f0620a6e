"""What a training-stage run is measured on: data, checkpoint, device and budget.

    setting = Setting.resolve(data=None, checkpoint=None, device="auto")
    setting.key           # names its calibration file
    setting.fingerprint   # pins the images, checkpoint and budget it was calibrated on

NumPy only: the data are loaded without torch (``hw4.data``), and the checkpoint is read as
bytes for its digest; the model itself is only ever built by ``autograder.training.measure``.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from autograder import paths
from autograder.training.budget import BUDGETS, Budget


def file_digest(path: Path | None) -> str:
    """First 16 hex digits of the sha256 of a file (None: the embedded checkpoint)."""
    paths.ensure_provided_importable()
    from hw4.checkpoint import embedded_checkpoint
    digest = hashlib.sha256(Path(path or embedded_checkpoint()).read_bytes())
    return digest.hexdigest()[:16]


def arrays_digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _prefixes(dataset, budget: Budget):
    """``dataset`` holding copies of the two prefixes ``budget`` uses, so that the rest of a large
    data set (CIFAR-10's 10,000 test images: 29 MiB) is freed before any child trains."""
    n, m = budget.train_images, budget.test_images
    return replace(dataset, x_train=dataset.x_train[:n].copy(),
                               y_train=dataset.y_train[:n].copy(),
                               x_test=dataset.x_test[:m].copy(), y_test=dataset.y_test[:m].copy())


@dataclass(frozen=True)
class Setting:
    """What a training-stage run is measured on: data, checkpoint, device and budget.

    ``key`` names its calibration file; ``fingerprint`` pins the images and checkpoint used.
    """
    dataset: object  # hw4.data.Dataset
    checkpoint: Path | None
    device: str      # "cpu" or "cuda"
    budget: Budget
    seed: int = 0

    @classmethod
    def resolve(cls, data=None, checkpoint=None, device: str = "auto", seed: int = 0) -> "Setting":
        """Options or environment (HW4_DATA, HW4_CHECKPOINT) first, the embedded defaults last."""
        paths.ensure_provided_importable()
        from hw4.data import load_dataset
        data = data or os.environ.get("HW4_DATA") or None
        checkpoint = checkpoint or os.environ.get("HW4_CHECKPOINT") or None
        from autograder.machine import resolve_device
        device = resolve_device(device)
        device_type = "cuda" if device.startswith("cuda") else "cpu"
        budget = BUDGETS[device_type]
        # Absolute: the checkpoint is opened by the sandbox's trusted forks, whose cwd is not ours.
        checkpoint = Path(checkpoint).absolute() if checkpoint else None
        return cls(_prefixes(load_dataset(data), budget), checkpoint, device, budget, seed)

    @property
    def device_type(self) -> str:
        return "cuda" if self.device.startswith("cuda") else "cpu"

    @property
    def key(self) -> str:
        return f"{self.dataset.name}-{self.device_type}-{self.budget.name}"

    @cached_property
    def fingerprint(self) -> dict:
        budget = self.budget
        return {"checkpoint": file_digest(self.checkpoint),
                "train": arrays_digest(*self.train_split()),
                "test": arrays_digest(*self.test_split()),
                "budget": asdict(budget)}

    def check_enough_images(self) -> None:
        """GraderError (a staff message) when one epoch of the training images cannot give a
        pipeline its steps: every student would lose that check's points."""
        budget, images = self.budget, len(self.dataset.x_train)
        short = budget.short_of(images)
        if short:
            from autograder.errors import GraderError
            needs = "; ".join(f"{name}: {steps}" for name, steps in short.items())
            raise GraderError(
                f"the data {self.dataset.name!r} have {min(images, budget.train_images)} "
                f"training images for the {self.device_type} budget {budget.name!r}, "
                f"{budget.batches_per_epoch_of(images)} batches of {budget.batch_size} per "
                f"epoch, fewer than these pipelines take from "
                f"one epoch ({needs}). Use data with more training images, or lower those fields "
                f"in autograder/training/budget.py and recalibrate (python -m autograder calibrate).")

    def train_split(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.budget.train_images
        return self.dataset.x_train[:n], self.dataset.y_train[:n]

    def test_split(self) -> tuple[np.ndarray, np.ndarray]:
        m = self.budget.test_images
        return self.dataset.x_test[:m], self.dataset.y_test[:m]
