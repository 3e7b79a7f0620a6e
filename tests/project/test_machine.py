"""The machine's memory limit (autograder.machine), read from fake /proc and cgroup trees."""
from __future__ import annotations

from pathlib import Path

from autograder.machine import memory_limit

GiB = 2**30


def fake_machine(tmp_path: Path, *, mem_total_kib: int, cgroup: str, files: dict) -> tuple[Path, Path]:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal:       {mem_total_kib} kB\nMemFree: 1 kB\n")
    (proc / "self" / "cgroup").write_text(cgroup)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return proc, root


def test_cgroup_v2_limit_of_the_container(tmp_path):
    proc, root = fake_machine(tmp_path, mem_total_kib=16 * 2**20, cgroup="0::/\n",
                              files={"memory.max": "805306368\n"})
    assert memory_limit(proc, root) == 768 * 2**20


def test_cgroup_v2_without_a_limit_is_the_ram(tmp_path):
    proc, root = fake_machine(tmp_path, mem_total_kib=8 * 2**20, cgroup="0::/\n",
                              files={"memory.max": "max\n"})
    assert memory_limit(proc, root) == 8 * GiB


def test_the_tightest_ancestor_limit_holds(tmp_path):
    proc, root = fake_machine(tmp_path, mem_total_kib=16 * 2**20, cgroup="0::/grades/one\n",
                              files={"grades/one/memory.max": "max\n",
                                     "grades/memory.max": str(3 * GiB)})
    assert memory_limit(proc, root) == 3 * GiB


def test_cgroup_v1_by_host_path_and_its_huge_no_limit(tmp_path):
    v1 = "4:memory:/docker/abc\n3:cpu:/docker/abc\n0::/\n"
    proc, root = fake_machine(tmp_path, mem_total_kib=16 * 2**20, cgroup=v1,
                              files={"memory/docker/abc/memory.limit_in_bytes": str(2 * GiB),
                                     "memory/memory.limit_in_bytes": "9223372036854771712"})
    assert memory_limit(proc, root) == 2 * GiB
    (root / "memory/docker/abc/memory.limit_in_bytes").write_text("9223372036854771712")
    assert memory_limit(proc, root) == 16 * GiB


def test_a_limit_above_the_ram_is_the_ram(tmp_path):
    proc, root = fake_machine(tmp_path, mem_total_kib=2**20, cgroup="0::/\n",
                              files={"memory.max": str(4 * GiB)})
    assert memory_limit(proc, root) == GiB


def test_nothing_readable_is_unknown(tmp_path):
    assert memory_limit(tmp_path / "no-proc", tmp_path / "no-cgroup") is None


def test_auto_device_without_a_visible_gpu_is_cpu_and_imports_no_torch():
    """The grading process asks for "auto" on Gradescope; where no GPU can be seen, finding that
    out must not cost it torch's import (some 200 MB, held for the whole grade)."""
    import os
    import subprocess
    import sys
    from autograder import paths
    code = ("import sys; from autograder.machine import resolve_device; "
            "print(resolve_device('auto'), 'torch' in sys.modules)")
    ran = subprocess.run([sys.executable, "-c", code], cwd=paths.ROOT, capture_output=True, text=True,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=60)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.split() == ["cpu", "False"]
