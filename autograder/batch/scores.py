"""``scores.csv``: one row per submission, in a form a gradebook import takes.

Columns: ``submission_id, name, email, sid`` (several submitters of a group joined by "; "),
one column per problem (its autograded points), ``total`` (results.json's score, bonus and
adjustments included), ``max_score``, ``status`` (graded, no files, grader error, timed out,
missing, not graded) and ``note`` (why, in a line). A submission without a complete grade (a
grader error, a timeout) leaves its point cells empty rather than 0, so an import cannot
mistake a grader fault for a zero; its results.json still holds what was graded.
"""
from __future__ import annotations

import csv
import io

from autograder.batch.cohort import Row, problems_of
from autograder.batch.store import GRADED, NO_FILES, atomic_write_text

IDENTITY = ("submission_id", "name", "email", "sid")
TRAILER = ("total", "max_score", "status", "note")


def scores_table(rows: list[Row]) -> list[list[str]]:
    """The CSV's header and rows as strings."""
    problems = problems_of(rows)
    table = [list(IDENTITY) + problems + list(TRAILER)]
    for row in rows:
        sub = row.submission
        graded = row.results is not None and row.status in (GRADED, NO_FILES)
        by_problem = row.problem_scores()
        table.append([sub.id, sub.names, sub.emails, sub.sids]
                     + [_points(by_problem.get(p)) if graded else "" for p in problems]
                     + [_points(row.total) if graded else "",
                        _points(row.max_score) if graded else "", row.status,
                        row.outcome.note if row.outcome is not None else ""])
    return table


def write_scores(rows: list[Row], path) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(scores_table(rows))
    atomic_write_text(path, buffer.getvalue())


def _points(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".")
