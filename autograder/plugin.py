"""The pytest plugin that turns grading tests into results: one result per collected test.

Registered by ``tests/grading/conftest.py`` (``pytest_plugins = ["autograder.plugin"]``).

- Collection reads each test's gradescope-utils decorators once into a frozen ``TestMeta`` on
  the item, decides its stage (``train/`` folder or not) and group (``hidden/`` folder or not)
  from its path, its problem from ``@number``, and its max_score from ``rubric.toml``: a
  (problem, stage, group) group's points are divided by relative ``@weight`` (default 1) among
  all its collected tests, so a visible test is worth the same locally and on Gradescope.
- ``pytest_runtest_makereport`` classifies each phase where the exception object is at hand,
  and attaches the verdict to the report as plain data (``report.hw4``), so it also travels
  from xdist workers.
- The controller keeps the last word: ``GradingSession`` assembles one ``TestResult`` per
  selected test from the phase reports (never from pytest's exit code), adds visible failed
  entries for what would otherwise vanish (collection errors, rubric groups no test covers, an
  expected-count mismatch), and writes results.json only when ``--results`` is given.
- With ``--results``, results.json also records progress: it is rewritten as tests complete
  (every completed test with its real score, every other selected test "not graded" with
  ``UNFINISHED_REASON``), so a grade killed partway (out of memory in the training stage, the
  platform's timeout) keeps what it graded. The write at the end of the session supersedes them.

Student feedback rules:
- ``SubmissionError``: its student-facing ``message``, no traceback.
- ``AssertionError`` (and ``pytest.fail``): the message, no grader traceback.
- ``GraderError`` or any other exception: "Internal grading error"; the traceback goes to
  ``staff_detail`` and the run's stdout (hidden from students on Gradescope).
- Hidden tests never show their output: a passed/failed line, the ``@hide_errors`` text, the kind
  of a submission error, or the message of ``autograder.report.StudentFeedback``, which the test's
  author writes to say what failed without revealing inputs.
- Errors, skips, xfails, timeouts and crashes are failed with 0; max_score is kept.
"""
from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from autograder import paths
from autograder.errors import SubmissionError
from autograder.intake import Intake, collect
from autograder.report import Results, StudentFeedback, TestResult, not_graded, write_fallback, write_results
from autograder.rubric import Rubric, load_rubric

# One progress write of about 100 tests costs ~20 ms, nearly all of it the schema validation
# that write_results does: writing after every test would add seconds to a grade. So writes
# come at most once per interval (a timer writes the last ones), except around the training
# stage, whose tests are long and memory-hungry: there every completion is written at once.
CHECKPOINT_INTERVAL_S = 1.0  # read at each write; a test may lower it
UNFINISHED_REASON = ("the grader stopped before this test ran (it was killed or ran out of "
                     "time); course staff can regrade")
UNFINISHED_NOTE = ("Grading did not finish: the grader stopped partway (it was killed or ran out "
                   "of time). The tests it graded keep their scores; the others are marked "
                   "\"not graded\", and course staff can regrade them.")
STAGE_ORDER = {"unit": 0, "train": 1}  # the order stages run in; a stage not listed runs last
HIDDEN_VISIBILITIES = ("hidden", "after_due_date", "after_published")
INTERNAL_ERROR = ("**Internal grading error**: this test could not be graded because of a fault "
                  "in the grader, not in your code. Course staff have the details.")
_GENERIC_BY_KIND = {
    "not_implemented": "The function this test calls is not implemented yet.",
    "missing_file": "A file this test needs is missing from the submission.",
    "import_failed": "Your file could not be imported (syntax or import error).",
    "missing_function": "A function this test calls is missing from your file.",
    "exception": "Your code raised an exception on this hidden test.",
    "timeout": "Your code ran out of time on this hidden test.",
    "crashed": "Your code crashed on this hidden test.",
    "out_of_memory": "Your code ran out of memory on this hidden test.",
    "no_result": "Your code exited without returning a result on this hidden test.",
    "invalid_output": "Your code returned a value of the wrong type, shape or dtype.",
}


