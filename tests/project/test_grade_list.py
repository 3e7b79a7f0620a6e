"""``python -m autograder grade --list``: the whole rubric as it is scored, one line a test."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from autograder import paths

from autograder.grade import list_tests, rubric_table
from autograder.numbers import TRAINING_STAGE_FIRST
from autograder.rubric import load_rubric


@pytest.fixture(scope="module")
def listed():
    return list_tests(stage="all")


def test_the_list_scores_every_autograded_point_of_the_rubric(listed):
    rubric = load_rubric()
    autograded = sum(p.autograded_points for p in rubric.problems if not p.bonus)
    assert sum(m.max_score for m in listed if not m.bonus) == pytest.approx(autograded)
    assert {m.stage for m in listed} == {"unit", "train"}


def test_each_line_names_number_file_function_stage_visibility_and_points(listed):
    table = rubric_table(listed).splitlines()
    assert len(table) == len(listed) + 3  # the header, the total and the numbering rule
    assert f"training-stage tests from .{TRAINING_STAGE_FIRST}" in table[-1]
    line = next(row for row in table if row.startswith("3.3.11 "))
    assert "train/test_training.py::test_finetune_keeps_pruned_weights_zero" in line
    assert line.split()[2:4] == ["train", "visible"]


def test_every_training_stage_test_is_numbered_from_11_and_every_unit_test_below(listed):
    for meta in listed:
        index = int(meta.number.split(".")[2])
        assert (index >= TRAINING_STAGE_FIRST) == (meta.stage == "train"), meta.nodeid


def _docstrings(path: Path) -> dict[str, str]:
    """{function name: docstring} of a module's top-level functions, read without importing it."""
    tree = ast.parse(path.read_text())
    return {node.name: ast.get_docstring(node) or "" for node in tree.body
            if isinstance(node, ast.FunctionDef)}


def test_each_lab2_function_is_graded_under_the_problem_its_stub_names(listed):
    stubs = _docstrings(paths.ROOT / "student" / "lab2.py")
    named = {}
    for function, doc in stubs.items():
        found = re.match(r"Problem (\d+\.\d+)", doc)
        assert found, f"student/lab2.py's {function} names no problem"
        named[function] = found.group(1)
    assert named["layer_sparsity"] == "3.3"
    graded = {function: set() for function in named}
    for meta in listed:
        path, test = meta.nodeid.split("::")
        if meta.stage != "unit" or "lab2" not in path:
            continue
        first_word = re.match(r"\w+", _docstrings(paths.ROOT / path)[test]).group(0)
        if first_word in graded:
            graded[first_word].add(meta.problem)
    for function, problems in graded.items():
        assert problems == {named[function]}, function
