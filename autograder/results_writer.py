"""The one writer of a grade's results.json: placeholder, progress, final, fallback.

A ``ResultsWriter`` owns one path for one grade, and every write of it goes through that object:
- ``fallback(reason, ...)``: a valid file for a grade that has not finished (or failed), written
  before grading starts and on any failure (``autograder.gradescope``);
- ``begin(snapshot, pending)``: once collection is done, every selected test "not graded" until
  it completes;
- ``completed(at_once=...)`` / ``save_now()``: progress, as tests complete: at most once per
  ``CHECKPOINT_INTERVAL_S`` (a timer writes the last ones), at once around the training stage,
  whose tests are long and memory-hungry. A grade killed partway keeps what it graded;
- ``final(results)``: the post-processing steps (a late penalty, ...) applied in order, then the
  results, superseding every progress write; after it no other write happens.

Each write is validated against the results schema and atomic (a temporary file, then
``os.replace``), so a reader never sees half a file; a file that cannot be validated is
replaced by a fallback, so a valid file is always left behind. ``autograder.plugin`` makes one
from ``--results``, or uses the writer an embedding caller registered as a pytest plugin
(``autograder.grade.grade_submission``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from autograder.report import Results, TestResult, fallback_results, validate_json

# One progress write of about 100 tests costs ~20 ms, nearly all of it the schema validation:
# writing after every test would add seconds to a grade. Read at each write; a test may lower it.
CHECKPOINT_INTERVAL_S = 1.0
UNFINISHED_REASON = ("the grader stopped before this test ran (it was killed or ran out of "
                     "time); course staff can regrade")
UNFINISHED_NOTE = ("Grading did not finish: the grader stopped partway (it was killed or ran out "
                   "of time). The tests it graded keep their scores; the others are marked "
                   "\"not graded\", and course staff can regrade them.")


class ResultsWriter:
    """Every write of one results.json. ``post_process`` steps run on the final Results only.

    Thread-safe: progress writes come from the reports and from a timer thread.
    """

    def __init__(self, path: Path | str, *, post_process: Sequence[Callable[[Results], Results]] = ()):
        self.path = Path(path)
        self.post_process = tuple(post_process)
        self._lock = threading.Lock()
        self._snapshot: Callable[[], Results] | None = None  # the completed tests so far
        self._unsaved = False  # a test completed since the last progress write
        self._last_write = float("-inf")
        self._timer: threading.Timer | None = None
        self._finished = False  # once set, only ``final`` and ``fallback`` write
        self._progress_failed = False  # told staff already

    def fallback(self, reason: str, **kwargs) -> Path:
        """Write ``report.fallback_results(reason, **kwargs)``; if even that cannot be built or
        validated, a minimal hand-built document that always validates. Waits for a progress
        write in flight; a later one can only come from ``begin``/``completed``."""
        with self._lock:
            try:
                return write_results(fallback_results(reason, **kwargs), self.path)
            except Exception:  # the last line of defence
                return _atomic_write_json({
                    "score": 0, "execution_time": 0,
                    "output": f"Grading did not finish: {reason}.",
                    "output_format": "md", "visibility": "visible", "stdout_visibility": "hidden",
                    "tests": [{"score": 0, "max_score": 0, "status": "failed",
                               "name": "Autograder", "output": f"not graded: {reason}",
                               "visibility": "visible"}]}, self.path)

    def begin(self, snapshot: Callable[[], Results], pending: list[TestResult]) -> None:
        """Record the selected tests as not graded. ``snapshot()`` builds the Results of the
        tests completed so far (the others "not graded: UNFINISHED_REASON") at each progress
        write; ``pending`` are the placeholders used should that first write fail."""
        with self._lock:
            self._snapshot = snapshot
            if self._write_progress():
                return
        self.fallback("the grading run stopped before it finished", pending=pending)

    def completed(self, *, at_once: bool) -> None:
        """A test completed: write progress now (``at_once``) or within the interval."""
        with self._lock:
            self._unsaved = True
            self._save_progress(at_once=at_once)

    def save_now(self) -> None:
        """Write what is pending now: the next test may not come back (the training stage)."""
        with self._lock:
            self._save_progress(at_once=True)

    def stop(self) -> None:
        """No progress write after this one returns (a write in flight finishes first)."""
        with self._lock:
            self._finished = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def final(self, results: Results) -> Results:
        """Post-process, write and return the grade's Results. A Results that cannot be written
        leaves a fallback with each of its tests "not graded" and a staff line."""
        self.stop()
        for step in self.post_process:
            results = step(results)
        try:
            write_results(results, self.path)
        except Exception as error:  # never leave an invalid or missing file
            self.fallback(f"results could not be written ({error})", pending=list(results.tests))
            sys.stderr.write(f"[staff] results.json replaced by the fallback: {error!r}\n")
        return results

    def _save_progress(self, at_once: bool) -> None:
        """Lock held."""
        if self._finished or not self._unsaved or self._snapshot is None:
            return
        wait = self._last_write + CHECKPOINT_INTERVAL_S - time.monotonic()
        if at_once or wait <= 0:
            self._write_progress()
        elif self._timer is None:
            self._timer = threading.Timer(wait, self._on_timer)
            self._timer.daemon = True  # never keeps a finished process alive
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            self._save_progress(at_once=True)

    def _write_progress(self) -> bool:
        """Replace the file by the progress so far. A failure keeps the previous file, tells
        staff once on stderr, and never reaches the tests. Lock held."""
        self._last_write = time.monotonic()
        self._unsaved = False
        try:
            results = self._snapshot()
            write_results(dataclasses.replace(results, notes=results.notes + (UNFINISHED_NOTE,)),
                          self.path)
            return True
        except Exception as error:
            if not self._progress_failed:
                self._progress_failed = True
                sys.__stderr__.write(f"[staff] results.json could not be updated with the run's "
                                     f"progress (grading goes on): {error!r}\n")
            return False


def write_results(results: Results, path: Path | str) -> Path:
    """Validate, then write ``results`` to ``path`` atomically. Returns the path.
    ``ResultsWriter`` is its one caller in the engine."""
    data = results.to_json()
    validate_json(data)
    return _atomic_write_json(data, Path(path))


def _atomic_write_json(data: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
