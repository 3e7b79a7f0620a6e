"""results.json as a record of progress: a grade killed partway keeps what it graded.

Grading runs go through real pytest sessions on small grading-test folders (the layout of
``test_plugin.py``). The killed runs are subprocesses whose grading test SIGKILLs its own
process, as the out-of-memory killer or the platform's timeout would; the results.json left
behind must be valid, carry the real scores of the tests completed before the kill, and mark
every other selected test "not graded" with the reason the plugin gives.
"""
from __future__ import annotations

import json

import pytest

from autograder import paths, results_writer
from autograder.report import validate_json
from test_plugin import lay_out

pytest_plugins = ["pytester"]

UNIT_TESTS = {"hidden/test_h.py": """
    @number("2.1.4")
    @visibility("after_published")
    def test_hidden(): assert False, "wrong"

    @number("2.1.5")
    @visibility("after_published")
    def test_hidden_pass(): pass
""", "visible/test_a.py": """
    @number("2.1.1")
    def test_pass(): pass

    @partial_credit(10)
    @number("3.3.1")
    def test_partial(set_score=None):
        set_score(4)
"""}
# Waits until the tests before it are on disk (the interval's timer writes them: no other test
# completes in between), then dies the way a killed grader does.
KILL_WHEN_SAVED = """
    import json, os, signal, time

    def saved(path, names) -> bool:
        try:
            tests = json.loads(open(path).read())["tests"]
        except (OSError, ValueError):
            return False
        done = {t["name"] for t in tests if t["extra_data"]["kind"] != "not_graded"}
        return set(names) <= done

    @number("2.1.2")
    def test_killed(request):
        path = request.config.getoption("results")
        deadline = time.monotonic() + 60
        while not saved(path, NAMES) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)

    @number("2.1.3")
    def test_after(): pass
"""
KILL_AT_ONCE = """
    import os, signal

    @number("3.3.6")
    def test_killed(): os.kill(os.getpid(), signal.SIGKILL)

    @number("3.3.7")
    def test_after(): pass
"""
# An interval no run reaches: only the training stage's own rules can write.
NO_TIMED_WRITES = ("import autograder.results_writer\n"
                   "autograder.results_writer.CHECKPOINT_INTERVAL_S = 1e9\n")


@pytest.fixture
def grader_env(monkeypatch):
    """Subprocess runs import the engine from this checkout."""
    monkeypatch.setenv("PYTHONPATH", str(paths.ROOT))


def _killed_run(pytester, files: dict, *args, conftest: str = "") -> dict:
    run = pytester.runpytest_subprocess(*lay_out(pytester, files, conftest=conftest), *args,
                                        timeout=120)
    assert run.ret == -9, run.stdout.str()[-2000:] + run.stderr.str()[-2000:]  # it was killed
    data = json.loads((pytester.path / "results.json").read_text())
    validate_json(data)
    return data


def _by_name(data) -> dict:
    return {t["name"]: t for t in data["tests"]}


def _assert_unfinished(test: dict) -> None:
    assert test["status"] == "failed" and test["score"] == 0
    assert test["extra_data"]["kind"] == "not_graded"
    assert test["output"] == f"not graded: {results_writer.UNFINISHED_REASON}"


def test_a_killed_grade_keeps_the_scores_of_the_tests_it_completed(pytester, grader_env):
    names = '{"2.1.1 test_pass", "3.3.1 test_partial", "2.1.4 test_hidden", "2.1.5 test_hidden_pass"}'
    data = _killed_run(pytester, {**UNIT_TESTS,
                                  "visible/test_z.py": KILL_WHEN_SAVED.replace("NAMES", names)})
    tests = _by_name(data)
    # 2.1: 4 points, half autograded, half of that visible: 1 point over three visible tests
    assert tests["2.1.1 test_pass"]["status"] == "passed"
    assert tests["2.1.1 test_pass"]["score"] == pytest.approx(1 / 3, abs=1e-6)
    assert tests["3.3.1 test_partial"]["score"] == pytest.approx(0.4 * 2, abs=1e-6)
    assert tests["3.3.1 test_partial"]["extra_data"]["kind"] == "passed"
    hidden = tests["2.1.4 test_hidden"]
    assert hidden["status"] == "failed" and hidden["extra_data"]["kind"] == "failed"
    assert tests["2.1.5 test_hidden_pass"]["score"] == pytest.approx(0.5, abs=1e-6)
    for name in ("2.1.2 test_killed", "2.1.3 test_after"):
        _assert_unfinished(tests[name])
        assert tests[name]["max_score"] == pytest.approx(1 / 3, abs=1e-6)
    assert results_writer.UNFINISHED_NOTE in data["output"]


