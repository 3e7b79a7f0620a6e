"""The training stage run from the handout, as a student runs it: ``pytest --stage=train`` on
the embedded data, with the calibrations Gradescope grades with, on the CPU by default."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import paths
from autograder.build import HANDOUT_FOLDER, build


@pytest.fixture(scope="module")
def handout(tmp_path_factory) -> Path:
    """The unpacked handout holding the reference's four files."""
    dist = tmp_path_factory.mktemp("dist")
    _, handout_zip = build(paths.ROOT, dist, count=False)
    with zipfile.ZipFile(handout_zip) as archive:
        archive.extractall(dist)
    folder = dist / HANDOUT_FOLDER
    for name in paths.SUBMISSION_FILES:
        shutil.copy(paths.REFERENCE_DIR / name, folder / name)
    return folder


def handout_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "HW4_"))}
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=900)


def test_plain_pytest_runs_the_unit_stage_only(handout):
    done = handout_pytest(handout)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "deselected" not in done.stdout  # the training folder is not even collected
    assert "test_training.py" not in done.stdout


def test_training_stage_runs_locally_against_the_calibrated_threshold(handout):
    """3.1 evaluates the pretrained model and compares it with the calibration's accuracy: it
    passes only where the handout found the embedded data, its checkpoint and the very
    calibration file Gradescope uses (a missing one fails with "not calibrated")."""
    done = handout_pytest(handout, "--stage=train", "-k", "pretrained_model_evaluates", "-v")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert re.search(r"test_pretrained_model_evaluates PASSED", output), output[-3000:]
    assert "not calibrated" not in output


def test_grading_runs_on_the_cpu_by_default(handout):
    """A laptop's GPU is not used unless asked: the plugin's default device is the CPU."""
    done = handout_pytest(handout, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    help_text = " ".join(done.stdout.split())
    assert re.search(r"--device=\{auto,cpu,cuda\} device for the student's code: cpu \(default",
                     help_text), help_text[-3000:]
