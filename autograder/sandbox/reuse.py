"""Started zygotes kept for the next Sandbox of this process: many grades, one zygote start.

A zygote holds no student code: it imports the grader's own modules, and every call runs in a
fresh fork that is killed with everything it left behind (the zygote is a subreaper). So a
zygote that served one submission can serve the next one unchanged; only the submission's
copy, which the children import from, is replaced. Its start is most of a unit-stage grade's
cost (torch and ``torch._dynamo`` imported, the root self-check run: some 4 of 5 CPU seconds
on a 2-core machine), which ``validate`` pays once per worker instead of once per submission.

Off unless asked: ``kept_zygotes()`` turns it on for the code inside the ``with``; a worker
process that grades until it exits calls ``keep_zygotes_until_exit()``. What is kept:

- only a zygote that is alive, ready and its own subreaper (``kill_orphans``), whose uid slot
  and folders go with it, so the next Sandbox runs as the same uid in the same folder;
- for a Sandbox of the same device, limits and provided code (``Key``): the zygote's config
  (who the children are, what they hide) is exactly what that Sandbox would have sent.
"""
from __future__ import annotations

import atexit
import contextlib
import multiprocessing.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

_kept: dict[tuple, list["Kept"]] | None = None  # None: reuse is off


@dataclass
class Kept:
    """A live zygote and what it is bound to, between two Sandboxes."""

    zygote: object          # client._Zygote
    base: Path              # the sandbox's folder: the zygote's cwd, log and submission copy
    slot: object | None     # slots.Slot (root only)
    sweeps: object | None   # limits.UidSweeps (root only)
    discard: Callable[["Kept"], None]  # stops it for good: zygote, slot, folder


def enabled() -> bool:
    return _kept is not None


def keep(key: tuple, kept: Kept) -> bool:
    """Keep ``kept`` for a later Sandbox of ``key``; False (nothing kept) when reuse is off."""
    if _kept is None:
        return False
    _kept.setdefault(key, []).append(kept)
    return True


def take(key: tuple) -> Kept | None:
    """A kept zygote of ``key`` that is still alive, or None; dead ones are discarded."""
    if _kept is None:
        return None
    pool = _kept.get(key, [])
    while pool:
        kept = pool.pop()
        if kept.zygote.alive():
            return kept
        kept.discard(kept)
    return None


def discard_all() -> None:
    """Stop every kept zygote (reuse stays as it is)."""
    if _kept is None:
        return
    for pool in _kept.values():
        while pool:
            kept = pool.pop()
            kept.discard(kept)


@contextlib.contextmanager
def kept_zygotes():
    """Inside: a closed Sandbox keeps its zygote for the next one. At the end every kept
    zygote is stopped and reuse is as it was before."""
    global _kept
    before, _kept = _kept, {} if _kept is None else _kept
    try:
        yield
    finally:
        if before is None:
            discard_all()
            _kept = None


def keep_zygotes_until_exit() -> None:
    """Turn reuse on for the rest of this process (a worker's initializer); kept zygotes are
    stopped when it exits, by ``atexit`` or, in a multiprocessing worker (which skips atexit),
    by multiprocessing's own finalizers."""
    global _kept
    if _kept is None:
        _kept = {}
        atexit.register(discard_all)
        multiprocessing.util.Finalize(None, discard_all, exitpriority=10)
