"""The cohort: every submission of a batch with its outcome and results, read back as data.

``scores.csv``, the report and the regrade diff are all views of this one table, so they
always agree. Per-test entries are keyed by the test's number and name, the identity a
results.json gives a test that survives a regrade.
"""
from __future__ import annotations

from dataclasses import dataclass

from autograder.batch.discovery import Submission
from autograder.batch.store import BatchDir, Outcome


@dataclass(frozen=True)
class TestEntry:
    __test__ = False  # not a pytest test class, despite its name

    key: str  # "number name"
    problem: str
    score: float
    max_score: float
    passed: bool
    kind: str
    bonus: bool
    message: str  # the first line of the output shown for it


@dataclass(frozen=True)
class Row:
    submission: Submission
    outcome: Outcome | None  # None: not graded yet (a batch stopped before it)
    results: dict | None

    @property
    def id(self) -> str:
        return self.submission.id

    @property
    def status(self) -> str:
        return self.outcome.status if self.outcome is not None else "not graded"

    @property
    def total(self) -> float | None:
        return float(self.results["score"]) if self.results is not None else None

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests().values() if not t.bonus)

    def tests(self) -> dict[str, TestEntry]:
        return test_entries(self.results)

    def problem_scores(self) -> dict[str, float]:
        scores: dict[str, float] = {}
        for test in self.tests().values():
            scores[test.problem] = scores.get(test.problem, 0.0) + test.score
        return scores


def test_entries(results: dict | None) -> dict[str, TestEntry]:
    """{test key: entry} of a results.json (empty for None)."""
    entries = {}
    for test in (results or {}).get("tests", ()):
        extra = test.get("extra_data") or {}
        number, name = str(test.get("number", "")), str(test["name"])
        key = name if number and name.startswith(number) else f"{number} {name}".strip()
        entries[key] = TestEntry(
            key=key, problem=str(extra.get("problem") or _problem_of(test.get("number", ""))),
            score=float(test["score"]), max_score=float(test.get("max_score", 0.0)),
            passed=test.get("status") == "passed", kind=str(extra.get("kind", "")),
            bonus=bool(extra.get("bonus", False)),
            message=first_line(test.get("output", "")))
    return entries


def _problem_of(number: str) -> str:
    return ".".join(str(number).split(".")[:2]) or "?"


def first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip() and not line.startswith("```"):
            return line.strip()
    return ""


def load_cohort(store: BatchDir, submissions) -> list[Row]:
    """Rows for ``submissions`` in their order, from what ``store`` holds now."""
    return [Row(sub, store.record(sub.id), store.load_results(sub.id)) for sub in submissions]


def number_key(number: str):
    return tuple(int(p) if p.isdigit() else float("inf") for p in str(number).split("."))


def problems_of(rows: list[Row]) -> list[str]:
    """Every problem any row was graded on, in problem order."""
    seen = {problem for row in rows for problem in row.problem_scores()}
    return sorted(seen, key=number_key)


__all__ = ["Row", "TestEntry", "first_line", "load_cohort", "number_key", "problems_of",
           "test_entries"]