def test_unit_results_are_saved_before_the_training_stage_starts(pytester, grader_env):
    # train/ sorts between hidden/ and visible/ by name; the unit stage still runs first.
    data = _killed_run(pytester, {**UNIT_TESTS, "train/test_z.py": KILL_AT_ONCE}, "--stage", "all",
                       conftest=NO_TIMED_WRITES)
    tests = _by_name(data)
    assert tests["2.1.5 test_hidden_pass"]["score"] == pytest.approx(0.5, abs=1e-6)
    assert tests["2.1.4 test_hidden"]["extra_data"]["kind"] == "failed"
    assert tests["2.1.1 test_pass"]["status"] == "passed"
    assert tests["3.3.1 test_partial"]["score"] == pytest.approx(0.4 * 2, abs=1e-6)
    # 3.3's training stage: 8 * 0.5 = 4 points over two tests
    for name in ("3.3.6 test_killed", "3.3.7 test_after"):
        _assert_unfinished(tests[name])
        assert tests[name]["max_score"] == pytest.approx(2, abs=1e-6)


def test_a_training_test_is_saved_as_soon_as_it_completes(pytester, grader_env):
    data = _killed_run(pytester, {"train/test_t.py": """
        @number("3.3.5")
        def test_trained(): pass
    """, "train/test_z.py": KILL_AT_ONCE}, "--stage", "train", conftest=NO_TIMED_WRITES)
    tests = _by_name(data)
    assert tests["3.3.5 test_trained"]["status"] == "passed"
    assert tests["3.3.5 test_trained"]["score"] == pytest.approx(4 / 3, abs=1e-6)  # 8 * 0.5 / 3
    for name in ("3.3.6 test_killed", "3.3.7 test_after"):
        _assert_unfinished(tests[name])


def test_a_failed_progress_write_keeps_the_previous_file_and_grading_goes_on(pytester, grader_env):
    # Every completion writes (interval 0); writes fail while the flag file exists.
    conftest = """
        import pathlib
        import autograder.results_writer

        FLAG = pathlib.Path(__file__).parent / "writes-fail"
        autograder.results_writer.CHECKPOINT_INTERVAL_S = 0
        _write = autograder.results_writer.write_results

        def flaky_write(results, path):
            if FLAG.exists():
                raise OSError(28, "No space left on device")
            return _write(results, path)

        autograder.results_writer.write_results = flaky_write
    """
    args = lay_out(pytester, {"visible/test_w.py": """
        import json, pathlib

        FLAG = pathlib.Path(__file__).parent.parent / "writes-fail"

        def graded(request) -> set:
            tests = json.loads(open(request.config.getoption("results")).read())["tests"]
            return {t["name"] for t in tests if t["extra_data"]["kind"] != "not_graded"}

        @number("2.1.1")
        def test_first(): FLAG.touch()

        @number("2.1.2")
        def test_second(request):  # the write after test_first failed: its file is kept
            assert graded(request) == set()

        @number("2.1.3")
        def test_third(request):
            assert graded(request) == set()
            FLAG.unlink()
    """}, conftest=conftest)
    run = pytester.runpytest_subprocess(*args, "--visibility", "visible", timeout=120)
    run.assert_outcomes(passed=3)
    staff = [line for line in run.stderr.lines if line.startswith("[staff]")]
    assert len(staff) == 1 and "No space left on device" in staff[0]
    data = json.loads((pytester.path / "results.json").read_text())
    validate_json(data)
    assert {t["name"] for t in data["tests"] if t["status"] == "passed"} == {
        "2.1.1 test_first", "2.1.2 test_second", "2.1.3 test_third"}
    assert results_writer.UNFINISHED_NOTE not in data["output"]


def test_a_completed_grade_is_the_same_whether_or_not_progress_was_written(pytester, monkeypatch):
    files = {**UNIT_TESTS, "visible/test_b.py": """
        @number("2.1.2")
        def test_skip(): pytest.skip("not today")

        @number("4.4.1")
        def test_bonus(): pass
    """}
    finals = []
    for interval in (0.0, 1e9):  # progress after every test; none after collection
        monkeypatch.setattr(results_writer, "CHECKPOINT_INTERVAL_S", interval)
        pytester.runpytest_inprocess(*lay_out(pytester, files))
        data = json.loads((pytester.path / "results.json").read_text())
        validate_json(data)
        del data["execution_time"]
        finals.append(data)
    assert finals[0] == finals[1]
    tests = _by_name(finals[0])
    assert tests["2.1.1 test_pass"]["score"] == pytest.approx(1 / 2, abs=1e-6)
    assert tests["4.4.1 test_bonus"]["status"] == "passed"
    assert tests["2.1.2 test_skip"]["extra_data"]["kind"] == "skipped"
    assert not any(results_writer.UNFINISHED_REASON in t["output"] for t in finals[0]["tests"])
    assert results_writer.UNFINISHED_NOTE not in finals[0]["output"]
