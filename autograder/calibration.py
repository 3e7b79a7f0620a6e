"""The training stage's calibrations: ``fixtures/calibration/<dataset>-<device>-<budget>.json``.

Written by ``python -m autograder calibrate`` (``autograder.calibrate``, which measures the
reference); read back by the training-stage tests with ``Calibration.load(setting)``, which
raises ``NotCalibrated``, naming the command that makes one, when no current file matches.
Each accuracy threshold is the reference's worst seed minus ``MARGIN``, and must clear the
broken baseline by ``MIN_SEPARATION`` for the checks of ``SEPARATION_REQUIRED``; 3.1 and 4.2
compare with the reference's own accuracy within ``EQUAL_WITHIN``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from autograder import paths
from autograder.training.budget import QAT_BITS
from autograder.training.setting import Setting

CALIBRATION_DIR = paths.FIXTURES_DIR / "calibration"
MARGIN = 0.03          # accuracy a correct solution may lose against the reference's worst seed
MIN_SEPARATION = 0.05  # a threshold must be this far above the broken baseline
EQUAL_WITHIN = 0.005   # 3.1 and 4.2: the student's accuracy equals the reference's within this
TRAINED_CHECKS = ("3.3", "3.4", "3.5", *(f"4.3/{bits}" for bits in QAT_BITS), "4.4", "4.5")
SEPARATION_REQUIRED = ("3.3", "3.4", "3.5", "4.4", "4.5")


class NotCalibrated(Exception):
    """No calibration matches this setting; the message says which command makes one."""


def calibration_path(setting: Setting) -> Path:
    return CALIBRATION_DIR / f"{setting.key}.json"


def calibrate_command(setting: Setting) -> str:
    parts = ["python -m autograder calibrate"]
    if not setting.dataset.name.startswith("embedded"):
        parts.append("--data <your data>")
    if setting.checkpoint is not None:
        parts.append(f"--checkpoint {setting.checkpoint}")
    parts.append(f"--device {setting.device_type}")
    return " ".join(parts)


@dataclass(frozen=True)
class Calibration:
    """Thresholds for one setting. ``thresholds``: {check: minimum accuracy}; ``pretrained`` and
    ``ptq`` ({bits: accuracy}): the reference's accuracies without training."""
    key: str
    thresholds: dict
    pretrained: float
    ptq: dict
    record: dict  # the whole file, for reports

    @classmethod
    def load(cls, setting: Setting) -> "Calibration":
        path = calibration_path(setting)
        where = f"{setting.dataset.name}/{setting.device_type}/{setting.budget.name}"
        if not path.is_file():
            raise NotCalibrated(f"not calibrated for {where}: run `{calibrate_command(setting)}`")
        record = json.loads(path.read_text())
        if record.get("fingerprint") != setting.fingerprint:
            raise NotCalibrated(f"the calibration for {where} ({path.name}) was measured on other "
                                f"images, checkpoint or budget: run `{calibrate_command(setting)}`")
        return cls(setting.key, {check: entry["threshold"] for check, entry in record["checks"].items()},
                   record["pretrained"], {int(bits): acc for bits, acc in record["ptq"].items()}, record)


def thresholds(per_seed: list[dict], broken: dict, margin: float = MARGIN) -> dict:
    """{check: {"reference": [...], "broken": x, "threshold": t, "separated": bool}}."""
    checks = {}
    for check in TRAINED_CHECKS:
        measured = [seed[check] for seed in per_seed]
        threshold = round(min(measured) - margin, 4)
        checks[check] = {"reference": measured, "broken": broken[check], "threshold": threshold,
                         "separated": threshold >= broken[check] + MIN_SEPARATION}
    return checks
