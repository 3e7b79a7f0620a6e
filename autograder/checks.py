"""Trusted comparisons with student-facing messages (the judge stage).

In PrairieLearn's manner: ``check_array(name, expected, got, *, rtol, atol, context=...)``
validates the exact type, shape, dtype kind and finiteness of ``got`` before comparing, and a
wrong answer raises ``WrongAnswer`` (an AssertionError: the test fails and costs its points).
A failure of the student's code itself is a ``autograder.errors.SubmissionError``, raised by the
sandbox, never here.

Messages are markdown. They name the function and the input (``context``), and give expected
versus got: shape, dtype, the worst element with its index, the maximum absolute and relative
error, how many elements are out of tolerance, and NaN/Inf counts. ``hidden=True`` (hidden tests)
drops every value and input and keeps the kind of failure and the hint.

Hints: ``recognise(got, ...)`` compares a wrong answer with known wrong answers and returns
the matching hints from ``HINTS``. Known wrong answers come in two forms: ``variants`` (arrays
that a mistaken solution would return on this input, generated into the fixtures by
``autograder.fixtures``) and ratio patterns of the update ``got - start`` versus
``expected - start`` (a factor 2, a flipped sign), which need no fixture.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from autograder.pruning import review_mask
from autograder.report import StudentFeedback

# One sentence per recognised mistake, appended to a failure message as "Hint: ...".
HINTS: dict[str, str] = {
    # Lab 1
    "factor_2": "the result is off by a factor 2: L has no 1/2, so its gradient is 2 X^T (X W - y).",
    "factor_half": "the result is twice too large: the gradient of L is 2 X^T (X W - y), not 4 X^T (...).",
    "mean": "the result is 3 times too small: L is a sum over the samples, not a mean.",
    "ascent": "the update has the wrong sign: this is gradient ascent; descend with W - lr * gradient.",
    "per_sample": "W was updated once per sample (one update per row of X); take ONE full-batch "
                  "step per call, with the gradient summed over all rows: 2 X^T (X W - y).",
    "projected_before_step": "the projection was applied before the gradient step; "
                             "step first (V = W - lr * gradient), then keep the k largest |V|.",
    "kept_smallest": "the k smallest entries were kept; keep the k entries with the LARGEST |V|.",
    "threshold_before_step": "the soft threshold was applied before the gradient step; "
                             "step first, then soft-threshold.",
    "no_sign": "soft thresholding without the sign: sign(v) * max(|v| - threshold, 0) keeps "
               "the sign of v.",
    "trimmed_largest": "the wrong entries were shrunk in trimmed L1: soft-threshold only the h "
                       "entries with the SMALLEST |V| and leave the others unchanged.",
    "trimmed_all": "every entry was soft-thresholded; trimmed L1 shrinks only the h smallest |V|.",
    # Lab 2
    "largest_pruned": "the largest weights were pruned; prune the weights with the smallest |w|.",
    "q_fraction": "q was used as a fraction (q/100 of a percent); q is a percentage in [0, 100].",
    "signed_percentile": "the percentile of signed weights, not of |w|, was used; threshold the "
                         "magnitudes.",
    # Lab 3
    "step_pow": "step = 2**bit instead of 2**bit - 1: 2**bit levels have 2**bit - 1 intervals.",
    "floor": "floor instead of round: round ws * step to the nearest level.",
    "no_beta": "beta (min) was not added back: wq = alpha * R + beta.",
    "no_pass_through": "the backward does not pass the gradient through: return (g, None, None).",
    "keep_zeros_inverted": "keep_zeros mask inverted: keep the quantized value where w != 0 and "
                           "put 0 where w == 0.",
    "zeros_restored": "zeros were restored even though keep_zeros=False; restore them only when "
                      "keep_zeros is True.",
}

# Update ratios (got - start) / (expected - start) that betray a mistake.
_RATIO_HINTS = {0.5: "factor_2", 2.0: "factor_half", 1.0 / 3.0: "mean", -1.0: "ascent"}
_PREVIEW = 40  # arrays with more elements are summarised in messages (a 6x5 X is shown)


class WrongAnswer(StudentFeedback):
    """The submission's answer is wrong; ``str(self)`` is the student-facing markdown, written
    to be shown even for hidden tests (their values are left out with ``hidden=True``)."""


def fail(message: str, *, context: str = "", hidden: bool = False,
         hints: Iterable[str] = (), details: str = "") -> None:
    """Raise ``WrongAnswer``: ``message`` (the kind of failure, safe for hidden tests), then the
    ``context`` (the inputs, shown as a code block) and ``details`` (values), both dropped when
    ``hidden``, then the hints."""
    __tracebackhide__ = True  # pytest reports the check that failed, not this helper
    parts = [message]
    if context and not hidden:
        parts.append(f"Input:\n```\n{context}\n```")
    if details and not hidden:
        parts.append(details)
    parts.extend(f"Hint: {text}" for text in dict.fromkeys(hints))
    raise WrongAnswer("\n\n".join(parts))


def subject(name: str, which: str = "") -> str:
    """``**name**``, followed by which input it was given (``"input 2 of 3"``) when known."""
    return f"**{name}**" + (f" (on {which})" if which else "")


def which_input(index: int, count: int, *, hidden: bool = False) -> str:
    """``"input 2 of 3"`` (``"hidden input 2 of 3"``): the case a message is about."""
    return f"{'hidden ' if hidden else ''}input {index + 1} of {count}"


def show(value) -> str:
    """A short, readable rendering of a value for messages (may span lines for 2-d arrays)."""
    if isinstance(value, np.ndarray):
        if value.size <= _PREVIEW:
            return np.array2string(value, precision=6, separator=", ", max_line_width=100)
        return (f"array of shape {value.shape}, dtype {value.dtype}, first values "
                f"{np.array2string(value.ravel()[:6], precision=6, separator=', ')}...")
    if isinstance(value, float):
        return f"{value:.8g}"
    return repr(value)


def inline(value) -> str:
    """``show(value)`` on one line, as markdown inline code."""
    return "`" + " ".join(show(value).split()) + "`"


def _type_name(value) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def check_array(name: str, expected: np.ndarray, got, *, rtol: float, atol: float,
                context: str = "", which: str = "", hidden: bool = False,
                hints: Iterable[str] = (), dtype_kinds: str = "f") -> None:
    """Pass when ``got`` is an ndarray of ``expected``'s shape, a dtype of ``dtype_kinds``,
    finite, and ``|got - expected| <= atol + rtol * |expected|`` elementwise.

    The failure message: how many elements are out of tolerance, shapes and dtypes, the worst
    element with its index, the maximum absolute and relative errors; with ``hidden`` only the
    count and the maximum errors (no value, no input)."""
    expected = np.asarray(expected)
    check_form(name, expected, got, context=context, which=which, hidden=hidden,
               dtype_kinds=dtype_kinds, hints=hints)
    error = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    tolerance = atol + rtol * np.abs(expected.astype(np.float64))
    bad = error > tolerance
    if not bad.any():
        return
    worst = np.unravel_index(np.argmax(error - tolerance), error.shape)
    relative = error / np.maximum(np.abs(expected.astype(np.float64)), np.finfo(float).tiny)
    summary = (f"{subject(name, which)} returned a wrong result: {int(bad.sum())} of {bad.size} "
               f"elements are out of tolerance (rtol {rtol:g}, atol {atol:.3g}); max absolute "
               f"error {error.max():.3g}, max relative error {relative.max():.3g}.")
    details = (f"- shape: expected {expected.shape}, got {got.shape}; dtype: expected "
               f"{expected.dtype}, got {got.dtype}\n"
               f"- worst element at index {tuple(int(i) for i in worst)}: expected "
               f"`{expected[worst]:.8g}`, got `{got[worst]:.8g}`\n"
               f"- expected: {inline(expected)}\n- got: {inline(got)}")
    fail(summary, context=context, hidden=hidden, hints=hints, details=details)


def check_form(name: str, expected: np.ndarray, got, *, context: str = "", which: str = "",
               hidden: bool = False, dtype_kinds: str = "f", hints: Iterable[str] = ()) -> None:
    """Pass when ``got`` is exactly an ndarray of ``expected``'s shape, with a dtype of
    ``dtype_kinds``, and finite: the checks made before any comparison."""
    who = subject(name, which)
    if type(got) is not np.ndarray:
        fail(f"{who} should return a NumPy array (`numpy.ndarray`), but returned "
             f"`{_type_name(got)}`.", context=context, hidden=hidden)
    if got.shape != expected.shape:
        fail(f"{who} returned an array of shape {got.shape}; expected shape "
             f"{expected.shape}.", context=context, hidden=hidden, hints=hints)
    if got.dtype.kind not in dtype_kinds:
        fail(f"{who} returned dtype {got.dtype}; expected a "
             f"{'floating-point' if dtype_kinds == 'f' else dtype_kinds} dtype "
             f"(like {expected.dtype}).", context=context, hidden=hidden)
    check_finite(name, got, context=context, which=which, hidden=hidden)


def check_finite(name: str, got: np.ndarray, *, context: str = "", which: str = "",
                 hidden: bool = False) -> None:
    """Fail with the count and first index of NaN and Inf values, if any."""
    if got.dtype.kind not in "fc":
        return
    for label, found in (("NaN", np.isnan(got)), ("Inf", np.isinf(got))):
        if found.any():
            first = tuple(int(i) for i in np.argwhere(found)[0])
            fail(f"{subject(name, which)} returned {int(found.sum())} {label} value(s) of "
                 f"{got.size}, the first at index {first}.", context=context, hidden=hidden)


def check_scalar(name: str, expected: float, got, *, rtol: float, atol: float,
                 context: str = "", which: str = "", hidden: bool = False,
                 hints: Iterable[str] = ()) -> None:
    """Pass when ``got`` is a real number (a Python or NumPy scalar, or a 0-d/1-element array)
    within ``atol + rtol * |expected|`` of ``expected``."""
    who = subject(name, which)
    value = as_real(got)
    if value is None:
        fail(f"{who} should return a number, but returned `{_type_name(got)}`"
             f"{'' if not isinstance(got, np.ndarray) else f' of shape {got.shape}'}.",
             context=context, hidden=hidden)
    if not np.isfinite(value):
        fail(f"{who} returned {value}.", context=context, hidden=hidden)
    error = abs(value - expected)
    if error > atol + rtol * abs(expected):
        relative = error / max(abs(expected), np.finfo(float).tiny)
        fail(f"{who} returned a wrong value: absolute error {error:.3g}, relative error "
             f"{relative:.3g} (rtol {rtol:g}, atol {atol:.3g}).",
             context=context, hidden=hidden, hints=hints,
             details=f"- expected `{expected:.8g}`, got `{value:.8g}`")


def as_real(value) -> float | None:
    """``value`` as a Python float when it is a real scalar (bool excluded), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        return float(value.reshape(()))
    return None


