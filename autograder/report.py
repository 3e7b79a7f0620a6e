"""Results as data: one record per graded test, serialized once into Gradescope's results.json.

The plugin builds a ``Results`` in memory; ``validate_json`` checks its JSON against
``schema/results.schema.json``, and ``autograder.results_writer.ResultsWriter``, the one writer
of results.json, writes it. Adjustments such as a late penalty are post-processing on a built
``Results`` (``with_adjustment``), never done inside tests. ``fallback_results`` builds the
Results of a run that died: everything not graded is a failed test "not graded: <reason>".

Student-facing text (``TestResult.output``, ``Results.notes``) is markdown; ``staff_detail`` and
``staff_log`` hold tracebacks for course staff and never reach results.json.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from autograder.numbers import number_key

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "results.schema.json"
SHOWN_TO_STUDENTS_NOW = "visible"  # Gradescope shows the total only when every test is visible
# The message of a passed row worth 0 points: True/False, where every point is in hidden tests,
# and 3.1, whose points are all graded by hand (its test only checks that the model evaluates).
ZERO_POINTS_NOTE = "format checked; graded by hidden tests on Gradescope"
HAND_GRADED_NOTE = "checked that it runs; its points are graded by hand from your report"
_EPS = 1e-9


class StudentFeedback(AssertionError):
    """An assertion failure whose message the test's author wrote for students.

    Hidden tests raise it to say *what* failed ("prune_by_percentage: the kept weights changed
    on a layer with ties") without revealing their inputs: ``autograder.feedback`` shows its
    message even for hidden tests, where any other failure is reduced to a generic line.
    """


@dataclass(frozen=True)
class TestResult:
    """One graded test. ``output`` is already safe for students (markdown)."""

    __test__ = False  # not a pytest test class, despite its name

    nodeid: str
    name: str
    number: str
    problem: str  # rubric problem number, "" when the test matches none
    score: float
    max_score: float
    status: str  # "passed" or "failed"
    output: str = ""
    visibility: str = "visible"
    tags: tuple[str, ...] = ()
    stage: str = "unit"
    group: str = "visible"  # "visible" or "hidden": where its points come from
    bonus: bool = False
    kind: str = "passed"  # passed, failed, submission_error, internal_error, skipped, not_graded
    staff_detail: str = ""  # grader traceback and the like, for staff only
    leaderboard: tuple | None = None  # (column, value, order)
    picture: str = ""  # a PNG, base64: the output becomes html with it inline (autograder.pictures)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_json(self) -> dict:
        output, output_format = self.output, "md"
        if self.picture:
            from autograder.pictures.html import with_picture

            output, output_format = with_picture(
                self.output, self.picture, alt=f"problem {self.problem}: your run"), "html"
        return {
            "score": _round(self.score), "max_score": _round(self.max_score),
            "status": self.status, "name": self.name, "name_format": "text",
            "number": self.number, "output": output, "output_format": output_format,
            "tags": list(self.tags), "visibility": self.visibility,
            "extra_data": {"problem": self.problem, "stage": self.stage, "group": self.group,
                           "kind": self.kind, "bonus": self.bonus},
        }


@dataclass(frozen=True)
class Results:
    """All results of one grading run. ``score`` includes bonus points and adjustments;
    ``max_score`` counts non-bonus tests only, ``bonus_max_score`` the bonus ones."""

    tests: tuple[TestResult, ...]
    execution_time: float = 0.0
    notes: tuple[str, ...] = ()  # student-facing remarks (intake, missing tests)
    staff_log: tuple[str, ...] = ()  # staff-only details
    titles: dict = field(default_factory=dict)  # problem number -> title
    hand_graded: frozenset = frozenset()  # problems the rubric grades wholly by hand
    adjustments: tuple[tuple[str, float], ...] = ()  # (label, points), e.g. a late penalty
    visibility: str = "visible"

    @property
    def score(self) -> float:
        return max(0.0, sum(t.score for t in self.tests) + sum(p for _, p in self.adjustments))

    @property
    def base_score(self) -> float:
        """The score without bonus tests (adjustments included)."""
        return max(0.0, self.score - sum(t.score for t in self.tests if t.bonus))

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests if not t.bonus)

    @property
    def bonus_max_score(self) -> float:
        return sum(t.max_score for t in self.tests if t.bonus)

    @property
    def any_hidden(self) -> bool:
        return any(t.visibility != SHOWN_TO_STUDENTS_NOW for t in self.tests)

    def by_problem(self, tests=None) -> dict[str, tuple[float, float]]:
        """{problem: (score, max_score)} in problem order; tests with no problem under "?"."""
        table: dict[str, list[float]] = {}
        for test in tests if tests is not None else self.tests:
            entry = table.setdefault(test.problem or "?", [0.0, 0.0])
            entry[0] += test.score
            entry[1] += test.max_score
        return {k: (v[0], v[1]) for k, v in sorted(table.items(), key=lambda kv: number_key(kv[0]))}

    def with_adjustment(self, label: str, points: float) -> "Results":
        """A copy with a score adjustment (negative for a penalty), shown in the summary."""
        return dataclasses.replace(self, adjustments=self.adjustments + ((label, float(points)),))

    def _zero_note(self, problem: str, points: float) -> str:
        """What a passed row worth ``points`` says: where its points come from when it has none."""
        if abs(points) >= _EPS:
            return ""
        return HAND_GRADED_NOTE if problem in self.hand_graded else ZERO_POINTS_NOTE

    def student_summary(self) -> str:
        """The top-level markdown: totals and a per-problem table of what students may see now."""
        shown = [t for t in self.tests if t.visibility == SHOWN_TO_STUDENTS_NOW]
        lines = []
        if self.any_hidden:
            score = sum(t.score for t in shown)
            top = sum(t.max_score for t in shown)
            lines.append(f"**Visible tests: {_fmt(score)} / {_fmt(top)} points.** Gradescope hides "
                         "the total while some tests are hidden; their results appear when grades "
                         "are published.")
        else:
            lines.append(f"**Autograded score: {_fmt(self.base_score)} / {_fmt(self.max_score)} "
                         "points**" + (f", bonus {_fmt(self.score - self.base_score)} / "
                                       f"{_fmt(self.bonus_max_score)}." if self.bonus_max_score
                                       else "."))
        for label, points in self.adjustments:
            lines.append(f"- {label}: {points:+g} points")
        lines += ["", "| Problem | Points | Result | First message |", "|---|---|---|---|"]
        for problem, (score, top) in self.by_problem(shown).items():
            tests = [t for t in shown if (t.problem or "?") == problem]
            failed = [t for t in tests if not t.passed]
            title = self.titles.get(problem, "")
            message = _first_line(failed[0].output) if failed else self._zero_note(problem, top)
            lines.append(f"| {problem} {title} | {_fmt(score)} / {_fmt(top)} | "
                         f"{'fail' if failed else 'pass'} | {_cell(message)} |")
        if self.notes:
            lines += ["", "**Notes**", ""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines)

    def terminal_table(self) -> str:
        """A plain-text per-problem table of every test (for staff and local runs)."""
        rows = [("Problem", "Points", "Result", "Message")]
        for problem, (score, top) in self.by_problem().items():
            tests = [t for t in self.tests if (t.problem or "?") == problem]
            failed = [t for t in tests if not t.passed]
            bonus = " (bonus)" if tests and all(t.bonus for t in tests) else ""
            message = f"{failed[0].number}: {_first_line(failed[0].output)}" if failed \
                else self._zero_note(problem, top)
            rows.append((problem + bonus, f"{_fmt(score)} / {_fmt(top)}",
                         "FAIL" if failed else "pass", message[:100]))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3]
                 for row in rows]
        lines.append(f"Total: {_fmt(self.base_score)} / {_fmt(self.max_score)}"
                     + (f", bonus {_fmt(self.score - self.base_score)} / "
                        f"{_fmt(self.bonus_max_score)}" if self.bonus_max_score else "")
                     + f"   [{sum(t.passed for t in self.tests)}/{len(self.tests)} tests passed]")
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict:
        data = {
            "score": _round(self.score),
            "execution_time": round(float(self.execution_time), 3),
            "output": self.student_summary(),
            "output_format": "md",
            "test_output_format": "md",
            "test_name_format": "text",
            "visibility": self.visibility,
            "stdout_visibility": "hidden",
            "tests": [t.to_json() for t in self.tests],
        }
        board = [{"name": t.leaderboard[0], "value": t.leaderboard[1], "order": t.leaderboard[2]}
                 for t in self.tests if t.leaderboard is not None]
        if board:
            data["leaderboard"] = board
        return data


@functools.lru_cache(maxsize=1)
def _schema_validator():
    """The results schema's validator, built once: results.json is rewritten as grading goes."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def validate_json(data: dict) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``data`` matches the results schema and the
    invariants the schema cannot say (0 <= score <= max_score for non-bonus-free tests)."""
    import jsonschema  # imported here: only writing and tests need it

    _schema_validator().validate(data)
    for test in data["tests"]:
        if test["score"] > test["max_score"] + _EPS:
            raise jsonschema.ValidationError(f"test {test['name']!r}: score above max_score")


def not_graded(test: TestResult, reason: str) -> TestResult:
    """``test`` as a failed, ungraded entry that keeps its max_score."""
    return dataclasses.replace(test, score=0.0, status="failed", kind="not_graded",
                               output=f"not graded: {reason}", leaderboard=None)


def fallback_results(reason: str, *, graded=(), pending=None, rubric=None,
                     stages=("unit", "train"), execution_time: float = 0.0) -> Results:
    """A valid Results for a run that did not finish.

    ``graded`` tests are kept; ``pending`` (placeholder TestResults of tests collected but not
    graded) become "not graded: <reason>". When ``pending`` is None and nothing was graded, the
    rubric's problems stand in: one failed entry per problem, worth its points in ``stages``.
    """
    tests = list(graded)
    if pending is not None:
        done = {t.nodeid for t in tests}
        tests += [not_graded(t, reason) for t in pending if t.nodeid not in done]
    elif not tests and rubric is not None:
        for problem in rubric.problems:
            points = sum(problem.stage_points(stage) for stage in stages)
            if points > 0:
                placeholder = TestResult(
                    nodeid=f"rubric::{problem.number}", name=f"{problem.number} {problem.title}",
                    number=problem.number, problem=problem.number, score=0.0, max_score=points,
                    status="failed", bonus=problem.bonus)
                tests.append(not_graded(placeholder, reason))
    titles = {p.number: p.title for p in rubric.problems} if rubric is not None else {}
    return Results(tests=tuple(tests), execution_time=execution_time, titles=titles,
                   hand_graded=rubric.hand_graded() if rubric is not None else frozenset(),
                   notes=(f"Grading did not finish: {reason}. Please resubmit or contact the "
                          "course staff.",))


def _round(value: float) -> float:
    return round(float(value), 6)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value == value else "nan"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip() and not line.startswith("```"):
            return line.strip()
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")[:120]
