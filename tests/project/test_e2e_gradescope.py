"""End to end, as Gradescope runs it: build the zips, unpack autograder.zip into a simulated
/autograder tree, run ``run_autograder`` on several submissions, and check each results.json.

Also runs ``pytest`` inside the unpacked student handout, on the stubs and on the reference,
the way a student checks their work before submitting.
"""
from __future__ import annotations

import json
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
from autograder.report import validate_json
from results_helpers import scores_by_problem

pytestmark = pytest.mark.slow

GRADE_TIMEOUT = 300  # seconds for one unit-stage run_autograder, far above its ~15 s


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    return build(paths.ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def source(zips, tmp_path_factory) -> Path:
    """The unpacked autograder.zip, as /autograder/source."""
    source = tmp_path_factory.mktemp("autograder") / "source"
    with zipfile.ZipFile(zips[0]) as archive:
        archive.extractall(source)
    (source / "run_autograder").chmod(0o755)
    return source


def run_autograder(source: Path, submission: Path, tmp_path: Path) -> dict:
    """Copy ``submission`` (a folder, or a file such as a .zip) into a fresh /autograder-like
    root beside ``source``, run run_autograder on the unit stage, return results.json."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "results").mkdir()
    if submission.is_dir():
        for path in submission.iterdir():
            if path.is_file():
                shutil.copy(path, root / "submission" / path.name)
    else:
        shutil.copy(submission, root / "submission" / submission.name)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "HW4_PYTHON": sys.executable,
           "HW4_STAGE": "unit"}
    completed = subprocess.run([str(source / "run_autograder")], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=GRADE_TIMEOUT)
    results_path = root / "results" / "results.json"
    assert results_path.is_file(), completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(results_path.read_text())
    validate_json(results)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return results


def kinds(results: dict) -> set[str]:
    return {test["extra_data"]["kind"] for test in results["tests"]}


def test_reference_gets_every_point(source, tmp_path):
    results = run_autograder(source, paths.REFERENCE_DIR, tmp_path)
    failed = [(t["number"], t["name"], t.get("output", "")[:300])
              for t in results["tests"] if t["score"] != t["max_score"]]
    assert failed == []
    assert kinds(results) == {"passed"}
    assert results["score"] == pytest.approx(sum(t["max_score"] for t in results["tests"]))
    assert results["score"] > 0
    pictured = [t for t in results["tests"] if '<img alt="problem' in t["output"]]
    assert {t["extra_data"]["problem"] for t in pictured} >= {"2.2", "3.5", "4.1"}
    assert all(t["output_format"] == "html" and t["visibility"] == "visible" for t in pictured)
    assert not any("<img" in t["output"] for t in results["tests"] if t["visibility"] != "visible")


def test_stubs_get_zero_without_harness_errors(source, tmp_path):
    results = run_autograder(source, paths.STUDENT_DIR, tmp_path)
    assert results["score"] == 0
    assert "internal_error" not in kinds(results)
    assert "not_graded" not in kinds(results)
    outputs = " ".join(t.get("output", "") for t in results["tests"])
    assert "not implemented yet" in outputs.lower()


def test_syntax_error_zeroes_only_its_file(source, tmp_path):
    submission = tmp_path / "syntax"
    shutil.copytree(paths.REFERENCE_DIR, submission, ignore=shutil.ignore_patterns("__*"))
    (submission / "lab3.py").write_text("import torch\ndef broken(:\n    pass\n")
    results = run_autograder(source, submission, tmp_path)
    scores = scores_by_problem(results)
    assert scores["4.1"] == 0 and scores["4.4"] == 0
    for problem in ("2.1", "2.3", "3.2", "1.1"):
        assert scores[problem] > 0, problem
    lab3_outputs = [t["output"] for t in results["tests"]
                    if t["extra_data"]["problem"] == "4.1" and t["visibility"] == "visible"]
    assert any("lab3.py" in out and "line 2" in out for out in lab3_outputs), lab3_outputs[:2]
    assert "internal_error" not in kinds(results)


def test_zipped_folder_is_graded_like_the_folder(source, tmp_path):
    archive = tmp_path / "my-homework.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in paths.SUBMISSION_FILES:
            zf.write(paths.REFERENCE_DIR / name, f"hw4-final/{name}")
        zf.writestr("__MACOSX/hw4-final/._lab1.py", b"\x00\x05junk")
    results = run_autograder(source, archive, tmp_path)
    assert kinds(results) == {"passed"}


def test_missing_file_zeroes_only_its_problems(source, tmp_path):
    submission = tmp_path / "partial"
    submission.mkdir()
    for name in ("lab1.py", "lab2.py", "lab3.py"):
        shutil.copy(paths.REFERENCE_DIR / name, submission / name)
    results = run_autograder(source, submission, tmp_path)
    scores = scores_by_problem(results)
    assert all(scores[f"1.{i}"] == 0 for i in range(1, 11))
    assert scores["2.1"] > 0 and scores["3.2"] > 0 and scores["4.1"] > 0
    outputs = [t["output"] for t in results["tests"] if t["extra_data"]["problem"] == "1.1"]
    assert any("answers.py" in out for out in outputs)


@pytest.fixture(scope="module")
def handout(zips, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("handout")
    with zipfile.ZipFile(zips[1]) as archive:
        archive.extractall(folder)
    return folder / HANDOUT_FOLDER


def run_handout_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``pytest ARGS`` started in ``folder`` (the handout, its parent, a folder inside it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=GRADE_TIMEOUT)


def passed_count(completed: subprocess.CompletedProcess) -> int:
    found = re.search(r"(\d+) passed", completed.stdout)
    return int(found.group(1)) if found else 0


def test_handout_has_nothing_secret(zips):
    with zipfile.ZipFile(zips[1]) as archive:
        names = [name.removeprefix(HANDOUT_FOLDER + "/") for name in archive.namelist()]
    assert not [n for n in names if n.startswith(("reference/", "course/")) or "/hidden/" in n]


def test_handout_pytest_on_stubs_reports_failures_not_harness_errors(handout):
    completed = run_handout_pytest(handout)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 1, output[-3000:]  # tests failed, pytest itself did not
    assert " failed" in output and " error" not in output.split("short test summary")[-1]
    assert "INTERNALERROR" not in output and "Internal grading error" not in output
    assert "not implemented yet" in output.lower()


def test_handout_pytest_on_reference_passes(handout, tmp_path):
    folder = tmp_path / "handout"
    shutil.copytree(handout, folder)
    for name in paths.SUBMISSION_FILES:
        shutil.copy(paths.REFERENCE_DIR / name, folder / name)
    completed = run_handout_pytest(folder)
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-3000:]
    assert " passed" in completed.stdout and " failed" not in completed.stdout
    pictures = folder / "hw4-pictures"
    assert f"PNG files): {pictures}" in completed.stdout  # the run names where they are
    assert {p.name for p in pictures.glob("*.png")} >= {"2.2.png", "3.5.png", "4.1.png"}


@pytest.mark.parametrize("start", ["parent", "hw4"])
def test_handout_pytest_starts_from_its_parent_and_from_inside(handout, tmp_path, start):
    """``pytest homework4`` from the parent folder, or ``pytest`` inside ``hw4/`` (as an IDE
    starts it), runs the same visible tests as ``pytest`` in the handout's folder."""
    folder = tmp_path / HANDOUT_FOLDER
    shutil.copytree(handout, folder)
    for name in paths.SUBMISSION_FILES:
        shutil.copy(paths.REFERENCE_DIR / name, folder / name)
    here = run_handout_pytest(folder)
    if start == "parent":
        completed = run_handout_pytest(tmp_path, HANDOUT_FOLDER)
    else:
        completed = run_handout_pytest(folder / "hw4")
    output = completed.stdout + completed.stderr
    assert "unrecognized arguments" not in output
    assert completed.returncode == 0, output[-3000:]
    assert passed_count(completed) == passed_count(here) > 0 and " failed" not in completed.stdout
