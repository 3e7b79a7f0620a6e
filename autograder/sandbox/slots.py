"""One sandbox uid per concurrent Sandbox on a machine, so one grade's student code cannot
starve or kill another grade's.

RLIMIT_NPROC counts every process and thread of a uid on the whole machine, and a kill-by-uid
sweep kills every process of a uid: with one shared sandbox user, a fork bomb in one grade
stops another grade's OpenMP threads from starting, and one grade's sweep reaches another's
calls. So each Sandbox claims a slot, a uid of its own, for its whole life (as root only):

- slot 0 is the named account (``Limits.user``, created when missing), so a lone grade
  (Gradescope: one grade per container) runs exactly as it always did;
- a Sandbox that finds the named account taken takes the first free slot k >= 1, whose uid and
  gid are ``SLOT_BASE + k - 1``. Root may setuid and setgid to a number with no passwd or group
  entry; a number that has one on this machine (a local account) is skipped.

A claim is an exclusive ``flock`` on ``uid-<uid>.lock`` in a root-only folder
(``/run/hw4-sandbox``, else under the temporary folder): the kernel drops it when the Sandbox
closes it or its process dies, so a grade that crashed never keeps a slot. A slot k >= 1 is
swept when claimed, in case a grade that died left processes in it.
"""
from __future__ import annotations

import fcntl
import grp
import os
import pwd
import tempfile

from autograder.errors import GraderError
from autograder.sandbox import limits as limits_module
from autograder.sandbox.limits import Account

# Why this range: systemd's allocation table (systemd.io/UIDS-GIDS) leaves 60578-61183
# unassigned, above the regular users (login.defs UID_MAX 60000), systemd-homed and the
# container host mappings, and below DynamicUser (61184-65519) and nobody (65534); the greeter
# ids newer systemd puts at its low end stay below 60800. It is also inside the 16-bit range
# that a user namespace of 65536 ids maps (rootless Docker or Podman), where a higher uid would
# make setuid fail.
SLOT_BASE = 60800
SLOT_COUNT = 384  # slots 1..384: uids 60800..61183
RUN_FOLDER = "/run/hw4-sandbox"

_held: dict[int, "Slot"] = {}  # uid -> the live Slot of this process that holds it
_used: set[int] = set()        # every uid a Sandbox of this process has held


def _folder() -> str:
    """The root-only folder of the lock files, created when missing; the same for every grade
    on the machine. GraderError when it exists but is not private to this user."""
    candidates = [RUN_FOLDER] if os.path.isdir(os.path.dirname(RUN_FOLDER)) else []
    candidates.append(os.path.join(tempfile.gettempdir(), f"hw4-sandbox-slots-{os.geteuid()}"))
    for folder in candidates:
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError:
            continue  # /run not writable here: the next candidate
        if not limits_module.stat_is_private_dir(os.lstat(folder)):
            raise GraderError(f"{folder} is not a private directory of this user")
        return folder
    raise GraderError(f"cannot create a folder for the sandbox's slot locks ({candidates[-1]})")


def _try_lock(uid: int) -> int | None:
    """An open fd holding the exclusive lock of ``uid``, or None when another holds it."""
    fd = os.open(os.path.join(_folder(), f"uid-{uid}.lock"),
                 os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        os.close(fd)
        return None


def _has_entry(number: int) -> bool:
    """Whether ``number`` is a local account's uid or a group's gid (not ours to use)."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(number)
            return True
        except KeyError:
            pass
    return False


class Slot:
    """One Sandbox's exclusive claim on its uid, held until ``release`` (or the process's death)."""

    def __init__(self, account: Account, fd: int):
        self.account = account
        self._fd: int | None = fd
        _held[account.uid] = self
        _used.add(account.uid)

    @classmethod
    def claim(cls, user: str) -> "Slot":
        """Slot 0 (the account ``user``, created when missing) when free, else the first free
        slot of the reserved range. GraderError when the account cannot be had or every slot
        is taken."""
        named = limits_module.sandbox_account(user)
        fd = _try_lock(named.pw_uid)
        if fd is not None:
            return cls(Account(named.pw_name, named.pw_uid, named.pw_gid, slot=0), fd)
        for slot in range(1, SLOT_COUNT + 1):
            uid = SLOT_BASE + slot - 1
            if uid == named.pw_uid or _has_entry(uid):
                continue
            fd = _try_lock(uid)
            if fd is not None:
                limits_module.kill_uid(uid)  # what a grade that died holding this slot left
                return cls(Account(f"{user}#{slot}", uid, uid, slot=slot), fd)
        raise GraderError(f"every sandbox uid is taken: the account {user!r} and all {SLOT_COUNT} "
                          f"reserved uids from {SLOT_BASE} serve other grades on this machine")

    def release(self) -> None:
        """Free the slot for the next Sandbox; idempotent."""
        if self._fd is not None:
            _held.pop(self.account.uid, None)
            os.close(self._fd)
            self._fd = None


def used_here() -> set[int]:
    """Every uid a Sandbox of this process has held (the uids its final sweep may touch)."""
    return set(_used)


def sweep(uid: int, *, wait: float) -> bool:
    """SIGKILL every process of ``uid`` when it is this process's to kill: held by a live
    Sandbox of this process, or held by none (the kill then runs under the claim, so no grade
    can take the uid meanwhile). Returns whether the sweep ran: False when another process's
    Sandbox holds the uid, whose processes belong to that grade alone."""
    fd = None if uid in _held else _try_lock(uid)
    if fd is None and uid not in _held:
        return False
    sweeps = limits_module.UidSweeps(uid)
    try:
        return sweeps.sweep(wait=wait)
    finally:
        sweeps.close()
        if fd is not None:
            os.close(fd)
