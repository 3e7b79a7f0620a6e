"""``python -m autograder SUBCOMMAND``: one module per subcommand, imported only when used.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``; importing
one subcommand never imports the others.
"""
from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {  # name: (module, one-line help)
    "grade": ("autograder.grade", "grade a submission and print a per-problem table"),
    "gradescope": ("autograder.gradescope", "Gradescope entry point: grade /autograder/submission"),
    "build": ("autograder.build", "write dist/autograder.zip and dist/handout.zip"),
    "batch": ("autograder.batch.command", "grade a whole class: an export or folder of submissions"),
    "validate": ("autograder.validate", "prove the grading tests on reference, stubs and wrong submissions"),
    "evaluate": ("autograder.evaluate", "evaluate a checkpoint on a dataset"),
    "calibrate": ("autograder.calibrate", "calibrate the training-stage thresholds"),
    "prepare-data": ("autograder.prepare_data", "turn a CIFAR-10 folder into a class-balanced .npz"),
    "fixtures": ("autograder.fixtures", "regenerate fixtures/expected from reference/"),
    "extract": ("autograder.extract", "write the four files the grader builds from notebooks and a report"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder", description="Autograder for Homework 4.",
        epilog="Run 'python -m autograder SUBCOMMAND --help' for a subcommand's options.")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name, (_, summary) in SUBCOMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    return parser




def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        parser = _top_parser()
        if not argv:
            parser.print_help()
            return 2
        parser.parse_args(argv)  # prints the usage error, or the help, and exits
        return 2
    name = argv[0]
    module = importlib.import_module(SUBCOMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"python -m autograder {name}",
                                     description=SUBCOMMANDS[name][1])
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(argv[1:])) or 0)
