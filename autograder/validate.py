"""`python -m autograder validate`: prove the grading suite against submissions of known worth.

It grades, through the real engine (``grade_submission``), three kinds of submission:
1. the reference (``reference/``): it must get every point;
2. the stubs (``student/``): 0 on every problem, with no internal grading error;
3. the catalogue (``tests/project/catalogue/``): full submissions that differ from the
   reference in ONE definition (a function, a method such as ``STE.forward``, or a top-level
   assignment such as ``TRUE_FALSE``). A *wrong* entry must lose points on the problems it lists
   in ``loses`` and keep every point of every other problem; a *correct* entry (a valid
   convention) must get every point.
A test that reports an internal grading error is a surprise everywhere. The command prints a
matrix of submissions x problems and exits 1 on any surprise.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import fnmatch
import io
import json
import multiprocessing
import shutil
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder.compat import tomllib
from autograder.numbers import number_key, problem_number
from autograder.paths import REFERENCE_DIR, STUDENT_DIR, SUBMISSION_FILES, TESTS_DIR
from autograder.sandbox import reuse

CATALOGUE_DIR = TESTS_DIR / "project" / "catalogue"
WRONG_CATALOGUE = CATALOGUE_DIR / "wrong_submissions.toml"
CORRECT_CATALOGUE = CATALOGUE_DIR / "correct_variants.toml"
FULL_TOLERANCE = 1e-6  # scores are sums of float shares of the rubric's points


# --- the catalogue -------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    """The reference with one definition of ``file`` replaced by ``source``.

    ``target`` names the definition: ``"gradient"``, ``"STE.forward"``, ``"TRUE_FALSE"``.
    ``loses``: the problems it must lose points on (empty for a correct variant).
    ``train``: under ``--stage all`` it is graded with the training stage too, and must then
    lose points on ``train_loses`` (default: ``loses``).
    ``prelude``: statements placed at the top of ``file``, after its imports, the way students
    write settings (a seed, a default dtype); with a prelude, ``target`` and ``source`` may be
    empty (the file is the reference's plus the prelude).
    """

    name: str
    file: str
    target: str
    source: str
    loses: tuple[str, ...] = ()
    mistake: str = ""
    why: str = ""
    train: bool = False
    train_loses: tuple[str, ...] | None = None
    prelude: str = ""


def load_catalogue(path: Path, *, correct: bool) -> list[Variant]:
    """Read ``[[submission]]`` tables; a correct catalogue's entries may not list ``loses``."""
    with open(path, "rb") as handle:
        entries = tomllib.load(handle).get("submission", [])
    variants = []
    for entry in entries:
        loses = tuple(entry.get("loses", ()))
        if correct == bool(loses):
            raise ValueError(f"{path.name}: {entry['name']}: "
                             + ("a correct variant loses nothing" if correct
                                else "a wrong submission must list the problems it loses"))
        train_loses = entry.get("train_loses")
        prelude = entry.get("prelude", "")
        if not prelude and not ("function" in entry and "source" in entry):
            raise ValueError(f"{path.name}: {entry['name']}: give `function` and `source`, "
                             "or a `prelude`")
        variants.append(Variant(
            name=entry["name"], file=entry["file"], target=entry.get("function", ""),
            source=entry.get("source", ""), loses=loses, mistake=entry.get("mistake", ""),
            why=entry.get("why", ""), train=bool(entry.get("train", False)),
            train_loses=tuple(train_loses) if train_loses is not None else None,
            prelude=prelude))
    names = [variant.name for variant in variants]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{path.name}: duplicate names {duplicates}")
    return variants


# --- splicing one definition into a reference file ----------------------------------------

def _definition_name(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    return None


def _find_definition(body: list[ast.stmt], name: str, where: str) -> ast.stmt:
    found = [node for node in body if _definition_name(node) == name]
    if len(found) != 1:
        raise LookupError(f"{where} defines {name!r} {len(found)} times, expected once")
    return found[0]


def _first_line(node: ast.stmt) -> int:
    """1-based first line of a definition, decorators included."""
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [decorator.lineno for decorator in decorators])


def splice(module_source: str, target: str, replacement: str) -> str:
    """``module_source`` with the definition ``target`` replaced by ``replacement``.

    ``target`` is a top-level name or ``Class.method``. ``replacement`` is the new definition,
    decorators included (a method needs its ``@staticmethod``), at any indentation; it may
    start with import statements, which are added at the module's top level unless already
    there. Every other line of the module is kept byte for byte.
    """
    module = ast.parse(module_source)
    *owners, name = target.split(".")
    body, indent = module.body, 0
    for owner in owners:
        owner_node = _find_definition(body, owner, "the module" if body is module.body else "the class")
        if not isinstance(owner_node, ast.ClassDef):
            raise LookupError(f"{owner!r} is not a class")
        body = owner_node.body
    old = _find_definition(body, name, "the module" if not owners else f"class {owners[-1]}")
    indent = old.col_offset

    new_tree = ast.parse(textwrap.dedent(replacement))
    imports = [node for node in new_tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    definitions = [node for node in new_tree.body if node not in imports]
    if len(definitions) != 1 or _definition_name(definitions[0]) != name:
        raise ValueError(f"the replacement must hold exactly one definition of {name!r} "
                         "(plus optional imports)")
    new_lines = textwrap.dedent(replacement).strip("\n").splitlines()
    definition_lines = new_lines[_first_line(definitions[0]) - 1:definitions[0].end_lineno]
    definition_text = textwrap.indent("\n".join(definition_lines), " " * indent) + "\n"

    present = {ast.dump(node) for node in module.body if isinstance(node, (ast.Import, ast.ImportFrom))}
    missing_imports = [ast.unparse(node) + "\n" for node in imports if ast.dump(node) not in present]

    lines = module_source.splitlines(keepends=True)
    lines[_first_line(old) - 1:old.end_lineno] = [definition_text]
    if missing_imports:
        top_imports = [node for node in module.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        docstring = ast.get_docstring(module) is not None
        after = top_imports[-1].end_lineno if top_imports else (module.body[0].end_lineno if docstring else 0)
        if after >= _first_line(old):
            raise ValueError("imports must come before the replaced definition")
        lines[after:after] = missing_imports
    spliced = "".join(lines)
    ast.parse(spliced)  # a catalogue entry must yield valid Python
    return spliced


def add_prelude(module_source: str, prelude: str) -> str:
    """``module_source`` with the statements ``prelude`` inserted after its top-level imports
    (after its docstring when it has none), every other line kept byte for byte."""
    module = ast.parse(module_source)
    top_imports = [node for node in module.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    docstring = ast.get_docstring(module) is not None
    after = top_imports[-1].end_lineno if top_imports else (module.body[0].end_lineno if docstring else 0)
    lines = module_source.splitlines(keepends=True)
    lines[after:after] = [textwrap.dedent(prelude).strip("\n") + "\n"]
    spliced = "".join(lines)
    ast.parse(spliced)  # a catalogue entry must yield valid Python
    return spliced


def apply_variant(module_source: str, variant: Variant) -> str:
    """``module_source`` (the reference's ``variant.file``) as the variant writes it."""
    if variant.target:
        module_source = splice(module_source, variant.target, variant.source)
    if variant.prelude:
        module_source = add_prelude(module_source, variant.prelude)
    return module_source


# --- the submissions to grade --------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One submission to grade. ``kind``: "reference", "stubs", "wrong" or "correct"."""

    name: str
    kind: str
    stage: str = "unit"
    variant: Variant | None = None

    @property
    def loses(self) -> tuple[str, ...]:
        if self.variant is None:
            return ()
        if self.stage != "unit" and self.variant.train_loses is not None:
            return self.variant.train_loses
        return self.variant.loses


def build_submission(case: Case, dest: Path) -> Path:
    """Write the four files of ``case`` into ``dest`` (created) and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    source_dir = STUDENT_DIR if case.kind == "stubs" else REFERENCE_DIR
    for filename in SUBMISSION_FILES:
        shutil.copyfile(source_dir / filename, dest / filename)
    if case.variant is not None:
        path = dest / case.variant.file
        path.write_text(apply_variant(path.read_text(), case.variant))
    return dest


def plan_cases(*, stage: str = "unit", only: list[str] | None = None,
               wrong: Path = WRONG_CATALOGUE, correct: Path = CORRECT_CATALOGUE) -> list[Case]:
    """Reference, stubs, then every catalogue entry; ``only`` keeps the names matching a glob.

    Under ``stage="all"`` the reference, the stubs and the entries marked ``train`` get the
    training stage too; the others stay on the unit stage, which is where they matter.
    """
    cases = [Case("reference", "reference", stage), Case("stubs", "stubs", stage)]
    for variant in load_catalogue(wrong, correct=False):
        cases.append(Case(variant.name, "wrong", stage if variant.train else "unit", variant))
    for variant in load_catalogue(correct, correct=True):
        cases.append(Case(variant.name, "correct", stage if variant.train else "unit", variant))
    if only:
        cases = [case for case in cases if any(fnmatch.fnmatchcase(case.name, p) for p in only)]
    return cases


# --- grading and judging -------------------------------------------------------------------

@dataclass
class Outcome:
    """What the engine said about one case, and the surprises found in it."""

    name: str
    kind: str
    stage: str
    loses: list[str]
    by_problem: dict[str, list[float]] = field(default_factory=dict)  # problem -> [score, max]
    failed_tests: list[dict] = field(default_factory=list)
    grader_faults: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    crash: str = ""
    surprises: list[str] = field(default_factory=list)


GRADER_FAULT_KINDS = {"internal_error", "not_graded"}  # TestResult.kind values that are ours


def _is_grader_fault(test) -> bool:
    """An internal grading error, or points left "not graded": the harness's fault, never the
    student's (a student's exception, timeout or crash is kind "submission_error")."""
    return str(getattr(test, "kind", "")) in GRADER_FAULT_KINDS


def _test_record(test) -> dict:
    output = str(getattr(test, "output", "") or "")
    return {"number": str(test.number), "name": str(getattr(test, "name", "")),
            "status": str(getattr(test, "status", "")), "kind": str(getattr(test, "kind", "")),
            "score": float(test.score),
            "max_score": float(test.max_score), "output": output[:600]}


def grade_case(case: Case, device: str = "cpu") -> Outcome:
    """Build the submission of ``case`` in a temporary folder and grade it (no judging)."""
    outcome = Outcome(case.name, case.kind, case.stage, list(case.loses))
    start = time.perf_counter()
    try:
        from autograder.grade import grade_submission

        with tempfile.TemporaryDirectory(prefix="hw4-validate-") as tmp, \
                contextlib.redirect_stdout(io.StringIO()):  # the engine prints its own table
            submission = build_submission(case, Path(tmp) / "submission")
            results = grade_submission(submission, out=Path(tmp) / "results.json",
                                       stage=case.stage, device=device,
                                       pictures=False)  # verdicts only: drawing adds ~1 s a case
        outcome.by_problem = {p: [float(s), float(m)] for p, (s, m) in results.by_problem().items()}
        for test in results.tests:
            if _is_grader_fault(test):
                outcome.grader_faults.append(_test_record(test))
            elif float(test.score) < float(test.max_score) - FULL_TOLERANCE:
                outcome.failed_tests.append(_test_record(test))
    except Exception as error:  # the engine itself failed: a surprise, reported, not raised
        outcome.crash = f"{type(error).__name__}: {error}"
    outcome.seconds = time.perf_counter() - start
    return outcome


def judge(outcome: Outcome) -> list[str]:
    """The surprises of one graded case; also stored in ``outcome.surprises``."""
    surprises = []
    if outcome.crash:
        surprises.append(f"the engine raised {outcome.crash}")
    for test in outcome.grader_faults:
        surprises.append(f"internal grading error in test {test['number']} {test['name']}: "
                         f"{test['output'][:200]}")
    for problem in outcome.loses:
        if problem not in outcome.by_problem and not outcome.crash:
            surprises.append(f"the catalogue expects a loss on {problem}, which the grader lacks")
    for problem, (score, max_score) in sorted(outcome.by_problem.items(), key=lambda item: number_key(item[0])):
        full = score >= max_score - FULL_TOLERANCE
        if outcome.kind == "stubs":
            if score > FULL_TOLERANCE:
                surprises.append(f"{problem}: the stubs got {score:g}/{max_score:g}, expected 0")
        elif problem in outcome.loses:
            if full:
                surprises.append(f"{problem}: kept all {max_score:g} points, expected a loss")
        elif not full:
            failed = [t for t in outcome.failed_tests if problem_number(t["number"]) == problem]
            detail = "; ".join(f"{t['number']} {t['name']}: {t['output'][:300]!r}" for t in failed)
            surprises.append(f"{problem}: got {score:g}/{max_score:g}, expected full credit"
                             + (f" ({detail})" if detail else ""))
    outcome.surprises = surprises
    return surprises


def run_cases(cases: list[Case], *, jobs: int = 1, device: str = "cpu",
              progress=None) -> list[Outcome]:
    """Grade and judge every case, ``jobs`` at a time in worker processes; order is kept.

    ``progress``: an optional callable given each judged Outcome as soon as it is ready.
    """
    outcomes: list[Outcome | None] = [None] * len(cases)

    def finish(index: int, outcome: Outcome) -> None:
        judge(outcome)
        outcomes[index] = outcome
        if progress is not None:
            progress(outcome)

    # The submissions are the staff's own, graded one after another: each worker's grades share
    # one sandbox zygote (``sandbox.reuse``), which spares each grade most of its cost.
    if jobs <= 1 or len(cases) <= 1:
        with reuse.kept_zygotes():
            for index, case in enumerate(cases):
                finish(index, grade_case(case, device))
        return outcomes
    # spawn: a worker must not inherit the parent's threads or a half-started sandbox
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                             initializer=reuse.keep_zygotes_until_exit) as pool:
        futures = {pool.submit(grade_case, case, device): index for index, case in enumerate(cases)}
        for future in as_completed(futures):
            finish(futures[future], future.result())
    return outcomes


# --- the report ----------------------------------------------------------------------------

def _cell(outcome: Outcome, problem: str) -> str:
    if problem not in outcome.by_problem:
        return "?"
    score, max_score = outcome.by_problem[problem]
    lost = max_score - score
    mark = "-" if lost <= FULL_TOLERANCE else f"-{lost:.3g}"
    surprising = any(s.startswith(f"{problem}:") for s in outcome.surprises)
    if outcome.kind == "stubs":
        mark = "0" if score <= FULL_TOLERANCE else f"+{score:.3g}"
    elif lost <= FULL_TOLERANCE:
        mark = "."
    return mark + ("!" if surprising else "")


def format_matrix(outcomes: list[Outcome]) -> str:
    """Rows: submissions; columns: problems. '.' full, '-x' x points lost, '!' a surprise."""
    problems = sorted({p for o in outcomes for p in o.by_problem}, key=number_key)
    name_width = max([len(o.name) for o in outcomes] + [10]) + 2
    width = max([len(p) for p in problems] + [6]) + 1
    lines = ["".ljust(name_width + 10) + "".join(p.rjust(width) for p in problems)]
    for outcome in outcomes:
        flag = "SURPRISE" if outcome.surprises else "ok"
        row = outcome.name.ljust(name_width) + outcome.kind.ljust(10)
        if outcome.crash:
            row += f"  ENGINE FAILED: {outcome.crash}"
        else:
            row += "".join(_cell(outcome, p).rjust(width) for p in problems)
        lines.append(f"{row}  {flag} ({outcome.seconds:.1f}s)")
    lines.append("'.' full credit, '-x' x points lost, stubs: '0' or '+x' points scored, "
                 "'!' not what the catalogue expects")
    return "\n".join(lines)


def format_surprises(outcomes: list[Outcome]) -> str:
    lines = []
    for outcome in outcomes:
        for surprise in outcome.surprises:
            lines.append(f"SURPRISE {outcome.name} [{outcome.kind}, {outcome.stage} stage]: {surprise}")
    return "\n".join(lines)


def report_data(outcomes: list[Outcome]) -> dict:
    return {"ok": not any(o.surprises for o in outcomes),
            "surprises": sum(len(o.surprises) for o in outcomes),
            "submissions": [asdict(o) for o in outcomes]}


# --- the command ---------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="grade only these cases (globs; 'reference' and 'stubs' included)")
    parser.add_argument("--stage", choices=("unit", "all"), default="unit",
                        help="'all' adds the training stage for the entries marked train=true")
    parser.add_argument("-j", "--jobs", type=int, default=2,
                        help="grades run in parallel, one process each (default 2)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                        help="device of the student code (default cpu)")
    parser.add_argument("--json", metavar="PATH",
                        help="also write the machine-readable report there ('-' for stdout)")
    parser.add_argument("--catalogue", type=Path, default=WRONG_CATALOGUE,
                        help="the wrong submissions (TOML)")
    parser.add_argument("--correct", type=Path, default=CORRECT_CATALOGUE,
                        help="the correct variants (TOML)")


def run(args: argparse.Namespace) -> int:
    cases = plan_cases(stage=args.stage, only=args.only, wrong=args.catalogue, correct=args.correct)
    if not cases:
        print("validate: no case matches --only", file=sys.stderr)
        return 2
    start = time.perf_counter()
    text_out = sys.stderr if args.json == "-" else sys.stdout
    done = iter(range(1, len(cases) + 1))

    def progress(outcome: Outcome) -> None:
        verdict = f"{len(outcome.surprises)} surprise(s)" if outcome.surprises else "ok"
        print(f"[{next(done)}/{len(cases)}] {outcome.name}: {verdict} ({outcome.seconds:.1f}s)",
              file=sys.stderr, flush=True)

    outcomes = run_cases(cases, jobs=args.jobs, device=args.device, progress=progress)
    print(format_matrix(outcomes), file=text_out)
    surprises = format_surprises(outcomes)
    if surprises:
        print("\n" + surprises, file=text_out)
    bad = sum(1 for o in outcomes if o.surprises)
    print(f"\n{len(outcomes)} submissions graded in {time.perf_counter() - start:.0f}s; "
          f"{bad} with surprises", file=text_out)
    if args.json:
        data = json.dumps(report_data(outcomes), indent=2)
        if args.json == "-":
            print(data)
        else:
            Path(args.json).write_text(data + "\n")
    return 1 if bad else 0
