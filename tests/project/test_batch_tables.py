"""scores.csv, the cohort report and the regrade diff, on hand-made batch folders (no grading)."""
from __future__ import annotations

import csv
import json

from autograder.batch.cohort import load_cohort
from autograder.batch.discovery import Submission, Submitter
from autograder.batch.regrade_diff import regrade_diff
from autograder.batch.report import cohort_stats, render_html, render_markdown
from autograder.batch.runner import write_reports
from autograder.batch.discovery import Discovery
from autograder.batch.store import BatchDir, Outcome
from autograder.report import validate_json


def _test(number, score, top, output="", problem=None, bonus=False):
    return {"score": score, "max_score": top, "status": "passed" if score >= top else "failed",
            "name": f"test {number}", "number": number, "output": output, "visibility": "visible",
            "extra_data": {"problem": problem or number.rsplit(".", 1)[0], "stage": "unit",
                           "group": "visible", "kind": "passed" if score >= top else "failed",
                           "bonus": bonus}}


def _results(*tests):
    data = {"score": sum(t["score"] for t in tests), "execution_time": 1.0, "output": "",
            "output_format": "md", "visibility": "visible", "stdout_visibility": "hidden",
            "tests": list(tests)}
    validate_json(data)
    return data


def _store(root, grades: dict[str, tuple[str, dict | None]]) -> BatchDir:
    store = BatchDir(root).make()
    for sub_id, (status, results) in grades.items():
        if results is not None:
            store.results(sub_id).write_text(json.dumps(results))
        store.write_record(Outcome(sub_id, "k", status, note=f"{status} note"))
    return store


SUBS = (Submission("a", None, (Submitter("Ann", "1", "ann@x.edu"), Submitter("Al", "2", ""))),
        Submission("b", None, (Submitter("Bea", "3", "bea@x.edu"),)),
        Submission("c", None), Submission("d", None))


def _class(root, *, b_second=0.0):
    return _store(root, {
        "a": ("graded", _results(_test("2.1.1", 2, 2), _test("2.1.2", 1, 1), _test("4.4.1", 1, 1, bonus=True))),
        "b": ("graded", _results(_test("2.1.1", 0, 2, "got 3, expected 4"),
                                 _test("2.1.2", b_second, 1, "<script>alert(1)</script>"),
                                 _test("4.4.1", 0, 1, bonus=True))),
        "c": ("grader error", _results(_test("2.1.1", 0, 2), _test("2.1.2", 0, 1))),
        "d": ("no files", _results(_test("2.1.1", 0, 2, "got 3, expected 4"), _test("2.1.2", 0, 1))),
    })


def test_scores_csv_has_a_row_per_submission_and_no_points_for_a_grader_fault(tmp_path):
    store = _class(tmp_path / "out")
    write_reports(store, load_cohort(store, SUBS), Discovery(SUBS), None)
    with open(store.scores_csv, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["submission_id", "name", "email", "sid", "2.1", "4.4", "total",
                       "max_score", "status", "note"]
    assert rows[1] == ["a", "Ann; Al", "ann@x.edu", "1; 2", "3", "1", "4", "3", "graded", "graded note"]
    assert rows[2][4:8] == ["0", "0", "0", "3"]
    assert rows[3][4:9] == ["", "", "", "", "grader error"]  # not a zero to import
    assert rows[4][4:9] == ["0", "", "0", "3", "no files"]  # its grade had no 4.4 test


def test_report_counts_pass_rates_and_the_most_common_failure(tmp_path):
    store = _class(tmp_path / "out")
    stats = cohort_stats(load_cohort(store, SUBS))
    by_test = {t.test: t for t in stats.tests}
    assert (by_test["2.1.1 test 2.1.1"].passed, by_test["2.1.1 test 2.1.1"].graded) == (1, 3)
    assert by_test["2.1.1 test 2.1.1"].common_failure == "got 3, expected 4"
    assert by_test["2.1.1 test 2.1.1"].common_count == 2
    assert sorted(stats.totals) == [0, 0, 4]  # the grader error is not a score
    assert [(sid, status) for sid, status, _ in stats.faults] == [("c", "grader error"),
                                                                 ("d", "no files")]
    markdown = render_markdown(stats)
    assert "| 2.1 | 33% |" in markdown and "`c`: grader error" in markdown


def test_html_report_escapes_what_submissions_wrote_and_inlines_its_figures(tmp_path):
    store = _class(tmp_path / "out")
    page = render_html(cohort_stats(load_cohort(store, SUBS)))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("data:image/png;base64,") == 2
    assert "src=\"http" not in page


def test_regrade_diff_names_exactly_the_changed_submissions_and_tests(tmp_path):
    before = _class(tmp_path / "before")
    after = _class(tmp_path / "after", b_second=1.0)
    diff = regrade_diff(load_cohort(after, SUBS), before.root)
    assert [c.id for c in diff.changed] == ["b"]
    (change,) = diff.changed
    assert [(t.test, t.before, t.after) for t in change.tests] == [("2.1.2 test 2.1.2", 0, 1)]
    assert change.delta == 1.0
    assert diff.unchanged == 3 and diff.only_now == ()
    markdown = render_markdown(cohort_stats(load_cohort(after, SUBS), diff=diff))
    assert "1 changed, 3 unchanged" in markdown and "`b` (Bea): 0 -> 1 (+1)" in markdown


def test_a_test_that_appears_or_changes_its_points_is_reported(tmp_path):
    before = _store(tmp_path / "before", {"a": ("graded", _results(_test("2.1.1", 2, 2)))})
    after = _store(tmp_path / "after", {"a": ("graded", _results(_test("2.1.1", 3, 3),
                                                                _test("2.1.9", 0, 1)))})
    diff = regrade_diff(load_cohort(after, SUBS[:1]), before.root)
    assert [(t.test, t.before, t.after) for t in diff.changed[0].tests] == [
        ("2.1.1 test 2.1.1", 2, 3), ("2.1.9 test 2.1.9", None, 0)]
    assert [(t.test, t.before, t.after) for t in diff.max_score_changes] == [
        ("2.1.1 test 2.1.1", 2, 3)]
