"""Executors: where the worker's grades run, on local cores or as a Slurm job array.

Both take the tasks to grade and yield each Outcome as its grade ends, so the batch can write
its table and draw its bar as it goes; both run the same ``worker.grade_one``, which writes the
submission's results, log and record itself (on Slurm, from the node, into the shared batch
folder). ``--jobs`` bounds the grades in flight: local threads, each waiting on its grader
process, or the job array's parallelism.

The Slurm executor submits through submitit (no hand-written sbatch scripts). Each array task
asks for what a grade was measured to need (``COST``) with a margin; the TA can override it.
"""
from __future__ import annotations

import math
import os
import shutil
import pwd
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from autograder import paths
from autograder.batch.store import GRADER_ERROR, BatchDir, Outcome
from autograder.batch.worker import Task, grade_chunk, grade_one, zygote_template


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class GradeCost:
    """What one grade was measured to take (README, 'measured cost'): wall seconds on one
    worker, cores it keeps busy, peak memory (PSS sum, CUDA build included)."""

    seconds: float
    cores: float
    memory_gib: float


COST = {"unit": GradeCost(seconds=6, cores=1.1, memory_gib=0.75),
        "train": GradeCost(seconds=60, cores=1.9, memory_gib=1.7),
        "all": GradeCost(seconds=65, cores=1.9, memory_gib=1.7)}
MARGIN = 1.5  # memory: a cluster node's Python may be heavier than the measured one


def default_timeout(stage: str) -> float:
    """A submission's wall-clock limit: long enough for a slow machine, short enough that a
    hung grade does not hold a worker for the whole batch."""
    return max(300.0, 10 * COST[stage].seconds)


class LocalExecutor:
    """Up to ``jobs`` grades at once on this machine."""

    name = "local"

    def __init__(self, jobs: int):
        self.jobs = max(1, int(jobs))

    def run(self, tasks: list[Task]) -> Iterator[Outcome]:
        if not tasks:
            return
        pool = ThreadPoolExecutor(max_workers=min(self.jobs, len(tasks)),
                                  thread_name_prefix="hw4-grade")
        # One zygote template for the batch, started here in the main thread: it dies with
        # the thread that started it (PR_SET_PDEATHSIG), and so with the batch.
        with zygote_template(tasks) as template:
            try:
                futures = {pool.submit(grade_one, task, template): task for task in tasks}
                for future in as_completed(futures):
                    yield _outcome_of(future, futures[future])
            finally:
                # On an interrupt, queued grades never start; those in flight are killed with
                # the batch (their grader processes die with their parent).
                pool.shutdown(wait=False, cancel_futures=True)


def _outcome_of(future, task: Task) -> Outcome:
    try:
        return future.result()
    except Exception as error:  # a bug of the worker itself: that submission's row says so
        outcome = Outcome(task.id, task.key, GRADER_ERROR, f"the batch worker failed: {error!r}")
        BatchDir(task.out).write_record(outcome)
        return outcome


@dataclass(frozen=True)
class SlurmResources:
    """Per array task. Defaults come from ``COST`` for the stage; None lets Slurm decide."""

    cpus: int
    memory_gb: int
    time_min: int
    partition: str | None = None
    chunk: int = 1  # submissions per array task

    @classmethod
    def for_stage(cls, stage: str, *, chunk: int = 1, cpus=None, memory_gb=None,
                  time_min=None, partition=None, timeout=None) -> "SlurmResources":
        cost = COST[stage]
        timeout = timeout or default_timeout(stage)
        return cls(cpus=cpus or max(1, math.ceil(cost.cores)),
                   memory_gb=memory_gb or max(1, math.ceil(cost.memory_gib * MARGIN)),
                   # never below the batch's own per-grade timeout: it, not Slurm, should stop
                   # a slow grade, so the submission's row says "timed out"
                   time_min=time_min or math.ceil(max(1, chunk) * timeout / 60) + 2,
                   partition=partition, chunk=max(1, chunk))


