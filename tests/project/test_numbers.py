"""Problem and test numbers: one parser for the rubric, the report, validate and the red team."""
from __future__ import annotations

from autograder.numbers import number_key, prefixes, problem_number
from autograder.rubric import load_rubric


def test_a_test_number_belongs_to_the_longest_problem_it_starts_with():
    assert prefixes("1.10.2") == ["1.10.2", "1.10", "1"]
    assert load_rubric().problem_of("1.10.2").number == "1.10"
    assert load_rubric().problem_of("3.3.11").number == "3.3"
    assert problem_number("2.3.1") == "2.3" and problem_number("2.3") == "2.3"


def test_numbers_sort_in_the_homeworks_order_and_unknown_ones_last():
    assert sorted(["1.10", "?", "1.9", "2.1", "1.2"], key=number_key) == ["1.2", "1.9", "1.10", "2.1", "?"]

