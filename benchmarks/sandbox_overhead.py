"""Measure the sandbox's costs: zygote start-up, and the per-call overhead of a trivial probe.

Usage: python benchmarks/sandbox_overhead.py [--calls N]
Prints the zygote's start-up time, then median and p95 wall time per call for two probes:
``selftest.echo`` (fork, inputs, result; no student code) and ``selftest.call`` on a tiny
student ``lab1.py`` (the same plus importing and calling it). As root the calls include the
privilege drop and the kill-by-uid sweep after each call.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.sandbox import Sandbox  # noqa: E402
from autograder.sandbox.limits import ensure_sandbox_user, is_root  # noqa: E402

LAB1 = "import numpy as np\n\ndef identity(x):\n    return x\n"


def _timings(sandbox: Sandbox, probe: str, inputs: dict, calls: int) -> list[float]:
    sandbox.run(probe, inputs)  # warm-up: first-touch page faults in the zygote
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        sandbox.run(probe, inputs)
        timings.append(time.perf_counter() - started)
    return timings


def _report(name: str, timings: list[float]) -> None:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered))) - 1)]
    print(f"{name:<16} median {1000 * statistics.median(ordered):7.1f} ms   "
          f"p95 {1000 * p95:7.1f} ms   ({len(ordered)} calls)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per probe (default 100)")
    args = parser.parse_args()
    if is_root():
        ensure_sandbox_user()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "lab1.py").write_text(LAB1)
        with Sandbox(folder) as sandbox:
            started = time.perf_counter()
            sandbox.start()
            print(f"zygote start-up  {time.perf_counter() - started:7.2f} s")
            print(f"defences         {sandbox.capabilities}")
            x = np.arange(5.0)
            _report("selftest.echo", _timings(sandbox, "selftest.echo", {"x": x}, args.calls))
            _report("selftest.call", _timings(
                sandbox, "selftest.call", {"module": "lab1", "fn": "identity", "args": [x]}, args.calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
