"""The red team: every hostile submission of hostile_submissions.toml is graded through the real
engine, in a simulated Gradescope tree (``python -m autograder gradescope --root DIR``), and
the grade must hold:

1. it ends in bounded time;
2. it leaves a valid results.json (schema), not forged, carrying every collected test;
3. the honest score: the attacked problems lose points, every other problem keeps the
   reference's score;
4. nothing of the reference or of the hidden tests appears in any output;
5. no process of the attack survives (sandbox user, or the attack's marker).

Only the unit stage is graded. The reference is graded once, by the same route, as the baseline.
Attacks on disjoint definitions and problems share one submission (``hostile.pack``): the union
of their ``loses`` must lose points, and every other problem keep them.

Grades are the suite's whole cost, so they run ``WORKERS`` at a time in the background, as soon
as the module starts, each one a separate ``gradescope`` process with its own sandbox (their
cleanups only touch their own processes). Each grade is observed right after it ends (forged
files, survivors), in its worker; each test then judges its group's observation.
"""
from __future__ import annotations

import ast
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.paths import ROOT, SUBMISSION_FILES

import hostile as catalogue
import observe

IS_ROOT = os.geteuid() == 0
HOSTILES, SNIPPETS = catalogue.load_catalogue()
GROUPS = catalogue.pack(HOSTILES, separate_root=not IS_ROOT)
OUTER_TIMEOUT = 300.0  # seconds for one whole grade; the engine's own limits are far below
MAX_RESULTS_BYTES = 2 << 20  # a capped feedback never needs more
FORGER_GRACE = 1.5  # seconds to let a surviving forger (it rewrites every 0.2 s) show itself
TOLERANCE = 1e-6
WORKERS = 2  # grades at a time: the machine's cores


def _group_id(group) -> str:
    return "+".join(h.name for h in group)


@dataclass
class Observed:
    """One group's grade and what was seen right after it."""

    graded: observe.Graded
    submission: Path
    folder: Path
    forged: list[Path]
    survivors: list[str]


def _forge_candidates(root: Path, folder: Path) -> list[Path]:
    """Places a results.json forger aims at, besides the real file."""
    return [folder / "results.json", root / "results.json", root / "results" / "results.json",
            ROOT / "results.json", Path.cwd() / "results.json",
            Path("/autograder/results/results.json")]


def _grade_reference(folder: Path) -> observe.Graded:
    root = folder / "autograder"
    catalogue.copy_reference(root / "submission")
    (root / "results").mkdir()
    return observe.grade_gradescope(root, cwd=folder, timeout=OUTER_TIMEOUT)


def _grade_and_observe(group, folder: Path) -> Observed:
    """Grade the group's submission, then collect (and clean) what its attacks left."""
    root = folder / "autograder"
    submission = catalogue.build_submission(group, SNIPPETS, root / "submission")
    (root / "results").mkdir()
    forge_places = _forge_candidates(root, folder)
    already_forged = set(observe.forged_files(forge_places))  # never blame this attack for them

    graded = observe.grade_gradescope(root, cwd=folder, timeout=OUTER_TIMEOUT)
    if any(h.forges for h in group):
        time.sleep(FORGER_GRACE)
        graded.results_text = (root / "results" / "results.json").read_text(errors="replace") \
            if (root / "results" / "results.json").is_file() else None
    survivors = [line for h in group for line in observe.leftover_processes(h.marker)]
    forged = [p for p in observe.forged_files(forge_places) if p not in already_forged]
    for path in forged:
        if path != root / "results" / "results.json":
            path.unlink(missing_ok=True)
    for hostile in group:
        observe.remove_marked_files(hostile.marker, [Path("/tmp"), folder])
    return Observed(graded, submission, folder, forged, survivors)


def _selected_groups(session: pytest.Session) -> list[tuple]:
    """The groups this session will judge (after -k and the like), in collection order."""
    selected = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and getattr(item, "originalname", "") == \
                "test_hostile_submission_is_graded_honestly":
            group = callspec.params["group"]
            if IS_ROOT or not any(h.needs_root for h in group):
                selected.append(group)
    return selected


@pytest.fixture(scope="module")
def grades(request, tmp_path_factory):
    """Start every grade of the session in the background: {"reference": Future[Graded],
    group id: Future[Observed]}. The reference goes first; all run WORKERS at a time."""
    if IS_ROOT:
        from autograder.sandbox.limits import ensure_sandbox_user
        ensure_sandbox_user(observe.SANDBOX_USER)
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="redteam-grade")
    futures: dict[str, Future] = {
        "reference": pool.submit(_grade_reference, tmp_path_factory.mktemp("reference"))}
    for group in _selected_groups(request.session):
        futures[_group_id(group)] = pool.submit(_grade_and_observe, group,
                                                tmp_path_factory.mktemp("hostile"))
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def reference_grade(grades):
    """The reference graded by the same route: the baseline of every honest score."""
    graded = grades["reference"].result()
    assert graded.results is not None, f"the reference left no results.json:\n{graded.stderr[-3000:]}"
    scores = observe.by_problem(graded.results)
    short = {p: s for p, s in scores.items() if s[0] < s[1] - TOLERANCE}
    assert not short, f"the reference itself loses points: {short}"
    return graded