@dataclass(frozen=True)
class GradingOptions:
    submission: Path
    results: Path | None
    stage: str  # unit, train, all
    device: str  # auto, cpu, cuda
    visibility: str  # all, visible
    hw4_data: str | None
    hw4_checkpoint: str | None
    expected_count: int | None

    def stages(self) -> tuple[str, ...]:
        return ("unit", "train") if self.stage == "all" else (self.stage,)

    def groups(self) -> tuple[str, ...]:
        return ("visible",) if self.visibility == "visible" else ("visible", "hidden")

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch  # only to ask; the grading tests' sandbox imports it anyway

        return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class TestMeta:
    """What the decorators and the test's folder say, read once at collection."""

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
        return TestResult(nodeid=self.nodeid, name=self.name, number=self.number,
                          problem=self.problem, score=0.0, max_score=self.max_score,
                          status="failed", visibility=self.visibility, tags=self.tags,
                          stage=self.stage, group=self.group, bonus=self.bonus, kind="not_graded")


class GradingState:
    """Session state (``config.stash[STATE]``): options, rubric, intake, selected tests."""

    def __init__(self, options: GradingOptions, rubric: Rubric):
        self.options = options
        self.rubric = rubric
        self.intake: Intake | None = None
        self.intake_error: SubmissionError | None = None
        self.workdir: Path | None = None
        self.box = None  # the session's Sandbox, started at session start
        self.selected: list[TestMeta] = []
        self.extra: list[TestResult] = []  # entries for what would otherwise vanish

    def run_intake(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="hw4-grading-"))
        try:
            self.intake = collect(self.options.submission, self.workdir / "submission")
        except SubmissionError as error:
            self.intake_error = error


STATE = pytest.StashKey[GradingState]()
META = pytest.StashKey[TestMeta]()
PARTIAL = pytest.StashKey[float]()  # set_score's value, read after the call
BOARD = pytest.StashKey[object]()  # set_leaderboard_value's value
RESULTS = pytest.StashKey[Results]()


def results_of(config: pytest.Config) -> Results | None:
    """The Results the session built, once it has finished (None before, or on xdist workers)."""
    return config.stash.get(RESULTS, None)