def recognise(got, *, expected=None, start=None, variants: Mapping[str, np.ndarray] = {},
              rtol: float = 1e-4, atol: float = 1e-7) -> list[str]:
    """The hints of every known mistake that ``got`` matches.

    ``variants`` maps a ``HINTS`` key (optionally suffixed ``__form`` when one mistake has
    several forms) to what that mistake returns on this input. With
    ``expected`` and ``start`` (the point a step starts from; zeros for a gradient), an update
    ``got - start`` that is a fixed multiple of ``expected - start`` is recognised too.
    """
    if type(got) is not np.ndarray or got.dtype.kind not in "iuf":
        return []
    found = []
    for key, wrong in variants.items():
        wrong = np.asarray(wrong)
        if wrong.shape == got.shape and np.allclose(got, wrong, rtol=rtol, atol=atol):
            found.append(HINTS[key.split("__")[0]])  # "per_sample__then_once": a second form
    if expected is not None and start is not None and np.shape(expected) == got.shape:
        step = np.asarray(expected, np.float64) - start
        taken = got.astype(np.float64) - start
        scale = np.abs(step).max()
        for ratio, key in _RATIO_HINTS.items():
            if scale > 0 and np.allclose(taken, ratio * step, rtol=rtol, atol=atol * scale):
                found.append(HINTS[key])
    return found


