"""Gradescope's entry point: grade ``ROOT/submission`` into ``ROOT/results/results.json``.

``ROOT`` is ``/autograder`` on Gradescope; ``--root`` or ``$AUTOGRADER_ROOT`` overrides it so
tests can simulate the layout. Whatever happens, a valid results.json is left behind:
- before grading, a fallback ("not graded: the grader stopped before finishing") is written,
  so even a killed process leaves a valid file;
- grading replaces it atomically with the real results;
- any exception writes a fallback that names the failure.
The expected number of grading tests, recorded by ``build`` in ``expected_counts.json`` at the
engine's root, is checked when that file is present (``autograder.counts``). The training stage
runs on the course's data and checkpoint when the zip ships them (``build --data``,
``autograder.course_data``), else on the embedded ones; ``HW4_DATA`` / ``HW4_CHECKPOINT`` win.

As root, student code must not read the results folder, the submission metadata or the engine's
secrets: they are registered with the sandbox, which covers them in each call's private mount
namespace; where the platform refuses mounts they are made unreadable to others here (as
setup.sh does). After grading, every process left of this grade's sandbox uids is killed, and
none of a uid another grade holds now (``sandbox.slots``): on Gradescope this is the only grade
on the machine, whose uid is the sandbox user's.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from autograder import counts, course_data, paths
from autograder.results_writer import ResultsWriter

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Grade ROOT/submission and write ROOT/results/results.json, as "
                          "Gradescope's run_autograder does.")
    parser.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"),
                        help="the /autograder folder (default: $AUTOGRADER_ROOT or /autograder)")
    parser.add_argument("--stage", choices=("unit", "train", "all"),
                        default=os.environ.get("HW4_STAGE", "all"),
                        help="stages to run (default: $HW4_STAGE or all)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")


def run(args: argparse.Namespace) -> int:
    """0 whenever a valid results.json was written (graded or fallback), 1 otherwise."""
    root = Path(args.root)
    out = root / "results" / "results.json"
    stages = ("unit", "train") if args.stage == "all" else (args.stage,)
    try:
        from autograder.rubric import load_rubric

        rubric = load_rubric()
    except Exception:
        rubric = None
    writer = ResultsWriter(out)  # every write of results.json, the fallbacks included
    try:
        writer.fallback("the grader stopped before finishing", rubric=rubric, stages=stages)
    except Exception:
        traceback.print_exc()
        return 1
    try:
        _hide_secrets(root)
        from autograder.grade import grade_submission

        data, checkpoint = course_data.shipped()
        grade_submission(root / "submission", writer=writer, stage=args.stage, device=args.device,
                         data=os.environ.get("HW4_DATA") or data,
                         checkpoint=os.environ.get("HW4_CHECKPOINT") or checkpoint,
                         expected_count=counts.recorded_count(args.stage), verbose=True)
    except BaseException as error:  # even KeyboardInterrupt/SystemExit: leave a valid file
        traceback.print_exc()
        writer.fallback(f"internal grading error ({type(error).__name__})", rubric=rubric,
                       stages=stages)
        if isinstance(error, KeyboardInterrupt):
            raise
    finally:
        _sweep_sandbox_user()
    sys.stdout.flush()
    return 0


def _hide_secrets(root: Path) -> None:
    """Register what student code must not see besides the engine's own secrets: everything in
    ROOT but the engine's source and the submission (the results, Gradescope's metadata). As
    root where mounts are refused, make all of it unreadable to others (idempotent)."""
    from autograder.sandbox import limits, mounts, secrets

    engine = os.path.realpath(paths.ROOT)
    for entry in sorted(root.iterdir()) if root.is_dir() else ():
        real = os.path.realpath(entry)
        if entry.name != "submission" and not (engine == real or engine.startswith(real + os.sep)):
            secrets.hide_also(real)
    if limits.is_root() and not mounts.available():
        secrets.restrict_permissions(secrets.secret_paths())


def _sweep_sandbox_user() -> None:
    try:
        from autograder.sandbox import sweep_sandbox_user

        sweep_sandbox_user()
    except Exception:
        traceback.print_exc()
