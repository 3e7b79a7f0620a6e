"""The committed expected-value fixtures are the ones the reference generates today."""
import argparse
import subprocess
import sys

import numpy as np
import pytest

from autograder import expected, fixtures
from autograder.paths import ROOT


def test_committed_fixtures_are_current(capsys):
    status = fixtures.run(argparse.Namespace(check=True, out=expected.EXPECTED_DIR))
    assert status == 0, capsys.readouterr().out


def test_check_reports_a_stale_fixture(tmp_path, capsys):
    fixtures.run(argparse.Namespace(check=False, out=tmp_path))
    (tmp_path / "visible" / "lab1_gradient.npz").write_bytes(
        (tmp_path / "visible" / "lab1_loss.npz").read_bytes())
    assert fixtures.run(argparse.Namespace(check=True, out=tmp_path)) == 1
    assert "visible/lab1_gradient.npz" in capsys.readouterr().out


def test_fixtures_are_small():
    sizes = [p.stat().st_size for p in expected.EXPECTED_DIR.glob("*/*.npz")]
    assert sizes and max(sizes) < 64_000


STEPS = ("gd_step", "projected_gd_step", "subgradient_l1_step", "proximal_l1_step",
         "trimmed_l1_step")


@pytest.mark.parametrize("group", expected.GROUPS)
@pytest.mark.parametrize("step", STEPS)
def test_every_step_knows_the_per_sample_mistake(step, group):
    """A student who updates W once per row of X gets the per-sample hint in every step test."""
    for case in expected.load(f"lab1_{step}", group):
        per_sample = case["variants"]["per_sample"]
        assert per_sample.shape == case["expected"].shape
        assert not np.allclose(per_sample, case["expected"], rtol=1e-4, atol=1e-6)


def test_a_visible_prune_case_has_a_bias():
    """Pruning the bias too must cost points in the handout's own tests, not only hidden ones."""
    assert any(case.get("bias") is not None for case in expected.load("lab2_prune", "visible"))


def test_visible_schedule_covers_the_pruning_epochs_and_hidden_the_ones_after():
    visible = [case["epoch"] for case in expected.load("lab2_iterative", "visible")]
    hidden = [case["epoch"] for case in expected.load("lab2_iterative", "hidden")]
    assert visible == list(range(10))
    assert any(epoch >= 10 for epoch in hidden) and any(epoch < 10 for epoch in hidden)


def test_loaded_fixtures_are_read_only_and_loading_needs_no_torch():
    """The grading process reads fixtures and judges without importing torch (seconds of a
    grade's start-up on a small machine); the cached arrays cannot be changed by a judge."""
    code = ("import sys; from autograder import expected; "
            "case = expected.load('lab2_prune', 'visible')[0]; "
            "assert not case['weight'].flags.writeable; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
