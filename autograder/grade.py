"""The main job: grade one submission with the grading tests and return the Results.

``grade_submission`` runs pytest in this process on ``tests/grading`` with the grading plugin.
That is safe because the grading process never imports student code: every call into the
submission goes through the sandbox. The run ignores any pytest configuration file
(``-c /dev/null`` with the rootdir pinned to the engine's root), so nothing in the submission
or the working directory can change how it runs, and the Results come from the plugin,
never from pytest's exit code.

Command: ``python -m autograder grade [SUBMISSION] [--out results.json] [--stage ...]``;
``grade --list`` prints every grading test as it is scored (``list_tests``).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from autograder import paths
from autograder.errors import GraderError
from autograder.report import Results
from autograder.results_writer import ResultsWriter
from autograder.sandbox.limits import prepare_sandbox_user

DEFAULT_SUBMISSION = paths.REFERENCE_DIR


class _Capture:
    """A pytest plugin object that keeps the session's config to read its Results after."""

    config = None

    def pytest_configure(self, config):
        self.config = config


class _ProgressBar:
    """A pytest plugin object drawing one tqdm bar over the grading tests, on a terminal only.

    The training stage takes minutes and ``grade`` otherwise prints nothing until its table.
    The bar writes to a duplicate of the terminal's stderr taken before pytest starts, because
    pytest's output capture redirects fd 2 while tests run; results.json never sees it.
    """

    def __init__(self, stream):
        self.stream, self.bar = stream, None

    @classmethod
    def on_terminal(cls) -> "_ProgressBar | None":
        try:
            if not os.isatty(sys.stderr.fileno()):
                return None
            return cls(os.fdopen(os.dup(sys.stderr.fileno()), "w"))
        except (OSError, ValueError, AttributeError):  # no real stderr (embedded, redirected)
            return None

    def pytest_collection_finish(self, session) -> None:
        from tqdm import tqdm
        self.bar = tqdm(total=len(session.items), file=self.stream, unit="test", leave=False,
                        dynamic_ncols=True)

    def pytest_runtest_logstart(self, nodeid, location) -> None:
        if self.bar is not None:
            self.bar.set_description(nodeid.rsplit("::", 1)[-1][:40], refresh=True)

    def pytest_runtest_logfinish(self, nodeid, location) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.stream.close()


def pytest_args(src: Path, *, stage: str, device: str, visibility: str, data=None,
                checkpoint=None, expected_count=None, results: Path | None = None) -> list[str]:
    """The pytest command line of a grading run (also used by ``build`` to count tests)."""
    args = [str(paths.GRADING_TESTS_DIR), "-c", os.devnull, "--rootdir", str(paths.ROOT),
            "-p", "autograder.plugin", "-p", "no:cacheprovider",
            "--continue-on-collection-errors",
            "--submission", str(src), "--stage", stage, "--device", device,
            "--visibility", visibility]
    if data is not None:
        args += ["--hw4-data", str(data)]
    if checkpoint is not None:
        args += ["--hw4-checkpoint", str(checkpoint)]
    if expected_count is not None:
        args += ["--expected-count", str(expected_count)]
    if results is not None:
        args += ["--results", str(results)]
    return args


