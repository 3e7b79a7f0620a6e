"""The committed expected-value fixtures are the ones the reference generates today."""
import argparse

from autograder import fixtures


def test_committed_fixtures_are_current(capsys):
    status = fixtures.run(argparse.Namespace(check=True, out=fixtures.EXPECTED_DIR))
    assert status == 0, capsys.readouterr().out


def test_check_reports_a_stale_fixture(tmp_path, capsys):
    fixtures.run(argparse.Namespace(check=False, out=tmp_path))
    (tmp_path / "visible" / "lab1_gradient.npz").write_bytes(
        (tmp_path / "visible" / "lab1_loss.npz").read_bytes())
    assert fixtures.run(argparse.Namespace(check=True, out=tmp_path)) == 1
    assert "visible/lab1_gradient.npz" in capsys.readouterr().out


def test_fixtures_are_small():
    sizes = [p.stat().st_size for p in fixtures.EXPECTED_DIR.glob("*/*.npz")]
    assert sizes and max(sizes) < 64_000
