"""Worker: grade one submission in its own grader process, exactly as ``grade --out`` does.

``grade_one`` runs ``python -m autograder grade SUB --out F`` as a child process (its own
session, so a timeout kills its whole group, sandbox zygote included), captures everything it
prints into the submission's log, moves its results.json into place and writes the record last.
Every executor calls this same function: locally in a thread per job, on Slurm inside an array
task. Nothing of one submission reaches another's: each grade has its own process, sandbox and
intake copy, and the worker shares only the batch folder's paths.

Whatever happens, the submission ends with a valid results.json and a record saying how its
grade ended; a fault is that submission's row, never the batch's.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autograder import paths
from autograder.paths import SUBMISSION_FILES
from autograder.batch.keys import GradeOptions
from autograder.batch.store import (GRADED, GRADER_ERROR, MISSING, NO_FILES, TIMED_OUT,
                                    BatchDir, Outcome)

GRADER_FAULT_KINDS = ("internal_error", "not_graded")  # TestResult kinds that are the grader's


@dataclass(frozen=True)
class Task:
    """One submission to grade: plain data, so it pickles to a Slurm node."""

    id: str
    path: Path | None
    key: str
    out: Path  # the batch folder
    options: GradeOptions
    timeout: float


def grade_command(path: Path, out: Path, options: GradeOptions) -> list[str]:
    """The grader process's command line: the same ``grade`` a TA would type."""
    return [sys.executable, "-m", "autograder", "grade", str(path), "--out", str(out),
            *options.grade_arguments()]


def grade_one(task: Task, template: str | None = None) -> Outcome:
    """Grade ``task``'s submission into the batch folder and return its Outcome (also written
    as its record). Never raises for a fault of the submission or of its grader process.
    ``template``: the address of a zygote template (``zygote_template``) the grade may use."""
    store = BatchDir(task.out).make()
    start = time.monotonic()
    if task.path is None:
        outcome = Outcome(task.id, task.key, MISSING,
                          "the export's metadata lists this submission but has no folder for it")
        store.write_record(outcome)
        return outcome
    work = store.work(task.id)
    work.unlink(missing_ok=True)
    timed_out, returncode, error = _run_grader(task, work, store.log(task.id), template)
    seconds = time.monotonic() - start
    results = _read_results(work)
    if timed_out:
        status, note = TIMED_OUT, f"the grade took longer than {task.timeout:g} s and was killed"
    elif error:
        status, note = GRADER_ERROR, error
    elif results is None:
        status, note = GRADER_ERROR, (f"the grader process exited with status {returncode} "
                                      "without a results.json (see its log)")
    else:
        status, note = _judge_status(results, task.path)
    if results is None:
        _write_fallback(work, note, task.options.stage)
    os.replace(work, store.results(task.id))
    outcome = Outcome(task.id, task.key, status, note, round(seconds, 3), returncode)
    store.write_record(outcome)
    return outcome


def grade_chunk(tasks: list[Task]) -> list[Outcome]:
    """Several submissions one after another (one Slurm array task per chunk), sharing one
    zygote template when there are several."""
    if len(tasks) < 2:
        return [grade_one(task) for task in tasks]
    with zygote_template(tasks) as address:
        return [grade_one(task, address) for task in tasks]


@contextlib.contextmanager
def zygote_template(tasks: list[Task]):
    """A zygote template for the grader processes of ``tasks`` (one batch: one device, one
    folder; ``sandbox.template``): each one's sandbox is forked from it with torch already
    imported, instead of importing it again. Yields its address, or None where it did not start
    (every grade then starts its own zygote, as ``grade`` alone does). Stopped at the end, and
    killed with this process if it dies. The batch folder's ``template_log`` gets a line per
    zygote it forked or refused."""
    from autograder.sandbox.template import Template

    log = BatchDir(tasks[0].out).make().template_log
    # SIGTERM, not SIGKILL, when this process dies: the template then removes its folder.
    template = Template.start(tasks[0].options.device, log=log,
                              preexec_fn=lambda: _die_with_parent(signal.SIGTERM))
    try:
        yield template.address if template is not None else None
    finally:
        if template is not None:
            template.close()


def _run_grader(task: Task, work: Path, log: Path, template: str | None = None
                ) -> tuple[bool, int | None, str]:
    """Run the grader process; (timed out, exit status, error starting it)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    command = grade_command(task.path, work, task.options)
    env = None
    if template is not None:
        from autograder.sandbox.template import ENV
        env = {**os.environ, ENV: template}
    with open(log, "w", encoding="utf-8") as sink:
        sink.write(f"$ {' '.join(command)}\n")
        sink.flush()
        try:
            process = subprocess.Popen(command, cwd=paths.ROOT, stdin=subprocess.DEVNULL,
                                       stdout=sink, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as error:
            return False, None, f"could not start the grader process: {error}"
        try:
            return False, process.wait(timeout=task.timeout), ""
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return True, process.returncode, ""
        except BaseException:  # the batch is being stopped: take the grade down with it
            _kill_group(process)
            raise


def _resolve_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _resolve_prctl()  # resolved here: the forked child must not load libraries


def _die_with_parent(sig: int = signal.SIGKILL) -> None:
    """In the grader process before exec: be killed when the batch dies (Linux), so a killed
    batch leaves no grade running behind it."""
    if _PRCTL is not None:
        _PRCTL(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _read_results(path: Path) -> dict | None:
    """The grader's results.json if it is a complete, valid one; else None."""
    from autograder.report import validate_json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        validate_json(data)
    except Exception:  # missing, half-written or invalid: the grader's fault either way
        return None
    return data


def _judge_status(results: dict, path: Path) -> tuple[str, str]:
    """The status of a grade that finished: a grader fault in any test, no submission files
    at all (empty folder, unreadable zip), or graded (with the files intake missed, if any)."""
    faults = [t for t in results["tests"]
              if (t.get("extra_data") or {}).get("kind") in GRADER_FAULT_KINDS]
    if faults:
        return GRADER_ERROR, (f"{len(faults)} test(s) with an internal grading error or not "
                              f"graded, first {faults[0].get('number') or faults[0]['name']}")
    found, note = _intake_facts(path)
    if not found:
        return NO_FILES, note or "none of the submission files was found"
    return GRADED, note


def _intake_facts(path: Path) -> tuple[int, str]:
    """(how many of the four files intake finds, its first note): the same intake ``grade``
    ran, replayed here on a throwaway copy to name the row's problem."""
    from autograder.intake import IntakeError, collect

    with tempfile.TemporaryDirectory(prefix="hw4-batch-intake-") as tmp:
        try:
            intake = collect(path, Path(tmp))
        except IntakeError as error:
            return 0, getattr(error, "message", None) or str(error)
        except OSError as error:
            return 0, f"the submission cannot be read: {error}"
    if not intake.found:
        return 0, "none of " + ", ".join(SUBMISSION_FILES) + " was found in the submission"
    note = "missing: " + ", ".join(intake.missing) if intake.missing else ""
    return len(intake.found), note


def _write_fallback(path: Path, reason: str, stage: str) -> None:
    from autograder.results_writer import ResultsWriter
    from autograder.rubric import load_rubric

    stages = ("unit", "train") if stage == "all" else (stage,)
    try:
        rubric = load_rubric()
    except Exception:  # the fallback must not depend on a readable rubric
        rubric = None
    ResultsWriter(path).fallback(reason, rubric=rubric, stages=stages)
