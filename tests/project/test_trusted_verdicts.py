"""Verdicts are made in the trusted process, from data the sandbox child reports.

The probes only report facts (the inputs as a call left them, what it returned); the judges
in ``tests/grading/lab<N>_judges.py`` compare. Student code that patches NumPy or torch in its own
process therefore cannot hide a wrong answer. Also: one sandbox child answers a lab's
questions as a batch, with each question's failure charged to that question alone.
"""
import sys
import textwrap

import numpy as np
import pytest

from autograder import expected as expected_values
from autograder.checks import HINTS, WrongAnswer
from autograder.errors import NoResult, StudentException
from autograder.memo import ProbeCache
from autograder.paths import GRADING_TESTS_DIR, REFERENCE_DIR, SUBMISSION_FILES
from autograder.sandbox import Sandbox
from autograder.sandbox.limits import ensure_sandbox_user, is_root
from autograder.validate import splice

sys.path.insert(0, str(GRADING_TESTS_DIR))
import lab1_judges  # noqa: E402  (the grading tests' judges, one file a lab)
import lab2_judges  # noqa: E402
import lab3_judges  # noqa: E402

# Each file differs from the reference in the definitions below.
HOSTILE = {
    "lab1.py": {
        # An in-place step that a child-side np.array_equal check would not see.
        "gd_step": '''
            def gd_step(W, X, Y, lr):
                import numpy
                numpy.array_equal = lambda *a, **k: True
                numpy.array_equiv = lambda *a, **k: True
                W -= lr * gradient(W, X, Y)
                return W.copy()
            ''',
        "soft_threshold": '''
            def soft_threshold(W, threshold):
                raise ValueError("no threshold today")
            ''',
        # A module global: each sub-call of a batch must import the module afresh.
        "loss": '''
            def loss(W, X, Y):
                calls = globals().setdefault("CALLS", [])
                calls.append(1)
                return float(len(calls))
            ''',
    },
    "lab2.py": {
        "iterative_prune_percentage": '''
            def iterative_prune_percentage(epoch):
                import os
                os._exit(0)
            ''',
    },
    "lab3.py": {
        # Quantizes w in place (forbidden) and patches torch.equal, so that a child-side
        # "w unchanged" check would pass.
        "STE.forward": '''
            @staticmethod
            def forward(ctx, w, bit, keep_zeros=False):
                torch.equal = lambda *a, **k: True
                if bit is None:
                    return w
                if bit == 0:
                    return w * 0
                alpha, beta = w.max() - w.min(), w.min()
                step = 2 ** bit - 1
                w.data = torch.round((w - beta) / alpha * step) / step * alpha + beta
                return w.clone()
            ''',
    },
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    for filename in SUBMISSION_FILES:
        source = (REFERENCE_DIR / filename).read_text()
        for target, replacement in HOSTILE.get(filename, {}).items():
            source = splice(source, target, textwrap.dedent(replacement).lstrip("\n"))
        (folder / filename).write_text(source)
    return folder


@pytest.fixture(scope="module")
def sandbox(hostile):
    if is_root():
        ensure_sandbox_user()
    with Sandbox(hostile, device="cpu") as box:
        box.start()
        yield box


@pytest.fixture(scope="module")
def probe(sandbox):
    return ProbeCache(sandbox)


def visible(fixture):
    """The ``expected`` of the visible grading tests."""
    return expected_values.load(fixture, "visible")


def test_in_place_step_is_caught_despite_a_patched_array_equal(probe):
    cases, _, values = lab1_judges.lab1_values(probe, visible, "gd_step", "visible")
    with pytest.raises(WrongAnswer, match=r"modified its input\(s\) `W` in place"):
        lab1_judges.judge_lab1("gd_step", cases, values["results"], names=lab1_judges.LAB1_ARGS["gd_step"])


def test_in_place_quantization_is_caught_despite_a_patched_torch_equal(probe):
    pairs = lab3_judges.lab3_results(probe, visible, "lab3_vector", "visible")
    with pytest.raises(WrongAnswer, match="modified w in place"):
        for case, report in pairs:
            lab3_judges.judge_ste_grid(case, report)


def test_probe_reports_the_inputs_after_the_call_not_a_verdict(probe):
    _, _, values = lab1_judges.lab1_values(probe, visible, "gd_step", "visible")
    report = values["results"][0]["own"]
    assert "changed" not in report and len(report["after"]) == 4
    sent = expected_values.load("lab1_gd_step", "visible")[0]
    assert not np.array_equal(report["after"][0], sent["W"])  # W, as the step left it
    assert np.array_equal(report["after"][1], sent["X"])


def test_one_function_raising_costs_only_its_own_question(probe):
    with pytest.raises(StudentException, match="no threshold today"):
        lab1_judges.lab1_values(probe, visible, "soft_threshold", "visible")
    cases, _, values = lab1_judges.lab1_values(probe, visible, "gradient", "visible")
    lab1_judges.judge_lab1("gradient", cases, values["results"], names=lab1_judges.LAB1_ARGS["gradient"],
                      start=None)


def test_each_question_of_a_batch_imports_the_student_module_afresh(probe):
    calls = lab1_judges.lab1_calls(visible, "isolation")
    probe.prefetch({"first": calls["isolation-lab1-loss"], "second": calls["isolation-lab1-loss"]})
    counts = [[r["own"]["value"] for r in probe(key, *calls["isolation-lab1-loss"])["results"]]
              for key in ("first", "second")]
    assert counts[0] == counts[1] == [1.0, 2.0, 3.0]


def test_a_question_that_ends_the_process_is_asked_again_alone(probe):
    calls = lab2_judges.lab2_calls(visible, "visible")
    probe.prefetch(calls)
    with pytest.raises(NoResult):
        probe("visible-lab2-iterative", *calls["visible-lab2-iterative"])
    values = probe("visible-lab2-sparsity", *calls["visible-lab2-sparsity"])["values"]
    lab2_judges.judge_sparsity(expected_values.load("lab2_sparsity", "visible"), values)


# ----------------------------------------------------------------- judges on reported data


def prune_report(case, **changes):
    """What the probe reports for a correct pruning of ``case``, with ``changes``."""
    report = {"weight": case["expected"], "same_parameter": True, "is_parameter": True,
              "dtype": str(case["weight"].dtype), "device": "cpu", "expected_device": "cpu",
              "bias": case.get("bias"), "returned": {"type": "builtins.NoneType", "shape": None}}
    report.update(changes)
    return report


def test_a_visible_prune_case_has_a_bias_and_its_change_is_caught():
    case = next(c for c in expected_values.load("lab2_prune", "visible") if c.get("bias") is not None)
    lab2_judges.judge_prune(case, prune_report(case))
    pruned_bias = np.where(np.abs(case["bias"]) > 0.5, case["bias"], 0).astype(case["bias"].dtype)
    with pytest.raises(WrongAnswer, match="bias") as caught:
        lab2_judges.judge_prune(case, prune_report(case, bias=pruned_bias))
    assert "pruned too" in str(caught.value)


@pytest.mark.parametrize("returned, ok", [
    ({"type": "torch.Tensor", "shape": None}, True),  # shape filled in below
    ({"type": "numpy.ndarray", "shape": [3]}, False),
    ({"type": "builtins.float", "shape": None}, False),
])
def test_the_return_value_is_judged_from_its_reported_type_and_shape(returned, ok):
    case = expected_values.load("lab2_prune", "visible")[0]
    if returned["type"] == "torch.Tensor":
        returned = dict(returned, shape=list(case["weight"].shape))
    if ok:
        lab2_judges.judge_prune(case, prune_report(case, returned=returned))
    else:
        with pytest.raises(WrongAnswer, match="return None"):
            lab2_judges.judge_prune(case, prune_report(case, returned=returned))


def step_results(step, cases, value_of):
    """Probe reports of a step that returned ``value_of(case)`` and left its inputs alone."""
    names = lab1_judges.LAB1_ARGS[step]
    return [{"own": {"type": "numpy.ndarray", "value": value_of(case), "aliased": [],
                     "after": lab1_judges.lab1_args(case, names)["args"]}, "helpers": None}
            for case in cases]


@pytest.mark.parametrize("group", ["visible", "hidden"])
@pytest.mark.parametrize("step", ["gd_step", "projected_gd_step", "subgradient_l1_step",
                                  "proximal_l1_step", "trimmed_l1_step"])
def test_a_per_sample_step_fails_with_the_per_sample_hint(step, group):
    cases = expected_values.load(f"lab1_{step}", group)
    results = step_results(step, cases, lambda case: case["variants"]["per_sample"])
    with pytest.raises(WrongAnswer) as caught:
        lab1_judges.judge_lab1(step, cases, results, names=lab1_judges.LAB1_ARGS[step],
                          hidden=group == "hidden")
    text = str(caught.value)
    assert HINTS["per_sample"] in text
    assert f"input 1 of {len(cases)}" in text
    assert ("Input:" in text) == (group == "visible")


def test_a_correct_step_passes_and_a_changed_input_is_named():
    cases = expected_values.load("lab1_gd_step", "visible")
    lab1_judges.judge_lab1("gd_step", cases, step_results("gd_step", cases, lambda c: c["expected"]),
                      names=lab1_judges.LAB1_ARGS["gd_step"])
    results = step_results("gd_step", cases, lambda c: c["expected"])
    results[1]["own"]["after"][2] = results[1]["own"]["after"][2] + 1.0  # Y changed
    with pytest.raises(WrongAnswer, match=r"\(on input 2 of 3\) modified its input\(s\) `Y`"):
        lab1_judges.judge_lab1("gd_step", cases, results, names=lab1_judges.LAB1_ARGS["gd_step"])
