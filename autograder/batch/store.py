"""The batch folder: where each submission's results, log and record live, written atomically.

Layout of ``--out DIR``:
- ``results/<id>.json``: the submission's results.json, exactly as ``grade --out`` wrote it;
- ``logs/<id>.log``: everything its grader process printed (the per-problem table, staff lines);
- ``records/<id>.json``: its ``Outcome`` (status, key, seconds), written last: a record with
  the current key is the proof that the grade is complete, so a batch killed mid-grade regrades
  only what has no such record;
- ``work/``: in-flight outputs, moved into ``results/`` when a grade ends;
- ``zygote-template.log``: a line per sandbox zygote the batch's template forked or refused
  (``batch.worker.zygote_template``), appended by each run;
- ``scores.csv``, ``report.md``, ``report.html``, ``batch.json`` (the roster and options).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

# Statuses of a row. "no files": grade ran but found none of the four files (empty folder,
# corrupt zip); "missing": the export's metadata lists a submission its folders lack.
GRADED, NO_FILES, GRADER_ERROR, TIMED_OUT, MISSING = (
    "graded", "no files", "grader error", "timed out", "missing")
STATUSES = (GRADED, NO_FILES, GRADER_ERROR, TIMED_OUT, MISSING)


@dataclass(frozen=True)
class Outcome:
    """How one submission's grade ended. ``note`` says why, in a line, for the TA."""

    id: str
    key: str
    status: str
    note: str = ""
    seconds: float = 0.0
    returncode: int | None = None

    @classmethod
    def from_json(cls, data: dict) -> "Outcome":
        return cls(id=str(data["id"]), key=str(data["key"]), status=str(data["status"]),
                   note=str(data.get("note", "")), seconds=float(data.get("seconds", 0.0)),
                   returncode=data.get("returncode"))


@dataclass(frozen=True)
class BatchDir:
    root: Path

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    def results(self, sub_id: str) -> Path:
        return self.root / "results" / f"{sub_id}.json"

    @property
    def template_log(self) -> Path:
        return self.root / "zygote-template.log"

    def log(self, sub_id: str) -> Path:
        return self.root / "logs" / f"{sub_id}.log"

    def record_path(self, sub_id: str) -> Path:
        return self.root / "records" / f"{sub_id}.json"

    def work(self, sub_id: str) -> Path:
        return self.root / "work" / f"{sub_id}.results.json"

    @property
    def scores_csv(self) -> Path:
        return self.root / "scores.csv"

    @property
    def manifest(self) -> Path:
        return self.root / "batch.json"

    def make(self) -> "BatchDir":
        for sub in ("results", "logs", "records", "work"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        return self

    def record(self, sub_id: str) -> Outcome | None:
        """The stored outcome, or None if there is none or it cannot be read (then regrade)."""
        try:
            return Outcome.from_json(json.loads(self.record_path(sub_id).read_text("utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write_record(self, outcome: Outcome) -> None:
        atomic_write_text(self.record_path(outcome.id), json.dumps(asdict(outcome), indent=1))

    def load_results(self, sub_id: str) -> dict | None:
        try:
            return json.loads(self.results(sub_id).read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def current(self, sub_id: str, key: str) -> Outcome | None:
        """The stored outcome if it was made with ``key`` and its results file is there."""
        outcome = self.record(sub_id)
        if outcome is None or outcome.key != key:
            return None
        if outcome.status != "missing" and not self.results(sub_id).is_file():
            return None
        return outcome


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``: readers, and a
    batch killed mid-write, see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
