"""Benchmark of ``python -m autograder batch`` (a script, not a test): throughput and overhead.

    .venv/bin/python benchmarks/batch_throughput.py [--n 6] [--stages unit all] [--all-n 2]

For each stage it builds a class of N distinct submissions (the reference, each with a one-line
comment of its own, so no grade is reused), then measures
- throughput, in submissions per minute, of ``batch --jobs 1`` and ``--jobs 2`` (``--force``,
  fresh folders), and the ratio between them (1.84 on 2 cores for the unit stage before the
  zygote template, 1.56 with it: one job gained the most, see the README);
- the overhead of ``batch --jobs 1`` against the sum of N single ``grade SUB --out F`` runs in
  fresh processes, each writing its results.json as the batch does (goal <= 5%);
- from the per-grade CPU seconds, the projected wall time of a class of 300 on a 16-core node
  and on a 10-node Slurm allocation of such nodes (perfect packing of grades on cores: a lower
  bound; Slurm's queue wait is not included).
Figures depend on what else the machine runs: say so when quoting them.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import cpu_seconds  # noqa: E402

CLASS_SIZE, NODE_CORES, NODES = 300, 16, 10


def make_class(folder: Path, n: int) -> Path:
    for i in range(n):
        sub = folder / f"student{i:03d}"
        shutil.copytree(ROOT / "reference", sub, ignore=shutil.ignore_patterns("__pycache__"))
        lab1 = sub / "lab1.py"
        lab1.write_text(lab1.read_text() + f"\n# submission {i}\n")
    return folder


def timed(command: list[str]) -> tuple[float, float]:
    """(wall, CPU seconds of the whole tree) of a command in a fresh process."""
    cpu = cpu_seconds()
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, cpu_seconds() - cpu


def batch(klass: Path, out: Path, stage: str, jobs: int) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    return timed([sys.executable, "-m", "autograder", "batch", str(klass), "--out", str(out),
                  "--stage", stage, "--jobs", str(jobs), "--device", "cpu", "--force"])


def measure(stage: str, n: int, work: Path) -> dict:
    klass = make_class(work / f"class-{stage}", n)
    # Like for like: the batch writes each submission's results.json (pictures included), as
    # `grade SUB --out F` does, so the single grades write theirs too.
    singles = [timed([sys.executable, "-m", "autograder", "grade", str(sub), "--stage", stage,
                      "--device", "cpu", "--out", str(work / f"single-{stage}-{sub.name}.json")])
               for sub in sorted(klass.iterdir())]
    one, _ = batch(klass, work / f"out-{stage}-1", stage, 1)
    two, _ = batch(klass, work / f"out-{stage}-2", stage, 2)
    single_wall = sum(w for w, _ in singles)
    cpu_per_grade = sum(c for _, c in singles) / n
    return {"stage": stage, "n": n, "per_min_1": 60 * n / one, "per_min_2": 60 * n / two,
            "ratio": one / two, "overhead": one / single_wall - 1, "single_wall": single_wall,
            "batch_1": one, "batch_2": two, "cpu_per_grade": cpu_per_grade,
            "node_min": CLASS_SIZE * cpu_per_grade / NODE_CORES / 60,
            "slurm_min": CLASS_SIZE * cpu_per_grade / (NODE_CORES * NODES) / 60}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="class size for the unit stage")
    parser.add_argument("--all-n", type=int, default=2, help="class size for the other stages")
    parser.add_argument("--stages", nargs="+", default=["unit", "all"],
                        choices=("unit", "train", "all"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hw4-batch-bench-") as tmp:
        rows = [measure(stage, args.n if stage == "unit" else args.all_n, Path(tmp))
                for stage in args.stages]
    print("| stage | N | subs/min, 1 job | subs/min, 2 jobs | ratio | batch vs sum of grades "
          "| CPU s per grade | 300 on 16 cores | 300 on 10 x 16 cores |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['n']} | {r['per_min_1']:.1f} | {r['per_min_2']:.1f} | "
              f"{r['ratio']:.2f} | {r['overhead']:+.1%} ({r['batch_1']:.1f} s vs "
              f"{r['single_wall']:.1f} s) | {r['cpu_per_grade']:.1f} | {r['node_min']:.0f} min | "
              f"{r['slurm_min']:.1f} min |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
