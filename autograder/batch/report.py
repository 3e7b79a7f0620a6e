"""The cohort report: ``report.md`` (text, for a terminal or an email) and ``report.html`` (one
self-contained page, its figures inline as PNG), both from the same ``CohortStats``.

They show the score histogram, the pass rate of every problem and test, the most common failure
message of each test, the submissions whose grade went wrong (grader error, timeout, no files),
and with ``--against`` the regrade diff. Every string that came from a submission (failure
messages echo student output) is escaped in the HTML.
"""
from __future__ import annotations

import base64
import html
import io
import statistics
from collections import Counter
from dataclasses import dataclass, field

from autograder.batch.cohort import Row, number_key, problems_of
from autograder.batch.regrade_diff import RegradeDiff
from autograder.batch.store import GRADED, GRADER_ERROR, MISSING, NO_FILES, TIMED_OUT

FULL = 1e-6
BINS = 20


@dataclass(frozen=True)
class TestStat:
    __test__ = False

    test: str
    problem: str
    passed: int
    graded: int
    common_failure: str  # the most frequent first line of a failed test's output
    common_count: int

    @property
    def rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


@dataclass
class CohortStats:
    count: int
    by_status: dict[str, int]
    totals: list[float]
    max_score: float
    problems: list[tuple[str, float, float, float]]  # (problem, full-marks rate, mean, max)
    tests: list[TestStat]
    faults: list[tuple[str, str, str]]  # (id, status, note) of rows a TA must look at
    diff: RegradeDiff | None = None
    title: str = "Homework 4 batch"
    notes: list[str] = field(default_factory=list)


def cohort_stats(rows: list[Row], *, diff: RegradeDiff | None = None,
                 notes=()) -> CohortStats:
    # Rows without files are real zeros of real students: they count; grader faults do not.
    graded = [row for row in rows if row.results is not None and row.status in (GRADED, NO_FILES)]
    counts = Counter(row.status for row in rows)
    problems = []
    for problem in problems_of(graded):
        top = max((sum(t.max_score for t in row.tests().values() if t.problem == problem)
                   for row in graded), default=0.0)
        scores = [row.problem_scores().get(problem, 0.0) for row in graded]
        full = sum(score >= top - FULL for score in scores)
        problems.append((problem, full / len(scores) if scores else 0.0,
                         statistics.fmean(scores) if scores else 0.0, top))
    tests: dict[str, list] = {}
    for row in graded:
        for entry in row.tests().values():
            stat = tests.setdefault(entry.key, [entry.problem, 0, 0, Counter()])
            stat[2] += 1
            if entry.passed:
                stat[1] += 1
            else:
                stat[3][entry.message or "(no message)"] += 1
    test_stats = []
    for key in sorted(tests, key=lambda k: number_key(k.split(" ", 1)[0])):
        problem, passed, n, failures = tests[key]
        message, times = failures.most_common(1)[0] if failures else ("", 0)
        test_stats.append(TestStat(key, problem, passed, n, message, times))
    faults = [(row.id, row.status, row.outcome.note if row.outcome else "")
              for row in rows if row.status in (GRADER_ERROR, TIMED_OUT, NO_FILES, MISSING)
              or row.outcome is None]
    return CohortStats(count=len(rows), by_status=dict(counts),
                       totals=[row.total for row in graded],
                       max_score=max((row.max_score for row in graded), default=0.0),
                       problems=problems, tests=test_stats, faults=faults, diff=diff,
                       notes=list(notes))


# --- text ----------------------------------------------------------------------------------

def render_markdown(stats: CohortStats) -> str:
    lines = [f"# {stats.title}", "", _summary_line(stats), ""]
    lines += [f"- {note}" for note in stats.notes] + ([""] if stats.notes else [])
    if stats.totals:
        lines += ["## Scores", "", "| mean | median | min | max | out of |", "|---|---|---|---|---|",
                  f"| {_f(statistics.fmean(stats.totals))} | {_f(statistics.median(stats.totals))} "
                  f"| {_f(min(stats.totals))} | {_f(max(stats.totals))} | {_f(stats.max_score)} |",
                  "", "```", *_text_histogram(stats.totals, stats.max_score), "```", ""]
    lines += ["## Problems", "", "| problem | full marks | mean | points |", "|---|---|---|---|"]
    lines += [f"| {p} | {rate:.0%} | {_f(mean)} | {_f(top)} |" for p, rate, mean, top in stats.problems]
    lines += ["", "## Tests", "", "| test | pass rate | most common failure |", "|---|---|---|"]
    lines += [f"| {_md(t.test)} | {t.passed}/{t.graded} ({t.rate:.0%}) | "
              f"{_md(t.common_failure)}{f' (x{t.common_count})' if t.common_count else ''} |"
              for t in stats.tests]
    lines += ["", "## Submissions to look at", ""]
    lines += ([f"- `{sid}`: {status}{': ' + _md(note) if note else ''}"
               for sid, status, note in stats.faults] or ["None: every submission was graded."])
    if stats.diff is not None:
        lines += ["", *_diff_markdown(stats.diff)]
    return "\n".join(lines) + "\n"


