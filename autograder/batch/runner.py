"""The batch run: discover, skip what is already graded, grade the rest, write the tables.

``run_batch`` is the whole of ``python -m autograder batch``. A submission is reused, not
regraded, when its record in the batch folder carries the current key (its files and the
grader unchanged); failing that, when the ``--against`` batch holds a grade with that key (its
results, log and record are copied). ``force`` regrades all. ``scores.csv`` is rewritten as
each grade ends; the reports are written at the end, and also when the batch is interrupted,
from what is graded by then.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder.batch.cohort import Row
from autograder.batch.discovery import Discovery, discover
from autograder.batch.keys import GradeOptions, grade_key, grader_key, submission_key
from autograder.batch.regrade_diff import regrade_diff
from autograder.batch.report import cohort_stats, render_html, render_markdown
from autograder.batch.scores import write_scores
from autograder.batch.store import GRADER_ERROR, TIMED_OUT, BatchDir, atomic_write_text
from autograder.batch.worker import Task


@dataclass
class BatchSummary:
    discovery: Discovery
    graded: list[str] = field(default_factory=list)  # ids graded by this run
    reused: list[str] = field(default_factory=list)  # ids whose stored grade was current
    rows: list[Row] = field(default_factory=list)

    @property
    def faults(self) -> list[Row]:
        return [row for row in self.rows if row.status in (GRADER_ERROR, TIMED_OUT)]


def plan(discovery: Discovery, store: BatchDir, options: GradeOptions, *, timeout: float,
         force: bool = False, against: Path | None = None) -> tuple[list[Task], list[str]]:
    """(tasks to grade, ids reused). Copies current grades of ``against`` into ``store``."""
    grader = grader_key(options)
    tasks, reused = [], []
    previous = BatchDir(against) if against is not None else None
    for sub in discovery.submissions:
        key = grade_key(grader, submission_key(sub.path))
        if not force and store.current(sub.id, key) is not None:
            reused.append(sub.id)
        elif not force and previous is not None and previous.current(sub.id, key) is not None:
            _copy_grade(previous, store, sub.id)
            reused.append(sub.id)
        else:
            tasks.append(Task(sub.id, sub.path, key, store.root, options, timeout))
    return tasks, reused


def _copy_grade(source: BatchDir, dest: BatchDir, sub_id: str) -> None:
    for src, dst in ((source.results(sub_id), dest.results(sub_id)),
                     (source.log(sub_id), dest.log(sub_id))):
        if src.is_file():
            shutil.copyfile(src, dst)
    dest.write_record(source.record(sub_id))  # last: the copy is complete before it counts


def run_batch(src: Path, out: Path, options: GradeOptions, executor, *, timeout: float,
              force: bool = False, against: Path | None = None,
              progress: bool = True) -> BatchSummary:
    """Grade every submission of ``src`` into ``out`` with ``executor``; see the module doc.
    Raises DiscoveryError when ``src`` cannot be read; KeyboardInterrupt after writing the
    reports of what was graded."""
    store = BatchDir(Path(out)).make()
    discovery = discover(src, store.root / "export")
    tasks, reused = plan(discovery, store, options, timeout=timeout, force=force,
                         against=against)
    _write_manifest(store, discovery, options, executor)
    summary = BatchSummary(discovery, reused=reused)
    rows = {sub.id: Row(sub, store.record(sub.id), store.load_results(sub.id))
            for sub in discovery.submissions}
    bar = _progress_bar(len(discovery.submissions), len(reused), progress)
    errors = sum(row.status in (GRADER_ERROR, TIMED_OUT) for row in rows.values())
    bar.set_postfix_str(f"grader errors: {errors}")
    try:
        for outcome in executor.run(tasks):
            sub = rows[outcome.id].submission
            rows[outcome.id] = Row(sub, outcome, store.load_results(outcome.id))
            summary.graded.append(outcome.id)
            errors += outcome.status in (GRADER_ERROR, TIMED_OUT)
            bar.set_postfix_str(f"grader errors: {errors}", refresh=False)
            bar.update(1)
            write_scores(list(rows.values()), store.scores_csv)
    finally:
        bar.close()
        summary.rows = list(rows.values())
        write_reports(store, summary.rows, discovery, against)
    return summary


def write_reports(store: BatchDir, rows: list[Row], discovery: Discovery,
                  against: Path | None) -> None:
    """scores.csv, report.md and report.html from ``rows``."""
    write_scores(rows, store.scores_csv)
    diff = regrade_diff(rows, against) if against is not None else None
    notes = list(discovery.notes)
    if discovery.ignored:
        notes.append("Not submissions, ignored: " + ", ".join(discovery.ignored))
    stats = cohort_stats(rows, diff=diff, notes=notes)
    atomic_write_text(store.root / "report.md", render_markdown(stats))
    atomic_write_text(store.root / "report.html", render_html(stats))


def _write_manifest(store: BatchDir, discovery: Discovery, options: GradeOptions,
                    executor) -> None:
    roster = [{"id": s.id, "path": str(s.path) if s.path else None,
               "submitters": [asdict(p) for p in s.submitters], "created_at": s.created_at}
              for s in discovery.submissions]
    atomic_write_text(store.manifest, json.dumps(
        {"source": discovery.source, "options": asdict(options),
         "executor": getattr(executor, "name", "?"), "submissions": roster}, indent=1))


def _progress_bar(total: int, done: int, enabled: bool):
    """A tqdm bar over submissions, drawn only on a terminal (never in a log or CI output)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="submission", file=sys.stderr,
                disable=not (enabled and sys.stderr.isatty()), dynamic_ncols=True)
