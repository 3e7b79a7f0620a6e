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

pytestmark = pytest.mark.slow  # each test runs the handout's pytest or the stage's pipelines

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


STAND_IN_PROBE = """
import json
from autograder import paths, stand_ins
from autograder.calibration import Calibration
from autograder.errors import StudentException
from autograder.training import measure
from autograder.training.setting import Setting
paths.ensure_provided_importable()
setting = Setting.resolve(None, None, device="cpu")
report = {"in_handout": stand_ins.in_handout(), "ptq4": Calibration.load(setting).ptq[4]}
states = measure.starting_states({"checkpoint": None})
for kind, key in (("layerwise", "pruned"), ("global", "global_pruned")):
    report[kind] = {k: float((v == 0).mean()) for k, v in states[key].items()
                    if k.endswith(".conv.weight") and "id_mapping" not in k}
x_test, y_test = setting.test_split()
try:
    report["accuracy4"] = measure.accuracies({
        "networks": [{"state": states["pretrained"], "Nbits": 4, "keep_zeros": False}],
        "x_test": x_test, "y_test": y_test, "device": "cpu"})["accuracies"][0]
except StudentException as error:
    report["error"] = str(error)
print(json.dumps(report))
"""


def stand_in_report(folder: Path) -> dict:
    import json

    done = subprocess.run([sys.executable, "-c", STAND_IN_PROBE], cwd=folder, capture_output=True,
                          text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if not k.startswith("HW4_")})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_handout_stands_in_for_the_reference_it_does_not_ship(handout):
    """The starting models are the reference's 80%-pruned ones, and quantized accuracy measured
    with the student's STE (here the reference's own code, as a student's correct one) is the
    reference's post-training-quantization accuracy the calibration recorded."""
    report = stand_in_report(handout)
    assert report["in_handout"] is True
    for kind in ("layerwise", "global"):
        assert report[kind], kind
    assert len(report["layerwise"]) == 19  # the prunable convolutions, each at 80%
    assert all(abs(fraction - 0.8) < 0.01 for fraction in report["layerwise"].values())
    assert report["accuracy4"] == pytest.approx(report["ptq4"], abs=1e-9)


def test_a_broken_student_quantizer_is_the_students_error_in_the_handout(handout, tmp_path):
    folder = tmp_path / HANDOUT_FOLDER
    shutil.copytree(handout, folder)
    shutil.copy(paths.STUDENT_DIR / "lab3.py", folder / "lab3.py")  # the stub: not implemented
    report = stand_in_report(folder)
    assert "accuracy4" not in report
    assert "your `STE` raised NotImplementedError" in report["error"]
    assert "Gradescope measures with the staff's quantizer" in report["error"]


def test_the_gradescope_zip_has_no_stand_ins(tmp_path):
    autograder_zip, _ = build(paths.ROOT, tmp_path, count=False)
    with zipfile.ZipFile(autograder_zip) as archive:
        assert not [name for name in archive.namelist() if name.startswith("fixtures/handout/")]
