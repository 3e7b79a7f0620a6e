"""Reading a written results.json in the project's tests (the engine's own view is
``autograder.report.Results``; these tests check the file Gradescope reads)."""
from __future__ import annotations


def scores_by_problem(results: dict) -> dict[str, float]:
    """{problem: the points its tests scored} of a results.json, by each test's
    ``extra_data.problem``."""
    totals: dict[str, float] = {}
    for test in results["tests"]:
        problem = test["extra_data"]["problem"]
        totals[problem] = totals.get(problem, 0.0) + test["score"]
    return totals