def _summary_line(stats: CohortStats) -> str:
    parts = [f"{n} {status}" for status, n in sorted(stats.by_status.items())]
    return f"{stats.count} submissions: " + ", ".join(parts) + "."


def _diff_markdown(diff: RegradeDiff) -> list[str]:
    lines = [f"## Regrade against `{diff.against}`", "",
             f"{len(diff.changed)} changed, {diff.unchanged} unchanged"
             + (f", {len(diff.only_now)} new" if diff.only_now else "") + ".", ""]
    for change in diff.changed:
        lines.append(f"- `{change.id}`{' (' + _md(change.names) + ')' if change.names else ''}: "
                     f"{_f(change.before)} -> {_f(change.after)} ({change.delta:+g})")
        lines += [f"  - {_md(t.test)}: {_f(t.before)} -> {_f(t.after)}" for t in change.tests]
    if diff.max_score_changes:
        lines += ["", "Points of tests changed for everyone:"]
        lines += [f"- {_md(t.test)}: max {_f(t.before)} -> {_f(t.after)}"
                  for t in diff.max_score_changes]
    return lines


def _text_histogram(totals: list[float], top: float) -> list[str]:
    counts = _histogram(totals, top)
    peak = max(counts) or 1
    width = top / BINS if top else 1.0
    return [f"{i * width:6.1f}-{(i + 1) * width:6.1f} | {'#' * round(30 * c / peak)} {c or ''}"
            for i, c in enumerate(counts)]


def _histogram(totals: list[float], top: float) -> list[int]:
    counts = [0] * BINS
    for total in totals:
        index = int(BINS * total / top) if top else 0
        counts[min(max(index, 0), BINS - 1)] += 1
    return counts


# --- HTML ----------------------------------------------------------------------------------

def render_html(stats: CohortStats) -> str:
    """One page with no outside resource: CSS inline, figures as data: URLs."""
    e = html.escape
    body = [f"<h1>{e(stats.title)}</h1>", f"<p>{e(_summary_line(stats))}</p>"]
    body += [f"<p class=note>{e(n)}</p>" for n in stats.notes]
    if stats.totals:
        body += ["<h2>Scores</h2>", _figure_histogram(stats)]
    if stats.problems:
        body += ["<h2>Problems</h2>", _figure_problems(stats), _table(
            ["problem", "full marks", "mean", "points"],
            [[p, f"{r:.0%}", _f(m), _f(t)] for p, r, m, t in stats.problems])]
    body += ["<h2>Tests</h2>", _table(
        ["test", "pass rate", "most common failure"],
        [[t.test, f"{t.passed}/{t.graded} ({t.rate:.0%})",
          t.common_failure + (f" (x{t.common_count})" if t.common_count else "")]
         for t in stats.tests])]
    body += ["<h2>Submissions to look at</h2>",
             _table(["submission", "status", "why"], [list(f) for f in stats.faults])
             if stats.faults else "<p>None: every submission was graded.</p>"]
    if stats.diff is not None:
        body += [f"<h2>Regrade against {e(stats.diff.against)}</h2>",
                 f"<p>{len(stats.diff.changed)} changed, {stats.diff.unchanged} unchanged.</p>",
                 _table(["submission", "names", "before", "after", "change", "tests"],
                        [[c.id, c.names, _f(c.before), _f(c.after), f"{c.delta:+g}",
                          "; ".join(f"{t.test}: {_f(t.before)} -> {_f(t.after)}" for t in c.tests)]
                         for c in stats.diff.changed])]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:left;vertical-align:top}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{e(stats.title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def _table(header: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    cells = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{cells}</table>"


def _figure_histogram(stats: CohortStats) -> str:
    figure, axes = _figure()
    axes.hist(stats.totals, bins=BINS, range=(0, stats.max_score or 1), color="#4472c4")
    axes.set_xlabel("total score")
    axes.set_ylabel("submissions")
    return _png(figure, "score histogram")


def _figure_problems(stats: CohortStats) -> str:
    figure, axes = _figure()
    names = [p for p, *_ in stats.problems]
    axes.bar(names, [rate * 100 for _, rate, *_ in stats.problems], color="#70ad47")
    axes.set_ylabel("full marks (%)")
    axes.set_ylim(0, 100)
    axes.tick_params(axis="x", rotation=60)
    return _png(figure, "full-marks rate per problem")


def _figure():
    """A figure without pyplot: no GUI backend, no global state shared between threads."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3))
    return figure, figure.subplots()


def _png(figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _f(value) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")[:160]