def grade_submission(src, *, out=None, stage: str = "unit", device: str = "cpu",
                     visibility: str = "all", data=None, checkpoint=None,
                     expected_count: int | None = None, verbose: bool = False,
                     post_process: Sequence[Callable[[Results], Results]] = (),
                     writer: ResultsWriter | None = None, pictures: bool = True) -> Results:
    """Grade the submission ``src`` (folder or .zip) and return its Results.

    ``stage``: "unit", "train" or "all"; ``visibility``: "all" or "visible" (the handout's
    tests only); ``data``/``checkpoint``: paths for the training stage (default: the embedded
    ones). ``post_process`` functions (e.g. a late penalty) run on the built Results, in order.
    ``out``: write results.json there (as progress while tests complete, then the final,
    post-processed Results), through a ``ResultsWriter`` made for it, or through ``writer``
    (one that already wrote a fallback, say: ``autograder.gradescope``); ``writer`` is used
    with its own path and post-processing, and ``out`` must then be None. Prints the
    per-problem table; ``verbose`` shows pytest's own output instead, in the staff view
    (tracebacks and ``[staff]`` lines included: for staff, e.g. Gradescope's hidden stdout).
    Raises GraderError if pytest produced no Results.
    ``pictures``: draw the visible tests' pictures into results.json (``autograder.pictures``);
    they are drawn only when a results.json is written.
    """
    import pytest

    if writer is not None and (out is not None or post_process):
        raise ValueError("grade_submission: give either writer or out/post_process, not both")
    if writer is None and out is not None:
        writer = ResultsWriter(out, post_process=post_process)
    capture = _Capture()
    args = pytest_args(Path(src), stage=stage, device=device, visibility=visibility, data=data,
                       checkpoint=checkpoint, expected_count=expected_count,
                       results=writer.path if writer is not None else None)
    if not pictures or writer is None:
        args += ["--pictures", "off"]
    args += ["-q", "--staff-log"] if verbose else ["-p", "no:terminal"]
    progress = None if verbose else _ProgressBar.on_terminal()  # verbose: pytest shows its own
    plugins = [capture] + ([writer] if writer else []) + ([progress] if progress else [])
    try:
        code = pytest.main(args, plugins=plugins)
    finally:
        if progress is not None:
            progress.close()
    from autograder.plugin import results_of

    results = results_of(capture.config) if capture.config is not None else None
    if results is None:
        raise GraderError(f"the grading run produced no results (pytest exit code {int(code)})")
    if writer is None:  # no file: the steps still apply to what is returned
        for step in post_process:
            results = step(results)
    # Verbose: the plugin's summary. Nothing graded: ``run`` says why in one line. An internal
    # grading error is ``run``'s one line too; its details are staff lines, shown under -v.
    if not verbose and not all_internal_errors(results):
        print(results.terminal_table())
    return results


def all_internal_errors(results: Results) -> bool:
    """Whether the grader graded nothing: every test an internal grading error (the sandbox
    could not start, say). A table of zeros would then blame nothing and help no one."""
    return bool(results.tests) and all(t.kind == "internal_error" for t in results.tests)


def internal_error_line(results: Results) -> str | None:
    """One line for a TA when any test hit an internal grading error: how many, and the last
    line of the first one's staff detail (its exception); None when there was none."""
    failed = [t for t in results.tests if t.kind == "internal_error"]
    if not failed:
        return None
    detail = next((line.strip() for entry in results.staff_log[:1]
                   for line in reversed(entry.splitlines()) if line.strip()), "no detail")
    return (f"grading failed: {len(failed)} of {len(results.tests)} tests hit an internal "
            f"grading error (not the submission's fault); the first: {detail}. "
            f"`grade -v` shows every detail.")


def refuse_source(src: Path) -> str | None:
    """Why ``grade`` must not grade ``src``, or None: a path that does not exist, or a folder
    holding several submissions (intake would take each file from the first folder that has
    it, mixing students' work), which is the ``batch`` command's job."""
    from autograder.intake import submission_folders

    if not src.exists():
        return f"no submission at {src} (no such file or folder)"
    if src.is_dir():
        several = submission_folders(src)
        if len(several) > 1:
            names = ", ".join(f"{p.name}/" if p.is_dir() else p.name for p in several[:6])
            more = f" and {len(several) - 6} more" if len(several) > 6 else ""
            return (f"{src} holds several submissions ({names}{more}); `grade` takes one. "
                    f"Grade them all with `python -m autograder batch {src} --out DIR`, or "
                    f"name one of them.")
    return None


def list_tests(*, stage: str = "all", visibility: str = "all") -> list:
    """Every grading test a run of this configuration scores, as ``autograder.scoring`` weighs
    it at collection (``TestMeta``: number, nodeid, stage, visibility, max_score), in run
    order. A collect-only run: no student code is touched."""
    import pytest

    from autograder.plugin import META

    class Collected:
        metas: list = []

        def pytest_collection_finish(self, session):
            Collected.metas = [item.stash[META] for item in session.items if META in item.stash]

    args = pytest_args(DEFAULT_SUBMISSION, stage=stage, device="cpu", visibility=visibility)
    code = pytest.main(args + ["--collect-only", "-p", "no:terminal"], plugins=[Collected()])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise GraderError(f"the grading tests could not be collected (pytest exit code {int(code)})")
    return Collected.metas


