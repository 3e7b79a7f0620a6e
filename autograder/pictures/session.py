"""The session's pictures, drawn once its tests are done: one PNG per problem.

``add_pictures(results, records, folder=...)`` groups the records of visible tests by problem
(in run order), draws each problem's picture (``autograder.pictures.draw``), and attaches it to
the last of that problem's tests that recorded one, where ``TestResult.to_json`` puts it inline
in the test's html output; with ``folder`` the PNGs are also written there as
``<problem>.png``. A picture that cannot be drawn is left out and said in that test's
``staff_detail``: its score, status and message stay as they were.
"""
from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

from autograder.report import Results


def add_pictures(results: Results, records: dict[str, list[dict]], *,
                 folder: Path | None = None) -> tuple[Results, list[Path]]:
    """``results`` with the pictures of ``records`` (``{nodeid: [record, ...]}``) attached, and
    the files written into ``folder``. Records of a test that is not visible are ignored."""
    by_problem: dict[str, list[tuple[int, dict]]] = {}
    tests = list(results.tests)
    for index, test in enumerate(tests):
        if test.group != "visible" or test.visibility != "visible" or not test.problem:
            continue
        for record in records.get(test.nodeid, ()):
            by_problem.setdefault(test.problem, []).append((index, record))
    written = []
    for problem, entries in by_problem.items():
        owner = entries[-1][0]
        try:
            from autograder.pictures.draw import draw

            png = draw(problem, [record for _, record in entries])
        except Exception as error:  # a missing picture never changes a verdict
            note = f"picture of problem {problem} not drawn: {type(error).__name__}: {error}"
            detail = "\n".join(filter(None, (tests[owner].staff_detail, note)))
            tests[owner] = dataclasses.replace(tests[owner], staff_detail=detail)
            continue
        tests[owner] = dataclasses.replace(tests[owner],
                                           picture=base64.b64encode(png).decode("ascii"))
        if folder is not None:
            written.append(_write(folder, problem, png))
    return dataclasses.replace(results, tests=tuple(tests)), [p for p in written if p]


def _write(folder: Path, problem: str, png: bytes) -> Path | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{problem}.png"
        path.write_bytes(png)
        return path
    except OSError:  # an unwritable folder: the results still have the picture inline
        return None
