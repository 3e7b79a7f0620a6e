"""``python -m autograder batch`` end to end on a Gradescope-export-shaped class of a dozen.

The class (``batch_helpers.make_export``): the reference (a folder, and zipped one folder
down), the stubs, catalogue mistakes and a correct convention, a corrupt zip, an empty folder,
and a metadata entry with no folder. Every results.json and every row of scores.csv must be
what one-at-a-time ``grade`` gives; a killed batch, rerun, must end where an uninterrupted one
does without regrading what it had finished.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from autograder import paths
from autograder.report import validate_json
from autograder.sandbox import template
from batch_helpers import comparable, grade_one_at_a_time, make_export, run_batch_cli
from results_helpers import scores_by_problem

pytestmark = pytest.mark.slow(seconds=190)


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    root = tmp_path_factory.mktemp("export") / "assignment_42_export"
    return root, make_export(root)


@pytest.fixture(scope="module")
def graded_alone(klass, tmp_path_factory):
    return grade_one_at_a_time(klass[1], tmp_path_factory.mktemp("alone"))


@pytest.fixture(scope="module")
def export_zip(klass, tmp_path_factory) -> Path:
    """The class as Gradescope's "Export Submissions" zip (one top folder)."""
    root, _ = klass
    archive = tmp_path_factory.mktemp("zip") / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*")):  # folders too: one submission is empty
            zf.write(path, path.relative_to(root.parent).as_posix())
    return archive


@pytest.fixture(scope="module")
def batch(export_zip, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("batch") / "out"
    return out, run_batch_cli([str(export_zip), "--out", str(out), "--jobs", "2"])


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "scores.csv", newline="") as handle:
        return {row["submission_id"]: row for row in csv.DictReader(handle)}


def test_every_results_json_is_what_grade_gives(batch, graded_alone):
    out, done = batch
    assert done.returncode == 0, done.stdout + done.stderr
    for sub_id, alone in graded_alone.items():
        data = json.loads((out / "results" / f"{sub_id}.json").read_text())
        validate_json(data)
        assert comparable(data) == comparable(alone), sub_id
        assert (out / "logs" / f"{sub_id}.log").read_text().strip(), sub_id


def test_every_row_of_scores_csv_is_what_grade_gives(batch, klass, graded_alone):
    out, _ = batch
    rows = _rows(out)
    assert list(rows) == list(klass[1])  # one row per submission, in the metadata's order
    for sub_id, info in klass[1].items():
        row = rows[sub_id]
        assert row["status"] == info["status"], (sub_id, row)
        assert row["name"] == "; ".join(info["names"])
        assert row["email"] == "; ".join(info["emails"])
        assert row["sid"] == "; ".join(info["sids"])
        if info["path"] is None:
            assert row["total"] == "" and row["note"], row
            continue
        alone = graded_alone[sub_id]
        assert float(row["total"]) == pytest.approx(alone["score"], abs=1e-4)
        for problem, points in scores_by_problem(alone).items():
            assert float(row[problem]) == pytest.approx(points, abs=1e-4), (sub_id, problem)


@pytest.mark.skipif(not template.supported(), reason="no pidfds or fd passing here: no template")
def test_every_grade_of_the_batch_forks_its_sandbox_from_the_batch_template(batch, klass):
    """The grades above, equal to grade's, ran on zygotes the batch's template forked (torch
    imported once for the class): none refused, at least one per submission with files."""
    out, _ = batch
    lines = (out / "zygote-template.log").read_text().splitlines()
    forked = [line for line in lines if line.startswith("forked zygote")]
    with_files = [sub for sub, info in klass[1].items() if info["status"] == "graded"]
    assert not [line for line in lines if "refused" in line], lines
    assert len(forked) >= len(with_files), lines


def test_the_class_gets_the_verdicts_of_its_submissions(batch):
    """Not only equal to grade: the reference full, stubs and faults zero, mistakes in between."""
    rows = _rows(batch[0])
    full = float(rows["1001"]["total"])  # every point, the bonus included
    assert full >= float(rows["1001"]["max_score"]) and float(rows["1002"]["total"]) == full
    assert float(rows["1003"]["total"]) == 0
    for sub_id in ("1004", "1005", "1006", "1007", "1008"):
        assert 0 < float(rows[sub_id]["total"]) < full, sub_id
    assert float(rows["1009"]["total"]) == full  # a correct convention
    assert "zip" in rows["1010"]["note"].lower() and float(rows["1010"]["total"]) == 0
    assert "none of" in rows["1011"]["note"] and float(rows["1011"]["total"]) == 0


def test_reports_name_the_faulty_rows_and_are_self_contained(batch):
    out, _ = batch
    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for sub_id in ("1010", "1011", "1012"):
        assert f"`{sub_id}`" in markdown and f"<td>{sub_id}</td>" in page
    assert "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert "## Tests" in markdown and "pass rate" in page


def test_rerun_grades_nothing_and_force_regrades_all(batch, export_zip):
    out, _ = batch
    before = {p.name: p.stat().st_mtime_ns for p in (out / "records").iterdir()}
    done = run_batch_cli([str(export_zip), "--out", str(out), "--jobs", "2"])
    assert "0 graded now, 12 unchanged" in done.stdout, done.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (out / "records").iterdir()} == before


def test_a_killed_batch_resumes_to_the_uninterrupted_result(batch, export_zip, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "autograder", "batch", str(export_zip), "--out", str(out),
               "--jobs", "2"]
    process = subprocess.Popen(command, cwd=paths.ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        done = list((out / "records").glob("*.json")) if (out / "records").is_dir() else []
        if len(done) >= 4:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the batch ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {p.stem: p.stat().st_mtime_ns for p in (out / "records").glob("*.json")}
    assert 4 <= len(finished) < 12
    time.sleep(1.0)  # the grades in flight die with the batch; let them go
    rerun = run_batch_cli([str(export_zip), "--out", str(out), "--jobs", "2"])
    assert f"{12 - len(finished)} graded now, {len(finished)} unchanged" in rerun.stdout, rerun.stdout
    for sub_id, mtime in finished.items():  # not regraded
        assert (out / "records" / f"{sub_id}.json").stat().st_mtime_ns == mtime
    uninterrupted = batch[0]
    for results in (uninterrupted / "results").glob("*.json"):
        assert comparable(json.loads((out / "results" / results.name).read_text())) == \
            comparable(json.loads(results.read_text())), results.name
    assert _rows(out) == _rows(uninterrupted)
