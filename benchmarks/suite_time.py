"""Benchmark of the project's own test command (a script, not a test): where its time goes.

    .venv/bin/python benchmarks/suite_time.py [--out DIR] [-- PYTEST ARGS...]

Runs the README's test command (``python -m pytest``, the xdist workers of ``pytest.ini``) with
a small plugin that records, per test and per worker, the wall time and the CPU time of the
worker and of every process it waited for (grades, zygotes, subprocesses), then prints:
- pytest's summary line and its FAILED / ERROR lines (its whole output is kept as DIR/pytest.txt);
- the whole run's wall time and the CPU time of all its processes (goal: under 6 minutes of
  wall time on a 2-core machine; the CPU time over the cores is the floor no schedule beats);
- per test module, CPU and wall seconds, the heaviest first;
- per worker, the modules in the order it ran them, with the time each ended.
A module's fixtures count in its first test; a sandbox zygote's CPU counts once it is reaped.
Figures depend on what else the machine runs: say so when quoting them.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDS_ENV = "HW4_SUITE_TIME_RECORDS"


# -- the plugin, loaded into each pytest worker as ``-p benchmarks.suite_time`` ---------------

def _cpu_seconds() -> float:
    own, waited = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime


_since: list[float] = []


def pytest_runtest_logstart(nodeid, location):
    if not _since:
        _since[:] = [_cpu_seconds(), time.monotonic()]


def pytest_runtest_logfinish(nodeid, location):
    folder = os.environ.get(RECORDS_ENV)
    if not folder or not _since:
        return
    cpu, wall = _cpu_seconds(), time.monotonic()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(Path(folder) / f"{worker}.jsonl", "a") as records:
        records.write(json.dumps({"test": nodeid, "cpu": cpu - _since[0], "wall": wall - _since[1]}) + "\n")
    _since[:] = [cpu, wall]


# -- the script --------------------------------------------------------------------------------

def _report(folder: Path, wall: float, cpu: float) -> str:
    by_module_cpu, by_module_wall = collections.Counter(), collections.Counter()
    timelines = {}
    for path in sorted(folder.glob("*.jsonl")):
        if path.stem == "main" and len(list(folder.glob("gw*.jsonl"))):
            continue  # the controller also sees the workers' reports
        elapsed, timeline = 0.0, []
        for line in path.read_text().splitlines():
            record = json.loads(line)
            module = record["test"].split("::")[0]
            by_module_cpu[module] += record["cpu"]
            by_module_wall[module] += record["wall"]
            elapsed += record["wall"]
            if timeline and timeline[-1][0] == module:
                timeline[-1][1] = elapsed
            else:
                timeline.append([module, elapsed])
        timelines[path.stem] = timeline
    lines = [f"whole run: {wall:.0f} s wall ({wall / 60:.1f} min), {cpu:.0f} CPU s in all its "
             f"processes ({cpu / max(os.cpu_count() or 1, 1):.0f} s over {os.cpu_count()} cores)",
             "", f"{'CPU s':>8} {'wall s':>8}  module"]
    for module, seconds in by_module_cpu.most_common():
        lines.append(f"{seconds:8.1f} {by_module_wall[module]:8.1f}  {module}")
    for worker, timeline in timelines.items():
        lines += ["", f"{worker}: " + ", ".join(f"{Path(m).stem} ({t:.0f} s)" for m, t in timeline
                                               if by_module_wall[m] >= 5)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the per-test records in this folder")
    parser.add_argument("pytest_args", nargs="*", help="after --: more arguments for pytest")
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="hw4-suite-time-"))
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jsonl"):
        old.unlink()
    env = {**os.environ, RECORDS_ENV: str(folder),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "benchmarks.suite_time",
                           *args.pytest_args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    (folder / "pytest.txt").write_text(done.stdout)
    output = done.stdout.strip().splitlines()
    print(output[-1] if output else "(no pytest output)")
    for line in output:  # -ra's short summary: which tests failed, and why, in one line each
        if line.startswith(("FAILED ", "ERROR ")):
            print(line)
    print(f"(pytest's whole output: {folder / 'pytest.txt'})")
    print(_report(folder, wall, cpu))
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
