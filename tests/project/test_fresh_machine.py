"""A fresh machine, set up by the README alone: as root, the grader creates the sandbox user
when missing, and the sandbox user reaches a Python installation that lies behind a folder it
cannot traverse (``/root``, mode 700) without anyone running ``chmod o+x``.

Neither state is made for the machine as a whole (other grades rely on its sandbox user and on
``/root``'s mode): ``/root`` at mode 700 lives in a private mount namespace of the test's own
pytest run, and the fresh user has a name of its own (``HW4_SANDBOX_USER``), removed after.
"""
from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from autograder import paths
from autograder.sandbox import Limits, Sandbox, mounts, secrets

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0 or not mounts.available(),
                                 reason="needs root and mount namespaces (a private /root)")]

# The tests that once needed `.ci/run`'s `chmod o+x /root` (issue 13): they run again below
# with the Python's top-level folder at mode 700.
NAMED_TESTS = ["tests/project/test_sandbox.py::test_readable_secrets_stop_the_sandbox_with_a_staff_message",
               "tests/project/test_sandbox.py::test_python_check_names_the_folder_that_locks_the_sandbox_user_out",
               "tests/project/test_sandbox.py::test_child_runs_as_the_sandbox_user"]


def _top_folder(path: str) -> str:
    return "/" + os.path.realpath(path).strip("/").split("/", 1)[0]


def _lock_in_private_namespace(top: str, keep: list[str], hold: str) -> None:
    """In a forked child before exec: a private mount namespace where ``top`` is an empty
    mode-700 folder with only ``keep`` (paths under it) bind-mounted back, as on a machine whose
    Python lives under a root-only /root."""
    mounts.unshare_mounts()
    mounts.mount(top, hold, None, mounts.MS_BIND | mounts.MS_REC)
    mounts.mount("tmpfs", top, "tmpfs", mounts.MS_NOSUID | mounts.MS_NODEV, "size=1m,mode=0700")
    for path in keep:
        os.makedirs(path, exist_ok=True)
        mounts.mount(os.path.join(hold, os.path.relpath(path, top)), path, None, mounts.MS_BIND | mounts.MS_REC)


def test_sandbox_tests_pass_with_the_python_behind_a_root_only_folder(tmp_path):
    python = os.path.realpath(sys.base_prefix)
    top = _top_folder(python)
    if top in mounts.SYSTEM_TOP_DIRS or top == "/":
        pytest.skip(f"this Python lives in a system folder ({python}), which no machine locks")
    keep = sorted({p for p in secrets.needed_paths() if p.startswith(top + "/")})
    mode_before = os.stat(top).st_mode
    hold = tempfile.mkdtemp(prefix="hw4-test-hold-")
    account = pwd.getpwnam(Limits().user) if _user_exists(Limits().user) else None
    check = ("import os, sys; mode = os.stat(sys.argv[1]).st_mode & 0o777; print(oct(mode))")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        seen = subprocess.run([sys.executable, "-c", check, top], capture_output=True, text=True,
                              env=env, timeout=60,
                              preexec_fn=lambda: _lock_in_private_namespace(top, keep, hold))
        assert seen.stdout.strip() == "0o700", seen.stderr[-2000:]
        if account is not None:  # the lock is real: the sandbox user cannot enter the folder
            locked_out = subprocess.run(["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                                         "--clear-groups", "test", "-x", python],
                                        timeout=60, preexec_fn=lambda: _lock_in_private_namespace(top, keep, hold))
            assert locked_out.returncode != 0
        ran = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0",
                              "-q", "--basetemp", str(tmp_path / "inner"), *NAMED_TESTS],
                             cwd=paths.ROOT, capture_output=True, text=True, env=env, timeout=600,
                             preexec_fn=lambda: _lock_in_private_namespace(top, keep, hold))
        assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
        assert f"{len(NAMED_TESTS)} passed" in ran.stdout, ran.stdout[-2000:]
    finally:
        os.rmdir(hold)
    assert os.stat(top).st_mode == mode_before  # the machine's own folder is as it was


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture
def fresh_user():
    """A sandbox user name that does not exist yet; the account is removed afterwards."""
    name = "hw4t" + uuid.uuid4().hex[:10]
    assert not _user_exists(name)
    yield name
    if _user_exists(name):
        subprocess.run(["userdel", name], check=True, capture_output=True, timeout=60)


def test_a_sandbox_creates_its_missing_user_and_runs_the_call_as_it(fresh_user):
    with Sandbox(paths.REFERENCE_DIR, limits=Limits(user=fresh_user)) as sandbox:
        seen = sandbox.run("selftest.environment").values
    account = pwd.getpwnam(fresh_user)
    assert seen["uid"] == account.pw_uid != 0
    assert account.pw_shell.endswith("nologin")


@pytest.mark.slow
def test_grade_on_a_fresh_machine_creates_the_user_and_grades(fresh_user, tmp_path):
    """The README's main job, right after the install, on a machine without the sandbox user."""
    out = tmp_path / "results.json"
    graded = subprocess.run([sys.executable, "-m", "autograder", "grade", "--out", str(out)],
                            cwd=paths.ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HW4_SANDBOX_USER": fresh_user})
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
    assert "INTERNALERROR" not in graded.stdout + graded.stderr
    results = json.loads(out.read_text())
    assert results["score"] > 0 and all(t["score"] == t["max_score"] for t in results["tests"])
    assert _user_exists(fresh_user)


def test_grade_where_the_user_cannot_be_created_says_so_in_one_line(tmp_path):
    graded = subprocess.run([sys.executable, "-m", "autograder", "grade", "--out", str(tmp_path / "r.json")],
                            cwd=paths.ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HW4_SANDBOX_USER": "hw4:invalid"})
    assert graded.returncode != 0
    assert "Traceback" not in graded.stderr and "INTERNALERROR" not in graded.stdout
    lines = [line for line in graded.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "useradd could not create it" in lines[0], graded.stderr
