"""The judge's messages: what failed, expected versus got, and the hints of known mistakes."""
import numpy as np
import pytest

from autograder import checks
from autograder.checks import WrongAnswer


def message_of(call, *args, **kwargs) -> str:
    with pytest.raises(WrongAnswer) as caught:
        call(*args, **kwargs)
    return str(caught.value)


def test_check_array_passes_within_tolerance():
    checks.check_array("f", np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]), rtol=1e-6, atol=0)


def test_check_array_reports_worst_element_errors_and_count():
    text = message_of(checks.check_array, "gd_step", np.array([1.0, 2.0, 3.0]),
                      np.array([1.0, 2.5, 3.1]), rtol=0, atol=1e-3, context="W = [0, 0, 0]",
                      which="input 2 of 3")
    assert text.startswith("**gd_step** (on input 2 of 3) returned a wrong result")
    assert "2 of 3 elements" in text and "index (1,)" in text
    assert "expected `2`, got `2.5`" in text and "max absolute error 0.5" in text
    assert "max relative error 0.25" in text
    assert "shape: expected (3,), got (3,); dtype: expected float64, got float64" in text
    assert "Input:\n```\nW = [0, 0, 0]\n```" in text


def test_messages_are_markdown_with_balanced_fences():
    """Gradescope renders the message as markdown: it opens with the failure in prose (never
    a code fence) and every fence it opens, it closes; a 2-d input keeps its rows inside."""
    X = np.arange(6.0).reshape(2, 3)
    text = message_of(checks.check_array, "gradient", np.zeros(3), np.ones(3), rtol=0, atol=0,
                      context=f"X = {checks.show(X)}")
    assert not text.startswith("`") and text.count("```") % 2 == 0
    fenced = text.split("```")[1]
    assert "[0., 1., 2.]" in fenced and "[3., 4., 5.]" in fenced
    assert all(line.count("`") % 2 == 0 for line in text.splitlines() if "```" not in line)


@pytest.mark.parametrize("got, words", [
    ([1.0, 2.0], "shape (2,)"),
    (np.array([1, 2, 3]), "dtype int"),
    ([1.0, 2.0, 3.0], "numpy.ndarray"),
])
def test_check_array_validates_form_first(got, words):
    got = np.array(got) if isinstance(got, list) and len(got) == 2 else got
    text = message_of(checks.check_array, "f", np.zeros(3), got, rtol=0, atol=0)
    assert words in text


def test_nan_and_inf_are_counted_with_first_index():
    text = message_of(checks.check_array, "f", np.zeros(4), np.array([0, np.nan, np.nan, 0]),
                      rtol=1, atol=1)
    assert "2 NaN" in text and "index (1,)" in text


def test_hidden_messages_drop_values_but_keep_kind_and_hint():
    text = message_of(checks.check_array, "gradient", np.array([2.0, 4.0]), np.array([1.0, 2.0]),
                      rtol=0, atol=1e-6, context="W = [1, 2]", which="hidden input 3 of 3",
                      hidden=True,
                      hints=checks.recognise(np.array([1.0, 2.0]), expected=np.array([2.0, 4.0]),
                                             start=np.zeros(2)))
    assert "gradient" in text and "hidden input 3 of 3" in text
    assert "2 of 2 elements are out of tolerance" in text and "max absolute error 2" in text
    assert "W = [1, 2]" not in text and "expected `2`" not in text and "Input" not in text
    assert "factor 2" in text


@pytest.mark.parametrize("ratio, words", [(0.5, "factor 2"), (-1.0, "gradient ascent"),
                                          (2.0, "twice too large")])
def test_update_ratio_hints(ratio, words):
    start, expected = np.array([1.0, -1.0, 0.5]), np.array([0.8, -0.7, 0.4])
    got = start + ratio * (expected - start)
    assert any(words in hint for hint in checks.recognise(got, expected=expected, start=start))


def test_variant_hints_match_the_fixture_arrays():
    wrong = np.array([0.0, 1.0])
    hints = checks.recognise(wrong, variants={"per_sample": wrong, "no_sign": -wrong})
    assert hints == [checks.HINTS["per_sample"]]


def test_a_second_form_of_a_mistake_carries_the_same_hint():
    wrong = np.array([0.5, 1.0])
    hints = checks.recognise(wrong, variants={"per_sample": -wrong, "per_sample__then_once": wrong})
    assert hints == [checks.HINTS["per_sample"]]


def test_correct_answer_matches_no_hint():
    expected = np.array([0.3, -0.2])
    assert checks.recognise(expected.copy(), expected=expected, start=np.zeros(2)) == []


def weights():
    return np.random.default_rng(0).normal(size=(10, 10)).astype(np.float32)


def prune_smallest(w, q):
    cut = np.sort(np.abs(w).ravel())[int(round(q / 100 * w.size)) - 1]
    return np.where(np.abs(w) > cut, w, 0).astype(w.dtype)


def test_check_pruned_accepts_one_element_of_slack():
    w = weights()
    checks.check_pruned("prune", w, prune_smallest(w, 80), q=80)
    checks.check_pruned("prune", w, prune_smallest(w, 79), q=80)


def test_check_pruned_recognises_largest_pruned():
    w = weights()
    largest = np.where(np.abs(w) < np.percentile(np.abs(w), 20), w, 0).astype(w.dtype)
    text = message_of(checks.check_pruned, "prune", w, largest, q=80)
    assert "largest weights were pruned" in text


def test_check_pruned_recognises_q_as_fraction():
    w = weights()
    text = message_of(checks.check_pruned, "prune", w, prune_smallest(w, 1), q=80)
    assert "too few" in text and "q was used as a fraction" in text


def test_check_pruned_recognises_signed_percentile():
    w = weights()
    signed = np.where(w >= np.percentile(w, 80), w, 0).astype(w.dtype)
    text = message_of(checks.check_pruned, "prune", w, signed, q=80)
    assert "percentile of signed weights" in text


def test_check_pruned_rejects_changed_kept_values():
    w = weights()
    got = prune_smallest(w, 80) * 2
    assert "changed" in message_of(checks.check_pruned, "prune", w, got, q=80)


def test_check_pruned_accepts_a_tied_block_pruned_whole_or_kept_whole():
    w = np.repeat(np.array([0.1, 0.2, 0.3, 0.4], np.float32), 5)  # 20 weights, blocks of 5
    checks.check_pruned("prune", w, np.where(w > 0.2, w, 0).astype(w.dtype), q=50)   # 10 zeros
    checks.check_pruned("prune", w, np.where(w >= 0.2, w, 0).astype(w.dtype), q=50)  # 5 zeros
    text = message_of(checks.check_pruned, "prune", w, np.zeros_like(w), q=50)
    assert "too many" in text and "between 5 and 15 zeros" in text


def test_check_scalar_accepts_numpy_scalars_and_rejects_strings():
    checks.check_scalar("loss", 2.0, np.float32(2.0), rtol=1e-6, atol=0)
    assert "should return a number" in message_of(checks.check_scalar, "loss", 2.0, "2.0",
                                                  rtol=0, atol=0)
