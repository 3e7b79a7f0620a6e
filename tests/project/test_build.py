"""The two zips: what Gradescope gets, and what students get (never the answers)."""
from __future__ import annotations

import zipfile

import pytest

from autograder import paths
from autograder.build import build


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    autograder_zip, handout_zip = build(paths.ROOT, dist, count=False)
    with zipfile.ZipFile(autograder_zip) as a, zipfile.ZipFile(handout_zip) as h:
        yield ({i.filename: i for i in a.infolist()}, {i.filename: i for i in h.infolist()},
               autograder_zip, handout_zip, h.read("pytest.ini").decode())


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
        assert not name.startswith(("tests/grading/hidden", "tests/grading/train"))
        assert not name.startswith(("fixtures/expected/hidden", "fixtures/calibration"))
        assert "__pycache__" not in name
    for name in paths.SUBMISSION_FILES:
        assert name in names
        stub = (paths.STUDENT_DIR / name).read_bytes()
        assert zipfile.ZipFile(zips[3]).read(name) == stub  # the stubs, not the solutions
    assert "hw4/resnet.py" in names and "tests/grading/conftest.py" in names
    assert "README.md" in names


def test_handout_pytest_ini_runs_the_visible_unit_tests(zips):
    ini = zips[4]
    assert "testpaths = tests/grading/visible" in ini
    assert "--visibility=visible" in ini and "--stage=unit" in ini


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
    assert (tmp_path / "hw4" / "embedded" / "checkpoint.pt").is_file()
    found = subprocess.run(
        [sys.executable, "-c", "from hw4.resnet import embedded_checkpoint; print(embedded_checkpoint())"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip() == str(tmp_path / "hw4" / "embedded" / "checkpoint.pt")
