"""What the red-team suite observes around one grade: the simulated Gradescope run, the score
per problem, what leaked into the outputs, and the processes and files an attack left behind.

Everything here runs in the trusted test process; nothing imports student code.
"""
from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from autograder.numbers import problem_number
from autograder.paths import GRADING_TESTS_DIR, PROVIDED_DIR, REFERENCE_DIR, ROOT, SUBMISSION_FILES

SANDBOX_USER = "hw4sandbox"
FORGED_MARK = "-".join(["FORGED", "BY", "REDTEAM"])  # what every forged results.json carries
MIN_LINE = 24  # shorter lines are too common to prove a leak


@dataclass
class Graded:
    """One run of ``python -m autograder gradescope --root ROOT``."""

    root: Path
    returncode: int | None  # None: killed at the outer timeout
    stdout: str
    stderr: str
    seconds: float
    results_text: str | None  # ROOT/results/results.json, None when absent

    @property
    def results(self) -> dict | None:
        try:
            return json.loads(self.results_text) if self.results_text is not None else None
        except ValueError:
            return None


def grade_gradescope(root: Path, *, cwd: Path, timeout: float) -> Graded:
    """Grade ROOT/submission as Gradescope would, in a subprocess of its own session.

    At ``timeout`` the whole session is killed (and, as root, every sandbox process).
    """
    command = [sys.executable, "-m", "autograder", "gradescope", "--root", str(root),
               "--stage", "unit", "--device", "cpu"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(ROOT)
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        returncode = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        returncode = None
    seconds = time.monotonic() - start
    results_path = root / "results" / "results.json"
    text = results_path.read_text(errors="replace") if results_path.is_file() else None
    return Graded(root, returncode, stdout.decode(errors="replace"),
                  stderr.decode(errors="replace"), seconds, text)


# -- scores ----------------------------------------------------------------------------------

def problem_of(test: dict) -> str:
    problem = (test.get("extra_data") or {}).get("problem")
    return problem or problem_number(test.get("number", "?"))


def by_problem(results: dict) -> dict[str, tuple[float, float]]:
    """{problem: (score, max_score)} summed over the tests of results.json."""
    table: dict[str, list[float]] = {}
    for test in results["tests"]:
        entry = table.setdefault(problem_of(test), [0.0, 0.0])
        entry[0] += float(test["score"])
        entry[1] += float(test.get("max_score", 0.0))
    return {problem: (score, top) for problem, (score, top) in table.items()}


def test_ids(results: dict) -> list[tuple[str, str]]:
    """(number, name) of every test, sorted: the collected tests a results.json carries."""
    return sorted((str(t.get("number", "")), str(t.get("name", ""))) for t in results["tests"])


# -- leaks -----------------------------------------------------------------------------------

def _lines(path: Path) -> set[str]:
    try:
        return {line.strip() for line in path.read_text(errors="replace").splitlines()}
    except OSError:
        return set()


def _distinctive(lines: set[str], known: set[str]) -> set[str]:
    return {line for line in lines - known if len(line) >= MIN_LINE}


def _submission_lines(submission: Path) -> set[str]:
    known: set[str] = set()
    for path in submission.iterdir():
        if path.is_file() and not path.is_symlink():
            known |= _lines(path)
    return known


def reference_only_lines(submission: Path) -> set[str]:
    """Lines of reference/ that the submission does not contain (what only a leak could show)."""
    known = _submission_lines(submission)
    for filename in SUBMISSION_FILES:
        known |= _lines(PROVIDED_DIR / filename)  # the stubs' text is public
    reference = set().union(*(_lines(REFERENCE_DIR / name) for name in SUBMISSION_FILES))
    return _distinctive(reference, known)


def _hidden_test_files() -> list[Path]:
    return sorted(p for hidden in (GRADING_TESTS_DIR / "hidden", GRADING_TESTS_DIR / "train" / "hidden")
                  if hidden.is_dir() for p in hidden.rglob("*.py"))


def hidden_test_lines(submission: Path) -> set[str]:
    """Lines of the hidden tests found nowhere public (visible tests, stubs, the submission)."""
    known = _submission_lines(submission)
    for public in GRADING_TESTS_DIR.rglob("*.py"):
        if "hidden" not in public.relative_to(GRADING_TESTS_DIR).parts:
            known |= _lines(public)
    hidden = set().union(set(), *(_lines(path) for path in _hidden_test_files()))
    return _distinctive(hidden, known)


def hidden_test_names() -> set[str]:
    """Names of the hidden test functions (``def test_...``)."""
    names = set()
    for path in _hidden_test_files():
        for line in _lines(path):
            if line.startswith("def test_"):
                names.add(line[len("def "):].split("(")[0])
    return names


def student_visible_text(results: dict) -> str:
    """What a student sees now: the top-level output and the visible tests' names and outputs."""
    parts = [str(results.get("output", ""))]
    for test in results["tests"]:
        if test.get("visibility", "visible") == "visible":
            parts += [str(test.get("name", "")), str(test.get("output", ""))]
    return "\n".join(parts)


def leaks(texts: dict[str, str], needles: set[str]) -> list[str]:
    """'<needle>' in <where>, for every needle found in every text (a few at most)."""
    found = []
    for where, text in texts.items():
        for needle in sorted(needles):
            if needle in text:
                found.append(f"{needle!r} in {where}")
    return found[:10]


# -- processes and files left behind ---------------------------------------------------------

def sandbox_uid() -> int | None:
    try:
        return pwd.getpwnam(SANDBOX_USER).pw_uid
    except KeyError:
        return None


def sandbox_uids() -> set[int]:
    """Every uid student code may run as: the named account, and the reserved uids a Sandbox
    takes when another concurrent grade holds that account (``autograder.sandbox.slots``)."""
    from autograder.sandbox import slots
    named = sandbox_uid()
    reserved = set(range(slots.SLOT_BASE, slots.SLOT_BASE + slots.SLOT_COUNT))
    return reserved | ({named} if named is not None else set())


def _carries(process: psutil.Process, marker: str) -> bool:
    try:
        if process.name().startswith(marker[:15]) or marker in " ".join(process.cmdline()):
            return True
        return process.environ().get("HW4RT_MARK") == marker
    except (psutil.Error, OSError):
        return False


def _serves_a_live_grade(process: psutil.Process, uid: int) -> bool:
    """Whether a sandbox process still belongs to a running grader (another grade on this
    machine): one of its ancestors is a zygote that is not itself the sandbox user's."""
    try:
        for parent in process.parents():
            if parent.uids().real != uid and "autograder.sandbox.zygote" in " ".join(parent.cmdline()):
                return True
    except psutil.Error:
        pass
    return False


def leftover_processes(marker: str) -> list[str]:
    """Kill, then describe, every process left by an attack: carrying ``marker``, or of the
    sandbox user with no live grader above it (other grades may share this machine)."""
    uids = sandbox_uids()
    me = os.getpid()
    found = []
    for process in psutil.process_iter():
        if process.pid == me:
            continue
        try:
            uid = process.uids().real
            orphan = uid in uids and not _serves_a_live_grade(process, uid)
        except psutil.Error:
            continue
        if orphan or _carries(process, marker):
            try:
                found.append(f"pid {process.pid} {process.name()!r} uid {process.uids().real} "
                             f"{' '.join(process.cmdline())[:120]!r}")
                process.kill()
            except psutil.Error:
                pass
    return found


def forged_files(candidates: list[Path]) -> list[Path]:
    """The candidates that exist and carry the forged mark."""
    forged = []
    for path in candidates:
        try:
            if path.is_file() and FORGED_MARK in path.read_text(errors="replace")[:100000]:
                forged.append(path)
        except OSError:
            pass
    return forged


def remove_marked_files(marker: str, folders: list[Path]) -> None:
    """Remove the files an attack named after its marker (the disk filler's) in ``folders``."""
    for folder in folders:
        for path in folder.glob(f"{marker}-*"):
            try:
                path.unlink()
            except OSError:
                pass
