"""The training stage end to end, through the real engine on the embedded default: the reference
gets every point, the stubs get none without a harness error, and a regrade is identical."""
from __future__ import annotations

import json

import pytest

from autograder import paths
from autograder.grade import grade_submission

pytestmark = pytest.mark.slow(seconds=240)


def graded(tmp_path, submission, name: str) -> dict:
    out = tmp_path / f"{name}.json"
    grade_submission(submission, out=out, stage="train", device="cpu")
    return json.loads(out.read_text())


def without_times(results: dict) -> dict:
    results = dict(results, execution_time=None)
    results["tests"] = [dict(test, execution_time=None) for test in results["tests"]]
    return results


@pytest.fixture(scope="module")
def reference_results(tmp_path_factory):
    return graded(tmp_path_factory.mktemp("train"), paths.REFERENCE_DIR, "reference")


def test_reference_gets_every_training_point(reference_results):
    tests = reference_results["tests"]
    assert tests and all(t["extra_data"]["stage"] == "train" for t in tests)
    assert [t["number"] for t in tests if t["score"] != t["max_score"]] == []
    assert {t["extra_data"]["kind"] for t in tests} == {"passed"}
    assert sum(t["max_score"] for t in tests) > 0


def test_accuracy_pictures_are_inline_in_one_test_of_each_trained_problem(reference_results):
    """One picture per problem (3.4's with its per-layer sparsity): the same PNG bytes on a
    regrade, which the next test checks with the rest of results.json."""
    pictured = [t for t in reference_results["tests"] if '<img alt="problem' in t["output"]]
    assert sorted(t["extra_data"]["problem"] for t in pictured) == \
        ["3.3", "3.4", "3.5", "4.3", "4.4", "4.5"]
    assert all(t["output_format"] == "html" for t in pictured)


def test_regrading_gives_an_identical_results_json(reference_results, tmp_path):
    again = graded(tmp_path, paths.REFERENCE_DIR, "again")
    assert without_times(again) == without_times(reference_results)


def test_stubs_get_no_training_point_and_no_harness_error(tmp_path):
    results = graded(tmp_path, paths.STUDENT_DIR, "stubs")
    assert sum(t["score"] for t in results["tests"]) == 0
    kinds = {t["extra_data"]["kind"] for t in results["tests"]}
    assert not kinds & {"internal_error", "not_graded"}, kinds


def test_too_little_memory_stops_the_stage_with_a_staff_message_before_training(tmp_path, monkeypatch):
    """A machine below the stage's need (512 MiB here) cannot hold the fine-tuning: every
    training test says the grader failed (not the student), the staff log says what to change,
    nothing trains."""
    from autograder import machine
    from autograder.training.pipelines import Pipelines
    monkeypatch.setattr(machine, "memory_limit", lambda: 512 * 2**20)
    trained = []
    monkeypatch.setattr(Pipelines, "_run", lambda self, probe, *a, **k: trained.append(probe))
    out = tmp_path / "results.json"
    results = grade_submission(paths.REFERENCE_DIR, out=out, stage="train", device="cpu")
    tests = json.loads(out.read_text())["tests"]
    assert tests and {t["extra_data"]["kind"] for t in tests} == {"internal_error"}
    assert sum(t["score"] for t in tests) == 0
    assert any("512 MiB" in entry and "HW4_STAGE=unit" in entry for entry in results.staff_log)
    assert trained == []
