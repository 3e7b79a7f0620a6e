"""Benchmark of whole grades (a script, not a test): wall time, CPU time, peak memory.

    .venv/bin/python benchmarks/grade_time.py [--stage unit|train|all] [--runs 3] [SUBMISSION ...]

Each run is ``python -m autograder grade SUBMISSION --stage STAGE`` in a fresh process, so the
interpreter's start and every import are included, as on Gradescope. Default submissions: the
reference (every test passes) and the stubs (every test fails: the error paths). Reports, per
submission: the median and worst wall time, the CPU seconds of the whole process tree, the peak
summed RSS and PSS of all its processes, and the projected wall time on Gradescope's default half
vCPU (CPU seconds / 0.5: the grade is CPU-bound and a half vCPU runs one thread at half speed).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import MemorySampler, cpu_seconds  # noqa: E402

GRADESCOPE_CPUS = 0.5


def one_grade(submission: str, stage: str) -> tuple[float, float, MemorySampler]:
    """(wall seconds, CPU seconds, memory sampler) of one grade in a fresh process."""
    cpu_before = cpu_seconds()
    with MemorySampler() as memory:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "autograder", "grade", submission, "--stage", stage,
                        "--device", "cpu"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
    return wall, cpu_seconds() - cpu_before, memory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", nargs="*", default=["reference", "student"])
    parser.add_argument("--stage", choices=("unit", "train", "all"), default="unit")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; stage {args.stage}, "
          f"{args.runs} runs each")
    for submission in args.submissions:
        walls, cpus, rss, pss = [], [], 0, 0
        for _ in range(args.runs):
            wall, cpu, memory = one_grade(submission, args.stage)
            walls.append(wall)
            cpus.append(cpu)
            rss, pss = max(rss, memory.peak_rss), max(pss, memory.peak_pss)
        cpu = statistics.median(cpus)
        print(f"{submission:12} wall median {statistics.median(walls):6.1f} s (worst {max(walls):.1f}), "
              f"CPU {cpu:6.1f} s, peak RSS {rss / 2**20:6.0f} MiB, PSS {pss / 2**20:6.0f} MiB, "
              f"half vCPU ~{cpu / GRADESCOPE_CPUS:6.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
