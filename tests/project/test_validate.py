"""`python -m autograder validate`: its splicing, its catalogue, and the whole run.

The splicing tests are fast. The catalogue run grades every submission through the real
engine (a few minutes on two cores): it is the proof that the grading suite gives full credit
to every valid convention and takes points from each known mistake on its problem only.
"""
from __future__ import annotations

import ast
import difflib
import types

import pytest

from autograder import validate
from autograder.paths import REFERENCE_DIR, SUBMISSION_FILES
from autograder.rubric import load_rubric

LAB3 = (REFERENCE_DIR / "lab3.py").read_text()
LAB1 = (REFERENCE_DIR / "lab1.py").read_text()


def _module(source: str, name: str = "spliced") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)
    return module


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed lines, added lines) of a line diff."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


# --- splicing ------------------------------------------------------------------------------

def test_splice_replaces_only_the_named_function():
    new = "def gradient(W, X, Y):\n    return X.T @ (X @ W - Y)\n"
    spliced = validate.splice(LAB1, "gradient", new)
    removed, added = _changed_lines(LAB1, spliced)
    assert added == ["    return X.T @ (X @ W - Y)"]
    assert removed == ['    """dL/dW = 2 X^T (X W - y), shape (5,)."""', "    return 2.0 * X.T @ (X @ W - Y)"]
    before = {node.name: ast.dump(node) for node in ast.parse(LAB1).body if isinstance(node, ast.FunctionDef)}
    after = {node.name: ast.dump(node) for node in ast.parse(spliced).body if isinstance(node, ast.FunctionDef)}
    assert before.keys() == after.keys()
    assert [name for name in before if before[name] != after[name]] == ["gradient"]


def test_splice_replaces_a_method_and_keeps_the_other():
    new = """
        @staticmethod
        def backward(ctx, g):
            return g * 0, None, None
    """
    spliced = validate.splice(LAB3, "STE.backward", new)
    ste_before = next(n for n in ast.parse(LAB3).body if isinstance(n, ast.ClassDef))
    ste_after = next(n for n in ast.parse(spliced).body if isinstance(n, ast.ClassDef))
    methods_before = {n.name: ast.dump(n) for n in ste_before.body if isinstance(n, ast.FunctionDef)}
    methods_after = {n.name: ast.dump(n) for n in ste_after.body if isinstance(n, ast.FunctionDef)}
    assert methods_after["forward"] == methods_before["forward"]
    assert methods_after["backward"] != methods_before["backward"]

    torch = pytest.importorskip("torch")
    w = torch.tensor([-1.0, -0.5, 0.0, 0.3, 1.0], requires_grad=True)
    _module(spliced).STE.apply(w, 2).sum().backward()
    assert torch.equal(w.grad, torch.zeros(5))  # the new backward runs, as a method of STE


def test_splice_replaces_decorators_with_the_new_ones():
    lab2 = (REFERENCE_DIR / "lab2.py").read_text()
    new = "def prune_by_percentage(layer, q=80.0):\n    return None\n"
    spliced = validate.splice(lab2, "prune_by_percentage", new)
    node = next(n for n in ast.parse(spliced).body if getattr(n, "name", "") == "prune_by_percentage")
    assert node.decorator_list == []
    assert "@torch.no_grad()\ndef global_prune_by_percentage" in spliced  # the other one is kept


def test_splice_hoists_new_imports_to_the_top_level_once():
    new = "import numpy as np\nimport math\n\ndef gradient(W, X, Y):\n    return 2 * (X @ W - Y) @ X\n"
    spliced = validate.splice(LAB1, "gradient", new)
    tree = ast.parse(spliced)
    imports = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == ["import numpy as np", "import math"]  # numpy was already there
    assert _module(spliced).gradient is not None


def test_splice_replaces_a_top_level_assignment():
    answers = (REFERENCE_DIR / "answers.py").read_text()
    spliced = validate.splice(answers, "TRUE_FALSE", 'TRUE_FALSE = {"1.1": False}\n')
    assert _module(spliced).TRUE_FALSE == {"1.1": False}
    assert ast.get_docstring(ast.parse(spliced)) == ast.get_docstring(ast.parse(answers))


@pytest.mark.parametrize("target, replacement, error", [
    ("no_such_function", "def no_such_function():\n    pass\n", LookupError),
    ("gradient", "def gradient_v2(W, X, Y):\n    pass\n", ValueError),
    ("gradient", "def gradient(W, X, Y):\n    pass\ndef loss(W, X, Y):\n    pass\n", ValueError),
    ("STE.forward", "def forward(ctx, w, bit):\n    return w\n", LookupError),  # lab1 has no STE
])
def test_splice_rejects_what_it_cannot_place(target, replacement, error):
    with pytest.raises(error):
        validate.splice(LAB1, target, replacement)


