"""A grader fault is never the student's fault: a child that dies in a way the grader cannot pin on
the student is run once more, and a death of the runtime itself is an internal error.

Regression for a full grade of the reference that, under load, lost points to "`importing lab2.py`
ended the process (exit code 1)": OpenMP's runtime exits with status 1 when it cannot start a
thread, as under a process-count limit that concurrent grades share through the sandbox user.
"""
import textwrap

import pytest

from autograder.errors import Crashed, GraderError, NoResult, TimedOut
from autograder.sandbox import Limits, Sandbox
from autograder.sandbox.client import runtime_failure
from autograder.sandbox.limits import MiB

LAB1 = '''
import os, sys

def exits():
    os._exit(1)

def runtime_dies():
    print("libgomp: Thread creation failed: Resource temporarily unavailable", file=sys.stderr,
          flush=True)
    os._exit(1)

def answer():
    return 42
'''


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submission")
    (folder / "lab1.py").write_text(textwrap.dedent(LAB1))
    with Sandbox(folder, limits=Limits(memory=512 * MiB)) as box:
        box.start()
        yield box


def call(box, fn):
    return box.run("selftest.call", {"module": "lab1", "fn": fn, "args": []}, timeout=20.0)


def test_a_students_own_exit_is_retried_once_then_blamed_on_the_student(sandbox):
    before = sandbox.retries
    with pytest.raises(NoResult, match="exit code 1"):
        call(sandbox, "exits")
    assert sandbox.retries == before + 1


def test_a_runtime_that_dies_twice_is_an_internal_error_not_the_students(sandbox):
    before = sandbox.retries
    with pytest.raises(GraderError, match="runtime failed twice.*libgomp: Thread creation failed"):
        call(sandbox, "runtime_dies")
    assert sandbox.retries == before + 1


def test_a_death_that_does_not_recur_costs_the_student_nothing(sandbox, monkeypatch):
    """The first attempt dies as a machine fault would (killed from outside); the retry's result
    is the call's result."""
    real, attempts = sandbox._run_once, []

    def dies_once(*args, **kwargs):
        attempts.append(args)
        if len(attempts) == 1:
            error = NoResult("The process running your code was killed from outside.")
            error.indeterminate = True
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(sandbox, "_run_once", dies_once)
    assert call(sandbox, "answer").values["value"] == 42
    assert len(attempts) == 2


@pytest.mark.parametrize("error", [TimedOut("too slow"), Crashed("wrote a file over the limit")])
def test_deaths_by_our_own_limits_are_not_retried(sandbox, monkeypatch, error):
    attempts = []

    def dies(*args, **kwargs):
        attempts.append(args)
        raise error

    monkeypatch.setattr(sandbox, "_run_once", dies)
    with pytest.raises(type(error)):
        call(sandbox, "answer")
    assert len(attempts) == 1


def test_runtime_failure_reads_the_runtimes_own_words():
    assert runtime_failure("step 1\nOMP: Error #34: System unable to allocate necessary resources\n") \
        == "OMP: Error #34: System unable to allocate necessary resources"
    assert runtime_failure("loss 0.5\nTraceback ...\nValueError: shapes\n") is None
