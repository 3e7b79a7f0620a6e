"""What a forked sandbox child does: confine itself, run one probe, write the result, exit.

A trusted call (``run_trusted``) is the other kind of child: the grader's own measurement,
unconfined, in a fork of the same zygote (which holds torch already but no student code).

``run_call`` runs right after the zygote's fork and never returns: it leaves with ``os._exit``
(no atexit handler, no buffered stdio of the zygote, no finalizer ever runs). The result is a
wire message in the call directory, in the call protocol of ``autograder.probes.outcome``.
"""
from __future__ import annotations

import importlib
import io
import json
import os
import random
import resource
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from autograder import probes
from autograder.probes.outcome import classify, failure, success
from autograder.sandbox import limits as limits_module
from autograder.sandbox import mounts, secrets, wire

EXIT_SETUP_FAILED = 70
# The grader's own code a trusted call may run (``run_trusted``): each module names its
# functions in ``TRUSTED_FUNCTIONS``.
TRUSTED_MODULES = ("autograder.training.measure",)
OUTPUT_FILE = "output.txt"
RUNNING_FILE = "running.txt"
PROGRESS_FILE = "progress.txt"  # a batch's sub-call now running, and since when


@dataclass
class Setup:
    """What the zygote prepared once, for every child."""

    submission_dir: Path
    provided_dir: Path
    root_dir: Path
    limits: limits_module.Limits
    account: limits_module.Account | None  # who the children run as (root), else None
    memory_base: int
    secrets: list | None = None  # real paths each child covers in its mount namespace; None: no mounts
    needed: tuple = ()  # real paths a child reads (engine, provided code, Python), kept visible
    locked: tuple = ()  # folders above ``needed`` that others cannot traverse (mounts.locked_folders)

    def confine(self, call_dir: Path | None) -> None:
        """As root, before the privilege drop: the private mount namespace, when in use. Without
        it (secrets hidden by permissions), a namespace that only reaches ``needed`` through
        ``locked`` folders, where mounts are allowed; else the self-check names the folder."""
        if self.secrets is None:
            if self.locked:
                try:
                    mounts.reach_in_child(list(self.locked), keep=list(self.needed))
                except OSError:
                    pass  # mounts refused: the self-check reports the unreachable Python
            return
        keep = {path: True for path in self.needed}
        keep[os.path.realpath(self.submission_dir)] = True
        if call_dir is not None:
            keep[os.path.realpath(call_dir)] = False
        mounts.hide_in_child(self.secrets, keep=keep, tmp_bytes=self.limits.tmp_bytes)


