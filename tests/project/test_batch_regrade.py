"""Regrade after a rubric fix: ``batch --against`` names exactly the submissions and tests whose
score changed, and reuses every grade the fix did not touch.

The fix is made to a copy of the engine (its own rubric.toml), run from that copy, so the
project's own files are never edited by a test.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from autograder import paths, validate
from batch_helpers import run_batch_cli

pytestmark = pytest.mark.slow(seconds=35)

CLASS = ("reference", "stubs", "tf-one-wrong", "prune-largest")
PROBLEM = "1.9"  # the fix: its points go from 2 to 5


def _engine_copy(root: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("autograder", "fixtures", "reference", "student"):
        shutil.copytree(paths.ROOT / name, root / name, ignore=skip)
    shutil.copytree(paths.GRADING_TESTS_DIR, root / "tests" / "grading", ignore=skip)
    shutil.copy(paths.RUBRIC_PATH, root / "rubric.toml")
    return root


def _problem_tests(results_dir: Path, sub_id: str) -> dict[str, float]:
    import json

    data = json.loads((results_dir / f"{sub_id}.json").read_text())
    return {t["name"]: t["score"] for t in data["tests"]  # names start with their number
            if t["extra_data"]["problem"] == PROBLEM}


def test_a_rubric_fix_changes_exactly_the_submissions_that_scored_on_it(tmp_path):
    engine = _engine_copy(tmp_path / "engine")
    cases = {case.name: case for case in validate.plan_cases()}
    klass = tmp_path / "class"
    for name in CLASS:
        validate.build_submission(cases[name], klass / name)
    first, second, third = (tmp_path / n for n in ("first", "second", "third"))
    run_batch_cli([str(klass), "--out", str(first), "--jobs", "2"], cwd=engine)

    rubric = engine / "rubric.toml"
    text = rubric.read_text()
    line = re.compile(rf'^("{re.escape(PROBLEM)}"\s*=.*?points = )2,', re.M)
    assert line.search(text), "the rubric's line for the problem moved"
    rubric.write_text(line.sub(r"\g<1>5,", text))
    done = run_batch_cli([str(klass), "--out", str(second), "--against", str(first),
                          "--jobs", "2"], cwd=engine)
    assert "4 graded now, 0 unchanged" in done.stdout, done.stdout  # the grader changed

    # Expected from the first grades alone: who scored on the problem, on which tests.
    scored = {sub: [t for t, s in _problem_tests(first / "results", sub).items() if s > 0]
              for sub in CLASS}
    expected = {sub: tests for sub, tests in scored.items() if tests}
    assert set(expected) == {"reference", "prune-largest"}  # the class is what it should be

    report = (second / "report.md").read_text()
    section = report.split("## Regrade against", 1)[1]
    named = set(re.findall(r"^- `([^`]+)`", section, re.M))
    assert named == set(expected), section
    changed_tests = set(re.findall(r"^  - (.+): \S+ -> \S+$", section, re.M))
    assert changed_tests == {t for tests in expected.values() for t in tests}, section
    assert "2 changed, 2 unchanged" in section

    # Nothing changed since: the third batch reuses every grade of the second, and says so.
    done = run_batch_cli([str(klass), "--out", str(third), "--against", str(second)],
                         cwd=engine)
    assert "0 graded now, 4 unchanged" in done.stdout, done.stdout
    assert "0 changed, 4 unchanged" in (third / "report.md").read_text()
    assert (third / "scores.csv").read_text() == (second / "scores.csv").read_text()
