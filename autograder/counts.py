"""How many grading tests a run must collect, as ``build`` recorded it in a zip.

``build`` counts the tests of every configuration it ships (``"<stage>/<visibility>"``, e.g.
``"unit/all"``, ``"train/visible"``) and writes them to ``expected_counts.json`` at the root of
both zips. A run that collects another number has lost tests (a grading file that no longer
imports, a test renamed away), and the plugin reports that as a grader fault instead of
grading the rest as if nothing were missing. A checkout has no such file: nothing is checked.
"""
from __future__ import annotations

import json
from pathlib import Path

from autograder import paths

COUNTS_FILE = "expected_counts.json"


def recorded_count(stage: str, visibility: str = "all", root: Path = paths.ROOT) -> int | None:
    """The count recorded for this configuration, or None when this layout records none."""
    try:
        counts = json.loads((root / COUNTS_FILE).read_text(encoding="utf-8"))
        return int(counts[f"{stage}/{visibility}"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
