"""The pytest plugin that turns grading tests into results: hooks only, one result per test.

Registered by ``tests/grading/conftest.py`` (``pytest_plugins = ["autograder.plugin"]``). The
hooks call three modules, one concern each:
- ``autograder.scoring``: at collection, each test's decorators and folder into a frozen
  ``TestMeta`` on the item, its share of the rubric's points, the rubric groups no test covers;
- ``autograder.feedback``: each phase's verdict as plain data (``report.hw4``, so it also travels
  from xdist workers), then one ``TestResult`` per test and what a student may read of it;
- ``autograder.results_writer``: the one writer of results.json (placeholder, progress, final).

The controller keeps the last word: ``GradingSession`` assembles one ``TestResult`` per selected
test from the phase reports (never from pytest's exit code), adds visible failed entries for
what would otherwise vanish (collection errors, rubric groups no test covers, an expected-count
mismatch), and hands each state of the results to the session's ``ResultsWriter``: one made
from ``--results``, or the one an embedding caller registered as a plugin object
(``autograder.grade``). Without either, nothing is written; ``results_of`` returns the Results.

What the terminal shows is ``autograder.terminal``'s: each failure written for students as its
student-facing text, the ``[staff]`` lines only in the staff view (``-v``, ``--tb=long``,
``--staff-log``). A run narrowed by its user under ``--allow-partial`` (``autograder.selection``)
grades what it selected and adds no entry for the rest.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder import feedback, paths, pictures, scoring, selection, terminal
from autograder.errors import SubmissionError
from autograder.intake import Intake, collect
from autograder.report import Results, TestResult, not_graded
from autograder.pictures.session import add_pictures
from autograder.results_writer import UNFINISHED_REASON, ResultsWriter
from autograder.rubric import Rubric, load_rubric
from autograder.scoring import TestMeta


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
        """``device`` with "auto" decided (``autograder.machine.resolve_device``)."""
        from autograder.machine import resolve_device

        return resolve_device(self.device)


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
        self.partial = False  # the user chose a part of the tests (selection.partial)
        self.defences: str | None = None  # the staff line of the sandbox's defences

    def run_intake(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="hw4-grading-"))
        try:
            self.intake = collect(self.options.submission, self.workdir / "submission")
        except SubmissionError as error:
            self.intake_error = error


STATE = pytest.StashKey[GradingState]()
META = pytest.StashKey[TestMeta]()
PARTIAL = pytest.StashKey[float]()  # set_score's value, read after the call
PICTURES = pytest.StashKey[list]()  # the call's autograder.pictures records
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
    group.addoption("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                    help="device for the student's code: cpu (default; Gradescope grades on "
                         "the CPU), cuda, or auto (cuda when available)")
    group.addoption("--visibility", choices=("all", "visible"), default="all",
                    help="'visible': run only the visible tests, as the handout does")
    group.addoption("--hw4-data", default=None, help="dataset: .npz or CIFAR-10 folder (default: "
                                                     "$HW4_DATA, else the embedded one)")
    group.addoption("--hw4-checkpoint", default=None,
                    help="checkpoint (default: $HW4_CHECKPOINT, else the embedded one)")
    group.addoption("--rubric", default=str(paths.RUBRIC_PATH),
                    help="the rubric file (default: rubric.toml of this layout)")
    group.addoption("--expected-count", type=int, default=None,
                    help="number of grading tests this run must collect; a mismatch is reported "
                         "(default: the count a zip records, autograder.counts)")
    group.addoption("--pictures", default="auto", metavar="auto|off|DIR",
                    help="pictures of the visible tests' runs: 'auto' puts them inline in "
                         "results.json when one is written, else into hw4-pictures/ of the "
                         "rootdir; DIR writes the PNG files there too; 'off' draws none")
    group.addoption("--allow-partial", action="store_true",
                    help="a run narrowed by file arguments, -k, -m or --deselect grades only what "
                         "it selected: no entries for the other tests, no count check (the "
                         "handout's pytest.ini sets it)")
    group.addoption("--staff-log", action="store_true",
                    help="show what only course staff read: the grader's tracebacks of failed "
                         "tests and the [staff] lines (-v and --tb=long show them too)")


def pytest_configure(config: pytest.Config) -> None:
    options = GradingOptions(
        submission=Path(config.getoption("submission")).expanduser(),
        results=Path(config.getoption("results")) if config.getoption("results") else None,
        stage=config.getoption("stage"), device=config.getoption("device"),
        visibility=config.getoption("visibility"), hw4_data=config.getoption("hw4_data"),
        hw4_checkpoint=config.getoption("hw4_checkpoint"),
        expected_count=_expected_count(config))
    config.stash[STATE] = GradingState(options, load_rubric(config.getoption("rubric")))
    if not hasattr(config, "workerinput"):  # the controller alone assembles and reports
        config.pluginmanager.register(GradingSession(config, _writer(config, options)),
                                      "hw4-grading-session")


def _expected_count(config: pytest.Config) -> int | None:
    given = config.getoption("expected_count")
    if given is not None:
        return given
    from autograder.counts import recorded_count

    return recorded_count(config.getoption("stage"), config.getoption("visibility"))


def _writer(config: pytest.Config, options: GradingOptions) -> ResultsWriter | None:
    """The ResultsWriter an embedding caller registered as a plugin object, else one for
    ``--results``, else None (nothing is written)."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, ResultsWriter):
            return plugin
    return ResultsWriter(options.results) if options.results is not None else None


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
        state.defences = terminal.defences_line(state.box)  # for the staff view's summary
        state.box.close()  # stops the zygote and kills every process the submission left


