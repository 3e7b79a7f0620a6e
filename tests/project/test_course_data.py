"""The course's data on Gradescope: ``build --data`` ships it, ``run_autograder`` trains on it,
and data without a calibration is refused at build time, not discovered by every student."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder import course_data, gradescope, paths
from autograder.build import build


def fake_dataset(path: Path) -> Path:
    """A valid dataset file no calibration was measured on."""
    rng = np.random.default_rng(0)
    images = lambda n: rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)  # noqa: E731
    labels = lambda n: np.arange(n, dtype=np.int64) % 10  # noqa: E731
    np.savez(path, x_train=images(40), y_train=labels(40), x_test=images(20), y_test=labels(20))
    return path


def run_build(*args: str, dist: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "build", "--no-count",
                           "--dist", str(dist), *args],
                          cwd=paths.ROOT, capture_output=True, text=True, timeout=600)


def test_build_refuses_data_without_a_calibration_in_one_line(tmp_path):
    done = run_build("--data", str(fake_dataset(tmp_path / "my_cifar.npz")), dist=tmp_path / "dist")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not calibrated" in lines[0] and "calibrate --data" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "dist").exists()  # nothing half-built to upload by mistake


def test_build_refuses_a_missing_checkpoint_or_a_checkpoint_alone(tmp_path):
    missing = run_build("--data", str(fake_dataset(tmp_path / "d.npz")), "--checkpoint",
                        str(tmp_path / "nope.pt"), dist=tmp_path / "dist")
    assert missing.returncode == 2 and "no such checkpoint" in missing.stderr
    alone = run_build("--checkpoint", str(paths.FIXTURES_DIR / "embedded" / "checkpoint.pt"),
                      dist=tmp_path / "dist")
    assert alone.returncode == 2 and "needs --data" in alone.stderr


def test_manifest_names_only_files_of_the_course_folder(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "course.json").write_text(json.dumps(
        {"data": "course/../../etc/passwd", "checkpoint": "/etc/shadow"}))
    assert course_data.shipped(tmp_path) == (None, None)
    (tmp_path / "course" / "course.json").write_text(json.dumps({"data": "course/d.npz"}))
    assert course_data.shipped(tmp_path) == (tmp_path / "course" / "d.npz", None)
    assert course_data.shipped(tmp_path / "elsewhere") == (None, None)


def test_run_autograder_trains_on_the_shipped_data_unless_the_environment_says_otherwise(
        tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("autograder.grade.grade_submission",
                        lambda src, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(gradescope, "_hide_secrets", lambda root: None)
    monkeypatch.setattr(course_data, "shipped",
                        lambda root=paths.ROOT: (Path("/zip/course/d.npz"), Path("/zip/course/c.pt")))
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    args = ["--root", str(root), "--stage", "unit"]
    parser = __import__("argparse").ArgumentParser()
    gradescope.add_arguments(parser)
    monkeypatch.delenv("HW4_DATA", raising=False)
    monkeypatch.delenv("HW4_CHECKPOINT", raising=False)
    assert gradescope.run(parser.parse_args(args)) == 0
    assert calls[-1]["data"] == Path("/zip/course/d.npz")
    assert calls[-1]["checkpoint"] == Path("/zip/course/c.pt")
    monkeypatch.setenv("HW4_DATA", "/elsewhere/other.npz")
    assert gradescope.run(parser.parse_args(args)) == 0
    assert calls[-1]["data"] == "/elsewhere/other.npz"


@pytest.fixture(scope="module")
def shared():
    folder = paths.shared_data_dir()
    if folder is None:
        pytest.skip("HW4_SHARED does not name the course's data folder (cifar10_jpeg_q75.npz)")
    return folder


def test_build_ships_calibrated_course_data_and_the_zip_finds_it(shared, tmp_path):
    data, checkpoint = shared / "cifar10_jpeg_q75.npz", shared / "pretrained_model.pt"
    done = run_build("--data", str(data), "--checkpoint", str(checkpoint), dist=tmp_path / "dist")
    assert done.returncode == 0, done.stderr[-2000:]
    with zipfile.ZipFile(tmp_path / "dist" / "autograder.zip") as archive:
        assert archive.read("course/cifar10_jpeg_q75.npz") == data.read_bytes()
        assert archive.read("course/pretrained_model.pt") == checkpoint.read_bytes()
        archive.extractall(tmp_path / "source")
    with zipfile.ZipFile(tmp_path / "dist" / "handout.zip") as handout:
        assert not any(name.startswith("homework4/course/") for name in handout.namelist())
    found = subprocess.run(
        [sys.executable, "-c", "from autograder import course_data; print(*course_data.shipped())"],
        cwd=tmp_path / "source", capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    source = tmp_path / "source" / "course"
    assert found.stdout.split() == [str(source / data.name), str(source / checkpoint.name)]
