"""Resource limits, privilege drop and process killing for sandboxed calls.

Everything here is plain POSIX with a fallback where an API is Linux-only, so the same code
runs as root on Gradescope (dedicated user, every defence) and as a user on a laptop (rlimits,
process groups, wall clock). ``apply_in_child`` runs in the forked child before student code;
the ``kill_*`` helpers run on the trusted side or in the zygote.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import pwd
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from autograder.errors import GraderError

MiB = 1024 * 1024
GiB = 1024 * MiB
IS_LINUX = sys.platform.startswith("linux")
SANDBOX_USER = "hw4sandbox"
SANDBOX_USER_ENV = "HW4_SANDBOX_USER"  # another account name (tests of a fresh machine)


@dataclass(frozen=True)
class Limits:
    """What one sandboxed call may use.

    memory: bytes the child may allocate on top of what the zygote already holds (torch and
        numpy are loaded before the fork), enforced with RLIMIT_DATA (RLIMIT_AS where DATA is
        missing); None for no limit.
    cpu_seconds: CPU time of the child; None derives it from the call's timeout and threads.
    max_file_bytes: the largest file the child may write (RLIMIT_FSIZE), stdout included.
    max_output: bytes of captured stdout+stderr kept for feedback; the rest is cut.
    max_result_bytes: the most the trusted side will read of out.json and of out.npz's arrays.
    max_open_files: RLIMIT_NOFILE.
    max_processes: RLIMIT_NPROC, applied only to the sandbox user (as root): for any other uid
        it would count the user's own processes. Each concurrent Sandbox has a uid of its own
        (``slots``), so the count is never shared with another grade.
    user: the unprivileged account the child runs as when the grader is root (``$HW4_SANDBOX_USER``,
        else hw4sandbox); created when missing. A Sandbox that finds it held by another
        concurrent Sandbox runs as a uid of its own instead (``slots``).
    tmp_bytes: size of each private /tmp, /var/tmp and /dev/shm a call gets (as root, where
        mount namespaces are allowed).
    mount_namespace: as root, hide secrets in a private mount namespace per call when the
        platform allows it; False forces the file-permission fallback (tests of it).
    """

    memory: int | None = 4 * GiB
    cpu_seconds: float | None = None
    max_file_bytes: int = 256 * MiB
    max_output: int = 64 * 1024
    max_result_bytes: int = 256 * MiB
    max_open_files: int = 256
    max_processes: int = 64
    user: str = field(default_factory=lambda: os.environ.get(SANDBOX_USER_ENV) or SANDBOX_USER)
    tmp_bytes: int = 64 * MiB
    mount_namespace: bool = True


@dataclass(frozen=True)
class Account:
    """Who one Sandbox's children run as (root only): ``name`` for messages (the named account,
    or ``user#slot`` for a uid of the reserved range, see ``slots``), the ids the privilege drop
    sets, and the slot."""

    name: str
    uid: int
    gid: int
    slot: int = 0


def is_root() -> bool:
    return os.geteuid() == 0


def sandbox_account(name: str) -> pwd.struct_passwd:
    """The sandbox user's passwd entry. As root, a missing user is created (a fresh machine needs
    nothing typed by hand); a GraderError when it is missing and cannot be (never run as root)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        if not is_root():
            raise GraderError(f"the sandbox user {name!r} does not exist") from None
    return ensure_sandbox_user(name)