class SlurmExecutor:
    """A Slurm job array through submitit, one task per chunk of submissions.

    The batch folder must be on a filesystem the nodes share (a cluster's home or scratch), and
    the nodes must see this checkout and this Python (the usual cluster set-up).
    """

    name = "slurm"
    POLL_SECONDS = 2.0
    LOST_AFTER_SECONDS = 60.0  # a task gone from the queue this long without a result is lost

    def __init__(self, jobs: int, resources: SlurmResources, folder: Path):
        self.jobs, self.resources, self.folder = max(1, int(jobs)), resources, folder

    def run(self, tasks: list[Task]) -> Iterator[Outcome]:
        if not tasks:
            return
        import submitit

        chunks = [tasks[i:i + self.resources.chunk]
                  for i in range(0, len(tasks), self.resources.chunk)]
        executor = submitit.SlurmExecutor(folder=str(self.folder / "%j"))
        params = dict(cpus_per_task=self.resources.cpus, mem=f"{self.resources.memory_gb}G",
                      time=self.resources.time_min, array_parallelism=self.jobs,
                      job_name="hw4-batch", setup=[f"cd {_quote(paths.ROOT)}"],
                      use_srun=False)
        if self.resources.partition:
            params["partition"] = self.resources.partition
        executor.update_parameters(**params)
        jobs = executor.map_array(grade_chunk, chunks)
        pending = dict(zip((job.job_id for job in jobs), zip(jobs, chunks)))
        missing_since: dict[str, float] = {}
        try:
            while pending:
                queued = _queued_job_ids()
                for job_id, (job, chunk) in list(pending.items()):
                    if job.done():
                        del pending[job_id]
                        yield from _chunk_outcomes(job, chunk)
                    elif queued is not None and job_id not in queued:
                        first = missing_since.setdefault(job_id, time.monotonic())
                        if time.monotonic() - first > self.LOST_AFTER_SECONDS:
                            del pending[job_id]
                            yield from _chunk_outcomes(job, chunk, lost=True)
                if pending:
                    time.sleep(self.POLL_SECONDS)
        except BaseException:
            for job, _ in pending.values():
                job.cancel(check=False)
            raise


def _chunk_outcomes(job, chunk: list[Task], *, lost: bool = False) -> Iterable[Outcome]:
    """The outcomes of a finished array task: its return value, else the records its worker
    wrote before dying, else a grader error for each submission it did not finish."""
    returned: dict[str, Outcome] = {}
    if not lost:
        try:
            returned = {o.id: o for o in job.result()}
        except Exception as error:  # the task failed: fall back on the records below
            reason = f"the Slurm task {job.job_id} failed: {str(error).splitlines()[-1][:200]}"
        else:
            reason = ""
    else:
        reason = f"the Slurm task {job.job_id} left the queue without a result"
    for task in chunk:
        outcome = returned.get(task.id)
        if outcome is None:
            stored = BatchDir(task.out).current(task.id, task.key)
            outcome = stored or Outcome(task.id, task.key, GRADER_ERROR, reason)
            if stored is None:
                BatchDir(task.out).write_record(outcome)
        yield outcome


def _queued_job_ids() -> set[str] | None:
    """Ids of this user's array tasks still known to Slurm, or None if squeue cannot say."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return None
    try:
        done = subprocess.run([squeue, "-h", "-r", "-u", pwd.getpwuid(os.getuid()).pw_name, "-o", "%i"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return {line.strip() for line in done.stdout.splitlines() if line.strip()}


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def slurm_available() -> str:
    """"" when ``sbatch`` and submitit are there; else why not."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH (no Slurm client on this machine)"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "the Python package submitit is not installed (pip install -r requirements.txt)"
    return ""


__all__ = ["COST", "LocalExecutor", "SlurmExecutor", "SlurmResources", "default_jobs",
           "default_timeout", "slurm_available"]
