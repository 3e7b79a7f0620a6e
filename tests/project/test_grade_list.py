"""``python -m autograder grade --list``: the whole rubric as it is scored, one line a test."""
from __future__ import annotations

import pytest

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
    assert len(table) == len(listed) + 2  # the header and the total
    line = next(row for row in table if row.startswith("3.3.11 "))
    assert "train/test_training.py::test_finetune_keeps_pruned_weights_zero" in line
    assert line.split()[2:4] == ["train", "visible"]


def test_every_training_stage_test_is_numbered_from_11_and_every_unit_test_below(listed):
    for meta in listed:
        index = int(meta.number.split(".")[2])
        assert (index >= TRAINING_STAGE_FIRST) == (meta.stage == "train"), meta.nodeid