def ensure_sandbox_user(name: str = SANDBOX_USER) -> pwd.struct_passwd:
    """Create the unprivileged system user ``name`` (no home, no login) when missing; root only.
    A GraderError in one line when it cannot."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if not is_root():
        raise GraderError(f"cannot create the sandbox user {name!r} without root")
    try:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        created = subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                                  "--", name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        why = created.stderr.strip().splitlines()[-1:] or [f"exit code {created.returncode}"]
    except OSError as error:  # no useradd on this machine
        why = [str(error)]
    try:
        return pwd.getpwnam(name)  # created now, or by a concurrent grade meanwhile
    except KeyError:
        raise GraderError(
            f"the sandbox user {name!r} does not exist and useradd could not create it ({why[0]}); "
            f"the grader runs as root and refuses to run student code as root: create the user "
            f"(setup.sh does) or name an existing one in ${SANDBOX_USER_ENV}") from None


def prepare_sandbox_user() -> pwd.struct_passwd | None:
    """Before a grade: as root, the sandbox user of ``Limits()``, created when missing (a
    GraderError in one line when it cannot be); None without root, where there is none."""
    return sandbox_account(Limits().user) if is_root() else None


# -- in the zygote ---------------------------------------------------------------------------

_libc = None


def _libc_call(name: str, *args: int) -> bool:
    """Call a libc function by name; True when it returned 0. False on any failure."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return getattr(_libc, name)(*[ctypes.c_ulong(a) for a in args]) == 0
    except (OSError, AttributeError):
        return False


def unshare_network() -> bool:
    """Move this process into a new, empty network namespace (Linux, root). True on success."""
    if not IS_LINUX:
        return False
    if hasattr(os, "unshare"):  # Python 3.12+
        try:
            os.unshare(os.CLONE_NEWNET)  # novermin: guarded by hasattr, 3.10-3.11 use libc
            return True
        except OSError:
            return False
    return _libc_call("unshare", 0x40000000)  # CLONE_NEWNET