# ----------------------------------------------------------------------------- options, setup


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hw4", "HW4 grading")
    group.addoption("--submission", default=str(paths.STUDENT_DIR),
                    help="submission folder or .zip to grade (default: the student files of "
                         "this layout: student/ in the repository, the root of the handout)")
    group.addoption("--results", default=None, help="write Gradescope's results.json here")
    group.addoption("--stage", choices=("unit", "train", "all"), default="unit",
                    help="which grading stage to run (default: unit)")
    group.addoption("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="device for the student's code (auto: cuda when available)")
    group.addoption("--visibility", choices=("all", "visible"), default="all",
                    help="'visible': run only the visible tests, as the handout does")
    group.addoption("--hw4-data", default=None, help="dataset: .npz or CIFAR-10 folder (default: "
                                                     "$HW4_DATA, else the embedded one)")
    group.addoption("--hw4-checkpoint", default=None,
                    help="checkpoint (default: $HW4_CHECKPOINT, else the embedded one)")
    group.addoption("--rubric", default=str(paths.RUBRIC_PATH),
                    help="the rubric file (default: rubric.toml of this layout)")
    group.addoption("--expected-count", type=int, default=None,
                    help="number of grading tests this run must collect; a mismatch is reported")


def pytest_configure(config: pytest.Config) -> None:
    options = GradingOptions(
        submission=Path(config.getoption("submission")).expanduser(),
        results=Path(config.getoption("results")) if config.getoption("results") else None,
        stage=config.getoption("stage"), device=config.getoption("device"),
        visibility=config.getoption("visibility"), hw4_data=config.getoption("hw4_data"),
        hw4_checkpoint=config.getoption("hw4_checkpoint"),
        expected_count=config.getoption("expected_count"))
    config.stash[STATE] = GradingState(options, load_rubric(config.getoption("rubric")))
    if not hasattr(config, "workerinput"):  # the controller alone assembles and reports
        config.pluginmanager.register(GradingSession(config), "hw4-grading-session")


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[STATE].run_intake()


def _start_sandbox_early(session: pytest.Session) -> None:
    """Start the zygote as soon as a collected test needs it, without waiting: its torch
    import then overlaps the grader's own set-up instead of delaying the first test."""
    state = session.config.stash[STATE]
    if (state.intake_error is None and state.box is None and not session.config.option.collectonly
            and any("sandbox" in getattr(item, "fixturenames", ()) for item in session.items)):
        from autograder.sandbox import Sandbox

        state.box = Sandbox(state.intake.dest, device=state.options.device)
        state.box.start(wait=False)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.box is not None:
        state.box.close()  # idempotent; covers a session that never requested the fixture
    if state is not None and state.workdir is not None:
        shutil.rmtree(state.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def grading_options(request) -> GradingOptions:
    """The run's options (submission, stage, device, data, checkpoint)."""
    return request.config.stash[STATE].options


@pytest.fixture(scope="session")
def intake(request) -> Intake | None:
    """The session's Intake (None when the submission could not be read): what was taken and,
    for files built from notebooks or the report, from where (``sources``, ``answer_problems``)."""
    return request.config.stash[STATE].intake


@pytest.fixture(scope="session")
def sandbox(request):
    """A started ``autograder.sandbox.Sandbox`` on the intake copy of ``--submission``.

    An unreadable submission raises its ``SubmissionError`` in every test that asks for this.
    """
    state = request.config.stash[STATE]
    if state.intake_error is not None:
        raise state.intake_error
    if state.box is None:
        from autograder.sandbox import Sandbox

        state.box = Sandbox(state.intake.dest, device=state.options.device)
    try:
        yield state.box
    finally:
        _log_defences(state.box)
        state.box.close()  # stops the zygote and kills every process the submission left


def _log_defences(box) -> None:
    """Tell staff which defences ran (the README's security table): on Gradescope the run's own
    output is hidden from students. Written past pytest's capture, once per grade."""
    if getattr(box, "_zygote", None) is None:  # never started: nothing ran, nothing to report
        return
    try:
        defences = box.capabilities
    except Exception as error:
        defences = {"unknown": repr(error)}
    shown = ", ".join(f"{key}={value}" for key, value in sorted(defences.items()))
    sys.__stderr__.write(f"[staff] sandbox defences: {shown}\n")


# ----------------------------------------------------------------------------- collection


def _test_folders(item: pytest.Item, rootpath: Path) -> tuple[str, ...]:
    """The folders of the test file below ``tests/grading`` (or below the rootdir)."""
    try:
        parts = item.path.relative_to(rootpath).parts[:-1]
    except ValueError:
        parts = item.path.parts[:-1]
    if "grading" in parts:
        parts = parts[len(parts) - parts[::-1].index("grading"):]
    return parts


def pytest_ignore_collect(collection_path: Path, config: pytest.Config):
    """Leave unimported the test folders this run does not grade: a unit-stage grade never
    imports the training stage's modules (which pull torch into the grading process), and a
    visible-only run never imports hidden ones. Deselection still guards the test level."""
    state = config.stash.get(STATE, None)
    parts = collection_path.parts
    if state is None or "grading" not in parts or not collection_path.is_dir():
        return None
    below = parts[len(parts) - parts[::-1].index("grading"):]
    stage = "train" if "train" in below else "unit"
    if below and (stage not in state.options.stages()
                  or ("hidden" in below and "hidden" not in state.options.groups())):
        return True
    return None


def _find(obj, attribute: str):
    """``attribute`` on the test function or any function it wraps (decorators stack)."""
    seen = 0
    while obj is not None and seen < 20:
        if attribute in getattr(obj, "__dict__", {}):
            return obj.__dict__[attribute]
        obj = getattr(obj, "__wrapped__", None)
        seen += 1
    return None


def _function(item: pytest.Item):
    obj = getattr(item, "obj", None)
    return getattr(obj, "__func__", obj)  # methods: the function holds the decorators


def read_meta(item: pytest.Item, rubric: Rubric, rootpath: Path) -> TestMeta:
    """The frozen record of one test (max_score still 0: groups are weighed afterwards)."""
    func = _function(item)
    folders = _test_folders(item, rootpath)
    stage = "train" if "train" in folders else "unit"
    group = "hidden" if "hidden" in folders else "visible"
    number = _find(func, "__number__")
    problem = rubric.problem_of(number) if number is not None else None
    errors = []
    if number is None:
        errors.append("has no @number")
    elif problem is None:
        errors.append(f"@number({number!r}) matches no problem of rubric.toml")
    weight = _find(func, "__weight__")
    weight = 1.0 if weight is None else weight
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        errors.append(f"has an invalid @weight {weight!r}")
        weight = 1.0
    visibility = _find(func, "__visibility__") or "visible"
    if group == "hidden" and visibility not in HIDDEN_VISIBILITIES:
        visibility = "after_published"  # a hidden test is never shown before publication
    doc = (getattr(func, "__doc__", None) or "").strip().splitlines()
    name = doc[0].strip() if doc else item.name
    column = _find(func, "__leaderboard_column__")
    return TestMeta(
        nodeid=item.nodeid, name=f"{number} {name}" if number else name,
        number=str(number or ""), problem=problem.number if problem else "", stage=stage,
        group=group, visibility=visibility, tags=tuple(str(t) for t in _find(func, "__tags__") or ()),
        weight=float(weight), hide_errors=_find(func, "__hide_errors__"),
        leaderboard=(column, _find(func, "__leaderboard_sort_order__") or "desc") if column else None,
        bonus=bool(problem and problem.bonus), config_error="; ".join(errors))


def _weigh(metas: list[TestMeta], rubric: Rubric) -> list[TestMeta]:
    """Give each test its share of its group's points, by relative weight."""
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
        weighed.append(_replace(meta, max_score=points * share))
    return weighed


def _replace(meta: TestMeta, **changes) -> TestMeta:
    return TestMeta(**{**asdict(meta), **changes})


@pytest.hookimpl(tryfirst=True)  # before -k/-m: weights are shared out over the whole suite
def pytest_collection_modifyitems(session, config, items) -> None:
    state = config.stash[STATE]
    metas = _weigh([read_meta(item, state.rubric, config.rootpath) for item in items], state.rubric)
    keep, drop = [], []
    stages, groups = state.options.stages(), state.options.groups()
    for item, meta in zip(items, metas):
        item.stash[META] = meta
        (keep if meta.stage in stages and meta.group in groups else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # The unit stage first (a stable sort: file order within a stage): should the training
    # stage's fine-tuning be killed (out of memory, out of time), every unit result is saved.
    items[:] = sorted(keep, key=lambda item: STAGE_ORDER.get(item.stash[META].stage, len(STAGE_ORDER)))
    covered = {(m.problem, m.stage, m.group) for m in metas if m.stage in stages and m.group in groups}
    for problem, stage, group, points in state.rubric.groups(stages, groups):
        if (problem.number, stage, group) not in covered:
            state.extra.append(not_graded(TestResult(
                nodeid=f"rubric::{problem.number}::{stage}::{group}",
                name=f"{problem.number} {problem.title} ({stage} stage, {group} tests)",
                number=problem.number, problem=problem.number, score=0.0, max_score=points,
                status="failed", stage=stage, group=group, bonus=problem.bonus),
                "no grading test covers this part of the problem; course staff have been told"))


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[STATE]
    state.selected = [item.stash[META] for item in session.items if META in item.stash]
    _start_sandbox_early(session)
    expected = state.options.expected_count
    if expected is not None and expected != len(session.items):
        state.extra.append(TestResult(
            nodeid="engine::expected-count", name="Grading tests collected", number="0",
            problem="", score=0.0, max_score=0.0, status="failed", kind="internal_error",
            output=(f"The grader expected {expected} tests but collected {len(session.items)}; "
                    "some results may be missing. Course staff have been told.")))


# ----------------------------------------------------------------------------- running


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    func = getattr(item, "obj", None)
    for obj in _chain(func):  # gradescope-utils keeps these on the shared wrapper: reset per call
        for attribute in ("__score__", "__leaderboard_value__"):
            obj.__dict__.pop(attribute, None)
    try:
        return (yield)
    finally:
        score = _find(func, "__score__")
        if score is not None:
            item.stash[PARTIAL] = score
        value = _find(func, "__leaderboard_value__")
        if value is not None:
            item.stash[BOARD] = value


def _chain(obj):
    while obj is not None and hasattr(obj, "__dict__"):
        yield obj
        obj = getattr(obj, "__wrapped__", None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    meta = item.stash.get(META, None)
    if meta is not None:
        report.hw4 = _verdict(item, meta, call, report)
    return report


def _verdict(item, meta: TestMeta, call, report) -> dict:
    """The phase's verdict as plain data: kind, score fraction, student and staff text."""
    verdict = {"meta": asdict(meta), "when": report.when, "kind": "passed", "fraction": 1.0,
               "message": "", "safe": False, "staff": "", "leaderboard": None}
    partial = item.stash.get(PARTIAL, None) if report.when == "call" else None
    if partial is not None:
        weight = meta.weight if meta.weight else 1.0
        verdict["fraction"] = min(1.0, max(0.0, float(partial) / weight))
    if report.when == "call" and BOARD in item.stash:
        verdict["leaderboard"] = item.stash[BOARD]
    if hasattr(report, "wasxfail"):
        verdict.update(kind="skipped", fraction=0.0,
                       message="expected failure (xfail): tests that may fail score 0.")
    elif report.passed:
        pass
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        verdict.update(kind="skipped", fraction=0.0, message=f"skipped: {reason}")
    else:
        verdict.update(_failure(call.excinfo, report))
        if partial is None:
            verdict["fraction"] = 0.0
    return verdict


def _failure(excinfo, report) -> dict:
    error = excinfo.value if excinfo is not None else None
    if isinstance(error, SubmissionError):
        return {"kind": "submission_error", "submission_kind": error.kind,
                "message": str(error), "staff": ""}
    if isinstance(error, (AssertionError, pytest.fail.Exception)):
        text = str(error).strip() or "the test's check failed."
        return {"kind": "failed", "message": text, "safe": isinstance(error, StudentFeedback),
                "staff": report.longreprtext}
    if error is None:  # no exception: e.g. a strict xfail that passed
        return {"kind": "failed", "message": f"the test failed: {str(report.longrepr)[:300]}",
                "staff": ""}
    return {"kind": "internal_error", "message": INTERNAL_ERROR, "staff": report.longreprtext}


# ----------------------------------------------------------------------------- assembling


class GradingSession:
    """Controller-side assembly of the results; writes results.json when ``--results`` is set:
    progress as tests complete (see ``CHECKPOINT_INTERVAL_S``), then the final results."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.state: GradingState = config.stash[STATE]
        self.phases: dict[str, list[dict]] = {}
        self.order: list[str] = []
        self.started = time.monotonic()
        # Progress writes: the timer's thread and the reports arriving share the lock.
        self.lock = threading.Lock()
        self.unsaved = False  # a test completed since the last progress write
        self.last_write = float("-inf")
        self.timer: threading.Timer | None = None
        self.finished = False  # once set, only the final write touches results.json
        self.write_failed = False  # told staff already
        self.stage_of: dict[str, str] = {}  # nodeid -> stage of the selected tests

    @pytest.hookimpl(trylast=True)  # after the module's hook has listed the selected tests
    def pytest_collection_finish(self, session) -> None:
        self.stage_of = {m.nodeid: m.stage for m in self.state.selected}
        options = self.state.options
        if options.results is None:
            return
        with self.lock:  # every selected test "not graded" until it completes
            if self._write_progress():
                return
        write_fallback(options.results, "the grading run stopped before it finished",
                       pending=[m.placeholder() for m in self.state.selected])

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.state.extra.append(TestResult(
                nodeid=report.nodeid, name=f"Grading tests in {report.nodeid}", number="0",
                problem="", score=0.0, max_score=0.0, status="failed", kind="internal_error",
                output=INTERNAL_ERROR, staff_detail=report.longreprtext))

    def pytest_runtest_logstart(self, nodeid, location) -> None:
        """Before a training-stage test starts, save what is pending: it may not come back."""
        if self.stage_of.get(nodeid) == "train":  # unknown under xdist: teardowns still write
            with self.lock:
                self._save_progress(at_once=True)

    def pytest_runtest_logreport(self, report) -> None:
        verdict = getattr(report, "hw4", None)
        if verdict is None:
            return
        with self.lock:
            if report.nodeid not in self.phases:
                self.order.append(report.nodeid)
            self.phases.setdefault(report.nodeid, []).append(verdict)
            if report.when == "teardown":  # the test's last phase: it is graded
                self.unsaved = True
                self._save_progress(at_once=verdict["meta"]["stage"] == "train")

    def _save_progress(self, at_once: bool) -> None:
        """Write progress now, or have the timer write it once the interval has passed.
        Called with the lock held."""
        if self.finished or not self.unsaved or self.state.options.results is None:
            return
        wait = self.last_write + CHECKPOINT_INTERVAL_S - time.monotonic()
        if at_once or wait <= 0:
            self._write_progress()
        elif self.timer is None:
            self.timer = threading.Timer(wait, self._on_timer)
            self.timer.daemon = True  # never keeps a finished process alive
            self.timer.start()

    def _on_timer(self) -> None:
        with self.lock:
            self.timer = None
            self._save_progress(at_once=True)

    def _write_progress(self) -> bool:
        """Replace results.json by the progress so far (valid, atomic). A failure keeps the
        previous file, tells staff once on stderr, and never reaches the tests. Lock held."""
        self.last_write = time.monotonic()
        self.unsaved = False
        try:
            results = self.build(UNFINISHED_REASON, completed_only=True)
            write_results(dataclasses.replace(results, notes=results.notes + (UNFINISHED_NOTE,)),
                          self.state.options.results)
            return True
        except Exception as error:
            if not self.write_failed:
                self.write_failed = True
                sys.__stderr__.write(f"[staff] results.json could not be updated with the run's "
                                     f"progress (grading goes on): {error!r}\n")
            return False

    def _stop_progress(self) -> None:
        with self.lock:  # a write in flight finishes first; none starts after
            self.finished = True
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

    def pytest_unconfigure(self, config) -> None:
        self._stop_progress()  # a session that never reached its finish

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        self._stop_progress()
        reason = ("the run was interrupted" if session.shouldstop or session.shouldfail
                  else "the run stopped before this test ran")
        results = self.build(reason)
        self.config.stash[RESULTS] = results
        if self.state.options.results is not None:
            try:
                write_results(results, self.state.options.results)
            except Exception as error:  # never leave an invalid or missing file
                write_fallback(self.state.options.results, f"results could not be written ({error})",
                               graded=(), pending=[m.placeholder() for m in self.state.selected])
                sys.stderr.write(f"[staff] results.json replaced by the fallback: {error!r}\n")

    def build(self, reason: str, completed_only: bool = False) -> Results:
        """Results of the reports so far; a selected test without them is "not graded: reason".
        ``completed_only``: a test still running (no teardown report yet) is not graded too."""
        metas = {m.nodeid: m for m in self.state.selected}
        for nodeid in self.order:  # under xdist only the reports know the tests
            if nodeid not in metas:
                metas[nodeid] = TestMeta(**self.phases[nodeid][0]["meta"])
        tests = []
        for nodeid, meta in metas.items():
            phases = self.phases.get(nodeid)
            if completed_only and phases and phases[-1]["when"] != "teardown":
                phases = None
            tests.append(_result(meta, phases) if phases else not_graded(meta.placeholder(), reason))
        tests += self.state.extra
        notes = list(self.state.intake.notes) if self.state.intake else []
        if self.state.intake_error is not None:
            notes.append(self.state.intake_error.message)
        staff = tuple(f"{t.nodeid}\n{t.staff_detail}" for t in tests if t.staff_detail
                      and t.kind == "internal_error")
        return Results(tests=tuple(tests), execution_time=time.monotonic() - self.started,
                       notes=tuple(notes), staff_log=staff,
                       titles={p.number: p.title for p in self.state.rubric.problems})

    def pytest_terminal_summary(self, terminalreporter) -> None:
        results = self.config.stash.get(RESULTS, None)
        if results is None:
            return
        terminalreporter.section("HW4 grade")
        terminalreporter.write_line(results.terminal_table())
        for entry in results.staff_log:
            terminalreporter.write_line(f"[staff] internal grading error in {entry}")


def _result(meta: TestMeta, phases: list[dict]) -> TestResult:
    """One result from a test's phase verdicts: the first phase that did not pass decides."""
    call = next((p for p in phases if p["when"] == "call"), None)
    decisive = next((p for p in phases if p["kind"] != "passed"), call)
    if decisive is None:  # setup passed but the call never came
        return not_graded(meta.placeholder(), "the test did not run")
    if meta.config_error:
        decisive = {**decisive, "kind": "internal_error", "fraction": 0.0, "message": INTERNAL_ERROR,
                    "staff": f"grading test {meta.nodeid} {meta.config_error}"}
    fraction = decisive["fraction"] if decisive is call else 0.0  # setup/teardown errors: 0
    score = meta.max_score * fraction
    passed = decisive["kind"] == "passed" and fraction >= 1.0
    board = call.get("leaderboard") if call else None
    return TestResult(
        nodeid=meta.nodeid, name=meta.name, number=meta.number, problem=meta.problem,
        score=score, max_score=meta.max_score, status="passed" if passed else "failed",
        output=_student_output(meta, decisive, passed, score), visibility=meta.visibility,
        tags=meta.tags, stage=meta.stage, group=meta.group, bonus=meta.bonus,
        kind=decisive["kind"], staff_detail=decisive.get("staff", "") or "",
        leaderboard=(meta.leaderboard[0], board, meta.leaderboard[1])
        if meta.leaderboard and isinstance(board, (int, float, str)) else None)


def _student_output(meta: TestMeta, verdict: dict, passed: bool, score: float) -> str:
    text = _student_text(meta, verdict, passed, score)
    if verdict["when"] != "call" and verdict["kind"] != "passed":  # say which phase failed
        phase = "setting up" if verdict["when"] == "setup" else "cleaning up after"
        text = f"Error while {phase} this test. {text}"
    return text


def _student_text(meta: TestMeta, verdict: dict, passed: bool, score: float) -> str:
    partial = "" if passed or score <= 0 else f"Partial credit: {score:.4g} / {meta.max_score:.4g}.\n\n"
    if passed:
        return "Passed."
    kind, message = verdict["kind"], verdict["message"]
    if kind == "internal_error":
        return INTERNAL_ERROR
    if meta.hide_errors:
        return partial + str(meta.hide_errors)
    if meta.group == "hidden":
        if verdict.get("safe"):
            return partial + message
        if kind == "submission_error":
            return partial + _GENERIC_BY_KIND.get(verdict.get("submission_kind"),
                                                  "Your code failed on this hidden test.")
        if kind == "passed":  # partial credit on a passing call
            return partial.strip()
        return partial + "This hidden test failed; its inputs are not shown."
    if kind == "failed" and not verdict.get("safe"):  # raw assertion text: keep it verbatim
        return partial + "```\n" + message + "\n```"
    return partial + message
