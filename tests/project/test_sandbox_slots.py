"""Each concurrent Sandbox on a machine runs its calls as a uid of its own (``sandbox.slots``).

Regression for issue 15's lost points under load: every grade's children ran as hw4sandbox, so a
fork bomb in one grade filled the process-count limit they all shared, and a concurrent grade's
child could not start OpenMP threads (libgomp exits with status 1). Every test here needs root;
each uses a sandbox account of its own, so no other run on this machine holds its slot 0.
"""
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import psutil
import pytest

from autograder import paths
from autograder.sandbox import Limits, Sandbox, slots
from autograder.sandbox.limits import MiB, is_root

pytestmark = [pytest.mark.slow(seconds=40),
              pytest.mark.skipif(not is_root(), reason="needs root (sandbox uids, RLIMIT_NPROC)")]

HOG_PROCESSES = 64  # Limits.max_processes: the fork loop stops at the limit, or here

LAB1 = '''
import os, time
import torch

def hold_processes(count, seconds):
    """Fork up to ``count`` children that sleep ``seconds`` (the process limit may stop the
    loop first), sleep as long, and return how many were forked."""
    forked = 0
    for _ in range(count):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(seconds)
            os._exit(0)
        forked += 1
    time.sleep(seconds)
    return forked

def threaded_sum():
    """A parallel torch op (OpenMP workers start for it); the threads this process then has."""
    total = float(torch.ones(8_000_000).mul_(2).sum())
    with open("/proc/self/status") as status:
        threads = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
    return [total, threads]
'''


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submission")
    (folder / "lab1.py").write_text(textwrap.dedent(LAB1))
    return folder


@pytest.fixture
def user():
    """A sandbox account of this test's own (created by the first Sandbox), removed afterwards."""
    name = "hw4s" + uuid.uuid4().hex[:10]
    yield name
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    subprocess.run(["userdel", name], check=True, capture_output=True, timeout=60)


def limits_for(user: str) -> Limits:
    return Limits(user=user, memory=1024 * MiB, max_processes=HOG_PROCESSES)


def call(box: Sandbox, fn: str, *args, timeout: float = 20.0, threads: int = 1):
    return box.run("selftest.call", {"module": "lab1", "fn": fn, "args": list(args), "raw": True},
                   timeout=timeout, threads=threads).values["value"]


def held_elsewhere(user: str):
    """A process of its own that claims a slot for ``user`` and holds it until killed."""
    code = ("import sys, time; from autograder.sandbox import slots; "
            "slot = slots.Slot.claim(sys.argv[1]); print(slot.account.uid, flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, user], cwd=paths.ROOT, text=True,
                              stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(paths.ROOT)})
    return holder, int(holder.stdout.readline())


def tasks_of(uid: int) -> int:
    """Processes and threads of ``uid`` now: what RLIMIT_NPROC counts."""
    count = 0
    for process in psutil.process_iter():
        try:
            if process.uids().real == uid:
                count += process.num_threads()
        except psutil.Error:
            pass
    return count


def test_slot_zero_is_the_named_account(submission, user):
    with Sandbox(submission, limits=limits_for(user)) as box:
        seen = box.run("selftest.environment").values
        account = pwd.getpwnam(user)
        assert (box.account.slot, box.account.uid, box.account.gid) == (0, account.pw_uid, account.pw_gid)
        assert (seen["uid"], seen["gid"]) == (account.pw_uid, account.pw_gid)
        assert box.capabilities["unprivileged_user"] == user


def test_two_live_sandboxes_run_as_different_uids(submission, user):
    with Sandbox(submission, limits=limits_for(user)) as first, \
            Sandbox(submission, limits=limits_for(user)) as second:
        first.start()
        second.start()
        assert first.account.slot == 0 and second.account.slot >= 1
        uid = second.account.uid
        assert slots.SLOT_BASE <= uid < slots.SLOT_BASE + slots.SLOT_COUNT and uid != first.account.uid
        seen = second.run("selftest.environment").values
        assert (seen["uid"], seen["gid"], seen["groups"]) == (uid, uid, [])
        assert first.run("selftest.environment").values["uid"] == first.account.uid
        assert second.capabilities["secret_check"].endswith(f"unreadable as {user}#{second.account.slot}")


def test_a_closed_sandbox_frees_its_slot(submission, user):
    with Sandbox(submission, limits=limits_for(user)) as box:
        box.start()
        held = box.account
    assert held.uid not in slots._held
    with Sandbox(submission, limits=limits_for(user)) as again:
        again.start()
        assert again.account == held


def test_a_process_that_dies_holding_a_slot_frees_it(user):
    holder, uid = held_elsewhere(user)
    try:
        assert uid == pwd.getpwnam(user).pw_uid
        mine = slots.Slot.claim(user)
        assert mine.account.slot >= 1  # slot 0 is the holder's
        mine.release()
    finally:
        holder.kill()
        holder.wait()
    mine = slots.Slot.claim(user)
    try:
        assert mine.account.uid == uid  # the kernel dropped the dead process's lock
    finally:
        mine.release()


def test_a_sweep_spares_a_uid_another_grade_holds(user):
    holder, uid = held_elsewhere(user)
    stray = subprocess.Popen(["sleep", "60"], user=uid, start_new_session=True)
    try:
        assert slots.sweep(uid, wait=0.0) is False
        assert stray.poll() is None
        holder.kill()
        holder.wait()
        assert slots.sweep(uid, wait=5.0) is True  # held by no one: leftovers are swept
        assert stray.wait(timeout=10) == -signal.SIGKILL
    finally:
        for process in (holder, stray):
            process.kill()
            process.wait()


def test_a_fork_bomb_in_one_sandbox_does_not_starve_anothers_threads(submission, user):
    """The red team's fork bomb, bounded: one Sandbox's call holds the whole process limit while
    another's call starts OpenMP workers for a torch op."""
    with Sandbox(submission, limits=limits_for(user)) as bomb, \
            Sandbox(submission, limits=limits_for(user)) as victim:
        bomb.start()
        victim.start()
        forked = {}
        holding = threading.Thread(target=lambda: forked.update(
            count=call(bomb, "hold_processes", HOG_PROCESSES, 12, timeout=40.0)))
        holding.start()
        try:
            deadline = time.monotonic() + 30
            while tasks_of(bomb.account.uid) < HOG_PROCESSES and time.monotonic() < deadline:
                time.sleep(0.1)
            assert tasks_of(bomb.account.uid) >= HOG_PROCESSES, "the bomb never reached the limit"
            total, threads = call(victim, "threaded_sum", threads=4)
            assert tasks_of(bomb.account.uid) >= HOG_PROCESSES  # still holding meanwhile
        finally:
            holding.join()
        assert total == 16_000_000.0 and threads >= 4
        assert 0 < forked["count"] < HOG_PROCESSES  # the limit, not the loop, stopped the bomb
