"""The grading plugin, through real pytest sessions (pytester) writing real results.json files.

Each session lays out ``tests/grading/{visible,hidden,train}`` under a temporary root, with a
small rubric of its own, and grades a dummy submission. The tests do not ask for the
``sandbox`` fixture: they exercise scoring and reporting alone. Every results.json is checked
against the schema and the invariants (one result per collected test, 0 <= score <= max).
"""
from __future__ import annotations

import json
import textwrap

import pytest

import autograder.plugin  # noqa: F401  (held here, see below)
from autograder.report import validate_json

# pytester's in-process runs restore sys.modules after each session: a module first imported
# inside one (the plugin, feedback, errors) is dropped, and the next session would judge a new
# StudentException class with the old plugin's isinstance checks. Importing the plugin here
# keeps one copy of all of them for every session of this module, whatever ran before it.

pytest_plugins = ["pytester"]

RUBRIC = """
[problems]
"1.1" = { title = "T/F", points = 2, autograded = 1.0, train = 0.0, hidden = 1.0, bonus = false }
"2.1" = { title = "gradient", points = 4, autograded = 0.5, train = 0.0, hidden = 0.5, bonus = false }
"3.3" = { title = "finetune", points = 8, autograded = 1.0, train = 0.5, hidden = 0.5, train_hidden = 0.0, bonus = false }
"4.4" = { title = "bonus", points = 5, autograded = 1.0, train = 0.0, hidden = 0.0, bonus = true }
"""
ONLY_2_1 = """
[problems]
"2.1" = { title = "gradient", points = 4, autograded = 0.5, train = 0.0, hidden = 0.5, bonus = false }
"""
HEADER = "from gradescope_utils.autograder_utils.decorators import *\nimport pytest\n"


def lay_out(pytester, files: dict, *, rubric: str = RUBRIC, conftest: str = "") -> list[str]:
    """Write ``files`` ({relative path under tests/grading: source}), a rubric, a dummy
    submission and the grading conftest (plus ``conftest`` lines); return the pytest arguments
    of a grading run writing ``pytester.path / "results.json"``."""
    pytester.makefile(".toml", rubric=rubric)
    grading = pytester.path / "tests" / "grading"
    grading.mkdir(parents=True, exist_ok=True)
    (grading / "conftest.py").write_text('pytest_plugins = ["autograder.plugin"]\n'
                                         + textwrap.dedent(conftest))
    for relative, source in files.items():
        path = grading / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + textwrap.dedent(source))
    submission = pytester.path / "submission"
    submission.mkdir(exist_ok=True)
    for name in ("lab1.py", "lab2.py", "lab3.py", "answers.py"):
        (submission / name).write_text("")
    return ["tests/grading", "-p", "no:cacheprovider", "--rubric", str(pytester.path / "rubric.toml"),
            "--submission", str(submission), "--results", str(pytester.path / "results.json")]


def _session(pytester, files: dict, *args, rubric: str = RUBRIC):
    """Run a grading session on ``files`` in this process; return the run and results.json."""
    run = pytester.runpytest_inprocess(*lay_out(pytester, files, rubric=rubric), *args)
    out = pytester.path / "results.json"
    data = json.loads(out.read_text())
    validate_json(data)
    for test in data["tests"]:
        assert 0 <= test["score"] <= test["max_score"] + 1e-9
    return run, data


def _by_name(data) -> dict:
    return {t["name"]: t for t in data["tests"]}


def test_every_collected_test_gets_exactly_one_result(pytester):
    run, data = _session(pytester, {"visible/test_a.py": """
        @number("2.1.1")
        def test_pass(): pass

        @number("2.1.2")
        def test_fail(): assert 1 == 2

        @number("2.1.3")
        @pytest.mark.parametrize("x", [1, 2, 3])
        def test_param(x): assert x != 2
    """, "hidden/test_b.py": """
        @number("2.1.4")
        @visibility("after_published")
        def test_hidden(): pass
    """})
    graded = [t for t in data["tests"] if t["number"].startswith("2.1")]
    names = [t["name"] for t in graded]
    assert sorted(names) == ["2.1.1 test_pass", "2.1.2 test_fail", "2.1.3 test_param[1]",
                             "2.1.3 test_param[2]", "2.1.3 test_param[3]", "2.1.4 test_hidden"]
    assert [t["status"] for t in graded].count("passed") == 4
    run.assert_outcomes(passed=4, failed=2)
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))


