"""The pictures of the feedback, piece by piece: recording, drawing, attaching, html.

End to end (grades of the reference and of mutants) is ``test_pictures_e2e.py``.
"""
from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from autograder import paths, pictures
from autograder.pictures import draw as drawing
from autograder.pictures.html import markdown_to_html, with_picture
from autograder.pictures.lab1 import divergence_step
from autograder.pictures.session import add_pictures
from autograder.report import Results, TestResult, validate_json

STEPS = 200


def _path(rate: float) -> np.ndarray:
    """A (201, 5) path shaped like a Lab 1 run: every weight relaxing to a target."""
    t = np.arange(STEPS + 1)[:, None]
    return np.array([0.75, -2.39, 0.12, -0.03, 1.56]) * (1 - np.exp(-rate * t))


X = np.array([[1., -2., -1., -1., 1.], [2., -1., 2., 0., -2.], [-1., 0., 2., 2., 1.]])
Y = np.array([7., 1., 1.])
LAYERS = ["head_conv.0.conv"] + [f"body_op.{b}.conv{c}.0.conv" for b in range(9)
                                 for c in (1, 2)] + ["final_fc.linear"]
RECORDS = {
    "trajectory": {"student": _path(0.05), "reference": _path(0.08), "X": X, "Y": Y,
                   "tolerance": 1e-4, "title": "gd_step"},
    "sparsity": {"layers": LAYERS, "student": np.linspace(0.2, 0.98, 20),
                 "reference": np.linspace(0.3, 0.97, 20)},
    "accuracy": {"label": "iterative pruning", "accuracy": 0.61, "threshold": 0.7},
    "levels": {"w": [-1, -0.5, 0, 0.3, 1], "reference": [-1, -1 / 3, 1 / 3, 1 / 3, 1],
               "student": [-1, -1, -1 / 3, -1 / 3, 1], "bit": 2},
}


def _record(kind: str) -> dict:
    with pictures.recording(True) as records:
        pictures.attach(kind, **RECORDS[kind])
    return records[0]


def _decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()  # raises on a truncated or corrupt file
    return image


# ----------------------------------------------------------------------------- recording


def test_attach_outside_a_recording_or_in_a_disabled_one_keeps_nothing():
    pictures.attach("accuracy", label="x", accuracy=0.5, threshold=0.4)  # no recording: no-op
    with pictures.recording(False) as records:  # how the plugin runs a hidden test
        pictures.attach("accuracy", label="x", accuracy=0.5, threshold=0.4)
    assert records == []


def test_attach_copies_arrays_to_plain_lists_that_later_changes_do_not_reach():
    weights = np.array([0.5, np.nan, 2.0])
    with pictures.recording(True) as records:
        pictures.attach("levels", w=weights, reference=weights, student=None, bit=np.int64(2))
        weights[0] = 9.0
        pictures.attach("no-such-kind", w=weights)
        pictures.attach("levels", w=np.zeros(pictures.MAX_VALUES + 1))  # too big: dropped
    assert records == [{"kind": "levels", "data": {"w": [0.5, None, 2.0],
                                                    "reference": [0.5, None, 2.0],
                                                    "student": None, "bit": 2.0}}]
    json.dumps(records)  # plain data: it crosses from xdist workers on the report


def test_a_helper_marked_never_fails_cannot_fail_its_test():
    @pictures.never_fails
    def broken(case):
        pictures.attach("accuracy", label="a", accuracy=case["missing"], threshold=0.1)

    with pictures.recording(True) as records:
        assert broken({}) is None
    assert records == []


# ----------------------------------------------------------------------------- drawing


@pytest.mark.parametrize("kind", pictures.KINDS)
def test_each_kind_draws_a_valid_png_under_the_cap(kind):
    png = drawing.draw("2.2", [_record(kind)])
    image = _decoded(png)
    assert image.format == "PNG" and 100 < image.width < 1000 and 100 < image.height < 400
    assert len(png) <= drawing.MAX_BYTES


def test_panels_of_one_problem_share_one_picture_side_by_side():
    one = _decoded(drawing.draw("3.4", [_record("sparsity")]))
    two = _decoded(drawing.draw("3.4", [_record("sparsity"), _record("accuracy"),
                                        _record("accuracy")]))
    assert two.width > one.width and two.height == one.height


def test_a_picture_above_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(drawing, "MAX_BYTES", 1000)
    with pytest.raises(drawing.PictureTooLarge):
        drawing.draw("2.2", [_record("trajectory")])


