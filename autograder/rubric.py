"""The rubric: points per problem, and how they split between stages and hidden tests.

``rubric.toml`` is the only place that holds points. A problem's autograded points go to the
unit stage (``1 - train``) and the training stage (``train``); each stage's points go to its
hidden tests (``hidden``, or ``train_hidden`` for the training stage) and its visible tests
(the rest). ``autograder.scoring.weigh`` divides a group's points among the group's tests by
relative weight.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autograder.compat import tomllib
from autograder.errors import GraderError
from autograder.paths import RUBRIC_PATH

STAGES = ("unit", "train")
GROUPS = ("visible", "hidden")
_KEYS = {"title", "points", "autograded", "train", "hidden", "train_hidden", "bonus"}


@dataclass(frozen=True)
class Problem:
    """One problem of HOMEWORK.md, e.g. number "2.3". Shares are in [0, 1]."""

    number: str
    title: str
    points: float
    autograded: float
    train: float
    hidden: float
    train_hidden: float
    bonus: bool

    @property
    def autograded_points(self) -> float:
        return self.points * self.autograded

    def stage_points(self, stage: str) -> float:
        """Autograded points given by ``stage`` ("unit" or "train")."""
        share = self.train if stage == "train" else 1.0 - self.train
        return self.autograded_points * share

    def group_points(self, stage: str, group: str) -> float:
        """Points of the (stage, group) group; group is "visible" or "hidden"."""
        hidden = self.train_hidden if stage == "train" else self.hidden
        share = hidden if group == "hidden" else 1.0 - hidden
        return self.stage_points(stage) * share


@dataclass(frozen=True)
class Rubric:
    problems: tuple[Problem, ...]

    def __post_init__(self):
        object.__setattr__(self, "_by_number", {p.number: p for p in self.problems})

    def problem(self, number: str) -> Problem:
        """The problem with this exact number; KeyError if none."""
        return self._by_number[number]

    def problem_of(self, test_number: str) -> Problem | None:
        """The problem a test number belongs to: "2.3.1" and "2.3" belong to "2.3"."""
        from autograder.numbers import prefixes

        for prefix in prefixes(test_number):  # the longest wins: "1.10.2" is 1.10, not 1.1
            problem = self._by_number.get(prefix)
            if problem is not None:
                return problem
        return None

    @property
    def total(self) -> float:
        """The homework's points, bonus excluded (100)."""
        return sum(p.points for p in self.problems if not p.bonus)

    @property
    def bonus_total(self) -> float:
        return sum(p.points for p in self.problems if p.bonus)

    def hand_graded(self) -> frozenset[str]:
        """The problems with no autograded points: a passing test of theirs earns nothing."""
        return frozenset(p.number for p in self.problems if p.autograded_points <= 0)

    def groups(self, stages=STAGES, groups=GROUPS):
        """(problem, stage, group, points) for every group with points > 0, in rubric order."""
        for problem in self.problems:
            for stage in stages:
                for group in groups:
                    points = problem.group_points(stage, group)
                    if points > 0:
                        yield problem, stage, group, points


def _share(number: str, table: dict, key: str, default=None) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise GraderError(f"rubric: problem {number}: {key} must be a number in [0, 1], got {value!r}")
    return float(value)


def _problem(number: str, table: dict) -> Problem:
    unknown = set(table) - _KEYS
    if unknown:
        raise GraderError(f"rubric: problem {number}: unknown keys {sorted(unknown)}")
    points = table.get("points")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
        raise GraderError(f"rubric: problem {number}: points must be a number >= 0, got {points!r}")
    bonus = table.get("bonus", False)
    if not isinstance(bonus, bool):
        raise GraderError(f"rubric: problem {number}: bonus must be true or false")
    hidden = _share(number, table, "hidden")
    return Problem(
        number=number, title=str(table.get("title", "")), points=float(points),
        autograded=_share(number, table, "autograded"), train=_share(number, table, "train"),
        hidden=hidden, train_hidden=_share(number, table, "train_hidden", hidden), bonus=bonus)


def parse_rubric(text: str) -> Rubric:
    """Parse the TOML text of a rubric; GraderError on any invalid entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise GraderError(f"rubric: invalid TOML: {error}") from error
    problems = data.get("problems")
    if not isinstance(problems, dict) or not problems:
        raise GraderError("rubric: no [problems] table")
    return Rubric(tuple(_problem(str(number), table) for number, table in problems.items()))


def load_rubric(path: Path | str = RUBRIC_PATH) -> Rubric:
    """Read ``rubric.toml`` (by default the repository's)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise GraderError(f"rubric: cannot read {path}: {error}") from error
    return parse_rubric(text)
