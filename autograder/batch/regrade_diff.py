"""The regrade diff: what changed between a previous batch (``--against DIR``) and this one.

A submission changed when its score on some test changed (a test that appears or disappears
counts, from or to nothing). Submissions are matched by id, tests by number and name. A
change of a test's max_score alone (a rubric weight whose problem the student got 0 on)
changes no student's score, so it is reported once for the class, not per submission.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autograder.batch.cohort import Row, test_entries
from autograder.batch.store import BatchDir

TOLERANCE = 1e-6


@dataclass(frozen=True)
class TestChange:
    __test__ = False

    test: str
    before: float | None  # None: the test was not in that grade
    after: float | None


@dataclass(frozen=True)
class SubmissionChange:
    id: str
    names: str
    before: float | None
    after: float | None
    tests: tuple[TestChange, ...]

    @property
    def delta(self) -> float:
        return (self.after or 0.0) - (self.before or 0.0)


@dataclass(frozen=True)
class RegradeDiff:
    against: str
    changed: tuple[SubmissionChange, ...]
    unchanged: int
    only_now: tuple[str, ...]  # ids graded now but not in the previous batch
    max_score_changes: tuple[TestChange, ...]  # (test, previous max, new max), class-wide


def regrade_diff(rows: list[Row], previous: Path) -> RegradeDiff:
    store = BatchDir(previous)
    changed, only_now, unchanged = [], [], 0
    max_changes: dict[str, TestChange] = {}
    for row in rows:
        before_results = store.load_results(row.id)
        if before_results is None:
            only_now.append(row.id)
            continue
        before, after = test_entries(before_results), row.tests()
        tests = []
        for key in sorted(set(before) | set(after)):
            old = before[key].score if key in before else None
            new = after[key].score if key in after else None
            if old is None or new is None or abs(old - new) > TOLERANCE:
                tests.append(TestChange(key, old, new))
            if key in before and key in after and \
                    abs(before[key].max_score - after[key].max_score) > TOLERANCE:
                max_changes[key] = TestChange(key, before[key].max_score, after[key].max_score)
        if tests:
            changed.append(SubmissionChange(row.id, row.submission.names,
                                            float(before_results["score"]), row.total,
                                            tuple(tests)))
        else:
            unchanged += 1
    return RegradeDiff(str(previous), tuple(changed), unchanged, tuple(only_now),
                       tuple(max_changes[k] for k in sorted(max_changes)))
