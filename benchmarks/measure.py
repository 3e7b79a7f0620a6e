"""Measuring helpers shared by the benchmark scripts: peak memory of a process tree, CPU time."""
from __future__ import annotations

import resource
import threading

import psutil


class MemorySampler:
    """Samples the summed RSS and PSS of this process and its descendants in a thread.

    RSS counts shared pages once per process (an upper bound); PSS shares them out, so its sum is
    what the processes cost together (a container's memory limit sees about that).
    """

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak_rss, self.peak_pss = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            rss = pss = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    info = process.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._stop.wait(self.interval)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of every descendant it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
