"""Pictures end to end: real unit-stage grades of the reference and of a mutant of each lab
(from the catalogue of wrong submissions), read back from the results.json they write."""
from __future__ import annotations

import base64
import contextlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from autograder import validate
from autograder.grade import grade_submission
from autograder.pictures import draw as drawing

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_zygotes")]

# The problems whose visible unit-stage tests attach a picture (the training stage adds 3.3-3.5
# and 4.3-4.5 under --stage train).
PICTURED = {"2.2", "2.3", "2.4", "2.5", "2.6", "3.2", "3.5", "4.1"}
# One mutant per lab: (catalogue name, problem it loses, the visible test whose picture shows it)
MUTANTS = {"lab1": ("proximal-threshold-before-step", "2.5", "2.5.3"),
           "lab2": ("global-per-layer", "3.5", "3.5.1"),
           "lab3": ("ste-floor", "4.1", "4.1.1")}


def _grade(name: str, tmp: Path, **options):
    case = next(c for c in validate.plan_cases(only=[name]) if c.name == name)
    submission = validate.build_submission(case, tmp / name / "submission")
    out = tmp / name / "results.json"
    with contextlib.redirect_stdout(io.StringIO()):
        results = grade_submission(submission, out=out, stage="unit", device="cpu", **options)
    return results, json.loads(out.read_text())


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, tuple]:
    tmp = tmp_path_factory.mktemp("pictures")
    return {name: _grade(name, tmp) for name in
            ["reference"] + [mutant for mutant, _, _ in MUTANTS.values()]}


def _pictures(data: dict) -> dict[str, bytes]:
    """{test number: PNG} of every test whose output holds an inline picture."""
    found = {}
    for test in data["tests"]:
        if "<img" in test["output"]:
            encoded = test["output"].split('src="data:image/png;base64,')[1].split('"')[0]
            found[test["number"]] = base64.b64decode(encoded)
    return found


def _problem(number: str) -> str:
    return number.rsplit(".", 1)[0]


@pytest.mark.parametrize("name", ["reference"] + [m for m, _, _ in MUTANTS.values()])
def test_one_valid_small_png_per_pictured_problem_inline_in_visible_tests_only(graded, name):
    _, data = graded[name]
    found = _pictures(data)
    assert sorted(_problem(n) for n in found) == sorted(PICTURED)  # one each, no more
    for number, png in found.items():
        image = Image.open(io.BytesIO(png))
        image.load()
        assert image.format == "PNG" and len(png) <= drawing.MAX_BYTES, number
    for test in data["tests"]:
        pictured = test["number"] in found
        assert test["output_format"] == ("html" if pictured else "md"), test["number"]
        if test["visibility"] != "visible" or test["extra_data"]["group"] != "visible":
            assert not pictured and "<img" not in test["output"] and "base64" not in test["output"]


@pytest.mark.parametrize("lab", sorted(MUTANTS))
def test_a_mutants_failed_test_carries_its_message_and_its_picture(graded, lab):
    name, problem, number = MUTANTS[lab]
    results, data = graded[name]
    test = next(t for t in data["tests"] if t["number"] == number)
    assert test["status"] == "failed" and test["output_format"] == "html"
    assert number in _pictures(data)
    message = next(t.output for t in results.tests if t.number == number)  # markdown, as before
    first_words = message.replace("**", "").split("`")[0][:30]
    assert first_words and first_words in test["output"].replace("<strong>", "").replace(
        "</strong>", "")
    assert results.by_problem()[problem][0] < results.by_problem()[problem][1]


def test_pictures_that_cannot_be_drawn_leave_every_score_and_message_as_it_was(
        graded, tmp_path, monkeypatch):
    def fails(problem, records):
        raise RuntimeError("the picture's drawer failed")

    monkeypatch.setattr(drawing, "draw", fails)
    name = MUTANTS["lab1"][0]
    broken, data = _grade(name, tmp_path)
    normal, _ = graded[name]
    assert _pictures(data) == {}
    assert [(t.number, t.score, t.status, t.output) for t in broken.tests] == \
        [(t.number, t.score, t.status, t.output) for t in normal.tests]
    notes = [t for t in broken.tests if "not drawn: RuntimeError" in t.staff_detail]
    assert sorted(t.problem for t in notes) == sorted(PICTURED)


def test_validate_and_grade_without_results_draw_nothing(tmp_path):
    case = next(c for c in validate.plan_cases(only=["reference"]))
    submission = validate.build_submission(case, tmp_path / "submission")
    with contextlib.redirect_stdout(io.StringIO()):
        results = grade_submission(submission, stage="unit", device="cpu")
    assert all(t.picture == "" for t in results.tests)