def test_weights_divide_a_groups_points(pytester):
    # 2.1 has 4 * 0.5 = 2 autograded points, half visible: 1 point shared 1:3.
    _, data = _session(pytester, {"visible/test_w.py": """
        @number("2.1.1")
        def test_light(): pass

        @weight(3)
        @number("2.1.2")
        def test_heavy(): pass
    """, "hidden/test_h.py": """
        @number("2.1.9")
        @visibility("hidden")
        def test_hidden_one(): pass
    """})
    tests = _by_name(data)
    assert tests["2.1.1 test_light"]["max_score"] == pytest.approx(0.25)
    assert tests["2.1.2 test_heavy"]["max_score"] == pytest.approx(0.75)
    assert tests["2.1.9 test_hidden_one"]["max_score"] == pytest.approx(1.0)


def test_errors_skips_xfails_and_setup_errors_score_zero_and_keep_max(pytester):
    _, data = _session(pytester, {"visible/test_e.py": """
        @pytest.fixture
        def broken():
            raise RuntimeError("fixture exploded")

        @pytest.fixture
        def bad_teardown():
            yield
            raise RuntimeError("teardown exploded")

        @number("2.1.1")
        def test_setup_error(broken): pass

        @number("2.1.2")
        def test_skip(): pytest.skip("not today")

        @number("2.1.3")
        @pytest.mark.xfail(reason="known")
        def test_xfail(): assert False

        @number("2.1.4")
        def test_teardown_error(bad_teardown): pass

        @number("2.1.5")
        def test_raises_type_error(): {}["missing"]
    """})
    for name, test in _by_name(data).items():
        if test["extra_data"]["kind"] == "not_graded":
            continue
        assert test["status"] == "failed", name
        assert test["score"] == 0
        assert test["max_score"] == pytest.approx(0.2)
    tests = _by_name(data)
    assert "setting up" in tests["2.1.1 test_setup_error"]["output"]
    assert "cleaning up" in tests["2.1.4 test_teardown_error"]["output"]
    assert "skipped" in tests["2.1.2 test_skip"]["output"]
    internal = tests["2.1.5 test_raises_type_error"]
    assert "Internal grading error" in internal["output"]
    assert "Traceback" not in internal["output"] and "KeyError" not in internal["output"]


def test_submission_error_shows_its_message_without_traceback(pytester):
    _, data = _session(pytester, {"visible/test_s.py": """
        from autograder.errors import StudentException

        def helper_in_the_grader():
            raise StudentException("`gradient` raised ZeroDivisionError in lab1.py line 3")

        @number("2.1.1")
        def test_student_fault(): helper_in_the_grader()

        @number("2.1.2")
        def test_assertion(): assert 1 + 1 == 3, "got 2, expected 3"
    """})
    tests = _by_name(data)
    fault = tests["2.1.1 test_student_fault"]["output"]
    assert fault == "`gradient` raised ZeroDivisionError in lab1.py line 3"
    assertion = tests["2.1.2 test_assertion"]["output"]
    assert "got 2, expected 3" in assertion and "helper_in_the_grader" not in assertion
    assert "test_s.py" not in assertion


def test_partial_credit_scales_set_score_to_the_rubric(pytester):
    # 3.3's unit stage has 8 * 0.5 = 4 points, half visible: 2 points for the only test.
    _, data = _session(pytester, {"visible/test_p.py": """
        @partial_credit(10)
        @number("3.3.1")
        def test_partial(set_score=None):
            set_score(4)

        @partial_credit(10)
        @number("3.3.2")
        @pytest.mark.parametrize("earned", [10, 0])
        def test_partial_param(earned, set_score=None):
            set_score(earned)
    """})
    tests = data["tests"]
    by_id = {t["name"]: t for t in tests}
    partial = by_id["3.3.1 test_partial"]
    assert partial["max_score"] == pytest.approx(2 / 3, abs=1e-6)
    assert partial["score"] == pytest.approx(0.4 * 2 / 3, abs=1e-6)
    assert partial["status"] == "failed" and "Partial credit" in partial["output"]
    scores = sorted(t["score"] for t in tests if t["name"].startswith("3.3.2"))
    assert scores == [0, pytest.approx(2 / 3, abs=1e-6)]  # the wrapper's score does not leak between calls


