"""``sandbox.template``: a zygote forked by a batch's template is the zygote a fresh start gives
(same defences, same child), it is refused where it would differ, and it goes with its Sandbox."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from autograder import paths
from autograder.sandbox import Limits, Sandbox
from autograder.sandbox.limits import MiB, ensure_sandbox_user, is_root
from autograder.sandbox.template import ENV, Template, supported

pytestmark = [pytest.mark.slow,  # each test starts a template and sandboxes
              pytest.mark.skipif(not supported(), reason="no pidfds or fd passing here (Linux 5.3+, "
                                 "Python 3.9+): a batch's grades start their own zygotes")]

LIMITS = Limits(memory=512 * MiB, max_output=10_000, tmp_bytes=16 * MiB)
# What a call's child sees that depends on its own call (folder, pid, session), not its zygote.
PER_CALL = ("cwd", "pid", "sid")


@pytest.fixture(scope="module", autouse=True)
def sandbox_user():
    if is_root():
        ensure_sandbox_user(LIMITS.user)


@pytest.fixture(scope="module")
def template():
    started = Template.start("cpu")
    assert started is not None, "the template did not start"
    yield started
    started.close()


def _submission(folder, answer: int):
    folder.mkdir()
    (folder / "lab1.py").write_text(f"import sys\nARGV = list(sys.argv)\nANSWER = {answer}\n")
    return folder


def _parent(pid: int) -> int:
    return psutil.Process(pid).ppid()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _open_files(sandbox) -> list[str]:
    """What the zygote itself holds open: pipes, sockets and files by kind or path."""
    pid, held = sandbox._zygote.process.pid, []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        held.append(target.split(":")[0] if ":[" in target else target.replace(str(sandbox._base), "<sandbox>"))
    return held


def _seen(sandbox) -> str:
    """What a call's child sees, less what is its own call's, and its process state; the
    sandbox's own folder (each Sandbox has another) written as <sandbox>."""
    seen = sandbox.run("selftest.environment", {}).values
    state = sandbox.run("selftest.state", {"module": "lab1"}).values
    state["argv"] = sandbox.run("selftest.module_global", {"module": "lab1", "name": "ARGV"}).values["value"]
    kept = {**{k: v for k, v in seen.items() if k not in PER_CALL},
            **{k: v for k, v in state.items() if k not in ("cwd", "random", "torch_random")}}
    return json.dumps(kept, sort_keys=True, indent=1).replace(str(sandbox._base), "<sandbox>")


def test_a_sandbox_gets_its_zygote_from_the_named_template_and_its_child_sees_the_same(
        template, tmp_path, monkeypatch):
    submission = _submission(tmp_path / "sub", 7)
    with Sandbox(submission, limits=LIMITS) as fresh:
        fresh_seen, fresh_defences = _seen(fresh), fresh.capabilities
        fresh_files = _open_files(fresh)
        assert _parent(fresh._zygote.process.pid) == os.getpid()
    monkeypatch.setenv(ENV, template.address)
    with Sandbox(submission, limits=LIMITS) as forked:
        forked_seen, forked_defences = _seen(forked), forked.capabilities
        forked_files = _open_files(forked)
        assert _parent(forked._zygote.process.pid) == template.process.pid
        value = forked.run("selftest.module_global", {"module": "lab1", "name": "ANSWER"})
        assert value.values["value"] == 7
    assert forked_files == fresh_files  # nothing of the template's (its socket, other zygotes')
    assert forked_defences == fresh_defences
    assert forked_seen == fresh_seen
    assert '"fds"' in forked_seen and '"env"' in forked_seen


def test_a_template_of_another_provided_package_is_refused_and_a_fresh_zygote_starts(
        tmp_path, monkeypatch):
    provided = tmp_path / "provided"
    shutil.copytree(paths.PROVIDED_DIR / "hw4", provided / "hw4",
                    ignore=shutil.ignore_patterns("__pycache__"))
    other = Template.start("cpu", provided_dir=provided)
    assert other is not None
    try:
        monkeypatch.setenv(ENV, other.address)
        with Sandbox(_submission(tmp_path / "sub", 3), limits=LIMITS) as sandbox:
            assert sandbox.run("selftest.module_global", {"module": "lab1", "name": "ANSWER"}).values["value"] == 3
            assert _parent(sandbox._zygote.process.pid) == os.getpid()  # started here
    finally:
        other.close()


