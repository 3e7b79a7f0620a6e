"""``python -m autograder batch SUBMISSIONS --out DIR``: grade a whole class.

Options map onto ``runner.run_batch``; the executor is chosen here. Exit status: 0 when every
submission has its row and none is a grader error or timeout (a submission with no files is a
row, not a fault of the batch), 1 when some are (their rows and the report say which), 2 when
SUBMISSIONS cannot be read or Slurm is asked for where it is absent, 130 when interrupted.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from autograder.batch.discovery import DiscoveryError
from autograder.batch.executors import (LocalExecutor, SlurmExecutor, SlurmResources,
                                        default_jobs, default_timeout, slurm_available)
from autograder.batch.keys import GradeOptions
from autograder.batch.runner import run_batch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Grade every submission of a Gradescope export (zip or folder) or of "
                          "a folder of submissions, each by its own grader process as `grade` "
                          "does; write per-submission results.json and logs, scores.csv, "
                          "report.md and report.html into DIR. Rerunning skips submissions "
                          "whose files and grader are unchanged.")
    parser.add_argument("submissions", help="a Gradescope export zip or folder, or a folder "
                                            "whose entries (folders or zips) are submissions")
    parser.add_argument("--out", required=True, help="the batch folder (created; resumable)")
    parser.add_argument("--stage", choices=("unit", "train", "all"), default="unit",
                        help="stages to grade (default: unit)")
    parser.add_argument("--jobs", "-j", type=int, default=None,
                        help="grades in flight at once (default: the cores available "
                             f"locally, {default_jobs()} here; on Slurm, the array's "
                             "parallelism, default 64)")
    parser.add_argument("--executor", choices=("local", "slurm"), default="local",
                        help="grade on this machine, or as a Slurm job array (default: local)")
    parser.add_argument("--against", default=None, metavar="PREVIOUS_DIR",
                        help="a previous batch folder: report what changed since, and reuse its "
                             "grades that are still current")
    parser.add_argument("--force", action="store_true", help="regrade every submission")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                        help="device for the student's code (default: cpu, as on Gradescope)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds one submission's grade may take before it is killed and "
                             "marked timed out (default: 300 for the unit stage, 650 otherwise)")
    parser.add_argument("--data", default=os.environ.get("HW4_DATA"),
                        help="training-stage dataset, as for grade (default: $HW4_DATA)")
    parser.add_argument("--checkpoint", default=os.environ.get("HW4_CHECKPOINT"),
                        help="training-stage checkpoint, as for grade (default: $HW4_CHECKPOINT)")
    slurm = parser.add_argument_group("Slurm (with --executor slurm)")
    slurm.add_argument("--slurm-partition", default=None, help="partition (default: the cluster's)")
    slurm.add_argument("--slurm-cpus", type=int, default=None,
                       help="CPUs per array task (default: from the measured cost of a grade)")
    slurm.add_argument("--slurm-mem-gb", type=int, default=None,
                       help="memory per array task in GB (default: from the measured cost)")
    slurm.add_argument("--slurm-time-min", type=int, default=None,
                       help="time limit per array task in minutes (default: from the measured "
                            "cost, times the chunk)")
    slurm.add_argument("--slurm-chunk", type=int, default=1,
                       help="submissions graded one after another per array task (default: 1)")


def make_executor(args: argparse.Namespace, out: Path):
    if args.executor == "local":
        return LocalExecutor(args.jobs or default_jobs())
    resources = SlurmResources.for_stage(args.stage, chunk=args.slurm_chunk, cpus=args.slurm_cpus,
                                         memory_gb=args.slurm_mem_gb,
                                         time_min=args.slurm_time_min,
                                         partition=args.slurm_partition,
                                         timeout=args.timeout)
    return SlurmExecutor(args.jobs or 64, resources, out / "slurm")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    if args.executor == "slurm" and (why := slurm_available()):
        print(f"batch: cannot use Slurm: {why}", file=sys.stderr)
        return 2
    options = GradeOptions(stage=args.stage, device=args.device, data=args.data,
                           checkpoint=args.checkpoint)
    timeout = args.timeout or default_timeout(args.stage)
    against = Path(args.against).resolve() if args.against else None
    if against is not None and not (against / "results").is_dir():
        print(f"batch: --against {args.against}: not a batch folder (no results/ in it)",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # a kill from a scheduler stops it as Ctrl-C does
    try:
        summary = run_batch(Path(args.submissions), out, options, make_executor(args, out),
                            timeout=timeout, force=args.force, against=against)
    except DiscoveryError as error:
        print(f"batch: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"batch: interrupted; what was graded is in {out} (rerun to continue)",
              file=sys.stderr)
        return 130
    total = len(summary.discovery.submissions)
    print(f"{total} submissions: {len(summary.graded)} graded now, {len(summary.reused)} "
          f"unchanged since their last grade; {len(summary.faults)} grader errors or timeouts.")
    for row in summary.faults:
        print(f"  {row.id}: {row.status}: {row.outcome.note if row.outcome else ''}")
    print(f"scores: {out / 'scores.csv'}\nreport: {out / 'report.html'} and report.md")
    return 1 if summary.faults else 0
