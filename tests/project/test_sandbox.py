"""The sandbox: student code runs out of process, and each way it can fail becomes the right error.

The student files are written here; the probes are ``autograder.probes.selftest``. Tests that
need root (the sandbox user, kill by uid, the network namespace) skip without it.
"""
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from autograder.errors import (Crashed, GraderError, ImportFailed, InvalidOutput, MissingFile,
                               MissingFunction, NoResult, NotImplementedYet, OutOfMemory,
                               StudentException, TimedOut)
from autograder.probes import plain
from autograder.sandbox import Limits, Sandbox
from autograder.sandbox.client import Call
from autograder.sandbox import limits as limits_module
from autograder.sandbox import mounts, secrets
from autograder.sandbox.limits import MiB, ensure_sandbox_user, is_root

ROOT = is_root()
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (sandbox user, kill by uid, namespaces)")
LIMITS = Limits(memory=512 * MiB, max_output=10_000, tmp_bytes=16 * MiB)
MOUNTS = ROOT and mounts.available()
needs_mounts = pytest.mark.skipif(not MOUNTS, reason="needs root and mount namespaces (CAP_SYS_ADMIN)")

LAB1 = '''
import ctypes, os, signal, sys, time
import numpy as np
import torch

COUNT = 0

def double(x):
    print("doubling", x.shape)
    return x * 2

def todo(x):
    raise NotImplementedError("write me")

def outer(x):
    return inner(x)

def inner(x):
    return x @ np.ones((7, 7))

def chatter_then_spin():
    for step in range(100_000):
        print("step", step, "loss", 1.0 / (step + 1))
    while True:
        pass

def spin():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.alarm(1)
    while True:
        pass

def hard_exit():
    os._exit(0)

def soft_exit():
    sys.exit(0)

def interrupt():
    raise KeyboardInterrupt

def segfault():
    ctypes.string_at(0)

def lying_array():
    class Liar(np.ndarray):
        def __eq__(self, other):
            return True
    return np.zeros(3).view(Liar)

def lying_tensor():
    class Liar(torch.Tensor):
        pass
    return torch.zeros(3).as_subclass(Liar)

def duck():
    class Duck:
        def __array__(self, *args, **kwargs):
            return np.zeros(3)
    return Duck()

def bump():
    global COUNT
    COUNT += 1
    return COUNT

def pollute():
    torch.set_default_dtype(torch.float64)
    torch.set_grad_enabled(False)
    np.random.seed(123)
    torch.manual_seed(123)
    os.chdir("/")
    return 0

def use_cuda():
    return torch.zeros(1).cuda()

def peek(path):
    """What this process can see of ``path``: its listing or its first bytes, or the error."""
    try:
        if os.path.isdir(path):
            return "listed " + ",".join(sorted(os.listdir(path)))
        with open(path, "rb") as handle:
            return "read " + handle.read(64).decode(errors="replace")
    except OSError as error:
        return f"refused {type(error).__name__}"

def fill_tmp(megabytes):
    """Write up to ``megabytes`` MiB into /tmp; how many it could write."""
    written = 0
    try:
        with open("/tmp/hw4-test-fill.bin", "wb") as handle:
            for _ in range(megabytes):
                handle.write(b"0" * (1 << 20))
                handle.flush()
                written += 1
    except OSError:
        pass
    return written

def detached_grandchild():
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(write_end, str(os.getpid()).encode())
            time.sleep(30)
            os._exit(0)
        os._exit(0)
    os.close(write_end)
    pid = int(os.read(read_end, 32))
    os.wait()
    return pid
'''


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submission")
    (folder / "lab1.py").write_text(textwrap.dedent(LAB1))
    (folder / "lab3.py").write_text("import numpy as np\n\ndef broken(:\n    pass\n")
    (folder / "answers.py").write_text("ANSWERS = {'1.1': True}\n")
    return folder


