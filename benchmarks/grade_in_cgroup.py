"""Benchmark of a whole grade inside Gradescope-like limits (a script, not a test; Linux, root).

    /work/cpu-venv/bin/python benchmarks/grade_in_cgroup.py [SUBMISSION] [--tier default|1.5gb]
        [--stage all] [--data D --checkpoint C] [--no-breakdown]

Runs ``python -m autograder grade SUBMISSION --stage STAGE`` (this interpreter: run it with the
venv whose torch you mean to measure, e.g. CPU-only wheels as Gradescope's) in a fresh cgroup v1
memory group, and cpu group, with a tier's limits: ``default`` is Gradescope's default machine
(768 MB, half a CPU: ``cpu.cfs_quota_us`` 50000 of 100000), ``1.5gb`` the next (1.5 GB, 1 CPU).
Prints the cgroup's peak charge (``memory.max_usage_in_bytes``, page cache included) and its
peak working set (usage less inactive page cache, what the kernel cannot reclaim before
killing), the peak PSS of each kind of process (the grading process, the sandbox's zygote, a
sandbox call, a trusted measurement: a fork of the zygote that kept root) and of all of them
together, out-of-memory kills, wall time, the CPU seconds of every process with the quota's
throttling (on a shared machine the wall time is the load's as much as the grade's), the score
and any test that did not pass.

Then, unless ``--no-breakdown``, a table of where the memory goes, each item measured by a small
probe in a fresh interpreter of the same venv: the interpreter, torch's import, the model,
optimizer state, one training step at the budget's batch (float and 4-bit quantization-aware),
the trusted side's accuracy measurement, and loading the data (its peak and what is kept).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cgroup import CgroupV1  # noqa: E402
from benchmarks.measure import TreeSampler, cpu_seconds  # noqa: E402

TIERS = {"default": (768 * 10**6, 0.5), "1.5gb": (1500 * 10**6, 1.0)}
ROLES = ("grading process", "sandbox zygote", "sandbox call", "trusted measurement")


def _role_of(process, depth: int) -> str | None:
    """A fork of the zygote that kept the zygote's uid is a trusted measurement
    (``Sandbox.run_trusted``); a sandbox call runs as the sandbox user (as root) or is told
    apart by nothing else, and keeps its depth's role."""
    if depth != 2:
        return None
    try:
        parent = process.parent()
        same_uid = parent is not None and process.uids().real == parent.uids().real
    except Exception:  # psutil.Error: it ended while we looked
        return None
    return ROLES[3] if same_uid and process.uids().real == 0 else None
MB = 10**6
MiB = 2**20


def grade(args, results: Path) -> dict:
    """One grade in the tier's cgroup: its measurements and the results' summary."""
    memory, cpus = TIERS[args.tier]
    command = [sys.executable, "-m", "autograder", "grade", args.submission, "--stage", args.stage,
               "--device", "cpu", "--out", str(results)]
    for option in ("data", "checkpoint"):
        if getattr(args, option):
            command += [f"--{option.replace('_', '-')}", getattr(args, option)]
    with CgroupV1("hw4grade", memory=memory, cpus=cpus) as group:
        cpu_started = cpu_seconds()
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, preexec_fn=group.enter,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        with TreeSampler(process.pid, ROLES, also=group.working_set, role_of=_role_of) as sampler:
            _, stderr = process.communicate()
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_started  # the grade and every descendant: all were waited for
        measured = {"tier": args.tier, "limit": memory, "cpus": cpus, "wall": wall, "cpu": cpu,
                    "throttled": group.throttled(), "load": os.getloadavg(),
                    "exit": process.returncode, "max_usage": group.max_usage(),
                    "working_set": sampler.peak_also, "pss_total": sampler.peak_total,
                    "pss_by_role": sampler.peak_by_role, "pss_at_peak": sampler.at_peak,
                    "private_at_peak": sampler.private_at_peak, "oom_kills": group.oom_kills(),
                    "limit_hits": group.failures(), "stderr_tail": stderr[-2000:]}
    try:
        report = json.loads(results.read_text())
    except (OSError, ValueError):
        report = {"score": None, "tests": []}
    tests = report["tests"]
    measured["score"] = report["score"]
    measured["max_score"] = sum(t.get("max_score", 0) for t in tests
                                if not t.get("extra_data", {}).get("bonus"))
    measured["not_passed"] = [t["name"].split(" ")[0] + f" ({t.get('status')})" for t in tests
                              if t.get("status") != "passed"]
    measured["tests"] = len(tests)
    return measured


def print_grade(m: dict) -> None:
    print(f"tier {m['tier']}: cgroup limit {m['limit'] / MB:.0f} MB, {m['cpus']} CPU "
          f"(machine shared: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")
    print(f"  wall {m['wall']:.1f} s, exit {m['exit']}, score {m['score']} "
          f"(max {m['max_score']:g}, {m['tests']} tests), not passed: {len(m['not_passed'])}")
    print(f"  CPU {m['cpu']:.1f} s, all processes; on {m['cpus']} CPU at its full share that is "
          f"{m['cpu'] / m['cpus']:.0f} s of wall time (periods throttled by the quota: "
          f"{m['throttled'][0]} of {m['throttled'][1]}; fewer mean the shared machine, not the "
          f"quota, set the pace)")
    for name in m["not_passed"][:20]:
        print(f"    {name}")
    print(f"  cgroup peak charge (max_usage_in_bytes) {m['max_usage'] / MB:7.0f} MB "
          f"({m['max_usage'] / MiB:.0f} MiB), incl. page cache")
    print(f"  cgroup peak working set (sampled)       {m['working_set'] / MB:7.0f} MB")
    print(f"  peak PSS, all processes together        {m['pss_total'] / MB:7.0f} MB "
          f"({m['pss_total'] / MiB:.0f} MiB)")
    for role, peak in m["pss_by_role"].items():
        print(f"    {role:26} peak of one {peak / MB:5.0f} MB; at the total's peak, all of them "
              f"{m['pss_at_peak'].get(role, 0) / MB:5.0f} MB, of which private "
              f"{m['private_at_peak'].get(role, 0) / MB:5.0f} MB")
    print(f"  out-of-memory kills {m['oom_kills']}, charges that hit the limit {m['limit_hits']}")
    if m["exit"] != 0:
        print("  stderr tail:\n" + m["stderr_tail"])


