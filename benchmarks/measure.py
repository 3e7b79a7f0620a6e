"""Measuring helpers shared by the benchmark scripts: peak memory of a process tree, CPU time."""
from __future__ import annotations

import resource
import threading

import psutil


class _Sampling:
    """A sampling loop in a daemon thread, for ``with``: ``_sample()`` runs every ``interval``
    seconds from ``__enter__`` until ``__exit__``."""

    interval: float

    def _start_thread(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)


class MemorySampler(_Sampling):
    """Samples the summed RSS and PSS of this process and its descendants in a thread.

    RSS counts shared pages once per process (an upper bound); PSS shares them out, so its sum is
    what the processes cost together (a container's memory limit sees about that).
    """

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak_rss, self.peak_pss = interval, 0, 0
        self._me = psutil.Process()
        self._start_thread()

    def _sample(self) -> None:
        rss = pss = 0
        for process in [self._me, *self._me.children(recursive=True)]:
            try:
                info = process.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of every descendant it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class TreeSampler(_Sampling):
    """Samples the PSS of every process under ``root_pid`` in a thread, by role.

    A process's role is its depth under the root: ``roles[0]`` the root itself, ``roles[1]`` its
    children, and so on (the last role for anything deeper), unless ``role_of(process, depth)``
    names another (it returns a role, or None for the depth's). Keeps each role's peak (one process
    of that role at a time, the largest), the peak of the sum over every process and what each
    role held at that moment (``at_peak``; ``private_at_peak``: its pages no other process maps,
    what that role alone would free), and calls
    ``also()`` at every sample (e.g. to read a cgroup's usage), keeping the largest value.
    """

    def __init__(self, root_pid: int, roles: tuple[str, ...], also=None, interval: float = 0.1,
                 role_of=None):
        self.root_pid, self.roles, self.also, self.interval = root_pid, roles, also, interval
        self.role_of = role_of
        self.peak_by_role = {role: 0 for role in roles}
        self.peak_total, self.peak_also = 0, 0
        self.at_peak: dict[str, int] = {}  # {role: summed PSS} at the moment of peak_total
        self.private_at_peak: dict[str, int] = {}  # {role: summed USS (private pages)} then
        try:
            self._root = psutil.Process(root_pid)
        except psutil.NoSuchProcess:
            self._root = None  # gone already: nothing to sample
        self._start_thread()

    def _tree(self, process: psutil.Process, depth: int = 0):
        yield process, depth
        try:
            children = process.children()
        except psutil.Error:
            return
        for child in children:
            yield from self._tree(child, depth + 1)

    def _sample(self) -> None:
        if self._root is None:
            return
        total, by_role, private = 0, {}, {}
        for process, depth in self._tree(self._root):
            try:
                info = process.memory_full_info()
            except psutil.Error:
                continue
            pss = getattr(info, "pss", info.rss)
            role = (self.role_of(process, depth) if self.role_of else None) or \
                self.roles[min(depth, len(self.roles) - 1)]
            self.peak_by_role.setdefault(role, 0)
            self.peak_by_role[role] = max(self.peak_by_role[role], pss)
            by_role[role] = by_role.get(role, 0) + pss
            private[role] = private.get(role, 0) + info.uss
            total += pss
        if total > self.peak_total:
            self.peak_total, self.at_peak, self.private_at_peak = total, by_role, private
        if self.also is not None:
            try:
                self.peak_also = max(self.peak_also, self.also())
            except OSError:
                pass