@pytest.fixture(scope="module")
def grader_secret():
    """A world-readable folder of the grader's (like the results folder), registered as secret."""
    import shutil
    import tempfile
    from pathlib import Path
    folder = Path(tempfile.mkdtemp(prefix="hw4-test-results-"))
    os.chmod(folder, 0o755)
    (folder / "results.json").write_text('{"score": "grader-only"}')
    os.chmod(folder / "results.json", 0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def sandbox(submission, grader_secret):
    if ROOT:
        ensure_sandbox_user(LIMITS.user)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(secrets.HIDE_ENV, str(grader_secret))
        with Sandbox(submission, limits=LIMITS) as sandbox:
            sandbox.start()
            yield sandbox


def call(sandbox, fn, *args, timeout=10.0, **inputs):
    return sandbox.run("selftest.call", {"module": "lab1", "fn": fn, "args": list(args), **inputs},
                       timeout=timeout)


def leftover_processes(sandbox):
    """Live processes this sandbox's children left: under its zygote, or with a cwd in its call
    dirs (other sandboxes on the machine share the user, so the uid alone does not tell)."""
    base = str(sandbox._base)
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE or process.pid == sandbox._zygote.process.pid:
                continue
            if process.cwd().startswith(base) or sandbox._zygote.process.pid in \
                    [parent.pid for parent in process.parents()]:
                found.append(process)
        except psutil.Error:
            pass
    return found


# -- values and output -------------------------------------------------------------------------

def test_values_round_trip_with_dtypes_and_nesting(sandbox):
    inputs = {"f32": np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3), "i64": np.arange(4),
              "flags": np.array([True, False]), "nested": {"list": [1, 2.5, "x", None, [np.ones(2)]]}}
    values = sandbox.run("selftest.echo", inputs).values
    assert values["f32"].dtype == np.float32 and values["f32"].shape == (2, 3)
    np.testing.assert_array_equal(values["f32"], inputs["f32"])
    assert values["i64"].dtype == np.int64 and values["flags"].dtype == np.bool_
    assert values["nested"]["list"][:4] == [1, 2.5, "x", None]
    np.testing.assert_array_equal(values["nested"]["list"][4][0], np.ones(2))


def test_a_trusted_call_runs_only_the_graders_listed_functions(sandbox):
    """``run_trusted`` forks the zygote without confinement, so it must refuse anything but the
    functions ``child.TRUSTED_MODULES`` list; a failure there is the grader's, never the student's."""
    for function in ("os:system", "autograder.training.measure:_deterministic",
                     "autograder.training.measure"):
        with pytest.raises(GraderError, match="not a trusted function"):
            sandbox.run_trusted(function, {"command": "true"}, timeout=30)
    with pytest.raises(GraderError, match="starting_states"):  # the grader's own function fails
        sandbox.run_trusted("autograder.training.measure:starting_states",
                            {"checkpoint": "/nonexistent.pt"}, timeout=60)


def test_student_function_result_and_output_come_back(sandbox):
    result = call(sandbox, "double", np.arange(3.0))
    np.testing.assert_array_equal(result.values["value"], [0.0, 2.0, 4.0])
    assert "doubling (3,)" in result.stdout
    assert result.elapsed > 0


def test_output_flood_is_capped(sandbox):
    result = sandbox.run("selftest.flood", {"bytes": 4 * MiB})
    assert result.values == {"printed": True}
    assert len(result.stdout) < LIMITS.max_output + 200
    assert "truncated" in result.stdout and str(4 * MiB) in result.stdout


def test_each_call_of_a_batch_comes_back_with_what_it_printed(sandbox):
    """One child answers the batch: each call's output is the part of it that call printed."""
    calls = [Call("selftest.call", {"module": "lab1", "fn": "double", "args": [np.arange(3.0)]}),
             Call("selftest.call", {"module": "lab1", "fn": "double", "args": [np.arange(5.0)]}),
             Call("selftest.call", {"module": "lab1", "fn": "todo", "args": [np.arange(2.0)]})]
    first, second, third = sandbox.run_batch(calls)
    assert first.stdout.strip() == "doubling (3,)"
    assert second.stdout.strip() == "doubling (5,)"
    assert isinstance(third, NotImplementedYet) and third.stdout == ""