def test_hidden_tests_never_show_their_output(pytester):
    run, data = _session(pytester, {"hidden/test_h.py": """
        from autograder.report import StudentFeedback
        from autograder.errors import StudentException

        @number("2.1.1")
        @visibility("after_published")
        def test_secret_assert(): assert [4, 8, 15] == [16, 23, 42], "SECRET-INPUT 4 8 15"

        @number("2.1.2")
        @visibility("after_published")
        def test_secret_student_error():
            raise StudentException("ValueError: SECRET-SHAPE (7, 13)")

        @number("2.1.3")
        @visibility("after_published")
        def test_feedback():
            raise StudentFeedback("prune_by_percentage: kept weights changed on a layer with ties")

        @number("2.1.4")
        @hide_errors("Check the sign convention")
        def test_hide_errors(): assert False, "SECRET-INPUT"

        @number("2.1.5")
        def test_undeclared_visibility(): pass
    """})
    text = json.dumps(data)
    assert "SECRET" not in text
    tests = _by_name(data)
    assert tests["2.1.3 test_feedback"]["output"] == (
        "prune_by_percentage: kept weights changed on a layer with ties")
    assert tests["2.1.4 test_hide_errors"]["output"] == "Check the sign convention"
    assert "exception" in tests["2.1.2 test_secret_student_error"]["output"]
    # a test in hidden/ is never visible before publication, whatever it declares
    assert tests["2.1.5 test_undeclared_visibility"]["visibility"] == "after_published"


def test_visible_total_is_printed_when_a_test_is_hidden(pytester):
    _, data = _session(pytester, {"visible/test_v.py": """
        @number("2.1.1")
        def test_visible(): pass
    """, "hidden/test_h.py": """
        @number("2.1.2")
        @visibility("hidden")
        def test_hidden(): assert False
    """}, rubric=ONLY_2_1)
    assert "Visible tests: 1 / 1 points" in data["output"]
    _, data = _session(pytester, {"visible/test_v.py": """
        @number("2.1.1")
        def test_visible(): pass
    """}, "--visibility", "visible", rubric=ONLY_2_1)
    assert "Visible tests" not in data["output"]
    assert "Autograded score: 1 / 1 points" in data["output"]


def test_expected_count_mismatch_is_a_visible_failure(pytester):
    _, data = _session(pytester, {"visible/test_c.py": """
        @number("2.1.1")
        def test_one(): pass
    """}, "--expected-count", "3", "--visibility", "visible")
    entry = [t for t in data["tests"] if "expected 3 tests but collected 1" in t["output"]]
    assert len(entry) == 1 and entry[0]["visibility"] == "visible"
    assert entry[0]["status"] == "failed"
    _, data = _session(pytester, {"visible/test_c.py": """
        @number("2.1.1")
        def test_one(): pass
    """}, "--expected-count", "1", "--visibility", "visible")
    assert not any("expected" in t["output"] for t in data["tests"])


def test_a_rubric_group_without_tests_is_a_failed_entry_worth_its_points(pytester):
    _, data = _session(pytester, {"visible/test_v.py": """
        @number("2.1.1")
        def test_visible(): pass
    """})
    gaps = [t for t in data["tests"] if t["extra_data"]["kind"] == "not_graded"]
    # 1.1 hidden (2), 2.1 hidden (1), 3.3 unit visible and hidden (2 + 2), 4.4 unit visible (5)
    assert sorted(t["max_score"] for t in gaps) == [1, 2, 2, 2, 5]
    assert all(t["output"].startswith("not graded:") for t in gaps)