# ----------------------------------------------------------------------------- collection


def pytest_ignore_collect(collection_path: Path, config: pytest.Config):
    """Leave unimported the test folders this run does not grade: a unit-stage grade never
    imports the training stage's modules (which pull torch into the grading process), and a
    visible-only run never imports hidden ones. Deselection still guards the test level."""
    state = config.stash.get(STATE, None)
    if state is None or "grading" not in collection_path.parts or not collection_path.is_dir():
        return None
    below = scoring.grading_folders(collection_path)
    if below and (scoring.stage_of_folders(below) not in state.options.stages()
                  or ("hidden" in below and "hidden" not in state.options.groups())):
        return True
    return None


@pytest.hookimpl(tryfirst=True)  # before -k/-m: weights are shared out over the whole suite
def pytest_collection_modifyitems(session, config, items) -> None:
    state = config.stash[STATE]
    metas = scoring.weigh([scoring.read_meta(item, state.rubric, config.rootpath)
                           for item in items], state.rubric)
    keep, drop = [], []
    stages, groups = state.options.stages(), state.options.groups()
    for item, meta in zip(items, metas):
        item.stash[META] = meta
        (keep if meta.stage in stages and meta.group in groups else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = sorted(keep, key=lambda item: scoring.run_order(item.stash[META]))  # stable
    state.partial = selection.partial(config)
    if not state.partial:  # a part the user chose leaves the others out on purpose
        state.extra += scoring.uncovered_groups(metas, state.rubric, stages, groups)


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[STATE]
    state.selected = [item.stash[META] for item in session.items if META in item.stash]
    _start_sandbox_early(session)
    expected = state.options.expected_count
    if expected is not None and expected != len(session.items) and not state.partial:
        state.extra.append(feedback.internal_error(
            "engine::expected-count", "Grading tests collected",
            f"The grader expected {expected} tests but collected {len(session.items)}; "
            "some results may be missing. Course staff have been told."))


# ----------------------------------------------------------------------------- running


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Capture what gradescope-utils' ``set_score`` and ``set_leaderboard_value`` left."""
    func = getattr(item, "obj", None)
    for obj in scoring.decorated_chain(func):  # kept on the shared wrapper: reset per call
        for attribute in ("__score__", "__leaderboard_value__"):
            obj.__dict__.pop(attribute, None)
    meta = item.stash.get(META, None)
    drawn = (item.config.getoption("pictures") != "off" and meta is not None
             and meta.group == "visible" and meta.visibility == "visible")
    try:
        with pictures.recording(drawn) as records:  # hidden tests: none, whatever they attach
            item.stash[PICTURES] = records
            return (yield)
    finally:
        score = scoring.find_attribute(func, "__score__")
        if score is not None:
            item.stash[PARTIAL] = score
        value = scoring.find_attribute(func, "__leaderboard_value__")
        if value is not None:
            item.stash[BOARD] = value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    meta = item.stash.get(META, None)
    if meta is not None:
        on_call = report.when == "call"
        report.hw4 = feedback.phase_verdict(
            meta, call, report, partial=item.stash.get(PARTIAL, None) if on_call else None,
            board=item.stash.get(BOARD, None) if on_call else None, printed=_printed(item))
        if on_call and item.stash.get(PICTURES, None):
            report.hw4_pictures = item.stash[PICTURES]  # plain data: crosses from xdist workers
        if not terminal.staff_view(item.config):
            terminal.show_to_student(report, call.excinfo, meta, report.hw4)
    return report


def _printed(item: pytest.Item) -> list[str]:
    """What the student's calls this test asked of its memos printed since its last phase."""
    from autograder.memo import OutcomeMemo

    return [text for value in getattr(item, "funcargs", {}).values()
            if isinstance(value, OutcomeMemo) for text in value.take_printed()]


# ----------------------------------------------------------------------------- assembling


class GradingSession:
    """Controller-side assembly of the results, handed to the session's ResultsWriter (if
    any): every selected test "not graded" after collection, progress as tests complete, then
    the final results."""

    def __init__(self, config: pytest.Config, writer: ResultsWriter | None):
        self.config = config
        self.state: GradingState = config.stash[STATE]
        self.writer = writer
        self.phases: dict[str, list[dict]] = {}
        self.order: list[str] = []
        self.started = time.monotonic()
        self.stage_of: dict[str, str] = {}  # nodeid -> stage of the selected tests
        self.pictures: dict[str, list[dict]] = {}  # nodeid -> its picture records
        self.picture_files: list[Path] = []

    @pytest.hookimpl(trylast=True)  # after the module's hook has listed the selected tests
    def pytest_collection_finish(self, session) -> None:
        self.stage_of = {m.nodeid: m.stage for m in self.state.selected}
        if self.writer is not None:
            self.writer.begin(lambda: self.build(UNFINISHED_REASON, completed_only=True),
                              pending=[m.placeholder() for m in self.state.selected])

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.state.extra.append(feedback.internal_error(
                report.nodeid, f"Grading tests in {report.nodeid}", feedback.INTERNAL_ERROR,
                staff_detail=report.longreprtext))

    def pytest_runtest_logstart(self, nodeid, location) -> None:
        """Before a training-stage test starts, save what is pending: it may not come back."""
        if self.writer is not None and self.stage_of.get(nodeid) == "train":
            self.writer.save_now()  # unknown under xdist: teardowns still write

    def pytest_runtest_logreport(self, report) -> None:
        verdict = getattr(report, "hw4", None)
        if verdict is None:
            return
        if report.nodeid not in self.phases:
            self.order.append(report.nodeid)
        if getattr(report, "hw4_pictures", None):
            self.pictures[report.nodeid] = report.hw4_pictures
        self.phases.setdefault(report.nodeid, []).append(verdict)
        if report.when == "teardown" and self.writer is not None:  # its last phase: graded
            self.writer.completed(at_once=verdict["meta"]["stage"] == "train")

    def pytest_unconfigure(self, config) -> None:
        if self.writer is not None:
            self.writer.stop()  # a session that never reached its finish

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        if self.writer is not None:
            self.writer.stop()  # before building: no progress write races the final one
        reason = ("the run was interrupted" if session.shouldstop or session.shouldfail
                  else "the run stopped before this test ran")
        results = self.build(reason)
        folder = self._picture_folder()
        if self.pictures and (self.writer is not None or folder is not None):
            results, self.picture_files = add_pictures(results, self.pictures, folder=folder)
        if self.writer is not None:
            results = self.writer.final(results)
        self.config.stash[RESULTS] = results

    def _picture_folder(self) -> Path | None:
        """Where the PNGs go: ``--pictures DIR``; with "auto", hw4-pictures/ of the rootdir in
        a run that writes no results.json (the handout's ``pytest``)."""
        choice = self.config.getoption("pictures")
        if choice == "off" or (choice == "auto" and self.writer is not None):
            return None
        return self.config.rootpath / "hw4-pictures" if choice == "auto" else Path(choice)

    def build(self, reason: str, completed_only: bool = False) -> Results:
        """Results of the reports so far; a selected test without them is "not graded: reason".
        ``completed_only``: a test still running (no teardown report yet) is not graded too.
        Called from the writer's timer thread too: it reads the lists the reports append to."""
        metas = {m.nodeid: m for m in self.state.selected}
        for nodeid in list(self.order):  # under xdist only the reports know the tests
            if nodeid not in metas:
                metas[nodeid] = TestMeta(**self.phases[nodeid][0]["meta"])
        tests = []
        for nodeid, meta in metas.items():
            phases = list(self.phases.get(nodeid, ()))
            if completed_only and phases and phases[-1]["when"] != "teardown":
                phases = None
            tests.append(feedback.graded_result(meta, phases) if phases
                         else not_graded(meta.placeholder(), reason))
        tests += self.state.extra
        notes = list(self.state.intake.notes) if self.state.intake else []
        if self.state.intake_error is not None:
            notes.append(self.state.intake_error.message)
        if self.state.partial:
            notes.append(f"This run graded only the {len(metas)} tests you selected; `pytest` "
                         "without arguments runs them all.")
        staff = tuple(f"{t.nodeid}\n{t.staff_detail}" for t in tests if t.staff_detail
                      and t.kind == "internal_error")
        return Results(tests=tuple(tests), execution_time=time.monotonic() - self.started,
                       notes=tuple(notes), staff_log=staff,
                       titles={p.number: p.title for p in self.state.rubric.problems},
                       hand_graded=self.state.rubric.hand_graded())

    def pytest_terminal_summary(self, terminalreporter) -> None:
        results = self.config.stash.get(RESULTS, None)
        if results is None:
            return
        terminalreporter.section("HW4 grade")
        terminalreporter.write_line(results.terminal_table())
        if self.picture_files:
            terminalreporter.write_line(f"Pictures of your runs ({len(self.picture_files)} PNG "
                                        f"files): {self.picture_files[0].parent}")
        if terminal.staff_view(self.config):
            for line in terminal.staff_lines(results, self.state.defences):
                terminalreporter.write_line(line)
