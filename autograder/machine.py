"""What the machine lets the grade use: the memory limit of its container, or its RAM, and
which device "auto" means on it.

Gradescope runs each grade in a container whose memory limit (768 MB by default) is a cgroup
limit; going past it gets a process killed by the kernel. ``memory_limit()`` reads it so that
a stage that cannot fit says so before it starts, instead of being killed halfway.
"""
from __future__ import annotations

import os
from pathlib import Path

NO_LIMIT = 1 << 60  # cgroup v1 writes "no limit" as a huge number near 2**63


def memory_limit(proc: Path = Path("/proc"), cgroup_root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes this process and its children may use together: the smallest of the RAM
    (``MemTotal``) and every memory limit of the cgroups holding this process and their
    ancestors (v2 ``memory.max``, v1 ``memory.limit_in_bytes``). None where none is readable
    (not Linux). ``proc`` and ``cgroup_root`` are parameters for the tests."""
    limits = [value for value in (_mem_total(proc), *_cgroup_limits(proc, cgroup_root))
              if value is not None and value < NO_LIMIT]
    return min(limits) if limits else None


def _mem_total(proc: Path) -> int | None:
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_limits(proc: Path, root: Path) -> list[int | None]:
    """The limits on the path of each memory cgroup of ``proc/self/cgroup``, up to the root.

    Lines read ``0::/path`` (v2) or ``N:...memory...:/path`` (v1). A container may see its own
    cgroup as "/" (cgroup namespace) or by its host path; both are tried, leaf to root."""
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: one unified hierarchy
            mounts, file = (root, root / "unified"), "memory.max"
        elif "memory" in controllers.split(","):
            mounts, file = (root / "memory",), "memory.limit_in_bytes"
        else:
            continue
        for mount in mounts:
            folder = mount / path.lstrip("/")
            while True:
                found.append(_read_limit(folder / file))
                if folder == mount or mount not in folder.parents:
                    break
                folder = folder.parent
    return found


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def resolve_device(device: str) -> str:
    """The device a grade runs the student's code on: ``"auto"`` is ``"cuda"`` where torch sees
    a GPU, else ``"cpu"``; ``"cpu"`` and ``"cuda[:N]"`` stay as given. The one place "auto" is
    decided (the plugin, the sandbox, the training stage and ``evaluate`` ask it)."""
    if device == "auto":
        if not _gpu_device_nodes():
            return "cpu"  # without torch: the grading process never needs it otherwise
        import torch  # only where a GPU may be there to find

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not device.startswith("cuda"):
        from autograder.errors import GraderError

        raise GraderError(f"unknown device {device!r}")
    return device


def _gpu_device_nodes() -> bool:
    """Whether this machine shows a GPU's device nodes (NVIDIA's, or ROCm's ``/dev/kfd``), and
    ``CUDA_VISIBLE_DEVICES`` does not hide every device: where it does not, torch can see no GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return False
    return Path("/dev/nvidiactl").exists() or Path("/dev/kfd").exists() or \
        any(Path("/dev").glob("nvidia[0-9]*"))
