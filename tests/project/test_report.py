"""Results data and their one writer: schema-valid results.json, written atomically, the fallback
file, and post-processing before the final write."""
from __future__ import annotations

import json

import jsonschema
import pytest

from autograder import results_writer
from autograder.report import Results, TestResult, fallback_results, validate_json
from autograder.results_writer import ResultsWriter, write_results
from autograder.rubric import load_rubric, parse_rubric


def _test(number="2.1.1", score=1.0, max_score=1.0, **kw):
    return TestResult(nodeid=f"t::{number}", name=f"{number} t", number=number,
                      problem=number.rsplit(".", 1)[0] if number.count(".") > 1 else number,
                      score=score, max_score=max_score,
                      status="passed" if score >= max_score else "failed", **kw)


def test_results_json_matches_the_schema_and_the_totals():
    results = Results(tests=(_test(), _test("2.1.2", 0.0, 2.0, output="got 1, expected 2"),
                             _test("4.4.1", 1.0, 1.0, bonus=True)), execution_time=1.25)
    data = results.to_json()
    validate_json(data)
    assert data["score"] == 2.0 and results.max_score == 3.0 and results.bonus_max_score == 1.0
    assert data["output_format"] == "md" and data["stdout_visibility"] == "hidden"
    assert isinstance(data["execution_time"], float)
    assert results.by_problem() == {"2.1": (1.0, 3.0), "4.4": (1.0, 1.0)}


def test_schema_rejects_what_gradescope_would_misread():
    good = Results(tests=(_test(),)).to_json()
    for broken in ({**good, "execution_time": "1s"}, {**good, "tests": [{"name": "x"}]},
                   {**good, "output_format": "markdown"}):
        with pytest.raises(jsonschema.ValidationError):
            validate_json(broken)
    over = json.loads(json.dumps(good))
    over["tests"][0]["score"] = 5.0
    with pytest.raises(jsonschema.ValidationError):
        validate_json(over)