# --- the catalogue -------------------------------------------------------------------------

WRONG = validate.load_catalogue(validate.WRONG_CATALOGUE, correct=False)
CORRECT = validate.load_catalogue(validate.CORRECT_CATALOGUE, correct=True)
# The problems the catalogue may charge: those the unit stage grades, as rubric.toml says.
PROBLEMS = {problem.number for problem in load_rubric().problems if problem.stage_points("unit") > 0}


def test_the_catalogue_has_at_least_30_wrong_submissions_over_every_lab():
    assert len(WRONG) >= 30
    assert {variant.file for variant in WRONG} == set(SUBMISSION_FILES)
    assert {variant.file for variant in CORRECT} == {"lab1.py", "lab2.py", "lab3.py"}


@pytest.mark.parametrize("variant", WRONG + CORRECT, ids=lambda v: v.name)
def test_each_entry_is_one_real_change_of_the_reference(variant, tmp_path):
    """It splices, it changes the code, and it names only problems the grader has."""
    assert variant.file in SUBMISSION_FILES and variant.mistake
    assert set(variant.loses) <= PROBLEMS
    if len(variant.loses) > 1 and variant.file != "answers.py":
        assert variant.why, "an entry charged on several problems must say why"
    reference = (REFERENCE_DIR / variant.file).read_text()
    spliced = validate.apply_variant(reference, variant)
    assert ast.dump(ast.parse(spliced)) != ast.dump(ast.parse(reference))

    case = validate.Case(variant.name, "wrong" if variant.loses else "correct", variant=variant)
    submission = validate.build_submission(case, tmp_path / "submission")
    assert sorted(p.name for p in submission.iterdir()) == sorted(SUBMISSION_FILES)
    for filename in SUBMISSION_FILES:
        expected = spliced if filename == variant.file else (REFERENCE_DIR / filename).read_text()
        assert (submission / filename).read_text() == expected


def test_a_prelude_goes_after_the_imports_and_keeps_every_other_line():
    lab2 = (REFERENCE_DIR / "lab2.py").read_text()
    spliced = validate.add_prelude(lab2, "torch.set_default_dtype(torch.float64)\n")
    removed, added = _changed_lines(lab2, spliced)
    assert removed == [] and added == ["torch.set_default_dtype(torch.float64)"]
    body = ast.parse(spliced).body
    first_call = next(i for i, node in enumerate(body) if isinstance(node, ast.Expr) and i > 0)
    assert all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body[1:first_call])
    assert not any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body[first_call:])


def test_the_stubs_case_copies_the_student_files(tmp_path):
    from autograder.paths import STUDENT_DIR
    submission = validate.build_submission(validate.Case("stubs", "stubs"), tmp_path / "s")
    assert (submission / "lab2.py").read_text() == (STUDENT_DIR / "lab2.py").read_text()


# --- judging -------------------------------------------------------------------------------

def _outcome(kind, by_problem, loses=(), **extra):
    outcome = validate.Outcome("x", kind, "unit", list(loses),
                               by_problem={p: list(v) for p, v in by_problem.items()}, **extra)
    return validate.judge(outcome)


def test_judge_accepts_exactly_the_expected_pattern():
    assert _outcome("reference", {"2.1": (4, 4), "3.2": (8, 8)}) == []
    assert _outcome("stubs", {"2.1": (0, 4), "3.2": (0, 8)}) == []
    assert _outcome("wrong", {"2.1": (1, 4), "3.2": (8, 8)}, loses=["2.1"]) == []


def test_judge_flags_every_kind_of_surprise():
    assert _outcome("reference", {"2.1": (3.5, 4)})                       # a point lost
    assert _outcome("stubs", {"4.1": (1, 10)})                            # a stub scores
    assert _outcome("wrong", {"2.1": (4, 4)}, loses=["2.1"])              # the bug goes unseen
    assert _outcome("wrong", {"2.1": (0, 4), "2.2": (1, 3)}, loses=["2.1"])  # charged twice
    assert _outcome("wrong", {"2.1": (0, 4)}, loses=["2.7"])              # unknown problem
    fault = {"number": "2.1.1", "name": "t", "status": "failed", "kind": "internal_error", "score": 0.0,
             "max_score": 1.0, "output": "boom"}
    assert _outcome("stubs", {"2.1": (0, 4)}, grader_faults=[fault])


# --- the whole run through the engine -------------------------------------------------------

@pytest.mark.slow(seconds=110)
def test_validate_finds_no_surprise_over_the_whole_catalogue():
    """Reference full, stubs 0, each mistake charged on its problems only, variants full."""
    outcomes = validate.run_cases(validate.plan_cases(stage="unit"), jobs=2, device="cpu")
    print(validate.format_matrix(outcomes))
    assert validate.format_surprises(outcomes) == ""