def rubric_table(metas) -> str:
    """``list_tests``'s tests as a plain-text table in problem order, one line per test, with
    the total, and the numbering rule: a training-stage test is numbered from ``.11``
    (``autograder.numbers``)."""
    from autograder.numbers import TRAINING_STAGE_FIRST, number_key

    rows = [("number", "file::function", "stage", "visibility", "max_score")]
    for meta in sorted(metas, key=lambda meta: number_key(meta.number or "?")):
        where = meta.nodeid.split("tests/grading/", 1)[-1]
        rows.append((meta.number or "?", where, meta.stage, meta.visibility,
                     f"{meta.max_score:.4g}" + (" (bonus)" if meta.bonus else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4]
             for row in rows]
    total = sum(m.max_score for m in metas if not m.bonus)
    bonus = sum(m.max_score for m in metas if m.bonus)
    lines.append(f"{len(metas)} tests, {total:.4g} points" + (f" + {bonus:.4g} bonus" if bonus else "")
                 + " (the rest of rubric.toml's points are graded by hand)")
    lines.append(f"A number is <problem>.<test>: unit-stage tests from .1, training-stage tests from "
                 f".{TRAINING_STAGE_FIRST} (autograder/numbers.py). Points: rubric.toml; expected "
                 "values: fixtures/expected/; thresholds: fixtures/calibration/.")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Grade a submission (a folder or .zip holding lab1.py, lab2.py, "
                          "lab3.py and answers.py) and print a per-problem table.")
    parser.add_argument("submission", nargs="?", default=str(DEFAULT_SUBMISSION),
                        help="folder or .zip to grade (default: the embedded reference "
                             "solution, reference/, which gets every point)")
    parser.add_argument("--out", default=None, help="also write Gradescope's results.json here")
    parser.add_argument("--stage", choices=("unit", "train", "all"), default=None,
                        help="unit tests only (the default of a grade), the training stage only, "
                             "or both (the default of --list)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                        help="device for the student's code: cpu (default, as on Gradescope, so "
                             "a hard-coded .cuda() fails here as it would there), cuda, or auto "
                             "(cuda when available)")
    parser.add_argument("--visible-only", action="store_true",
                        help="run only the visible tests, the ones the handout ships")
    parser.add_argument("--list", action="store_true",
                        help="grade nothing: print every grading test (number, file and function, "
                             "stage, visibility, max_score) as it is scored")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show pytest's output, tracebacks of failed tests included")
    parser.add_argument("--data", default=os.environ.get("HW4_DATA"),
                        help="training-stage dataset (.npz or CIFAR-10 folder; default: "
                             "$HW4_DATA, else the embedded one)")
    parser.add_argument("--checkpoint", default=os.environ.get("HW4_CHECKPOINT"),
                        help="training-stage checkpoint (default: $HW4_CHECKPOINT, else the "
                             "embedded one)")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when grading ran (whatever the score); 1 when the grader itself failed (one line
    on stderr); 2 when there is nothing to grade (a missing path, several submissions)."""
    visibility = "visible" if args.visible_only else "all"
    try:
        if args.list:
            print(rubric_table(list_tests(stage=args.stage or "all", visibility=visibility)))
            return 0
        refusal = refuse_source(Path(args.submission))
        if refusal is not None:
            print(f"grade: {refusal}", file=sys.stderr)
            return 2
        prepare_sandbox_user()  # a fresh machine: a missing user is created, else one clear line
        results = grade_submission(args.submission, out=Path(args.out) if args.out else None,
                                   stage=args.stage or "unit", device=args.device,
                                   visibility=visibility, data=args.data,
                                   checkpoint=args.checkpoint, verbose=args.verbose)
    except GraderError as error:
        print(f"grading failed: {error}", file=sys.stderr)
        return 1
    line = internal_error_line(results)
    if line is not None:
        print(line, file=sys.stderr)
        return 1
    return 0