def test_visible_total_printed_only_when_some_test_is_hidden():
    shown = _test("2.1.1", 1.0, 1.0)
    hidden = _test("2.1.2", 0.0, 3.0, visibility="after_published", output="SECRET")
    summary = Results(tests=(shown, hidden)).student_summary()
    assert "Visible tests: 1 / 1 points" in summary and "SECRET" not in summary
    assert "Visible tests" not in Results(tests=(shown,)).student_summary()


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    out = tmp_path / "results" / "results.json"
    write_results(Results(tests=(_test(),)), out)
    before = out.read_text()

    def fail_midway(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(results_writer.json, "dump", fail_midway)
    with pytest.raises(OSError):
        write_results(Results(tests=(_test(score=0.0),)), out)
    assert out.read_text() == before  # the old file is intact, never half-written
    assert [p.name for p in out.parent.iterdir()] == ["results.json"]


def test_invalid_results_are_not_written(tmp_path):
    bad = Results(tests=(_test(score=3.0, max_score=1.0),))
    with pytest.raises(jsonschema.ValidationError):
        write_results(bad, tmp_path / "results.json")
    assert not (tmp_path / "results.json").exists()


def test_fallback_keeps_graded_tests_and_fails_the_rest_with_max_score(tmp_path):
    graded = _test("2.1.1")
    pending = [_test("2.1.1", 0.0), _test("2.1.2", 0.0, 2.0)]
    out = ResultsWriter(tmp_path / "results.json").fallback("the sandbox died", graded=[graded],
                                                            pending=pending)
    data = json.loads(out.read_text())
    validate_json(data)
    assert [(t["name"], t["score"], t["max_score"]) for t in data["tests"]] == [
        ("2.1.1 t", 1.0, 1.0), ("2.1.2 t", 0.0, 2.0)]
    assert data["tests"][1]["output"] == "not graded: the sandbox died"


def test_fallback_from_the_rubric_covers_every_autograded_point():
    rubric = load_rubric()
    results = fallback_results("setup failed", rubric=rubric)
    validate_json(results.to_json())
    autograded = sum(p.autograded_points for p in rubric.problems if not p.bonus)
    assert results.max_score == pytest.approx(autograded)
    assert all(t.output == "not graded: setup failed" and t.score == 0 for t in results.tests)
    unit_only = fallback_results("x", rubric=rubric, stages=("unit",))
    assert unit_only.max_score < results.max_score


def test_fallback_survives_an_unbuildable_document(tmp_path):
    out = ResultsWriter(tmp_path / "results.json").fallback("boom", pending=[object()])
    validate_json(json.loads(out.read_text()))


def test_the_final_write_applies_post_processing_in_order(tmp_path):
    steps = [lambda r: r.with_adjustment("Late penalty (1 day)", -0.5),
             lambda r: r.with_adjustment("Regrade", 0.25)]
    writer = ResultsWriter(tmp_path / "results.json", post_process=steps)
    returned = writer.final(Results(tests=(_test(score=2.0, max_score=2.0),)))
    data = json.loads((tmp_path / "results.json").read_text())
    assert returned.score == data["score"] == pytest.approx(1.75)
    assert returned.adjustments == (("Late penalty (1 day)", -0.5), ("Regrade", 0.25))


def test_an_unwritable_final_leaves_every_test_not_graded(tmp_path, capsys):
    writer = ResultsWriter(tmp_path / "results.json")
    writer.final(Results(tests=(_test("2.1.1", score=3.0, max_score=1.0), _test("2.1.2"))))
    data = json.loads((tmp_path / "results.json").read_text())
    validate_json(data)
    assert [(t["name"], t["score"], t["max_score"]) for t in data["tests"]] == [
        ("2.1.1 t", 0.0, 1.0), ("2.1.2 t", 0.0, 1.0)]
    assert all(t["output"].startswith("not graded: results could not be written")
               for t in data["tests"])
    assert "[staff] results.json replaced by the fallback" in capsys.readouterr().err


def test_late_penalty_is_post_processing():
    results = Results(tests=(_test(score=2.0, max_score=2.0),))
    late = results.with_adjustment("Late penalty (1 day)", -0.5)
    assert late.score == 1.5 and results.score == 2.0
    assert "Late penalty" in late.to_json()["output"]


def test_rubric_rejects_shares_outside_zero_one():
    from autograder.errors import GraderError

    with pytest.raises(GraderError):
        parse_rubric('[problems]\n"2.1" = { points = 4, autograded = 1.5, train = 0, hidden = 0 }\n')
    rubric = parse_rubric('[problems]\n"1.1" = { points = 2, autograded = 1, train = 0, hidden = 1 }\n'
                          '"1.10" = { points = 2, autograded = 1, train = 0, hidden = 1 }\n')
    assert rubric.problem_of("1.10.2").number == "1.10"
    assert rubric.problem_of("1.1").number == "1.1"


def test_rubric_holds_the_handouts_points():
    rubric = load_rubric()
    assert rubric.total == 100 and rubric.bonus_total == 10
    by = {p.number: p for p in rubric.problems}
    assert [by[f"1.{i}"].points for i in range(1, 11)] == [2] * 10
    assert by["4.4"].bonus and by["4.5"].bonus and not by["4.1"].bonus
    assert all(by[n].train == 1 for n in ("3.1", "4.2", "4.3", "4.5"))


def test_gradescope_entry_leaves_a_valid_file_when_grading_raises(tmp_path, monkeypatch):
    import argparse

    from autograder import grade, gradescope

    def explode(*args, **kwargs):
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(grade, "grade_submission", explode)
    (tmp_path / "submission").mkdir()
    code = gradescope.run(argparse.Namespace(root=str(tmp_path), stage="unit", device="cpu"))
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    validate_json(data)
    assert code == 0 and data["score"] == 0 and data["tests"]
    assert all(t["output"] == "not graded: internal grading error (RuntimeError)"
               for t in data["tests"])


def test_a_zero_point_visible_row_says_where_its_points_are():
    results = Results(tests=(_test("1.1.1", 0.0, 0.0), _test("2.1.1")))
    table = results.terminal_table().splitlines()
    assert "format checked; graded by hidden tests" in next(l for l in table if l.startswith("1.1 "))
    assert next(l for l in table if l.startswith("2.1 ")).rstrip().endswith("pass")
    assert "format checked" in results.student_summary().split("| 1.1")[1].splitlines()[0]


def test_a_zero_point_row_of_a_hand_graded_problem_says_so():
    """3.1's points are all graded by hand: its passing check must not promise hidden tests."""
    from autograder.rubric import load_rubric

    rubric = load_rubric()
    assert rubric.hand_graded() == {"3.1"}
    results = Results(tests=(_test("1.1.1", 0.0, 0.0), _test("3.1.11", 0.0, 0.0)),
                      hand_graded=rubric.hand_graded())
    table = results.terminal_table().splitlines()
    assert "graded by hand" in next(l for l in table if l.startswith("3.1 "))
    assert "hidden tests" not in next(l for l in table if l.startswith("3.1 "))
    assert "hidden tests" in next(l for l in table if l.startswith("1.1 "))
    row = results.student_summary().split("| 3.1")[1].splitlines()[0]
    assert "graded by hand from your report" in row


def test_printed_excerpt_is_bounded_in_lines_and_characters():
    from autograder.feedback import PRINTED_LINE_CHARS, PRINTED_LINES, printed_excerpt

    flood = "\n".join(f"line {i} " + "x" * 1000 for i in range(500))
    excerpt = printed_excerpt([flood, "second call\n"])
    body = excerpt.split("```\n")[1].rstrip("`\n").splitlines()
    assert f"the first {PRINTED_LINES} of 501 lines" in excerpt
    assert len(body) == PRINTED_LINES and body[0].startswith("line 0 ")
    assert all(len(line) <= PRINTED_LINE_CHARS + len(" [...]") for line in body)
    assert printed_excerpt(["", "\n\n"]) == ""
    assert "```" not in printed_excerpt(["a ``` fence\n"]).split("```\n")[1].split("\n```")[0]