def test_stage_selects_tests_by_folder(pytester):
    files = {"visible/test_u.py": """
        @number("3.3.1")
        def test_unit(): pass
    """, "train/test_t.py": """
        @number("3.3.2")
        def test_train(): pass
    """}
    _, data = _session(pytester, files, "--stage", "train")
    graded = [t for t in data["tests"] if t["extra_data"]["kind"] != "not_graded"]
    assert [t["name"] for t in graded] == ["3.3.2 test_train"]
    assert graded[0]["max_score"] == pytest.approx(4.0)  # 8 * 0.5, train_hidden = 0
    _, data = _session(pytester, files, "--stage", "unit")
    graded = [t for t in data["tests"] if t["extra_data"]["kind"] != "not_graded"]
    assert [t["name"] for t in graded] == ["3.3.1 test_unit"]


def test_an_interrupted_run_reports_the_rest_as_not_graded(pytester):
    _, data = _session(pytester, {"visible/test_x.py": """
        @number("2.1.1")
        def test_first(): assert False

        @number("2.1.2")
        def test_second(): pass
    """}, "-x", "--visibility", "visible")
    tests = _by_name(data)
    assert tests["2.1.2 test_second"]["output"].startswith("not graded:")
    assert tests["2.1.2 test_second"]["max_score"] == pytest.approx(0.5)


def test_a_test_without_number_is_an_internal_error_not_silence(pytester):
    _, data = _session(pytester, {"visible/test_n.py": """
        def test_unnumbered(): pass
    """}, "--visibility", "visible")
    entry = _by_name(data)["test_unnumbered"]
    assert entry["status"] == "failed" and "Internal grading error" in entry["output"]


def test_collection_error_is_reported(pytester):
    _, data = _session(pytester, {"visible/test_ok.py": """
        @number("2.1.1")
        def test_ok(): pass
    """, "visible/test_broken.py": "import no_such_module_here\n"},
        "--visibility", "visible", "--continue-on-collection-errors")
    tests = data["tests"]
    assert any("test_broken.py" in t["name"] and t["status"] == "failed" for t in tests)
    assert _by_name(data)["2.1.1 test_ok"]["status"] == "passed"


def test_leaderboard_value_reaches_the_results(pytester):
    _, data = _session(pytester, {"visible/test_l.py": """
        @leaderboard("accuracy")
        @number("2.1.1")
        def test_board(set_leaderboard_value=None):
            set_leaderboard_value(0.91)
    """}, "--visibility", "visible")
    assert data["leaderboard"] == [{"name": "accuracy", "value": 0.91, "order": "desc"}]


def test_no_results_file_without_the_option(pytester):
    pytester.makefile(".toml", rubric=RUBRIC)
    grading = pytester.path / "tests" / "grading"
    (grading / "visible").mkdir(parents=True)
    (grading / "conftest.py").write_text('pytest_plugins = ["autograder.plugin"]\n')
    (grading / "visible" / "test_a.py").write_text(
        HEADER + '@number("2.1.1")\ndef test_a(): pass\n')
    run = pytester.runpytest_inprocess("tests/grading", "-p", "no:cacheprovider",
                                       "--rubric", str(pytester.path / "rubric.toml"))
    run.stdout.fnmatch_lines(["*HW4 grade*", "*2.1*"])
    assert not list(pytester.path.rglob("results.json"))


def test_intake_notes_reach_the_students_summary(pytester):
    pytester.makefile(".toml", rubric=ONLY_2_1)
    grading = pytester.path / "tests" / "grading"
    (grading / "visible").mkdir(parents=True)
    (grading / "conftest.py").write_text('pytest_plugins = ["autograder.plugin"]\n')
    (grading / "visible" / "test_a.py").write_text(HEADER + '@number("2.1.1")\ndef test_a(): pass\n')
    submission = pytester.path / "upload" / "my_folder"
    submission.mkdir(parents=True)
    (submission / "lab1.py").write_text("")
    out = pytester.path / "results.json"
    pytester.runpytest_inprocess("tests/grading", "-p", "no:cacheprovider", "--visibility", "visible",
                                 "--rubric", str(pytester.path / "rubric.toml"),
                                 "--submission", str(pytester.path / "upload"), "--results", str(out))
    data = json.loads(out.read_text())
    validate_json(data)
    assert "Took `my_folder/lab1.py` as `lab1.py`" in data["output"]
    assert "`lab2.py` was not found" in data["output"]