def become_subreaper() -> bool:
    """Make orphaned descendants reparent to this process instead of init (Linux only).

    A student process that double-forks and calls setsid still stays under the zygote, which
    then kills it after the call, even without root.
    """
    return IS_LINUX and _libc_call("prctl", 36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def data_in_use() -> int:
    """Bytes of private writable memory this process holds now (what RLIMIT_DATA counts)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


# -- in the child, before student code -------------------------------------------------------

def _set(limit: int, value: int) -> None:
    soft, hard = resource.getrlimit(limit)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(limit, (value, value))


OOM_SCORE_FIRST = 1000  # the highest oom_score_adj: the kernel's first victim


def volunteer_for_oom_kill() -> bool:
    """Make this process the out-of-memory killer's first victim (Linux); True when it took.

    A container's memory limit is enforced by a kernel kill, not a MemoryError, and the kernel
    would otherwise pick the largest process, which can be the grading process itself (it must
    survive to write results.json). Raising one's own score needs no privilege. The call that
    is killed comes back as OutOfMemory, for that call alone.
    """
    if not IS_LINUX:
        return False
    try:
        with open("/proc/self/oom_score_adj", "w") as score:
            score.write(f"{OOM_SCORE_FIRST}\n")
        return True
    except OSError:
        return False


def apply_in_child(limits: Limits, *, memory_base: int, cpu_seconds: float,
                   account: Account | None) -> None:
    """Apply rlimits, then drop to ``account`` (given only when root). Raises OSError on failure.

    memory_base is the zygote's own data size, the floor the memory headroom is added to. The
    child also volunteers as the out-of-memory killer's first victim.
    """
    volunteer_for_oom_kill()
    if limits.memory is not None:
        try:
            _set(resource.RLIMIT_DATA if IS_LINUX else resource.RLIMIT_AS, memory_base + limits.memory)
        except (ValueError, OSError):
            if IS_LINUX:
                raise
            # macOS may refuse an address-space limit: the wall clock still bounds the call.
    cpu = int(limits.cpu_seconds if limits.cpu_seconds is not None else cpu_seconds) + 1
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    # Soft limit sends SIGXCPU, the hard one a second later SIGKILL (SIGXCPU can be ignored).
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1 if hard == resource.RLIM_INFINITY
                                             else min(cpu + 1, hard)))
    _set(resource.RLIMIT_FSIZE, limits.max_file_bytes)
    _set(resource.RLIMIT_NOFILE, limits.max_open_files)
    _set(resource.RLIMIT_CORE, 0)
    if account is None:
        return
    _set(resource.RLIMIT_NPROC, limits.max_processes)
    os.setgroups([])
    os.setgid(account.gid)
    os.setuid(account.uid)
    if os.getuid() != account.uid or os.geteuid() != account.uid:
        raise OSError("privilege drop did not take effect")
    if IS_LINUX:
        _libc_call("prctl", 38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid binaries


# -- killing ---------------------------------------------------------------------------------

def kill_group(pgid: int) -> None:
    """SIGKILL a process group and its leader; silent when they are already gone."""
    for kill, target in ((os.killpg, pgid), (os.kill, pgid)):
        try:
            kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _pids_of_uid(uid: int) -> list[int]:
    """Live (not zombie) processes owned by ``uid``: zombies cannot be killed, only reaped."""
    if IS_LINUX:
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        with open(f"/proc/{entry}/stat", "rb") as stat:
                            state = stat.read().rsplit(b")", 1)[1].split()[0]
                        if state not in (b"Z", b"X"):
                            pids.append(int(entry))
                except (OSError, IndexError):
                    pass
        return pids
    import psutil
    return [p.pid for p in psutil.process_iter(["uids", "status"])
            if p.info["uids"] and p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE]


def kill_uid(uid: int, *, rounds: int = 20) -> int:
    """SIGKILL every process of ``uid`` (root only); returns how many were seen.

    The signal is sent by a forked helper that becomes ``uid`` and calls kill(-1): the kernel
    then signals every process of the user in one sweep, which a fork bomb cannot outrun.
    A /proc (or psutil) walk confirms and repeats.
    """
    if uid == 0 or not is_root():
        return 0
    seen = 0
    for _ in range(rounds):
        pids = _pids_of_uid(uid)
        seen = max(seen, len(pids))
        if not pids:
            return seen
        helper = os.fork()
        if helper == 0:  # pragma: no cover - the helper's life is three syscalls
            try:
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(helper, 0)
        time.sleep(0.001)
    return seen


def kill_descendants() -> None:
    """SIGKILL and reap every remaining descendant of this process (the zygote, a subreaper).

    Loops until waitpid reports no children at all, so orphans reparented to us mid-sweep go too.
    """
    try:  # the common case, in a fraction of a millisecond: no child at all, nothing to scan
        if os.waitpid(-1, os.WNOHANG)[0] == 0 and not IS_LINUX:
            return  # without a subreaper, orphans are not ours to find
    except ChildProcessError:
        return
    import psutil
    me = psutil.Process()
    for _ in range(5000):
        try:
            descendants = me.children(recursive=True)
        except psutil.Error:
            descendants = []
        for process in descendants:
            try:
                os.kill(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] != 0:
                pass
        except ChildProcessError:
            return
        time.sleep(0.001)


class UidSweeps:
    """Coordinates the kill-by-uid sweeps of a uid with the calls that run as it.

    A sweep kills every process of the uid, so it must not run while a call is in flight. Each
    Sandbox has a uid of its own (``slots``); the lock still guards a sweep from the end of a
    run (``sweep_sandbox_user``) against a call of a Sandbox that holds the uid. Each call holds a shared
    flock on a root-owned lock file; a sweep needs the exclusive lock. On Gradescope only one
    Sandbox runs, so every sweep happens.
    """

    def __init__(self, uid: int):
        self.uid = uid
        folder = os.path.join(tempfile.gettempdir(), f"hw4-sandbox-locks-{os.geteuid()}")
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        info = os.lstat(folder)
        if not stat_is_private_dir(info):
            raise GraderError(f"{folder} is not a private directory of this user")
        self._fd = os.open(os.path.join(folder, f"uid-{uid}.lock"),
                           os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)

    @contextlib.contextmanager
    def call(self):
        """Hold while a call of this Sandbox runs: no sweep can start meanwhile."""
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def sweep(self, *, wait: float = 0.0) -> bool:
        """Kill every process of the uid once no call of any Sandbox is in flight; waits up to
        ``wait`` seconds for that. Returns whether the sweep ran."""
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
        try:
            kill_uid(self.uid)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return True

    def close(self) -> None:
        os.close(self._fd)


def stat_is_private_dir(info: os.stat_result) -> bool:
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077
