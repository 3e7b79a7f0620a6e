"""Benchmark of the training stage (a script, not a test): throughput, stage times, memory.

    .venv/bin/python benchmarks/train_stage.py [--data X.npz] [--checkpoint Y.pt] [--batches 8] [--repeats 3]

Reports:
1. fine-tuning throughput inside the harness (the sandboxed ``train.masked_finetune`` probe with
   the reference's ``finetune_after_prune``, wall time of the call) against a bare PyTorch loop
   in this process, on the same model, images, batch size and thread count, as a ratio (goal
   >= 0.9). The two alternate ``--repeats`` times and the medians are compared: on a shared
   2-core machine one run of either varies by some 10%;
2. the time of every pipeline of the stage with the reference as the submission, and in total;
3. the peak memory of this process and every descendant (zygote, children) while the pipelines
   run, sampled with psutil: the sum of RSS (counts shared pages once per process) and of PSS
   (shares them). ``benchmarks/grade_time.py --stage train`` measures a whole grade the same
   way, in a fresh process, as Gradescope runs it;
4. the projected wall time on Gradescope's default half vCPU: the CPU time every process used,
   divided by 0.5 (the stage is CPU-bound; a half vCPU cannot run two threads at once).
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.measure import MemorySampler, cpu_seconds  # noqa: E402

from autograder import paths  # noqa: E402
from autograder.training.budget import ITERATIVE_QAT_BITS, QAT_BITS, SPARSE_QAT_BITS  # noqa: E402
from autograder.training.pipelines import Pipelines  # noqa: E402
from autograder.training.setting import Setting  # noqa: E402

paths.ensure_provided_importable()
from hw4.data import Dataset, train_loader  # noqa: E402
from hw4.resnet import ResNetCIFAR, prunable_layers  # noqa: E402
from hw4.training import course_criterion, course_optimizer  # noqa: E402

GRADESCOPE_CPUS = 0.5


def bare_loop_seconds(setting: Setting, state: dict, batches: int) -> float:
    """A plain masked fine-tuning loop (the job 3.3 does: step, then zero the pruned weights
    again) over the same seeded batches the harness's first epoch uses, in this process."""
    torch.set_num_threads(setting.budget.threads)
    net = ResNetCIFAR(20)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    net.train()
    x, y = setting.train_split()
    dataset = Dataset("bench", x, y, x[:0], y[:0], tuple(map(str, range(10))))
    loader = train_loader(dataset, batch_size=setting.budget.batch_size, seed=setting.seed * 1000)
    optimizer, criterion = course_optimizer(net), course_criterion()
    masks = [(layer, layer.weight.detach() != 0) for _, layer in prunable_layers(net)]
    started = time.perf_counter()
    for index, (images, labels) in enumerate(loader):
        if index == batches:
            break
        optimizer.zero_grad()
        criterion(net(images), labels).backward()
        optimizer.step()
        with torch.no_grad():
            for layer, mask in masks:
                layer.weight.mul_(mask)
    return time.perf_counter() - started


def stage_times(pipelines: Pipelines) -> dict[str, float]:
    runs = {
        "3.1 pretrained": pipelines.pretrained,
        "4.2 post-training quantization": pipelines.post_training_quantization,
        "3.3 masked fine-tuning": pipelines.masked_finetune,
        "3.4 iterative pruning": lambda: pipelines.iterative_prune("layer"),
        "3.5 global iterative pruning": lambda: pipelines.iterative_prune("global"),
        **{f"4.3 QAT {bits} bits": (lambda bits=bits: pipelines.quantized_finetune(bits))
           for bits in QAT_BITS},
        "4.4 sparse QAT": lambda: pipelines.quantized_finetune(SPARSE_QAT_BITS, sparse=True),
        "4.5 global pruning + QAT": lambda: pipelines.iterative_prune("global", Nbits=ITERATIVE_QAT_BITS),
    }
    times = {}
    for name, run in runs.items():
        started = time.perf_counter()
        run()
        times[name] = time.perf_counter() - started
        print(f"  {name:34} {times[name]:6.1f} s", flush=True)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--batches", type=int, default=8, help="batches for the throughput ratio")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of harness and loop")
    parser.add_argument("--skip-stage", action="store_true", help="only the throughput ratio")
    args = parser.parse_args()

    from autograder.sandbox import Sandbox
    wall_started, cpu_started = time.perf_counter(), cpu_seconds()
    setting = Setting.resolve(args.data, args.checkpoint, "cpu")
    print(f"setting {setting.key}: budget {dataclasses.asdict(setting.budget)}")
    with Sandbox(paths.REFERENCE_DIR, device="cpu") as sandbox:
        sandbox.start()
        pipelines = Pipelines(sandbox, setting)
        if not args.skip_stage:
            # Before the bare loop: its buffers would stay in this process's heap and count.
            with MemorySampler() as memory:
                times = stage_times(pipelines)
            print(f"  {'pipelines in total':34} {sum(times.values()):6.1f} s")
            print(f"peak memory of the pipelines, this process and its descendants: RSS sum "
                  f"{memory.peak_rss / 2**20:.0f} MiB, PSS sum {memory.peak_pss / 2**20:.0f} MiB")
        short = dataclasses.replace(setting.budget, masked_batches=args.batches)
        probe = Pipelines(sandbox, dataclasses.replace(setting, budget=short))
        harness_runs, bare_runs = [], []
        for _ in range(args.repeats):
            harness_runs.append(probe.masked_finetune().seconds)
            bare_runs.append(bare_loop_seconds(setting, probe.pruned_state, args.batches))
        harness, bare = statistics.median(harness_runs), statistics.median(bare_runs)
        images = args.batches * setting.budget.batch_size
        print(f"throughput over {images} images, median of {args.repeats}: harness "
              f"{images / harness:.0f} images/s (sandboxed call, wall), bare loop "
              f"{images / bare:.0f} images/s; ratio {bare / harness:.3f} (goal >= 0.9)")
        print(f"  runs (s): harness {' '.join(f'{t:.2f}' for t in harness_runs)}; "
              f"bare {' '.join(f'{t:.2f}' for t in bare_runs)}")
    wall, cpu = time.perf_counter() - wall_started, cpu_seconds() - cpu_started
    print(f"whole run: {wall:.1f} s wall, {cpu:.1f} s CPU (all processes); projected on a "
          f"{GRADESCOPE_CPUS} vCPU: {cpu / GRADESCOPE_CPUS:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
