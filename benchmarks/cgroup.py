"""A fresh cgroup v1 memory (+ cpu) group for one benchmark run (Linux, root).

    with CgroupV1("hw4grade", memory=768 * 10**6, cpus=0.5) as group:
        subprocess.run(command, preexec_fn=group.enter)
        group.max_usage(), group.oom_kills()

Gradescope runs each grade in a container whose memory and CPU are cgroup limits; a group of our
own with the same limits shows what the grade costs there: the kernel counts every process
of the grade together (page cache included) and kills one when the total passes the limit.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


class CgroupV1:
    """A memory group (and a cpu group when ``cpus`` is given) named ``prefix-<pid>-<time>``.

    ``enter`` moves the calling process into both (meant as a ``preexec_fn``: the command and
    everything it starts are then inside). Leaving the ``with`` removes the groups, once every
    process in them has ended.
    """

    def __init__(self, prefix: str, memory: int, cpus: float | None = None):
        name = f"{prefix}-{os.getpid()}-{time.monotonic_ns()}"
        self.memory_dir = CGROUP_ROOT / "memory" / name
        self.cpu_dir = CGROUP_ROOT / "cpu" / name if cpus is not None else None
        self.memory, self.cpus = memory, cpus

    def __enter__(self) -> "CgroupV1":
        if not (CGROUP_ROOT / "memory" / "memory.limit_in_bytes").exists():
            raise SystemExit("needs cgroup v1's memory controller at /sys/fs/cgroup/memory")
        self.memory_dir.mkdir()
        (self.memory_dir / "memory.limit_in_bytes").write_text(str(self.memory))
        swap_limit = self.memory_dir / "memory.memsw.limit_in_bytes"
        if swap_limit.exists():  # no swapping past the limit either, as in a container
            swap_limit.write_text(str(self.memory))
        if self.cpu_dir is not None:
            self.cpu_dir.mkdir()
            (self.cpu_dir / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (self.cpu_dir / "cpu.cfs_quota_us").write_text(str(int(self.cpus * CFS_PERIOD_US)))
        return self

    def __exit__(self, *exc_info):
        for folder in (self.memory_dir, self.cpu_dir):
            if folder is None:
                continue
            for _ in range(50):  # the last processes may still be exiting
                try:
                    folder.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)

    def enter(self) -> None:
        for folder in (self.memory_dir, self.cpu_dir):
            if folder is not None:
                (folder / "cgroup.procs").write_text(str(os.getpid()))

    def max_usage(self) -> int:
        """The group's peak charge (``memory.max_usage_in_bytes``): RSS and page cache."""
        return int((self.memory_dir / "memory.max_usage_in_bytes").read_text())

    def working_set(self) -> int:
        """Usage now, less the inactive page cache the kernel would reclaim before killing."""
        usage = int((self.memory_dir / "memory.usage_in_bytes").read_text())
        stat = dict(line.split() for line in (self.memory_dir / "memory.stat").read_text().splitlines())
        return usage - int(stat.get("total_inactive_file", 0))

    def oom_kills(self) -> int:
        """How many processes of the group the kernel killed for memory (0 where not reported)."""
        for line in (self.memory_dir / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def failures(self) -> int:
        """How often a charge hit the limit (``memory.failcnt``), each answered by reclaim or a kill."""
        return int((self.memory_dir / "memory.failcnt").read_text())

    def throttled(self) -> tuple[int, int]:
        """(periods the cpu quota throttled, periods in all) from ``cpu.stat``; (0, 0) without
        a cpu group."""
        if self.cpu_dir is None:
            return 0, 0
        stat = dict(line.split() for line in (self.cpu_dir / "cpu.stat").read_text().splitlines())
        return int(stat.get("nr_throttled", 0)), int(stat.get("nr_periods", 0))
