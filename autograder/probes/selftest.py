"""Probes for the sandbox's own tests: small, bounded and harmless by themselves.

The hostile behaviour in the project's tests lives in the tiny student files the tests write;
``call`` is how those run.
"""
from __future__ import annotations

import os
import socket
import sys
import time

import numpy as np

from autograder.probes import plain, student, student_function

MAX_SECONDS = 30.0
MAX_BYTES = 1 << 30


def echo(inputs: dict) -> dict:
    """Return the inputs unchanged."""
    return dict(inputs)


def call(inputs: dict) -> dict:
    """Call ``inputs["module"].inputs["fn"](*inputs["args"])``; the result is ``plain``-converted
    unless ``inputs["raw"]`` asks to return it as it is."""
    function = student_function(inputs["module"], inputs["fn"])
    result = function(*inputs.get("args", []))
    if inputs.get("raw"):
        return {"value": result}
    return {"value": plain(result, what=f"{inputs['fn']}'s return value")}


def module_global(inputs: dict) -> dict:
    """The value of a module-level global of a student module (after importing it)."""
    return {"value": getattr(student(inputs["module"]), inputs["name"], None)}


def state(inputs: dict) -> dict:
    """Process-wide state a previous call could have changed; with ``inputs["module"]``, as it
    is after importing that student module."""
    import torch
    if inputs.get("module"):
        student(inputs["module"])
    return {"default_dtype": str(torch.get_default_dtype()), "grad_enabled": torch.is_grad_enabled(),
            "cwd": os.getcwd(), "random": float(np.random.random()),
            "torch_random": float(torch.rand(1).item()), "threads": torch.get_num_threads(),
            "numpy_errors": np.geterr(), "default_device": str(torch.get_default_device())}


def environment(inputs: dict) -> dict:
    """What the child can see: identity, environment, fds, sys.path, network interfaces."""
    fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else []
    try:
        interfaces = [name for _, name in socket.if_nameindex()]
    except OSError:
        interfaces = []
    status = open("/proc/self/status").read() if os.path.exists("/proc/self/status") else ""
    no_new_privs = "NoNewPrivs:\t1" in status
    try:
        with open("/proc/self/oom_score_adj") as score:
            oom_score_adj = int(score.read())
    except OSError:
        oom_score_adj = None
    return {"no_new_privs": no_new_privs, "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd(),
            "env": dict(os.environ), "sys_path": list(sys.path), "fds": fds, "interfaces": interfaces,
            "pid": os.getpid(), "sid": os.getsid(0), "oom_score_adj": oom_score_adj}


def sleep(inputs: dict) -> dict:
    """Sleep for ``inputs["seconds"]`` (at most 30)."""
    time.sleep(min(float(inputs["seconds"]), MAX_SECONDS))
    return {}


def fail(inputs: dict) -> dict:
    """A bug of the probe itself (no student frame): a grader fault."""
    raise KeyError("a key the probe expected")


def leave(inputs: dict) -> dict:
    """Exit without a result, with ``inputs["code"]``."""
    os._exit(int(inputs.get("code", 0)))


def flood(inputs: dict) -> dict:
    """Print ``inputs["bytes"]`` bytes (at most 1 GiB) in 1 MiB lines."""
    remaining = min(int(inputs["bytes"]), MAX_BYTES)
    line = "x" * ((1 << 20) - 1)
    while remaining > 0:
        print(line[:remaining - 1])
        remaining -= 1 << 20
    return {"printed": True}


def grab(inputs: dict) -> dict:
    """Allocate ``inputs["bytes"]`` (at most 1 GiB) in 16 MiB blocks; say how far it got."""
    target, blocks = min(int(inputs["bytes"]), MAX_BYTES), []
    while len(blocks) * (16 << 20) < target:
        blocks.append(np.ones(16 << 20, dtype=np.uint8))
    return {"grabbed": len(blocks) * (16 << 20)}
