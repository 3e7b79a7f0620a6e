"""Gradescope's image set-up, tried where it would break: ``setup.sh`` in a fresh
``/autograder``-like root on this machine's system Python (Debian 12's, PEP 668 managed), then
``run_autograder`` grading with the environment setup.sh made, and the engine's minimum Python
version checked statically (vermin), so a PEP 668 refusal, a missing package or a 3.11-only
module fails here rather than on Gradescope.

This machine reaches PyPI but not PyTorch's CPU index: setup.sh takes the torch source from
``HW4_TORCH``/``HW4_TORCH_INDEX``, and the test gives it a CPU-only torch wheel that pip's
configured find-links already hold (``HW4_TEST_TORCH`` names another requirement), else the
default index, as Gradescope does.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import paths
from autograder.build import build
from autograder.report import validate_json

SYSTEM_PYTHON = Path("/usr/bin/python3")
SETUP_TIMEOUT = 1200  # seconds: torch alone is a 190 MB wheel; a warm cache takes ~2 minutes
MIN_PYTHON = "3.10"


def _find_links() -> list[str]:
    """The folders pip is configured to look in for wheels (environment and pip config)."""
    folders = os.environ.get("PIP_FIND_LINKS", "").split()
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                            capture_output=True, text=True, timeout=60).stdout
    folders += re.findall(r"find-links='([^']+)'", listed)
    return [folder for folder in dict.fromkeys(folders) if os.path.isdir(folder)]


def _cpu_torch_requirement() -> tuple[str, str | None]:
    """(HW4_TORCH, HW4_TORCH_INDEX) for this machine: a local CPU-only torch wheel for the
    system Python's tag when pip can find one, else setup.sh's defaults (PyTorch's CPU index)."""
    if os.environ.get("HW4_TEST_TORCH"):
        return os.environ["HW4_TEST_TORCH"], os.environ.get("HW4_TEST_TORCH_INDEX", "")
    version = "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')"
    tag = subprocess.run([str(SYSTEM_PYTHON), "-c", version],
                         capture_output=True, text=True, check=True).stdout.strip()
    for folder in _find_links():
        for wheel in sorted(glob.glob(os.path.join(folder, f"torch-*+cpu-{tag}-{tag}-*.whl"))):
            version = os.path.basename(wheel).split("-")[1]
            return f"torch=={version}", ""  # pip's configured sources hold it
    return "torch==2.14.1 torchvision==0.29.1", None


def test_the_engine_runs_on_python_3_10_and_later():
    """Static check of the minimum version (vermin): no 3.11+ module, function or syntax outside
    a guarded fallback (``# novermin`` marks those, e.g. ``autograder/compat.py``)."""
    folders = [str(paths.ROOT / name) for name in ("autograder", "student", "reference", "tests", "benchmarks")]
    checked = subprocess.run([sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", f"-t={MIN_PYTHON}-", "--violations",
                              "--no-tips", "--eval-annotations", *folders],
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout[-4000:] + checked.stderr[-2000:]


def test_tomllib_falls_back_to_the_tomli_backport(monkeypatch):
    """What Python 3.10 sees: no ``tomllib``, so ``autograder.compat`` takes ``tomli``."""
    import builtins
    import importlib
    import types

    real_import = builtins.__import__
    backport = types.SimpleNamespace(loads=lambda text: {"backport": text})

    def without_tomllib(name, *args, **kwargs):
        if name == "tomllib":
            raise ModuleNotFoundError("No module named 'tomllib'", name="tomllib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setitem(sys.modules, "tomli", backport)
    monkeypatch.delitem(sys.modules, "tomllib", raising=False)
    monkeypatch.setattr(builtins, "__import__", without_tomllib)
    import autograder.compat
    try:
        reloaded = importlib.reload(autograder.compat)
        assert reloaded.tomllib is backport
    finally:
        monkeypatch.undo()
        importlib.reload(autograder.compat)
    assert autograder.compat.tomllib.loads("a = 1") == {"a": 1}


def test_requirements_name_the_backport_for_python_3_10():
    lines = (paths.ROOT / "requirements.txt").read_text().splitlines()
    assert any(re.match(r"tomli\b.*;\s*python_version\s*<\s*['\"]3\.11['\"]", line) for line in lines)


@pytest.mark.slow(seconds=45)
@pytest.mark.root
def test_setup_sh_installs_into_its_own_environment_on_the_system_python(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("setup.sh runs as root on Gradescope (it creates the sandbox user)")
    if not SYSTEM_PYTHON.is_file():
        pytest.skip(f"{SYSTEM_PYTHON} is not on this machine")
    managed = glob.glob("/usr/lib/python3*/EXTERNALLY-MANAGED")
    root = tmp_path / "autograder"
    source = root / "source"
    autograder_zip, _ = build(paths.ROOT, tmp_path / "dist", count=False)
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(source)
    for name in ("setup.sh", "run_autograder"):
        (source / name).chmod(0o755)
    torch, index = _cpu_torch_requirement()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("VIRTUAL_ENV", "PYTHON", "HW4_"))}
    env.update(AUTOGRADER_ROOT=str(root), HW4_SYSTEM_PYTHON=str(SYSTEM_PYTHON), HW4_TORCH=torch,
               PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if index is not None:
        env["HW4_TORCH_INDEX"] = index
    try:
        setup = subprocess.run(["bash", str(source / "setup.sh")], env=env, cwd=source,
                               capture_output=True, text=True, timeout=SETUP_TIMEOUT)
        assert setup.returncode == 0, (f"setup.sh failed (PEP 668 managed: {bool(managed)}):\n"
                                       + setup.stdout[-3000:] + setup.stderr[-5000:])
        venv_python = root / "venv" / "bin" / "python"
        base = subprocess.run([str(venv_python), "-c", "import sys, torch; print(sys.base_prefix)"],
                              capture_output=True, text=True, timeout=120)
        assert base.returncode == 0, base.stderr[-2000:]
        assert base.stdout.strip() == subprocess.run(
            [str(SYSTEM_PYTHON), "-c", "import sys; print(sys.base_prefix)"],
            capture_output=True, text=True).stdout.strip()

        # run_autograder, with no HW4_PYTHON, grades with that environment (the system Python
        # has no torch): the reference gets every point of the unit stage.
        (root / "submission").mkdir()
        for name in paths.SUBMISSION_FILES:
            shutil.copy(paths.REFERENCE_DIR / name, root / "submission" / name)
        graded = subprocess.run([str(source / "run_autograder")], env={**env, "HW4_STAGE": "unit"},
                                cwd=tmp_path, capture_output=True, text=True, timeout=600)
        results = json.loads((root / "results" / "results.json").read_text())
        validate_json(results)
        assert graded.returncode == 0, graded.stderr[-3000:]
        failed = [(t["number"], t.get("output", "")[:300]) for t in results["tests"]
                  if t["score"] != t["max_score"]]
        assert failed == [] and results["score"] > 0
    finally:
        shutil.rmtree(root / "venv", ignore_errors=True)  # ~1 GB