def test_catalogue_covers_enough_attacks_and_builds():
    """At least 25 attacks; each builds into a submission whose files are valid Python."""
    assert len(HOSTILES) >= 25
    for group in GROUPS:
        for filename in SUBMISSION_FILES:
            reference = (catalogue.REFERENCE_DIR / filename).read_text()
            text = catalogue.hostile_source(group, filename, reference, SNIPPETS)
            ast.parse(text, filename=f"{group[0].name}/{filename}")
            assert catalogue.MARKER_TOKEN not in text
            attacked = [h for h in group if h.file == filename and h.function]
            assert (text != reference) == bool(attacked)
            for hostile in attacked:
                if catalogue.MARKER_TOKEN in hostile.source + hostile.prelude:
                    assert hostile.marker in text


def test_packing_keeps_attacks_apart():
    """Every attack is graded exactly once, never beside one it could interfere with; without
    root, root-only attacks are never beside the others (their groups are skipped)."""
    assert sorted(h.name for group in GROUPS for h in group) == sorted(h.name for h in HOSTILES)
    for group in GROUPS:
        assert IS_ROOT or len({h.needs_root for h in group}) == 1
        for i, first in enumerate(group):
            for second in group[i + 1:]:
                assert not first.conflicts_with(second)
                assert not set(first.loses) & set(second.loses)


def _marks(group):
    gaps = [f"{h.name}: {h.known_gap}" for h in group if h.known_gap]
    return [pytest.mark.xfail(strict=True, reason="; ".join(gaps))] if gaps else []


@pytest.mark.slow(seconds=190)
@pytest.mark.parametrize("group", [pytest.param(g, id=_group_id(g), marks=_marks(g)) for g in GROUPS])
def test_hostile_submission_is_graded_honestly(group, reference_grade, grades):
    if any(h.needs_root for h in group) and not IS_ROOT:
        pytest.skip("these defences exist only as root (sandbox user, file permissions)")
    observed: Observed = grades[_group_id(group)].result()
    graded, submission, forged, survivors = (observed.graded, observed.submission, observed.forged,
                                             observed.survivors)
    loses = {problem: h.name for h in group for problem in h.loses}

    failures = []
    # 1. bounded time
    if graded.returncode is None:
        failures.append(f"the grade did not end within {OUTER_TIMEOUT:.0f} s")
    # 2. a valid, honest results.json with every collected test
    results = graded.results
    if results is None:
        failures.append("no readable results.json:\n" + graded.stderr[-2000:])
    else:
        from autograder.report import validate_json
        try:
            validate_json(results)
        except Exception as error:
            failures.append(f"results.json fails the schema: {error}")
        if observe.FORGED_MARK in graded.results_text:
            failures.append("results.json was written by the attack")
        if len(graded.results_text.encode()) > MAX_RESULTS_BYTES:
            failures.append(f"results.json holds {len(graded.results_text.encode())} bytes")
        missing = set(observe.test_ids(reference_grade.results)) ^ set(observe.test_ids(results))
        if missing:
            failures.append(f"tests differ from the reference's collected tests: {sorted(missing)[:5]}")
        # 3. the honest score
        expected = observe.by_problem(reference_grade.results)
        got = observe.by_problem(results)
        for problem, (ref_score, _) in sorted(expected.items()):
            score = got.get(problem, (0.0, 0.0))[0]
            if problem in loses and score >= ref_score - TOLERANCE:
                failures.append(f"{problem}: kept {score:g} points; {loses[problem]} must lose them")
            elif problem not in loses and abs(score - ref_score) > TOLERANCE:
                failures.append(f"{problem}: {score:g} points instead of the reference's {ref_score:g}")
        unknown = [p for p in loses if expected.get(p, (0.0, 0.0))[0] <= TOLERANCE]
        if unknown:
            failures.append(f"the catalogue expects losses on {unknown}, which have no unit-stage points")
    if IS_ROOT and observe.sandbox_uid() is not None and forged:
        failures.append(f"the attack forged {[str(p) for p in forged]}")
    # 4. nothing of the reference or of the hidden tests in any output
    secret_lines = observe.reference_only_lines(submission) | observe.hidden_test_lines(submission)
    outputs = {"results.json": graded.results_text or ""}
    if results is None or results.get("stdout_visibility", "hidden") != "hidden":
        # Gradescope shows the grader's own output to students unless told to hide it
        outputs.update({"the grader's stdout": graded.stdout, "the grader's stderr": graded.stderr})
    failures += observe.leaks(outputs, secret_lines)
    if results is not None:
        failures += observe.leaks({"the student-visible feedback": observe.student_visible_text(results)},
                                  observe.hidden_test_names())
    # 5. no process left
    if survivors:
        failures.append(f"processes left by the attack (now killed): {survivors}")

    attacks = "\n".join(f"  {h.name}: {h.attack}" for h in group)
    assert not failures, f"attacks:\n{attacks}\nfailures:\n  " + "\n  ".join(failures)
