"""How much the training stage trains, per device type, and the constants of its pipelines.

Changing a budget's field changes what the pipelines reach: it needs a new calibration
(``python -m autograder calibrate``), which the calibration's fingerprint enforces.
"""
from __future__ import annotations

from dataclasses import dataclass

SPARSITY_Q = 80.0         # the course's target: 80% of the prunable weights
PTQ_BITS = (6, 5, 4, 3, 2)
QAT_BITS = (4, 3, 2)
SPARSE_QAT_BITS = 4       # 4.4: the 80%-sparse model quantized to 4 bits with keep_zeros
ITERATIVE_QAT_BITS = 4    # 4.5, with keep_zeros: a pruned network's zeros stay zeros when quantized
EVAL_BATCH = 100          # the course's test batch; a larger one costs the measuring process more heap
IMAGES_PER_SECOND_FLOOR = 40.0  # timeouts assume at least this training speed (half a vCPU)


@dataclass(frozen=True)
class Budget:
    """How much each pipeline trains on one device type.

    batch_size: the training batch (the course's 256 on a GPU; smaller on CPU, where the
    activations of a batch are most of a training call's memory). train_images / test_images:
    the first N images of each split are used (both splits are class-interleaved, so every
    prefix is balanced). masked_batches (3.3), qat_batches (4.3, per width), sparse_qat_batches
    (4.4): optimizer steps. epochs and batches_per_epoch (3.4, 3.5, 4.5): the schedule's short
    epochs; the first 10 prune. threads: torch threads, in the child and in the measuring
    process (results depend on it).
    """
    name: str
    batch_size: int
    train_images: int
    test_images: int
    masked_batches: int
    qat_batches: int
    sparse_qat_batches: int
    epochs: int
    batches_per_epoch: int
    threads: int

    def one_epoch_steps(self) -> dict[str, int]:
        """The steps each pipeline draws from one epoch of its loader, which must hold them: a
        loader that runs out first trains less, and 3.3's check counts the student short."""
        return {"3.3's masked fine-tune (masked_batches)": self.masked_batches,
                "4.3's fine-tune (qat_batches)": self.qat_batches,
                "4.4's fine-tune (sparse_qat_batches)": self.sparse_qat_batches,
                "an epoch of 3.4, 3.5 and 4.5 (batches_per_epoch)": self.batches_per_epoch}

    def batches_per_epoch_of(self, images: int) -> int:
        """The batches one epoch over ``images`` training images gives (at most
        ``train_images`` of them, in batches of ``batch_size``; the last may be partial)."""
        return -(-min(images, self.train_images) // self.batch_size)

    def short_of(self, images: int) -> dict[str, int]:
        """The pipelines whose steps one epoch over ``images`` training images cannot give:
        {pipeline: steps}."""
        batches = self.batches_per_epoch_of(images)
        return {name: steps for name, steps in self.one_epoch_steps().items() if steps > batches}


# CPU: the same 22,016 image passes as 86 batches of the course's 256, in 344 batches of 64, on
# one thread. A step at batch 64 needs some 500 MB less than at 256 (benchmarks/grade_in_cgroup.py),
# and one thread is what half a vCPU (Gradescope's default) runs without torch's threads
# spinning on each other's quota. GPU: the course's batch.
BUDGETS = {
    "cpu": Budget("short", batch_size=64, train_images=5000, test_images=1000, masked_batches=48,
                  qat_batches=24, sparse_qat_batches=32, epochs=16, batches_per_epoch=4, threads=1),
    # masked_batches: one epoch of the embedded data's 5,000 images gives 20 batches of 256.
    "cuda": Budget("long", batch_size=256, train_images=10000, test_images=10000, masked_batches=20,
                   qat_batches=20, sparse_qat_batches=20, epochs=20, batches_per_epoch=4, threads=4),
}
