"""Batch keys: a stored grade is reused exactly when the submission and the grader are unchanged."""
from __future__ import annotations

import shutil

import pytest

from autograder import paths
from autograder.batch.keys import GradeOptions, grader_key, submission_key


def _submission(folder, lab1="x = 1\n"):
    folder.mkdir(parents=True)
    (folder / "lab1.py").write_text(lab1)
    (folder / "answers.py").write_text("TRUE_FALSE = {}\n")
    return folder


def test_identical_submissions_share_a_key_wherever_they_are(tmp_path):
    a = _submission(tmp_path / "a")
    b = _submission(tmp_path / "elsewhere" / "b")
    (b / "__pycache__").mkdir()  # bytecode is no part of a submission's content
    assert submission_key(a) == submission_key(b)


@pytest.mark.parametrize("change", ["edit", "rename", "add", "link"])
def test_any_change_to_the_submission_changes_its_key(tmp_path, change):
    a = _submission(tmp_path / "a")
    before = submission_key(a)
    if change == "edit":
        (a / "lab1.py").write_text("x = 2\n")
    elif change == "rename":
        (a / "lab1.py").rename(a / "lab2.py")
    elif change == "add":
        (a / "notes.md").write_text("")
    else:
        (a / "lab3.py").symlink_to("/etc/passwd")
    assert submission_key(a) != before


def test_a_missing_submission_has_the_empty_key():
    assert submission_key(None) == ""


@pytest.fixture
def engine_copy(tmp_path):
    """The parts of the project a grade depends on, copied, so a test may edit them."""
    root = tmp_path / "engine"
    for name in ("autograder", "fixtures", "reference"):
        shutil.copytree(paths.ROOT / name, root / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(paths.GRADING_TESTS_DIR, root / "tests" / "grading",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(paths.RUBRIC_PATH, root / "rubric.toml")
    return root


@pytest.mark.parametrize("edit", ["rubric.toml", "tests/grading/hidden", "fixtures/expected",
                                  "autograder/report.py"])
def test_a_change_to_the_grader_changes_the_grader_key(engine_copy, edit):
    options = GradeOptions()
    before = grader_key(options, engine_copy)
    target = engine_copy / edit
    if target.is_dir():
        victim = sorted(p for p in target.rglob("*") if p.is_file())[0]
        victim.write_bytes(victim.read_bytes() + b"\n")
    else:
        target.write_text(target.read_text() + "\n# changed\n")
    assert grader_key(options, engine_copy) != before


def test_the_batch_package_and_options_that_change_nothing_leave_the_key(engine_copy):
    options = GradeOptions()
    before = grader_key(options, engine_copy)
    (engine_copy / "autograder" / "batch" / "report.py").write_text("# a new report layout\n")
    assert grader_key(options, engine_copy) == before
    assert grader_key(GradeOptions(stage="all"), engine_copy) != before
    assert grader_key(GradeOptions(device="cuda"), engine_copy) != before
