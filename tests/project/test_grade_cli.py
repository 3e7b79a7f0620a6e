"""`python -m autograder grade` fails loudly: a missing path, a folder of several submissions and
an internal grading error are one line on stderr and a non-zero exit, never a table of zeros."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from autograder import paths
from autograder.grade import all_internal_errors, internal_error_line, refuse_source
from autograder.intake import submission_folders
from autograder.report import Results, TestResult


def _grade(*argv, cwd=paths.ROOT):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *map(str, argv)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def _result(kind: str, detail: str = "") -> TestResult:
    return TestResult(nodeid=f"t::{kind}", name=kind, number="1.1.1", problem="1.1", score=0.0,
                      max_score=1.0, status="passed" if kind == "passed" else "failed", kind=kind,
                      staff_detail=detail)


def test_a_path_that_does_not_exist_is_one_error_and_exit_2(tmp_path):
    done = _grade(tmp_path / "nowhere", "--out", tmp_path / "results.json")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"grade: no submission at {tmp_path / 'nowhere'} "
                                                "(no such file or folder)"]
    assert done.stdout == ""  # no table of zeros
    assert not (tmp_path / "results.json").exists()


def test_a_folder_of_several_submissions_is_refused_and_names_them(tmp_path):
    for student in ("alice", "bob"):
        (tmp_path / student).mkdir()
        shutil.copy(paths.REFERENCE_DIR / "lab1.py", tmp_path / student / "lab1.py")
    done = _grade(tmp_path)
    assert done.returncode == 2
    assert "alice/, bob/" in done.stderr and "autograder batch" in done.stderr
    assert done.stdout == ""


def test_submission_folders_tells_one_submission_from_a_class(tmp_path):
    one = tmp_path / "one"
    (one / "hw").mkdir(parents=True)
    shutil.copy(paths.REFERENCE_DIR / "lab2.py", one / "hw" / "lab2.py")
    (one / "notes").mkdir()  # a folder without work: still one submission
    assert submission_folders(one) == []
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(paths.REFERENCE_DIR / "lab1.py", root / "lab1.py")
    (root / "old").mkdir()
    shutil.copy(paths.REFERENCE_DIR / "lab1.py", root / "old" / "lab1.py")
    assert submission_folders(root) == []  # files at the root: that is the submission
    notebooks = tmp_path / "notebooks"
    for student in ("ann", "ben"):
        (notebooks / student).mkdir(parents=True)
        (notebooks / student / "Lab2.ipynb").write_text("{}")
    assert [p.name for p in submission_folders(notebooks)] == ["ann", "ben"]
    zips = tmp_path / "zips"
    zips.mkdir()
    for student in ("a", "b"):
        with zipfile.ZipFile(zips / f"{student}.zip", "w") as archive:
            archive.writestr("lab1.py", "")
    assert [p.name for p in submission_folders(zips)] == ["a.zip", "b.zip"]
    assert refuse_source(zips / "a.zip") is None
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(zips / "a.zip", lone / "mine.zip")
    assert submission_folders(lone) == []  # one archive: intake takes it


def test_internal_errors_are_one_line_naming_the_first_cause():
    cause = "Traceback (most recent call last):\n  ...\nGraderError: the zygote did not start\n"
    broken = Results(tests=(_result("internal_error", cause), _result("internal_error", cause)),
                     staff_log=(f"t::a\n{cause}", f"t::b\n{cause}"))
    assert all_internal_errors(broken)
    line = internal_error_line(broken)
    assert line.startswith("grading failed: 2 of 2 tests hit an internal grading error")
    assert "GraderError: the zygote did not start" in line and "\n" not in line
    mixed = Results(tests=(_result("passed"), _result("internal_error", cause)),
                    staff_log=(f"t::b\n{cause}",))
    assert not all_internal_errors(mixed) and internal_error_line(mixed).startswith(
        "grading failed: 1 of 2 tests")
    student_fault = Results(tests=(_result("passed"), _result("submission_error")))
    assert internal_error_line(student_fault) is None and not all_internal_errors(student_fault)


@pytest.mark.slow
def test_a_grade_whose_tests_all_hit_internal_errors_exits_1_without_a_table(tmp_path):
    """A sandbox that cannot start (here: an engine whose sandbox package is broken) makes every
    test an internal grading error: one line on stderr, exit 1, no table of zeros."""
    engine = tmp_path / "engine"
    shutil.copytree(paths.ROOT, engine, ignore=shutil.ignore_patterns(
        ".git", ".venv", "dist", "__pycache__", "*.pyc", ".pytest_cache"))
    zygote = engine / "autograder" / "sandbox" / "zygote.py"
    zygote.write_text("raise RuntimeError('a broken zygote for the test')\n" + zygote.read_text())
    done = _grade("--stage", "unit", cwd=engine)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("grading failed")]
    assert len(lines) == 1 and "internal grading error" in lines[0], done.stderr
    assert "Total:" not in done.stdout and "INTERNALERROR" not in done.stdout + done.stderr


@pytest.mark.slow
def test_staff_lines_and_the_graders_tracebacks_come_with_verbose_only(tmp_path):
    """``grade`` shows the student's message; ``grade -v`` (Gradescope's staff log) adds the
    grader's traceback and the sandbox's defences."""
    for name in paths.SUBMISSION_FILES:
        shutil.copy(paths.REFERENCE_DIR / name, tmp_path / name)
    lab2 = (tmp_path / "lab2.py").read_text()
    prune = lab2.index("def prune_by_percentage")
    assert lab2.index("weight.masked_fill_(~keep, 0.0)", prune) < lab2.index("\ndef ", prune + 1)
    (tmp_path / "lab2.py").write_text(lab2[:prune] + lab2[prune:].replace(  # its mask inverted
        "weight.masked_fill_(~keep, 0.0)", "weight.masked_fill_(keep, 0.0)", 1))
    plain = _grade(tmp_path, "--stage", "unit")
    verbose = _grade(tmp_path, "--stage", "unit", "-v")
    assert plain.returncode == verbose.returncode == 0, plain.stderr[-2000:] + verbose.stderr[-2000:]
    assert re.search(r"^3\.2 .* FAIL .*\*\*prune_by_percentage\*\*", plain.stdout, re.M), plain.stdout
    assert "[staff]" not in plain.stdout + plain.stderr and "checks.py" not in plain.stdout
    assert "[staff] sandbox defences: " in verbose.stdout
    assert "lab2_judges.py" in verbose.stdout and "checks.py" in verbose.stdout
