"""``python -m autograder calibrate``: measure the reference's pipelines, write the thresholds.

    python -m autograder calibrate --data ../shared/hw4-data/cifar10_jpeg_q75.npz \\
        --checkpoint ../shared/hw4-data/pretrained_model.pt --device cpu --seeds 3

Runs every training-stage pipeline (``autograder.training``) with the reference as the
submission, through the same sandbox, once per seed (the seed moves the data order and the
augmentation), and writes ``fixtures/calibration/<dataset>-<device type>-<budget>.json``:

- each accuracy threshold is the reference's minimum over the seeds minus ``MARGIN``;
- the broken baseline of each check (the starting model, never trained) is recorded beside it,
  and calibration refuses to write a threshold of ``SEPARATION_REQUIRED`` that does not clear it
  by ``MIN_SEPARATION``. 4.3 is exempt: quantization-aware training starts from the pretrained
  model, already near what a brief budget can reach at 4 and 3 bits, so its accuracy threshold
  only guards against an STE that wrecks training; what tells a broken STE apart there is the
  check of the forward weights' levels and of the gradients;
- 3.1 and 4.2 record the reference's own accuracies (no training, no seed), which the student's
  must equal within ``EQUAL_WITHIN``;
- a fingerprint of the images, checkpoint and budget: a file measured on other data is refused.

The file, its constants and ``Calibration.load(setting)``, which reads it back for the grading
tests (or raises ``NotCalibrated`` with the command to run), live in ``autograder.calibration``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from autograder import paths
from autograder.calibration import (EQUAL_WITHIN, MARGIN, MIN_SEPARATION, SEPARATION_REQUIRED,
                                    calibration_path, thresholds)
from autograder.training.budget import ITERATIVE_QAT_BITS, PTQ_BITS, QAT_BITS, SPARSE_QAT_BITS
from autograder.training.pipelines import Pipelines
from autograder.training.setting import Setting

# -- measuring the reference ------------------------------------------------------------------

def reference_accuracies(pipelines: Pipelines) -> tuple[dict, dict]:
    """One seed of every trained pipeline with the reference: ({check: accuracy}, {check: s})."""
    runs = {
        "3.3": pipelines.masked_finetune,
        "3.4": lambda: pipelines.iterative_prune("layer"),
        "3.5": lambda: pipelines.iterative_prune("global"),
        **{f"4.3/{bits}": (lambda bits=bits: pipelines.quantized_finetune(bits)) for bits in QAT_BITS},
        "4.4": lambda: pipelines.quantized_finetune(SPARSE_QAT_BITS, sparse=True),
        "4.5": lambda: pipelines.iterative_prune("global", Nbits=ITERATIVE_QAT_BITS),
    }
    accuracies, seconds = {}, {}
    for check, run in runs.items():
        started = time.monotonic()
        accuracies[check] = run().accuracy
        seconds[check] = round(time.monotonic() - started, 1)
        print(f"  {check}: {accuracies[check]:.4f} ({seconds[check]} s)", file=sys.stderr)
    return accuracies, seconds


def calibrate(setting: Setting, seeds: int, margin: float = MARGIN) -> dict:
    """Run the reference over ``seeds`` seeds in ``setting``; the calibration record."""
    from autograder.sandbox import Sandbox
    per_seed, seconds = [], []
    with Sandbox(paths.REFERENCE_DIR, device=setting.device) as sandbox:
        base = Pipelines(sandbox, setting)
        pretrained = base.pretrained().accuracy
        ptq = base.post_training_quantization()
        broken = base.untrained_accuracies()
        for seed in range(seeds):
            print(f"seed {seed}", file=sys.stderr)
            accuracies, times = reference_accuracies(Pipelines(sandbox, dataclasses.replace(setting, seed=seed)))
            per_seed.append(accuracies)
            seconds.append(times)
    import torch
    return {"key": setting.key, "fingerprint": setting.fingerprint, "seeds": list(range(seeds)),
            "margin": margin, "min_separation": MIN_SEPARATION, "equal_within": EQUAL_WITHIN,
            "torch": torch.__version__, "pretrained": pretrained,
            "ptq": {str(bits): ptq[bits] for bits in PTQ_BITS},
            "checks": thresholds(per_seed, broken, margin), "seconds": seconds}


# -- the CLI ------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None,
                        help="dataset: .npz or CIFAR-10 folder (default: HW4_DATA, else the embedded one)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint (default: HW4_CHECKPOINT, else the embedded one)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the reference (default: 3)")
    parser.add_argument("--margin", type=float, default=MARGIN,
                        help=f"accuracy below the reference's worst seed (default: {MARGIN})")
    parser.add_argument("--force", action="store_true",
                        help="write thresholds even where they do not clear the broken baseline")


def run(args: argparse.Namespace) -> int:
    paths.ensure_provided_importable()
    setting = Setting.resolve(args.data, args.checkpoint, args.device)
    print(f"calibrating {setting.key} over {args.seeds} seeds", file=sys.stderr)
    record = calibrate(setting, args.seeds, args.margin)
    for check, entry in record["checks"].items():
        flag = "" if entry["separated"] else "   <- NOT clearly above the broken baseline"
        print(f"{check:6} reference {min(entry['reference']):.4f}..{max(entry['reference']):.4f}  "
              f"threshold {entry['threshold']:.4f}  broken {entry['broken']:.4f}{flag}")
    unseparated = [check for check in SEPARATION_REQUIRED if not record["checks"][check]["separated"]]
    if unseparated and not args.force:
        print(f"not written: {', '.join(unseparated)} would not tell a broken solution from a "
              f"correct one; raise the budget (autograder/training/budget.py) or pass --force", file=sys.stderr)
        return 1
    path = calibration_path(setting)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    shown = path.relative_to(paths.ROOT) if path.is_relative_to(paths.ROOT) else path
    print(f"wrote {shown}")
    return 0