# -- the breakdown probes (each in a fresh interpreter: ``--probe ITEM``) ----------------------

PROBES = ("import torch", "model", "optimizer state", "activations", "activations, 4-bit QAT",
          "evaluation", "data")


def probe(item: str, args) -> dict:
    """What ``item`` adds to this fresh interpreter's peak RSS, in bytes, and a label for it.

    Every item starts from the same base (numpy, torch, hw4 and autograder imported, ResNet-20
    built from the checkpoint) except ``import torch``, which is measured from numpy alone.
    """
    import resource

    import numpy as np

    def peak() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    before = peak()
    import torch
    if item == "import torch":
        return {"label": "import torch (beyond the interpreter and numpy)", "bytes": peak() - before,
                "interpreter": before}
    from autograder import paths
    paths.ensure_provided_importable()
    from autograder.staff import reference
    from autograder.training.budget import BUDGETS, EVAL_BATCH
    from autograder.training.setting import Setting
    from hw4.resnet import ResNetCIFAR, load_pretrained
    from hw4.training import course_criterion, course_optimizer
    budget = BUDGETS["cpu"]
    torch.set_num_threads(budget.threads)
    before = peak()
    net = load_pretrained(args.checkpoint)
    if item == "model":
        return {"label": "model: ResNet-20 from the checkpoint", "bytes": peak() - before}
    before = peak()

    def train_step(model, batch):
        optimizer = course_optimizer(model)
        x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
        model.train()
        for _ in range(2):  # the second step runs with the momentum buffers already there
            optimizer.zero_grad()
            course_criterion()(model(x), y).backward()
            optimizer.step()

    if item == "optimizer state":
        train_step(net, 2)
        momentum = sum(p.numel() * p.element_size() for p in net.parameters())
        return {"label": f"first steps at batch 2: torch's lazy set-up, momentum "
                         f"({momentum / MB:.1f} MB)", "bytes": peak() - before}
    train_step(net, 2)  # the one-time set-up above, so that what follows is the batch's own
    before = peak()
    if item == "activations":
        train_step(net, budget.batch_size)
        return {"label": f"a training step at batch {budget.batch_size} (activations, gradients)",
                "bytes": peak() - before}
    if item == "activations, 4-bit QAT":
        quantized = ResNetCIFAR(20, Nbits=4, ste=reference("lab3").STE)
        quantized.load_state_dict(net.state_dict())
        train_step(quantized, 2)
        before = peak()
        train_step(quantized, budget.batch_size)
        return {"label": f"a 4-bit quantization-aware step at batch {budget.batch_size}",
                "bytes": peak() - before}
    if item == "evaluation":
        net.eval()
        with torch.no_grad():
            for _ in range(2):
                net(torch.randn(EVAL_BATCH, 3, 32, 32))
        return {"label": f"the trusted side's accuracy: evaluation at batch {EVAL_BATCH}",
                "bytes": peak() - before}
    setting = Setting.resolve(args.data, args.checkpoint, "cpu")
    arrays = (setting.dataset.x_train, setting.dataset.y_train, setting.dataset.x_test,
              setting.dataset.y_test)
    return {"label": f"data: load {setting.dataset.name} (peak while loading)", "bytes": peak() - before,
            "kept": int(sum(np.asarray(a).nbytes for a in arrays))}


def print_breakdown(args) -> None:
    print("where the memory goes (peak-RSS increments, each in a fresh interpreter of this venv):")
    for item in PROBES:
        command = [sys.executable, str(Path(__file__).resolve()), "--probe", item]
        for option in ("data", "checkpoint"):
            if getattr(args, option):
                command += [f"--{option}", getattr(args, option)]
        found = json.loads(subprocess.run(command, cwd=ROOT, check=True, capture_output=True,
                                          text=True).stdout.splitlines()[-1])
        if "interpreter" in found:
            print(f"  {'interpreter and numpy':64} {found['interpreter'] / MB:6.0f} MB")
        print(f"  {found['label']:64} {found['bytes'] / MB:6.0f} MB")
        if "kept" in found:
            print(f"  {'data: the arrays the stage keeps':64} {found['kept'] / MB:6.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submission", nargs="?", default="reference")
    parser.add_argument("--tier", choices=tuple(TIERS), default="default")
    parser.add_argument("--stage", choices=("unit", "train", "all"), default="all")
    parser.add_argument("--data", default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument("--json", default=None, help="also write the measurements to this file")
    parser.add_argument("--probe", choices=PROBES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe, args)))
        return 0
    print(f"torch of {sys.executable}: ", end="", flush=True)
    subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"], check=True)
    with tempfile.TemporaryDirectory() as scratch:
        measured = grade(args, Path(scratch) / "results.json")
    print_grade(measured)
    if args.json:
        Path(args.json).write_text(json.dumps(measured, indent=1) + "\n")
    if not args.no_breakdown:
        print_breakdown(args)
    return 0 if measured["exit"] == 0 and not measured["not_passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
