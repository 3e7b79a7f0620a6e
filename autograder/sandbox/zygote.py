"""The fork server: import the heavy trusted modules once, then fork one child per call.

Started by ``Sandbox`` as ``python -I -c <boot> ROOT`` with a scrubbed environment. Protocol:
JSON lines, requests on stdin and replies on stdout; everything the zygote itself prints goes to
stderr, the sandbox's log.

1. The client sends a config: ``{"provided_dir", "root_dir", "submission_dir", "limits": {...},
   "account": {"name", "uid", "gid", "slot"} (as root: the uid claimed for this Sandbox alone),
   "secrets": [paths each child hides], "needed": [paths it must still see, e.g. an engine
   unpacked under /tmp], "canaries": [files the self-check must fail to read]}``.
2. The zygote confines itself where it can (network namespace, subreaper), imports numpy, torch,
   ``hw4`` and the probe modules (no student code, and no torch op, so forking stays safe). As
   root it then runs a self-check: a child confined like a call (private mount namespace, or
   file permissions where mounts are refused) tries, as the sandbox user, to read the known
   secrets ``config["canaries"]`` and the Python installation. It answers
   ``{"ready": true, "pid", "capabilities"}``, or ``{"ready": false, "error"}`` (a secret is
   readable, Python is not, an import failed).
3. Each request ``{"probe", "call_dir", "timeout", "threads", "seed", "device"}`` is answered with
   ``{"pid"}`` once forked and ``{"exit": code}`` or ``{"signal": n}`` once the child and every
   process it left behind are gone. A request with ``"trusted": "module:function"`` forks a
   child that runs that function of the grader's own (``child.run_trusted``), unconfined.
   EOF on stdin ends the zygote.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import pkgutil
import sys
import traceback
from pathlib import Path


def _send(message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(1, data):]


# Modules students and probes commonly import. Loading them once here makes every child
# faster, and keeps them working where the sandbox user cannot read the interpreter's own files
# (a Python installed under /root, for example).
PRELOADED = ("numpy", "numpy.random", "numpy.linalg", "numpy.fft", "torch", "torch.nn",
             "torch.nn.functional", "torch.optim", "torch.utils.data",
             "abc", "argparse", "collections", "contextlib", "copy", "csv", "dataclasses", "enum",
             "functools", "heapq", "inspect", "io", "itertools", "json", "logging", "math",
             "operator", "pathlib", "pickle", "random", "re", "secrets", "statistics", "string",
             "textwrap", "time", "typing", "warnings", "ctypes", "psutil", "socket", "tempfile")


def import_trusted(provided_dir: Path) -> None:
    """Import numpy, torch, common modules, the provided package and the probe modules, never
    student code. A zygote forked by a template (``template.py``) finds them imported."""
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    sys.path.insert(0, str(provided_dir))
    try:
        hw4 = importlib.import_module("hw4")
        for module in pkgutil.iter_modules(hw4.__path__):
            importlib.import_module(f"hw4.{module.name}")
    finally:
        sys.path.remove(str(provided_dir))
    import autograder.probes as probes
    for module in pkgutil.iter_modules(probes.__path__):
        importlib.import_module(f"autograder.probes.{module.name}")


NO_SECRETS = ("none needed: without root there is no sandbox user, and a machine without root "
              "is a student's, whose handout holds no reference and no hidden tests")


def _start(config: dict):
    from autograder.sandbox import child, limits, mounts
    limit_values = limits.Limits(**config["limits"])
    root = limits.is_root()
    # As root, the uid the client claimed for this Sandbox alone (its slot), never looked up here.
    account = limits.Account(**config["account"]) if root else None
    capabilities = {
        "separate_process": True,
        "fresh_process_per_call": True,
        "unprivileged_user": account.name if root else None,
        "process_limit": root,
        "no_new_privileges": root and limits.IS_LINUX,
        "network_namespace": root and limits.unshare_network(),
        "kill_orphans": limits.become_subreaper(),
        "kill_by_uid": root,
        "memory_limit": ("RLIMIT_DATA" if limits.IS_LINUX else "RLIMIT_AS") if limit_values.memory else None,
        "secrets_hidden_by": NO_SECRETS,
        "private_tmp": False,
    }
    import_trusted(Path(config["provided_dir"]))
    setup = child.Setup(submission_dir=Path(config["submission_dir"]),
                        provided_dir=Path(config["provided_dir"]),
                        root_dir=Path(config["root_dir"]), limits=limit_values,
                        account=account, memory_base=limits.data_in_use(),
                        needed=tuple(config.get("needed", ())),
                        locked=tuple(mounts.locked_folders(config.get("needed", ()))) if root else ())
    if root:
        capabilities.update(_check_confinement(setup, config, account.name))
    return setup, capabilities


def _check_confinement(setup, config: dict, user: str) -> dict:
    """As root: choose how secrets are hidden, and prove it as the sandbox user (self-check).

    Tries the private mount namespace first, falls back to file permissions when the platform
    refuses mounts. Raises GraderError when any canary secret is readable or the Python
    installation is not, so a grade never proceeds silently with either.
    """
    from autograder.errors import GraderError
    from autograder.sandbox import child
    canaries = config.get("canaries", [])
    report, refused = None, None
    if setup.limits.mount_namespace and sys.platform.startswith("linux"):
        setup.secrets = list(config.get("secrets", []))
        report = child.self_check(setup, canaries)
        refused = report.get("confined") or report.get("error")
    if report is None or refused:
        setup.secrets = None
        report = child.self_check(setup, canaries)
    if report.get("error"):
        raise GraderError(f"the sandbox's self-check failed: {report['error']}")
    python = report.get("python")
    if python:
        raise GraderError(
            f"the sandbox user {user!r} cannot read the Python installation: "
            f"{python['path']} ({python['error']}), so student code could not import the "
            f"standard library or site-packages, and this platform refused the mount namespace "
            f"that would reach it. Make the installation readable to others: every folder above "
            f"it needs o+x (here `chmod o+x {python['blocking']}`) and its files o+r "
            f"(`chmod -R o+rX {sys.prefix}`), or install Python outside /root.")
    how = "mount namespace" if setup.secrets is not None else "file permissions"
    if report["readable"]:
        listed = "\n".join(f"  {path}" for path in report["readable"])
        reason = f" (mount namespaces refused: {refused})" if refused else ""
        raise GraderError(
            f"refusing to run student code: the sandbox user {user!r} can read "
            f"secrets{reason}:\n{listed}\nSecrets are hidden by {how}; make them unreadable "
            f"to others (`python -m autograder gradescope` and setup.sh run chmod -R o-rwx on "
            f"them), or run where mount namespaces are allowed (CAP_SYS_ADMIN).")
    return {"secrets_hidden_by": how, "private_tmp": setup.secrets is not None,
            "secret_check": f"{len(canaries)} known secrets unreadable as {user}"}


def _serve(setup, stdin) -> None:
    from autograder.sandbox import child, limits
    for line in stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                (child.run_trusted if request.get("trusted") else child.run_call)(setup, request)
            finally:
                os._exit(child.EXIT_SETUP_FAILED)
        _send({"pid": pid})
        _, status = os.waitpid(pid, 0)
        limits.kill_descendants()  # orphans reparented to us (we are a subreaper on Linux)
        if os.WIFSIGNALED(status):
            _send({"signal": os.WTERMSIG(status)})
        else:
            _send({"exit": os.WEXITSTATUS(status)})


def main() -> None:
    sys.dont_write_bytecode = True
    stdin = sys.stdin.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol on fd 1
    try:
        setup, capabilities = _start(json.loads(stdin.readline()))
    except BaseException as error:
        from autograder.errors import GraderError
        if isinstance(error, GraderError):  # a staff message, complete by itself
            _send({"ready": False, "error": str(error)})
        else:
            _send({"ready": False, "error": f"{type(error).__name__}: {error}",
                   "traceback": traceback.format_exc()})
        raise SystemExit(1)
    gc.collect()
    gc.freeze()  # keeps the children's copy-on-write pages shared: a faster fork and exit
    _send({"ready": True, "pid": os.getpid(), "capabilities": capabilities})
    _serve(setup, stdin)


if __name__ == "__main__":
    main()
