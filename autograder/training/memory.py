"""The memory of the training stage: what it needs (the gate that refuses a machine too small)
and handing the grading process's free heap back while a sandbox child trains.
"""
from __future__ import annotations

# Peak memory of a whole grade (unit and training stages), every process together, with CPU
# wheels, in Gradescope's default 768 MB memory cgroup (benchmarks/grade_in_cgroup.py --tier
# default): 603 MB charged to the cgroup (575 MiB), 683 MB of PSS summed over the processes. The
# need leaves some 90 MB over the charge and stays under the default's 768 MB.
STAGE_MEMORY = {"cpu": int(0.65 * 2**30)}


def require_memory(setting, limit: int | None = None) -> None:
    """Raise GraderError, with what to change, when the machine's memory limit (``limit``, or
    ``autograder.machine.memory_limit()``) is below what the stage needs on this device type
    (``setting.device_type``).

    Without it, an undersized container kills a child halfway through fine-tuning, and the
    reference itself would fail as if out of memory.
    """
    from autograder.errors import GraderError
    from autograder.machine import memory_limit
    needed = STAGE_MEMORY.get(setting.device_type)
    limit = memory_limit() if limit is None else limit
    if needed is None or limit is None or limit >= needed:
        return
    raise GraderError(
        f"the training stage needs {needed / 2**30:.2f} GiB of memory on {setting.device_type} "
        f"(fine-tuning ResNet-20 beside the grader), and this machine allows "
        f"{limit / 2**20:.0f} MiB. On Gradescope give the autograder at least the default 768 MB "
        f"in the assignment's settings, or set HW4_STAGE=unit in run_autograder to grade the "
        f"unit stage alone; then regrade.")


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    glibc keeps what the data set's temporaries freed (loading the embedded data peaks far above
    what it keeps), and the machine's memory limit counts it while a sandbox child trains.
    Trimming once per call costs milliseconds; trimming inside the training loop would cost
    page faults on every step, so the child is left alone.
    """
    import ctypes
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this interpreter runs on
    except (OSError, AttributeError):  # not glibc: macOS, musl
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
