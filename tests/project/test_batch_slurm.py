"""``batch --executor slurm`` through a real single-node Slurm started by the test.

The test writes its own slurm.conf (free ports, no authentication: one machine, one user, the
configuration Slurm allows for that), runs slurmctld and slurmd in the foreground as its own
children, grades a small class as a job array and checks it equals one-at-a-time ``grade``.
It skips, saying why, where Slurm is not installed or will not start (not root, no daemons).
Debian's packages: ``apt-get install slurm-wlm munge`` (``.ci/run`` does it).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import paths, validate
from batch_helpers import comparable, grade_one_at_a_time

pytestmark = pytest.mark.slow(seconds=60)

DAEMONS = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo")
START_SECONDS = 40


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _config(folder: Path, host: str) -> str:
    import psutil

    memory_mib = int(psutil.virtual_memory().total / 2**20 * 0.8)
    return "\n".join([
        "ClusterName=hw4test", f"SlurmctldHost={host}",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        "AuthType=auth/none", "CredType=cred/none", "SlurmUser=root", "SlurmdUser=root",
        f"StateSaveLocation={folder}/state", f"SlurmdSpoolDir={folder}/spool",
        f"SlurmctldPidFile={folder}/slurmctld.pid", f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log", f"SlurmdLogFile={folder}/slurmd.log",
        "ProctrackType=proctrack/pgid", "TaskPlugin=task/none", "SchedulerType=sched/builtin",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "ReturnToService=2",
        "MpiDefault=none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        f"NodeName={host} CPUs={os.cpu_count()} RealMemory={memory_mib} State=UNKNOWN",
        f"PartitionName=hw4 Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""])


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """SLURM_CONF of a running single-node cluster; the daemons are stopped after."""
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} not on PATH; "
                    "apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("a single-node Slurm needs root to run slurmd")
    try:
        import submitit  # noqa: F401
    except ImportError:
        pytest.skip("submitit is not installed (pip install -r requirements.txt)")
    folder = tmp_path_factory.mktemp("slurm")
    (folder / "state").mkdir()
    (folder / "spool").mkdir()
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(_config(folder, host))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = [subprocess.Popen([shutil.which(name), "-D", "-f", str(conf)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                start_new_session=True)
               for name in ("slurmctld", "slurmd")]
    try:
        state = ""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and all(d.poll() is None for d in daemons):
            done = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True,
                                  text=True, timeout=20)
            state = done.stdout.strip()
            if state.startswith("idle"):
                break
            time.sleep(0.5)
        if not state.startswith("idle"):
            logs = "".join((folder / f).read_text()[-600:] for f in ("slurmctld.log", "slurmd.log")
                           if (folder / f).is_file())
            pytest.skip(f"Slurm did not start on this machine (node state {state!r}): {logs}")
        yield env
    finally:
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def test_a_batch_through_slurm_gives_what_grade_gives(slurm, tmp_path):
    cases = {case.name: case for case in validate.plan_cases()}
    klass = tmp_path / "class"
    plan = {}
    for name in ("reference", "stubs", "prune-largest"):
        plan[name] = {"path": validate.build_submission(cases[name], klass / name)}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "batch", str(klass), "--out", str(out),
         "--executor", "slurm", "--jobs", "2", "--slurm-cpus", "1", "--slurm-mem-gb", "1",
         "--slurm-time-min", "10"],
        cwd=paths.ROOT, env=slurm, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3 graded now" in done.stdout
    jobs = list((out / "slurm").iterdir())
    assert jobs, "no submitit job folder: the grades did not go through Slurm"
    alone = grade_one_at_a_time(plan, tmp_path / "alone")
    for name, expected in alone.items():
        got = json.loads((out / "results" / f"{name}.json").read_text())
        assert comparable(got) == comparable(expected), name
    rows = (out / "scores.csv").read_text().splitlines()
    assert len(rows) == 4 and all(row.split(",")[-2] == "graded" for row in rows[1:]), rows