def _redirect_output(call_dir: Path) -> None:
    """Point fds 0/1/2 at /dev/null and the capture file, close every other fd, rebuild stdio."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    output = os.open(call_dir / OUTPUT_FILE, flags, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    # The zygote's pipes and log, anything torch opened: nothing leaks into student code.
    highest = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    os.closerange(3, 1 << 20 if highest == resource.RLIM_INFINITY else min(highest, 1 << 20))
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True,
                                  errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True,
                                  errors="backslashreplace")
    sys.__stdout__, sys.__stderr__, sys.__stdin__ = sys.stdout, sys.stderr, sys.stdin


def _prepare_process(setup: Setup, request: dict, call_dir: Path) -> None:
    os.environ.clear()
    os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(call_dir),
                       "TMPDIR": str(call_dir), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                       "OMP_NUM_THREADS": str(request["threads"])})
    if request["device"] == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    root = os.path.realpath(setup.root_dir)
    kept = [entry for entry in sys.path
            if entry and os.path.realpath(entry) != root and entry not in (str(setup.submission_dir),
                                                                            str(setup.provided_dir))]
    sys.path[:] = [str(setup.submission_dir), str(setup.provided_dir)] + kept
    import numpy as np
    import torch
    torch.set_num_threads(max(1, int(request["threads"])))
    seed = int(request["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    probes.configure(setup.submission_dir, device=request["device"], running_file=call_dir / RUNNING_FILE,
                     progress_file=call_dir / PROGRESS_FILE)


def _write_result(call_dir: Path, message: dict) -> None:
    try:
        wire.write(call_dir, message)
    except wire.WireError as error:
        wire.write(call_dir, failure("invalid_output", f"The result cannot be sent back to the grader: "
                                    f"{error}. Return NumPy arrays or torch tensors."))


def run_call(setup: Setup, request: dict) -> None:
    """Serve one request in the freshly forked child; never returns."""
    exit_code = EXIT_SETUP_FAILED
    try:
        os.setsid()
        call_dir = Path(request["call_dir"])
        setup.confine(call_dir)
        os.chdir(call_dir)
        _redirect_output(call_dir)
        inputs = wire.read(call_dir, "in", max_bytes=setup.limits.max_result_bytes) or {}
        threads = max(1, int(request["threads"]))
        limits_module.apply_in_child(setup.limits, memory_base=setup.memory_base,
                                     cpu_seconds=float(request["timeout"]) * threads + 1,
                                     account=setup.account)
        _prepare_process(setup, request, call_dir)
    except BaseException:
        try:
            wire.write(Path(request["call_dir"]), failure("grader", "the sandbox child could not be set up",
                                                         traceback.format_exc()))
        finally:
            os._exit(exit_code)
    # From here on, student code may run: nothing below trusts the process any more.
    try:
        try:
            message = success(probes.run_probe(request["probe"], inputs))
        except BaseException as error:
            message = classify(error, request["device"])
        _write_result(call_dir, message)
        exit_code = 0
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(exit_code)


def run_trusted(setup: Setup, request: dict) -> None:
    """Serve a trusted request in the freshly forked child; never returns.

    ``request["trusted"]`` names one of the grader's own functions ("module:function" of
    ``TRUSTED_MODULES``); it runs unconfined, as the zygote's user, so that it reads what calls
    may not (the reference, the checkpoint). No student code is in this process: the zygote
    never imports any. Its result is a call-protocol message in the call directory; any
    failure is the grader's.
    """
    exit_code = EXIT_SETUP_FAILED
    call_dir = Path(request["call_dir"])
    try:
        os.setsid()
        os.chdir(call_dir)
        _redirect_output(call_dir)
        module_name, _, name = str(request["trusted"]).partition(":")
        module = importlib.import_module(module_name) if module_name in TRUSTED_MODULES else None
        if module is None or name not in getattr(module, "TRUSTED_FUNCTIONS", ()):
            raise ValueError(f"not a trusted function: {request['trusted']!r}")
        inputs = wire.read(call_dir, "in", max_bytes=setup.limits.max_result_bytes) or {}
        import torch
        torch.set_num_threads(max(1, int(request["threads"])))
        message = success(getattr(module, name)(inputs))
    except BaseException:
        message = failure("grader", f"the grader's measurement {request.get('trusted')!r} failed",
                          traceback.format_exc())
    try:
        wire.write(call_dir, message)
        exit_code = 0
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(exit_code)


# -- the zygote's start-up self-check ----------------------------------------------------------

def _python_problem() -> dict | None:
    """Whether this process can import the standard library and site-packages: None, or the
    first path it cannot read with the error and the folder that blocks it."""
    import importlib
    import numpy
    import torch
    files = [os.__file__, numpy.__file__, torch.__file__]
    for path in files:
        try:
            with open(path, "rb") as handle:
                handle.read(1)
            os.listdir(os.path.dirname(path))
        except OSError as error:
            blocking = next((folder for folder in _ancestors(path) if not os.access(folder, os.X_OK)),
                            os.path.dirname(path))
            return {"path": path, "error": str(error), "blocking": blocking}
    sys.modules.pop("colorsys", None)
    try:
        importlib.import_module("colorsys")  # a fresh import: the finder reads the stdlib folder
    except ImportError as error:
        return {"path": os.path.dirname(os.__file__), "error": str(error),
                "blocking": os.path.dirname(os.__file__)}
    return None


def _ancestors(path: str) -> list[str]:
    folders, folder = [], os.path.dirname(os.path.abspath(path))
    while True:
        folders.append(folder)
        if folder == os.path.dirname(folder):
            return folders[::-1]
        folder = os.path.dirname(folder)


def self_check(setup: Setup, canaries: list[str]) -> dict:
    """Fork a child confined like a call (mounts, rlimits, the sandbox user) that reports what
    it can read: {"confined": error or None, "readable": [canaries it read], "python": problem
    or None}. Run by the zygote (root) before it answers ready."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        report = {"confined": None, "readable": [], "python": None}
        try:
            os.close(read_end)
            os.setsid()
            try:
                setup.confine(None)
            except OSError as error:
                report["confined"] = str(error)
            limits_module.apply_in_child(setup.limits, memory_base=setup.memory_base, cpu_seconds=30.0,
                                         account=setup.account)
            report["readable"] = secrets.readable(canaries)
            report["python"] = _python_problem()
        except BaseException as error:
            report["error"] = f"{type(error).__name__}: {error}"
        finally:
            try:
                os.write(write_end, json.dumps(report).encode())
            finally:
                os._exit(0)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as reader:
        chunks.append(reader.read(1 << 20))
    os.waitpid(pid, 0)
    limits_module.kill_descendants()
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"confined": None, "readable": [], "python": None,
                "error": "the self-check child died without a report"}