def test_a_call_that_hangs_a_batch_is_charged_its_limit_once_and_the_others_answer(sandbox):
    """The hung call is not asked again alone (a second wait of its whole limit): only the
    others are."""
    calls = [Call("selftest.call", {"module": "lab1", "fn": "double", "args": [np.arange(3.0)]}, 2.0),
             Call("selftest.call", {"module": "lab1", "fn": "spin"}, 2.0),
             Call("selftest.call", {"module": "lab1", "fn": "double", "args": [np.arange(4.0)]}, 2.0)]
    before = sandbox._calls
    first, hung, third = sandbox.run_batch(calls)
    assert isinstance(hung, TimedOut) and "2 s" in hung.message and "`lab1.spin`" in hung.message
    assert first.stdout.strip() == "doubling (3,)" and third.stdout.strip() == "doubling (4,)"
    assert sandbox._calls - before == 3  # the batch, then the two others alone


def test_a_call_late_in_a_batch_gets_its_whole_limit_before_it_is_charged(sandbox):
    """The batch's clock is the longest call's limit; a call that started late in it still
    runs for its own whole limit before it is charged a timeout."""
    calls = [Call("selftest.sleep", {"seconds": 1.5}, 2.0),
             Call("selftest.call", {"module": "lab1", "fn": "spin"}, 2.0)]
    before, started = sandbox._calls, time.monotonic()
    slept, hung = sandbox.run_batch(calls)
    assert time.monotonic() - started >= 3.4  # 1.5 s asleep, then the spin's whole 2 s
    assert isinstance(hung, TimedOut) and slept.values == {}
    assert sandbox._calls - before == 2


def test_calls_slow_together_but_each_within_its_limit_finish_in_the_batch(sandbox):
    calls = [Call("selftest.sleep", {"seconds": 1.2}, 2.0), Call("selftest.sleep", {"seconds": 1.2}, 2.0)]
    before = sandbox._calls
    assert [result.values for result in sandbox.run_batch(calls)] == [{}, {}]
    assert sandbox._calls - before == 1  # no rerun: the second call had its own 2 s


def test_a_timeout_after_a_print_flood_says_how_much_was_printed(sandbox):
    with pytest.raises(TimedOut, match=r"printed [\d,]+ bytes") as caught:
        call(sandbox, "chatter_then_spin", timeout=3.0)
    assert caught.value.stdout.startswith("step 0 loss 1.0\nstep 1 loss 0.5\n")
    assert len(caught.value.stdout) < LIMITS.max_output + 200  # what is kept stays capped


# -- student faults ----------------------------------------------------------------------------

def test_not_implemented_names_the_function(sandbox):
    with pytest.raises(NotImplementedYet, match="`todo`"):
        call(sandbox, "todo", np.zeros(3))


def test_exception_traceback_shows_only_student_frames(sandbox):
    with pytest.raises(StudentException) as caught:
        call(sandbox, "outer", np.zeros(3))
    error = caught.value
    assert "ValueError" in error.message
    lines = textwrap.dedent(LAB1).splitlines()
    outer_line = lines.index("    return inner(x)") + 1
    inner_line = lines.index("    return x @ np.ones((7, 7))") + 1
    assert f'File "lab1.py", line {outer_line}, in outer' in error.details
    assert f'File "lab1.py", line {inner_line}, in inner' in error.details
    assert "return x @ np.ones((7, 7))" in error.details
    assert "autograder" not in error.details and "site-packages" not in error.details


def test_syntax_error_at_import_names_file_and_line(sandbox):
    with pytest.raises(ImportFailed, match=r"lab3\.py.*line 3") as caught:
        sandbox.run("selftest.call", {"module": "lab3", "fn": "broken"})
    assert "def broken(:" in caught.value.details


def test_missing_file(sandbox):
    with pytest.raises(MissingFile, match=r"lab2\.py"):
        sandbox.run("selftest.call", {"module": "lab2", "fn": "anything"})