def pruning_hints(original: np.ndarray, got: np.ndarray, *, q: float) -> list[str]:
    """Hints for a wrong pruning of ``original`` (the weights before) into ``got``."""
    pruned = (got == 0) & (original != 0)
    kept = got != 0
    if not pruned.any():
        return []
    found = []
    magnitude = np.abs(original)
    if kept.any() and magnitude[pruned].min() >= magnitude[kept].max():
        found.append(HINTS["largest_pruned"])
    if abs(int((got == 0).sum()) - q / 100 / 100 * got.size) <= 1:
        found.append(HINTS["q_fraction"])
    signed = original < np.percentile(original, q)
    if kept.any() and np.array_equal(signed, got == 0) and not np.array_equal(
            signed, magnitude < np.percentile(magnitude, q)):
        found.append(HINTS["signed_percentile"])
    return found


def check_pruned(name: str, original: np.ndarray, got: np.ndarray, *, q: float,
                 context: str = "", hidden: bool = False) -> None:
    """The properties of magnitude pruning of one weight array at ``q`` percent.

    Pass when ``got`` has ``original``'s shape and dtype, kept values are unchanged, and its
    mask (``got != 0``) is accepted by ``autograder.pruning.review_mask``: the number of zeros in
    the accepted range, and no pruned |w| larger than a kept |w|.
    """
    check_form(f"{name}: the weight after pruning", original, got, context=context, hidden=hidden)
    if got.dtype != original.dtype:
        fail(f"**{name}** changed the weight's dtype from {original.dtype} to {got.dtype}.",
             context=context, hidden=hidden)
    hints = pruning_hints(original, got, q=q)
    kept = got != 0
    changed = kept & (got != original)
    if changed.any():
        index = tuple(int(i) for i in np.argwhere(changed)[0])
        fail(f"**{name}** changed {int(changed.sum())} weight(s) it should have kept: pruning "
             "only sets weights to 0.", context=context, hidden=hidden, hints=hints,
             details=f"- at index {index}: before {original[index]:.8g}, after {got[index]:.8g}")
    review = review_mask(np.abs(original), kept, q)
    zeros = review.zeros
    if not review.count_ok:
        fail(f"**{name}** pruned the wrong number of weights: {zeros / got.size:.1%} of them are "
             f"0, {'too many' if zeros > review.most else 'too few'}.", context=context,
             hidden=hidden, hints=hints,
             details=f"- {zeros} of {got.size} weights are 0 ({zeros / got.size:.2%}); q = {q:g}% "
                     f"should give between {review.fewest} and {review.most} zeros.")
    if not review.accepted:
        fail(f"**{name}** did not prune the smallest weights: a pruned |w| is larger than a "
             "kept |w|.", context=context, hidden=hidden, hints=hints,
             details=f"- largest pruned |w| {review.largest_pruned:.6g}, smallest kept |w| "
                     f"{review.smallest_kept:.6g}")