def test_a_forked_zygote_that_does_not_come_up_gives_way_to_a_fresh_one(template, tmp_path,
                                                                       monkeypatch):
    """Here its cwd does not exist: the forked zygote dies saying so in its log, and the
    Sandbox starts a fresh zygote of its own instead of failing the grade."""
    from autograder.sandbox import client
    real = client._template_request
    monkeypatch.setattr(client, "_template_request",
                        lambda *args: {**real(*args), "cwd": str(tmp_path / "gone")})
    monkeypatch.setenv(ENV, template.address)
    with Sandbox(_submission(tmp_path / "sub", 4), limits=LIMITS) as sandbox:
        assert sandbox.run("selftest.module_global", {"module": "lab1", "name": "ANSWER"}).values["value"] == 4
        assert _parent(sandbox._zygote.process.pid) == os.getpid()
        assert "FileNotFoundError" in (sandbox._base / "zygote.log").read_text()


def test_a_malformed_request_does_not_end_the_template(template, tmp_path, monkeypatch):
    import socket
    for junk in (b"not json", b'{"cwd": 1}', b""):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
            peer.connect(template.address)
            peer.sendall(junk)
            peer.shutdown(socket.SHUT_WR)
            peer.settimeout(15)
            peer.recv(4096)  # answered or closed, never left hanging
    monkeypatch.setenv(ENV, template.address)
    with Sandbox(_submission(tmp_path / "sub", 2), limits=LIMITS) as sandbox:
        sandbox.start()
        assert _parent(sandbox._zygote.process.pid) == template.process.pid


def test_a_template_that_is_gone_costs_nothing_but_time(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "no-such.sock"))
    with Sandbox(_submission(tmp_path / "sub", 5), limits=LIMITS) as sandbox:
        assert sandbox.run("selftest.module_global", {"module": "lab1", "name": "ANSWER"}).values["value"] == 5
        assert _parent(sandbox._zygote.process.pid) == os.getpid()


def test_a_forked_zygote_is_reaped_when_its_sandbox_closes(template, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, template.address)
    with Sandbox(_submission(tmp_path / "sub", 1), limits=LIMITS) as sandbox:
        sandbox.start()
        pid = sandbox._zygote.process.pid
        assert sandbox._zygote.alive()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and psutil.pid_exists(pid) and _parent(pid) == template.process.pid:
        time.sleep(0.1)
    assert not psutil.pid_exists(pid) or _parent(pid) != template.process.pid  # reaped: no zombie


GRADER = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/student"]
from autograder.sandbox import Sandbox, Limits
box = Sandbox(sys.argv[2], limits=Limits(memory=512 << 20, max_output=10_000, tmp_bytes=16 << 20))
box.start()
print(box._zygote.process.pid, box._base, flush=True)
time.sleep(600)
"""


def test_a_killed_grader_process_takes_its_forked_zygote_with_it(template, tmp_path):
    """The zygote is the template's child, not the grader's: it must still end when the grader
    process that owns it dies (its pipe closes), and be reaped by the template."""
    env = {**os.environ, ENV: template.address}
    grader = subprocess.Popen([sys.executable, "-c", GRADER, str(paths.ROOT),
                               str(_submission(tmp_path / "sub", 1))],
                              stdout=subprocess.PIPE, text=True, env=env)
    pid, base = grader.stdout.readline().split()
    pid = int(pid)
    try:
        assert _parent(pid) == template.process.pid
    finally:
        grader.send_signal(signal.SIGKILL)
        grader.wait()
        shutil.rmtree(base, ignore_errors=True)  # the killed grader could not remove its folder
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not _gone(pid):
        time.sleep(0.1)
    assert _gone(pid)
    while time.monotonic() < deadline and psutil.pid_exists(pid) and _parent(pid) == template.process.pid:
        time.sleep(0.1)
    assert not psutil.pid_exists(pid) or _parent(pid) != template.process.pid


def test_a_template_ended_by_sigterm_removes_its_socket_folder():
    """What a batch's death sends it (PR_SET_PDEATHSIG): it ends and leaves nothing in /tmp."""
    started = Template.start("cpu")
    assert started is not None and started.folder.is_dir()
    started.process.send_signal(signal.SIGTERM)
    assert started.process.wait(timeout=10) == 0
    assert not started.folder.exists()
    started.close()


def test_a_slurm_chunk_of_several_grades_forks_them_from_one_template(tmp_path):
    """``grade_chunk`` (one Slurm array task) starts its own template for its grades."""
    from autograder.batch.keys import GradeOptions
    from autograder.batch.store import GRADED, MISSING, BatchDir
    from autograder.batch.worker import Task, grade_chunk

    out, options = tmp_path / "out", GradeOptions()
    tasks = [Task("stubs", paths.STUDENT_DIR, "k1", out, options, 300.0),
             Task("absent", None, "k2", out, options, 300.0)]
    outcomes = {o.id: o for o in grade_chunk(tasks)}
    assert (outcomes["stubs"].status, outcomes["absent"].status) == (GRADED, MISSING)
    forked = [line for line in BatchDir(out).template_log.read_text().splitlines()
              if line.startswith("forked zygote")]
    assert len(forked) == 1, forked
    assert json.loads(BatchDir(out).results("stubs").read_text())["tests"]