def test_the_sandboxs_copy_refuses_a_hard_link_as_intake_does(tmp_path):
    # The same inode under another name may be a file of the grader's: never copied.
    grader_file = tmp_path / "grader_only.py"
    grader_file.write_text("def secret(x):\n    return 42\n")
    submission = tmp_path / "submission"
    submission.mkdir()
    os.link(grader_file, submission / "lab1.py")
    box = Sandbox(submission, limits=LIMITS)
    try:
        box.start(wait=False)
        assert sorted(p.name for p in (box._base / "submission").iterdir()) == []
    finally:
        box.close()


def test_missing_function(sandbox):
    with pytest.raises(MissingFunction, match="no_such_function"):
        call(sandbox, "no_such_function")


def test_infinite_loop_ignoring_signals_times_out_and_leaves_nothing(sandbox):
    started = time.monotonic()
    with pytest.raises(TimedOut, match=r"1\.5 s.*lab1\.spin"):
        call(sandbox, "spin", timeout=1.5)
    assert time.monotonic() - started < 1.5 + 10  # bounded: the call did not hang
    assert leftover_processes(sandbox) == []


@pytest.mark.parametrize("fn", ["hard_exit", "soft_exit", "interrupt"])
def test_exiting_without_a_result(sandbox, fn):
    with pytest.raises(NoResult):
        call(sandbox, fn)


def test_segfault_is_a_crash(sandbox):
    with pytest.raises(Crashed, match="segmentation fault"):
        call(sandbox, "segfault")


def test_memory_grab_beyond_the_limit(sandbox):
    with pytest.raises(OutOfMemory):
        sandbox.run("selftest.grab", {"bytes": 1024 * MiB})
    assert sandbox.run("selftest.grab", {"bytes": 64 * MiB}).values == {"grabbed": 64 * MiB}


@pytest.mark.parametrize("fn", ["lying_array", "lying_tensor", "duck"])
def test_lying_outputs_are_rejected(sandbox, fn):
    with pytest.raises(InvalidOutput, match="return value"):
        call(sandbox, fn)


def test_cuda_without_gpu_says_to_use_device(sandbox):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(StudentException, match="no GPU.*`device`"):
        call(sandbox, "use_cuda")


def test_setsid_grandchild_is_killed_after_the_call(sandbox):
    pid = int(call(sandbox, "detached_grandchild").values["value"])
    try:
        process = psutil.Process(pid)
        alive = process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        alive = False
    assert not alive
    assert leftover_processes(sandbox) == []


# -- isolation ---------------------------------------------------------------------------------

def test_global_state_does_not_leak_between_calls(sandbox):
    fresh = sandbox.run("selftest.state").values
    assert call(sandbox, "bump").values["value"] == 1
    assert call(sandbox, "pollute").values["value"] == 0
    assert call(sandbox, "bump").values["value"] == 1
    after = sandbox.run("selftest.state").values
    assert after["default_dtype"] == "torch.float32" and after["grad_enabled"] is True
    assert after["random"] == fresh["random"] and after["torch_random"] == fresh["torch_random"]
    assert after["cwd"] != "/"


