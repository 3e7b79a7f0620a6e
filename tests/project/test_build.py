"""The two zips: what Gradescope gets, and what students get (never the answers)."""
from __future__ import annotations

import re
import zipfile

import pytest

from autograder import paths
from autograder.build import HANDOUT_FOLDER, build


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    autograder_zip, handout_zip = build(paths.ROOT, dist, count=False)
    with zipfile.ZipFile(autograder_zip) as a, zipfile.ZipFile(handout_zip) as h:
        # the handout's entries by their name inside its one top-level folder
        handout = {i.filename.removeprefix(HANDOUT_FOLDER + "/"): i for i in h.infolist()}
        yield ({i.filename: i for i in a.infolist()}, handout,
               autograder_zip, handout_zip, h.read(f"{HANDOUT_FOLDER}/pytest.ini").decode())


def test_autograder_zip_has_the_entry_points_at_its_root(zips):
    entries = zips[0]
    for name in ("setup.sh", "run_autograder"):
        assert name in entries
        assert (entries[name].external_attr >> 16) & 0o111, f"{name} is not executable"
    assert "rubric.toml" in entries and "autograder/plugin.py" in entries
    assert any(n.startswith("reference/") for n in entries)
    assert any(n.startswith("student/hw4/") for n in entries)


def test_autograder_zip_leaves_out_project_tests_and_caches(zips):
    for name in zips[0]:
        assert not name.startswith(("tests/project", ".git", "dist/"))
        assert "__pycache__" not in name and not name.endswith(".pyc")


def test_handout_has_no_reference_hidden_tests_or_hidden_fixtures(zips):
    names = zips[1]
    for name in names:
        assert not name.startswith("reference/")
        assert not name.startswith("tests/grading/hidden") and "hidden" not in name.split("/")
        assert not name.startswith("fixtures/expected/hidden")
        assert "__pycache__" not in name
    for name in paths.SUBMISSION_FILES:
        assert name in names
        stub = (paths.STUDENT_DIR / name).read_bytes()
        assert zipfile.ZipFile(zips[3]).read(f"{HANDOUT_FOLDER}/{name}") == stub  # stubs, not solutions
    assert "hw4/resnet.py" in names and "tests/grading/conftest.py" in names
    assert "README.md" in names


def test_handout_pytest_ini_runs_the_visible_unit_tests(zips):
    ini = zips[4]
    assert "testpaths = tests/grading\n" in ini  # the plugin leaves train/ out of a unit run
    assert "--visibility=visible" in ini and "--stage=unit" in ini


def test_handout_can_run_the_training_stage_with_gradescopes_calibrations(zips):
    names = set(zips[1])
    assert "tests/grading/train/test_training.py" in names
    calibrations = {p.name for p in (paths.FIXTURES_DIR / "calibration").glob("*.json")}
    assert calibrations and {f"fixtures/calibration/{name}" for name in calibrations} <= names
    with zipfile.ZipFile(zips[3]) as archive, zipfile.ZipFile(zips[2]) as grader:
        for name in calibrations:  # the very bytes Gradescope grades with
            assert (archive.read(f"{HANDOUT_FOLDER}/fixtures/calibration/{name}")
                    == grader.read(f"fixtures/calibration/{name}"))


def test_counts_are_recorded_per_stage_for_each_zip(tmp_path, monkeypatch):
    """The Gradescope zip records its whole runs, the handout its visible ones, for every stage."""
    import json

    from autograder import build as build_module

    monkeypatch.setattr(build_module, "count_tests",
                        lambda stage, visibility: len(stage) * 10 + len(visibility))
    autograder_zip, handout_zip = build(paths.ROOT, tmp_path)
    with zipfile.ZipFile(autograder_zip) as a, zipfile.ZipFile(handout_zip) as h:
        grader = json.loads(a.read("expected_counts.json"))
        handout = json.loads(h.read(f"{HANDOUT_FOLDER}/expected_counts.json"))
    assert grader == {"unit/all": 43, "train/all": 53, "all/all": 33}
    assert handout == {"unit/visible": 47, "train/visible": 57, "all/visible": 37}


def test_zips_are_deterministic(zips, tmp_path):
    again = build(paths.ROOT, tmp_path, count=False)
    assert again[0].read_bytes() == zips[2].read_bytes()
    assert again[1].read_bytes() == zips[3].read_bytes()
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in zips[1].values())


def test_handout_provided_code_finds_the_embedded_checkpoint(zips, tmp_path):
    """In the handout, hw4/ is at the root: the checkpoint must ride beside it."""
    import subprocess
    import sys

    with zipfile.ZipFile(zips[3]) as archive:
        archive.extractall(tmp_path)
    tmp_path = tmp_path / HANDOUT_FOLDER
    assert (tmp_path / "hw4" / "embedded" / "checkpoint.pt").is_file()
    found = subprocess.run(
        [sys.executable, "-c", "from hw4.resnet import embedded_checkpoint; print(embedded_checkpoint())"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip() == str(tmp_path / "hw4" / "embedded" / "checkpoint.pt")


def test_handout_unzips_into_one_folder(zips):
    with zipfile.ZipFile(zips[3]) as archive:
        tops = {name.split("/", 1)[0] for name in archive.namelist()}
    assert tops == {HANDOUT_FOLDER}


def test_handout_requirements_are_the_students_not_the_projects(zips):
    with zipfile.ZipFile(zips[3]) as archive:
        lines = archive.read(f"{HANDOUT_FOLDER}/requirements.txt").decode().splitlines()
    requirements = [line.split(";")[0].strip() for line in lines if line.strip() and not line.startswith("#")]
    names = {re.split(r"[<>=!~ ]", line, maxsplit=1)[0] for line in requirements}
    assert names == {"torch", "numpy", "matplotlib", "tqdm", "pytest", "gradescope-utils", "psutil", "tomli"}
    torch = next(line for line in requirements if line.startswith("torch"))
    assert "==" not in torch and "<" in torch and ">=" in torch  # a range, not the exact CUDA pin
    assert any("download.pytorch.org/whl/cpu" in line for line in lines if line.startswith("#"))


def test_handout_readme_names_only_files_the_handout_has(zips):
    """Every file or folder the README names in backticks is in the handout, except what the
    student makes or fetches (plots, the course's checkpoint and data, a virtual environment)."""
    made_or_fetched = {"lab1_plots/", "pretrained_model.pt", "data/", "cifar-10-python.tar.gz", ".venv"}
    with zipfile.ZipFile(zips[3]) as archive:
        readme = archive.read(f"{HANDOUT_FOLDER}/README.md").decode()
    named = {token for token in re.findall(r"`([^`\s]+)`", readme)
             if re.fullmatch(r"[\w./-]+(\.(py|txt|md|ini|pt)|/)", token)}
    assert {"lab1.py", "hw4/lab1_runner.py", "requirements.txt", "hw4/embedded/"} <= named
    entries = set(zips[1])
    folders = {name.rsplit("/", 1)[0] + "/" for name in entries if "/" in name}
    missing = [token for token in named - made_or_fetched
               if token not in entries and token not in folders]
    assert missing == []
    for subject in ("Python 3.10", "lab1_runner", "pretrained_model.pt", "CIFAR-10", "does not cover"):
        assert subject in readme
