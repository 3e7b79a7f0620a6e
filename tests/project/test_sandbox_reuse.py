"""``sandbox.reuse``: a closed Sandbox hands its zygote to the next one of this process, only
when asked, and the next one sees its own submission alone."""
import os
import signal

import psutil
import pytest

from autograder.errors import MissingFile
from autograder.sandbox import Limits, Sandbox, reuse
from autograder.sandbox.limits import MiB, ensure_sandbox_user, is_root

pytestmark = pytest.mark.slow  # each test starts sandboxes

LIMITS = Limits(memory=512 * MiB, max_output=10_000, tmp_bytes=16 * MiB)


@pytest.fixture(scope="module", autouse=True)
def sandbox_user():
    if is_root():
        ensure_sandbox_user(LIMITS.user)


def _submission(folder, answer: int, *, with_lab2: bool):
    folder.mkdir()
    (folder / "lab1.py").write_text(f"ANSWER = {answer}\n")
    if with_lab2:
        (folder / "lab2.py").write_text("ONLY_IN_THE_FIRST = True\n")
    return folder


def _answer(sandbox) -> int:
    return int(sandbox.run("selftest.module_global", {"module": "lab1", "name": "ANSWER"}).values["value"])


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_next_sandbox_reuses_the_zygote_and_sees_only_its_own_submission(tmp_path):
    first = _submission(tmp_path / "first", 1, with_lab2=True)
    second = _submission(tmp_path / "second", 2, with_lab2=False)
    with reuse.kept_zygotes():
        with Sandbox(first, limits=LIMITS) as sandbox:
            assert _answer(sandbox) == 1
            assert sandbox.run("selftest.module_global", {"module": "lab2", "name": "ONLY_IN_THE_FIRST"}).values["value"]
            pid, base = sandbox._zygote.process.pid, sandbox._base
        assert not _gone(pid)  # kept, not stopped
        with Sandbox(second, limits=LIMITS) as sandbox:
            assert _answer(sandbox) == 2
            assert sandbox._zygote.process.pid == pid and sandbox._base == base
            with pytest.raises(MissingFile):  # the first submission's lab2.py went with it
                sandbox.run("selftest.module_global", {"module": "lab2", "name": "ONLY_IN_THE_FIRST"})
    assert _gone(pid) and not base.exists()  # the end of the `with` stops what was kept
    assert not reuse.enabled()


def test_without_reuse_a_closed_sandbox_stops_its_zygote(tmp_path):
    with Sandbox(_submission(tmp_path / "s", 3, with_lab2=False), limits=LIMITS) as sandbox:
        assert _answer(sandbox) == 3
        pid, base = sandbox._zygote.process.pid, sandbox._base
    assert _gone(pid) and not base.exists()


def test_a_kept_zygote_that_died_is_replaced(tmp_path):
    with reuse.kept_zygotes():
        with Sandbox(_submission(tmp_path / "a", 4, with_lab2=False), limits=LIMITS) as sandbox:
            assert _answer(sandbox) == 4
            pid, base = sandbox._zygote.process.pid, sandbox._base
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(timeout=10)  # dead before the next Sandbox looks
        with Sandbox(_submission(tmp_path / "b", 5, with_lab2=False), limits=LIMITS) as sandbox:
            assert _answer(sandbox) == 5
            assert sandbox._zygote.process.pid != pid
        assert not base.exists()  # the dead one's folder was removed when it was passed over


def test_a_zygote_serves_only_sandboxes_of_its_own_limits(tmp_path):
    with reuse.kept_zygotes():
        with Sandbox(_submission(tmp_path / "a", 6, with_lab2=False), limits=LIMITS) as sandbox:
            assert _answer(sandbox) == 6
            pid = sandbox._zygote.process.pid
        other = Limits(memory=640 * MiB, max_output=10_000, tmp_bytes=16 * MiB)
        with Sandbox(_submission(tmp_path / "b", 7, with_lab2=False), limits=other) as sandbox:
            assert _answer(sandbox) == 7
            assert sandbox._zygote.process.pid != pid