def test_child_sees_no_secret_no_fd_and_no_repository(sandbox, monkeypatch):
    seen = sandbox.run("selftest.environment").values
    assert set(seen["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "OMP_NUM_THREADS",
                                "CUDA_VISIBLE_DEVICES"}
    assert seen["fds"] == [0, 1, 2, 3] or seen["fds"] == [0, 1, 2]  # 3: the listing's own fd
    from autograder import paths
    assert seen["sys_path"][0].endswith("submission")
    assert str(paths.ROOT) not in seen["sys_path"] and "" not in seen["sys_path"]
    assert not seen["cwd"].startswith(str(paths.ROOT))
    assert seen["sid"] == seen["pid"]


def test_threads_are_set_per_call(sandbox):
    assert sandbox.run("selftest.state", threads=2).values["threads"] == 2
    assert sandbox.run("selftest.state").values["threads"] == 1


# -- grader faults and the zygote --------------------------------------------------------------

def test_probe_bug_is_a_grader_error(sandbox):
    with pytest.raises(GraderError, match="probe failed"):
        sandbox.run("selftest.fail")
    with pytest.raises(GraderError):
        sandbox.run("selftest.no_such_probe")
    with pytest.raises(GraderError, match="not plain data"):
        sandbox.run("selftest.echo", {"x": object()})


def test_killed_zygote_is_restarted_and_the_call_retried(sandbox):
    """The sandbox user cannot signal the zygote (root's): its death is the machine's fault, so
    the call runs again in a new zygote instead of failing the student."""
    zygote, retries = sandbox._zygote.process.pid, sandbox.retries
    killer = threading.Timer(0.5, os.kill, (zygote, signal.SIGKILL))
    killer.start()
    assert sandbox.run("selftest.sleep", {"seconds": 2}).values == {}
    killer.join()
    assert sandbox.retries == retries + 1
    assert sandbox._zygote.process.pid != zygote
    assert call(sandbox, "bump").values["value"] == 1


def test_plain_accepts_exact_types_only():
    assert plain(np.float32(1.5)).dtype == np.float32
    assert plain(3).dtype.kind == "i" and plain(True).dtype == np.bool_
    assert plain(torch.ones(2, dtype=torch.bfloat16)).dtype == np.float32
    parameter = torch.nn.Parameter(torch.ones(2))
    assert type(plain(parameter, what="w")) is np.ndarray
    with pytest.raises(InvalidOutput, match="the weights"):
        plain([1.0, 2.0], what="the weights")
    with pytest.raises(InvalidOutput):
        plain(np.array(["a"]))
    with pytest.raises(InvalidOutput):
        plain(2 ** 100)


# -- root only ---------------------------------------------------------------------------------

@needs_root
def test_child_runs_as_the_sandbox_user(sandbox):
    import pwd
    seen = sandbox.run("selftest.environment").values
    own = sandbox.account  # slot 0 is the named account; a concurrent grade gets a uid of its own
    assert (seen["uid"], seen["gid"], seen["groups"]) == (own.uid, own.gid, [])
    assert own.uid != 0 and own.gid != 0
    if own.slot == 0:
        named = pwd.getpwnam(LIMITS.user)
        assert (own.uid, own.gid) == (named.pw_uid, named.pw_gid)
    assert seen["no_new_privs"] is True


@pytest.mark.skipif(not limits_module.IS_LINUX, reason="oom_score_adj is Linux's")
def test_child_is_the_out_of_memory_killers_first_victim_not_the_grader(sandbox):
    """A container at its memory limit kills a process; it must be the call, never the grader."""
    seen = sandbox.run("selftest.environment").values
    assert seen["oom_score_adj"] == limits_module.OOM_SCORE_FIRST
    with open("/proc/self/oom_score_adj") as score:
        assert int(score.read()) < limits_module.OOM_SCORE_FIRST


@needs_root
def test_child_has_no_network(sandbox):
    if not sandbox.capabilities["network_namespace"]:
        pytest.skip("this platform refused a network namespace")
    assert sandbox.run("selftest.environment").values["interfaces"] == ["lo"]


@needs_root
def test_kill_all_kills_every_process_of_the_sandbox_uid(sandbox):
    stray = subprocess.Popen(["sleep", "30"], user=sandbox.account.uid, group=sandbox.account.gid,
                             start_new_session=True)
    try:
        if not sandbox.kill_all(wait=30.0):
            pytest.skip("other sandboxes of the same user (parallel runs) kept calls in flight")
        assert stray.wait(timeout=10) == -signal.SIGKILL
    finally:
        stray.kill()
        stray.wait()


@needs_root
def test_a_sandbox_user_that_cannot_be_created_is_one_grader_error_not_root(submission):
    """A missing user is created; one useradd refuses (an invalid name) stops the sandbox with
    one line that says why, and student code never runs as root."""
    with pytest.raises(GraderError, match="does not exist and useradd could not create it") as caught:
        Sandbox(submission, limits=Limits(user="hw4:no-such-user")).start()
    assert "\n" not in str(caught.value) and "invalid user name" in str(caught.value)


@needs_root
def test_capabilities_say_how_secrets_are_hidden(sandbox):
    capabilities = sandbox.capabilities
    assert capabilities["secrets_hidden_by"] == ("mount namespace" if MOUNTS else "file permissions")
    assert capabilities["private_tmp"] is MOUNTS
    assert "unreadable as hw4sandbox" in capabilities["secret_check"]


def test_without_root_capabilities_say_there_are_no_secrets(sandbox):
    if ROOT:
        pytest.skip("runs without root only")
    assert sandbox.capabilities["secrets_hidden_by"].startswith("none needed")


@needs_mounts
def test_secrets_are_not_there_for_the_child(sandbox, grader_secret):
    from autograder import paths
    hidden_test = sorted((paths.GRADING_TESTS_DIR / "hidden").glob("*.py"))[0]
    for secret in (paths.REFERENCE_DIR / "answers.py", hidden_test, paths.REFERENCE_DIR,
                   grader_secret, grader_secret / "results.json", sandbox._base):
        seen = call(sandbox, "peek", str(secret), raw=True).values["value"]
        assert seen.startswith("refused"), f"{secret}: {seen}"
    rubric = call(sandbox, "peek", str(paths.RUBRIC_PATH), raw=True).values["value"]
    assert rubric == "read " or rubric.startswith("refused")  # covered by /dev/null, or under /tmp
    # what the call needs stays: the provided code, the engine, its own submission copy
    assert "resnet.py" in call(sandbox, "peek", str(paths.PROVIDED_DIR / "hw4"), raw=True).values["value"]
    assert "lab1.py" in call(sandbox, "peek", str(sandbox._base / "submission"), raw=True).values["value"]


@needs_mounts
def test_private_tmp_is_capped_and_gone_after_the_call(sandbox):
    written = call(sandbox, "fill_tmp", 64, raw=True).values["value"]
    assert 0 < written < 64  # the 16 MiB tmpfs is full long before 64 MiB
    assert not os.path.exists("/tmp/hw4-test-fill.bin")
    assert call(sandbox, "peek", "/tmp", raw=True).values["value"].startswith("listed")


@needs_root
def test_readable_secrets_stop_the_sandbox_with_a_staff_message(submission, grader_secret, monkeypatch):
    """Without the mount namespace (forced here), secrets are hidden by permissions only: a
    world-readable one must stop the grade, named in the message."""
    monkeypatch.setenv(secrets.HIDE_ENV, str(grader_secret))
    refused = Sandbox(submission, limits=Limits(mount_namespace=False))
    try:
        with pytest.raises(GraderError, match="can read secrets") as caught:
            refused.start()
    finally:
        refused.close()
    assert str(grader_secret) in str(caught.value)


def test_restrict_permissions_closes_others_out_and_leaves_links(tmp_path):
    secret = tmp_path / "secret"
    (secret / "hidden").mkdir(parents=True)
    (secret / "hidden" / "key.py").write_text("KEY = 1\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("public\n")
    os.chmod(outside, 0o644)
    os.symlink(outside, secret / "link")
    for _ in range(2):  # idempotent
        secrets.restrict_permissions([str(secret)])
        for path in (secret, secret / "hidden", secret / "hidden" / "key.py"):
            assert os.stat(path).st_mode & 0o007 == 0
    assert os.stat(outside).st_mode & 0o777 == 0o644


def test_secret_paths_keep_what_the_child_needs():
    from autograder import paths
    hidden = secrets.secret_paths()
    assert str(paths.REFERENCE_DIR) in hidden and str(paths.TESTS_DIR) in hidden
    for needed in secrets.needed_paths():
        assert not any(needed == secret or needed.startswith(secret + os.sep) for secret in hidden
                       if secret.startswith(str(paths.ROOT)))
    assert str(paths.ROOT / "autograder") not in hidden


@needs_root
def test_calls_clean_up_their_own_processes_without_a_uid_sweep(sandbox, monkeypatch):
    """The zygote is a subreaper: a call that leaves a detached grandchild is cleaned up without
    sweeping the sandbox user, which would kill other grades' calls on this machine."""
    if not sandbox.capabilities["kill_orphans"]:
        pytest.skip("no subreaper on this platform")
    sweeps = []
    monkeypatch.setattr(limits_module, "kill_uid", lambda uid, **kw: sweeps.append(uid) or 0)
    pid = int(call(sandbox, "detached_grandchild").values["value"])
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert sweeps == []


@needs_root
def test_python_check_names_the_folder_that_locks_the_sandbox_user_out(tmp_path):
    """The zygote's self-check, as the sandbox user, on a module file behind a root-only folder."""
    import json
    import pwd
    import tempfile
    from autograder.sandbox import child
    account = ensure_sandbox_user(LIMITS.user)
    locked = tempfile.mkdtemp(prefix="hw4-test-locked-")  # 0700, root's
    try:
        os.makedirs(os.path.join(locked, "pkg"))
        module_file = os.path.join(locked, "pkg", "__init__.py")
        open(module_file, "w").close()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked child
            try:
                torch.__file__ = module_file  # as if torch were installed behind the locked folder
                needed = secrets.needed_paths()  # the rest of Python, reached as a call reaches it
                if mounts.locked_folders(needed):
                    mounts.reach_in_child(mounts.locked_folders(needed), keep=needed)
                os.setgid(account.pw_gid)
                os.setuid(account.pw_uid)
                os.write(write_end, json.dumps(child._python_problem()).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as reader:
            problem = json.loads(reader.read())
        assert problem["path"] == module_file and problem["blocking"] == locked
        assert pwd.getpwuid(os.stat(locked).st_uid).pw_name == "root"
    finally:
        import shutil
        shutil.rmtree(locked, ignore_errors=True)


@needs_mounts
def test_a_copy_of_the_reference_outside_the_secrets_list_is_not_there(sandbox):
    """A second checkout or a backup elsewhere on the machine (here: a fresh top-level folder the
    secrets list does not name) is covered with every non-system top-level folder."""
    import shutil
    import tempfile

    from autograder import paths
    stray = Path(tempfile.mkdtemp(prefix="hw4-stray-copy-", dir="/"))
    try:
        shutil.copy(paths.REFERENCE_DIR / "answers.py", stray / "answers.py")
        (stray / "answers.py").chmod(0o644)
        stray.chmod(0o755)
        seen = call(sandbox, "peek", str(stray / "answers.py"), raw=True).values["value"]
        assert seen.startswith("refused"), seen
        # the folders the call needs under hidden top-level folders are still there
        assert "lab1.py" in call(sandbox, "peek", str(sandbox._base / "submission"), raw=True).values["value"]
    finally:
        shutil.rmtree(stray)


def test_one_decoder_reads_every_message_of_the_call_protocol():
    from autograder.errors import GraderError, InvalidOutput, NotImplementedYet
    from autograder.probes.outcome import failure, success
    from autograder.sandbox.client import decode

    assert decode(success({"x": 1}), "out").values == {"x": 1}
    with pytest.raises(NotImplementedYet, match="not yet") as caught:
        decode(failure("not_implemented", "not yet"), "printed")
    assert caught.value.stdout == "printed"
    with pytest.raises(GraderError, match="our bug"):
        decode(failure("grader", "our bug"))
    with pytest.raises(GraderError):  # a kind no one defined is ours, never the student's
        decode(failure("made_up", "?"))
    for malformed in ({"ok": True, "values": [1]}, {"ok": False, "error": {"kind": "exception"}},
                      {"ok": "yes"}, ["ok"]):
        with pytest.raises(InvalidOutput):
            decode(malformed)
