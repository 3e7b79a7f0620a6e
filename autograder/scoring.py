"""Scoring: what each grading test is worth, read once at collection.

- ``read_meta`` reads a test's gradescope-utils decorators (``@number``, ``@weight``,
  ``@visibility``, ``@tags``, ``@hide_errors``, ``@leaderboard``) into a frozen ``TestMeta``,
  its stage from its folder (``train/`` or not) and its group (``hidden/`` or not).
- ``weigh`` divides each (problem, stage, group)'s points of ``rubric.toml`` among its tests by
  relative ``@weight`` (default 1), so a visible test is worth the same in a student's local
  visible run and on Gradescope.
- ``uncovered_groups`` names the rubric's groups no selected test covers: they are reported as
  failed entries worth their points, never dropped.

No pytest hook lives here: ``autograder.plugin`` calls these at collection.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from autograder.report import TestResult, not_graded
from autograder.rubric import Rubric

STAGE_ORDER = {"unit": 0, "train": 1}  # the order stages run in; a stage not listed runs last
HIDDEN_VISIBILITIES = ("hidden", "after_due_date", "after_published")
_DECORATOR_DEPTH = 20  # decorators stack: look this many ``__wrapped__`` down at most


@dataclass(frozen=True)
class TestMeta:
    """What the decorators and the test's folder say, read once at collection."""

    __test__ = False  # not a pytest test class, despite its name

    nodeid: str
    name: str
    number: str
    problem: str
    stage: str
    group: str
    visibility: str
    tags: tuple[str, ...]
    weight: float
    hide_errors: str | None
    leaderboard: tuple[str, str] | None  # (column, sort order)
    bonus: bool
    max_score: float = 0.0
    config_error: str = ""  # a grader-side problem with the test itself (no @number, ...)

    def placeholder(self) -> TestResult:
        """This test as "not graded" (the caller's reason is added by ``not_graded``)."""
        return TestResult(nodeid=self.nodeid, name=self.name, number=self.number,
                          problem=self.problem, score=0.0, max_score=self.max_score,
                          status="failed", visibility=self.visibility, tags=self.tags,
                          stage=self.stage, group=self.group, bonus=self.bonus, kind="not_graded")

    def as_data(self) -> dict:
        """Plain data that crosses from an xdist worker; ``TestMeta(**data)`` rebuilds it."""
        return asdict(self)


def stage_of_folders(folders: tuple[str, ...]) -> str:
    """The stage a test's folders below ``tests/grading`` give it: ``train/`` or the unit stage."""
    return "train" if "train" in folders else "unit"


def grading_folders(path: Path) -> tuple[str, ...]:
    """The folders of ``path`` below its last ``grading`` folder (all of them if none)."""
    parts = path.parts
    if "grading" in parts:
        return parts[len(parts) - parts[::-1].index("grading"):]
    return parts


def find_attribute(obj, attribute: str):
    """``attribute`` on the test function or any function it wraps (decorators stack)."""
    for holder in decorated_chain(obj):
        if attribute in holder.__dict__:
            return holder.__dict__[attribute]
    return None


def decorated_chain(obj):
    """``obj`` and every function it wraps through ``__wrapped__``, outermost first."""
    depth = 0
    while obj is not None and hasattr(obj, "__dict__") and depth < _DECORATOR_DEPTH:
        yield obj
        obj = getattr(obj, "__wrapped__", None)
        depth += 1


def read_meta(item, rubric: Rubric, rootpath: Path) -> TestMeta:
    """The frozen record of one test (max_score still 0: ``weigh`` shares the points out)."""
    obj = getattr(item, "obj", None)
    func = getattr(obj, "__func__", obj)  # methods: the function holds the decorators
    try:
        folders = grading_folders(item.path.relative_to(rootpath).parent)
    except ValueError:
        folders = grading_folders(item.path.parent)
    stage = stage_of_folders(folders)
    group = "hidden" if "hidden" in folders else "visible"
    number = find_attribute(func, "__number__")
    problem = rubric.problem_of(number) if number is not None else None
    errors = []
    if number is None:
        errors.append("has no @number")
    elif problem is None:
        errors.append(f"@number({number!r}) matches no problem of rubric.toml")
    weight = find_attribute(func, "__weight__")
    weight = 1.0 if weight is None else weight
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        errors.append(f"has an invalid @weight {weight!r}")
        weight = 1.0
    visibility = find_attribute(func, "__visibility__") or "visible"
    if group == "hidden" and visibility not in HIDDEN_VISIBILITIES:
        visibility = "after_published"  # a hidden test is never shown before publication
    doc = (getattr(func, "__doc__", None) or "").strip().splitlines()
    name = doc[0].strip() if doc else item.name
    column = find_attribute(func, "__leaderboard_column__")
    order = find_attribute(func, "__leaderboard_sort_order__") or "desc"
    return TestMeta(
        nodeid=item.nodeid, name=f"{number} {name}" if number else name,
        number=str(number or ""), problem=problem.number if problem else "", stage=stage,
        group=group, visibility=visibility,
        tags=tuple(str(t) for t in find_attribute(func, "__tags__") or ()),
        weight=float(weight), hide_errors=find_attribute(func, "__hide_errors__"),
        leaderboard=(column, order) if column else None,
        bonus=bool(problem and problem.bonus), config_error="; ".join(errors))


def weigh(metas: list[TestMeta], rubric: Rubric) -> list[TestMeta]:
    """Each test with its share of its group's points, by relative weight."""
    totals: dict[tuple, float] = {}
    for meta in metas:
        if meta.problem:
            key = (meta.problem, meta.stage, meta.group)
            totals[key] = totals.get(key, 0.0) + meta.weight
    weighed = []
    for meta in metas:
        if not meta.problem:
            weighed.append(meta)
            continue
        points = rubric.problem(meta.problem).group_points(meta.stage, meta.group)
        share = meta.weight / totals[(meta.problem, meta.stage, meta.group)]
        weighed.append(replace(meta, max_score=points * share))
    return weighed


def run_order(meta: TestMeta) -> int:
    """Sort key: the unit stage first, so that a training stage killed partway (out of memory,
    out of time) leaves every unit result saved."""
    return STAGE_ORDER.get(meta.stage, len(STAGE_ORDER))


def uncovered_groups(metas: list[TestMeta], rubric: Rubric, stages, groups) -> list[TestResult]:
    """A failed, not-graded entry for each rubric group of the run that no test covers."""
    covered = {(m.problem, m.stage, m.group) for m in metas if m.stage in stages and m.group in groups}
    missing = []
    for problem, stage, group, points in rubric.groups(stages, groups):
        if (problem.number, stage, group) not in covered:
            missing.append(not_graded(TestResult(
                nodeid=f"rubric::{problem.number}::{stage}::{group}",
                name=f"{problem.number} {problem.title} ({stage} stage, {group} tests)",
                number=problem.number, problem=problem.number, score=0.0, max_score=points,
                status="failed", stage=stage, group=group, bonus=problem.bonus),
                "no grading test covers this part of the problem; course staff have been told"))
    return missing