def test_divergence_step_is_the_first_step_out_of_tolerance():
    reference = _path(0.08)
    student = reference.copy()
    assert divergence_step(student, reference, 1e-4) is None
    student[37:, 2] += 2e-4
    assert divergence_step(student, reference, 1e-4) == 37
    student[5, 0] = np.nan
    assert divergence_step(student, reference, 1e-4) == 5


# ----------------------------------------------------------------------------- attaching


def _test(nodeid: str, problem: str, *, group="visible", visibility="visible", score=1.0):
    return TestResult(nodeid=nodeid, name=nodeid, number=f"{problem}.1", problem=problem,
                      score=score, max_score=1.0, status="passed" if score else "failed",
                      output="Passed." if score else "**gd_step** returned `<b>` wrong",
                      group=group, visibility=visibility)


def test_one_picture_per_problem_on_its_last_test_and_none_on_hidden_tests(tmp_path):
    results = Results(tests=(_test("a", "3.4"), _test("b", "3.4", score=0.0),
                             _test("c", "2.2", group="hidden", visibility="after_published")))
    records = {"a": [_record("sparsity")], "b": [_record("accuracy")], "c": [_record("trajectory")]}
    out, files = add_pictures(results, records, folder=tmp_path / "pics")
    first, last, hidden = out.tests
    assert first.picture == "" and hidden.picture == ""
    assert _decoded(base64.b64decode(last.picture)).format == "PNG"
    assert files == [tmp_path / "pics" / "3.4.png"]
    assert files[0].read_bytes() == base64.b64decode(last.picture)
    assert [(t.score, t.status, t.output) for t in out.tests] == \
        [(t.score, t.status, t.output) for t in results.tests]


def test_a_picture_that_cannot_be_drawn_changes_nothing_but_the_staff_detail(monkeypatch):
    def fails(problem, records):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(drawing, "draw", fails)
    results = Results(tests=(_test("a", "2.2", score=0.0),))
    out, files = add_pictures(results, {"a": [_record("trajectory")]})
    (test,) = out.tests
    assert test.picture == "" and files == []
    assert "picture of problem 2.2 not drawn: RuntimeError: no fonts" in test.staff_detail
    assert test.to_json() == results.tests[0].to_json()  # students see exactly what they did


def test_a_test_with_a_picture_is_html_with_the_png_inline_and_valid_results():
    results = Results(tests=(_test("a", "2.2", score=0.0),))
    out, _ = add_pictures(results, {"a": [_record("trajectory")]})
    data = out.to_json()
    validate_json(data)
    test = data["tests"][0]
    assert test["output_format"] == "html"
    assert "<strong>gd_step</strong> returned <code>&lt;b&gt;</code> wrong" in test["output"]
    encoded = test["output"].split('src="data:image/png;base64,')[1].split('"')[0]
    assert _decoded(base64.b64decode(encoded)).format == "PNG"


# ----------------------------------------------------------------------------- html


def test_markdown_to_html_escapes_every_character_of_the_message():
    message = ("**loss** got `<script>alert(1)</script>` & more\n\nInput:\n```\nW = [1 <b>]\n```"
               "\n\n- expected: `1`\n- got: **<i>2</i>**")
    html = markdown_to_html(message)
    assert "<script>" not in html and "<i>" not in html and "<b>" not in html
    assert "<p><strong>loss</strong> got <code>&lt;script&gt;alert(1)&lt;/script&gt;</code> " \
           "&amp; more</p>" in html
    assert "<pre><code>W = [1 &lt;b&gt;]</code></pre>" in html
    assert "<ul><li>expected: <code>1</code></li><li>got: <strong>&lt;i&gt;2&lt;/i&gt;" in html
    assert with_picture("x", "QUJD", alt='a"b').endswith(
        '<img alt="a&quot;b" src="data:image/png;base64,QUJD"></p>')


# ----------------------------------------------------------------------------- memory


def test_a_process_that_draws_nothing_never_imports_matplotlib():
    """The grading process's engine modules (plugin, report, pictures) leave matplotlib
    unimported (about 40 MiB): only ``autograder.pictures.draw`` imports it, when called."""
    code = ("import sys, autograder.plugin, autograder.report, autograder.pictures, "
            "autograder.pictures.session, autograder.pictures.html; "
            "print('matplotlib' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               cwd=paths.ROOT, check=True)
    assert completed.stdout.strip() == "False"
