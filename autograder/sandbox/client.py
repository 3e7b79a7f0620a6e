"""The trusted side of the sandbox: start the zygote, send calls, enforce the clock, read results.

The grading process never imports student code: ``Sandbox.run`` asks the zygote (a fork server
that has imported torch and the probes) to fork a child that runs one probe, waits for it under
a wall-clock deadline, kills whatever it left behind, and reads its result as data only.
``Sandbox.run_batch`` runs several calls in one child (the ``batch.run`` probe) and gives each
its own result or error. Every message of the call protocol (``autograder.probes.outcome``), a
single call's or a batch's sub-call's, is decoded by ``decode`` alone.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, Sequence

from autograder import paths
from autograder.intake import collect
from autograder.machine import resolve_device
from autograder.errors import (SUBMISSION_ERRORS, Crashed, GraderError, InvalidOutput, NoResult,
                               OutOfMemory, SubmissionError, TimedOut, from_kind)
from autograder.sandbox import limits as limits_module
from autograder.sandbox import reuse, secrets, slots, template, wire
from autograder.sandbox.child import OUTPUT_FILE, PROGRESS_FILE, RUNNING_FILE
from autograder.sandbox.limits import Limits

DEFAULT_TIMEOUT = 30.0   # seconds for one probe call on the course's small inputs
STARTUP_TIMEOUT = 120.0  # importing torch on a loaded 2-core machine
FORKED_STARTUP_TIMEOUT = 30.0  # a zygote forked by a template: confinement and self-check only
FORK_TIMEOUT = 10.0      # from a request to the zygote's {"pid"}
REAP_TIMEOUT = 5.0       # from our SIGKILL to the zygote's exit report
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from autograder.sandbox.zygote import main; main()"
_SIGNAL_WORDS = {signal.SIGSEGV: "segmentation fault", signal.SIGBUS: "bus error",
                 signal.SIGFPE: "floating-point exception", signal.SIGILL: "illegal instruction",
                 signal.SIGABRT: "abort"}


@dataclass(frozen=True)
class ProbeResult:
    """What one sandboxed call returned: decoded values, captured output, wall time in seconds.

    ``stdout`` is what the call printed (stdout and stderr), as text, cut to the sandbox's
    ``max_output`` bytes with a note saying so; ``output`` the same bytes as read.
    """

    values: dict
    stdout: str
    elapsed: float = field(default=0.0)
    output: bytes = field(default=b"", repr=False)


class _Waited(NamedTuple):
    """How a call's child ended: the clock ran out (``timed_out``), its exit status, whether
    the zygote died with it, and the deadline it was given."""

    timed_out: bool
    status: dict | None
    zygote_died: bool
    deadline: float


class Call(NamedTuple):
    """One probe call: the probe's name, its inputs, and its wall-clock limit in seconds."""

    name: str
    inputs: dict
    timeout: float = DEFAULT_TIMEOUT


def decode(message, stdout: str = "", elapsed: float = 0.0) -> ProbeResult:
    """A call's message as its ProbeResult; raises the SubmissionError it reports (with
    ``stdout`` attached), InvalidOutput when it is malformed (student code ran in the process
    that wrote it), or GraderError for a fault of ours."""
    if not well_formed(message):
        raise _with_output(InvalidOutput("The result of your code is malformed."), stdout)
    if message["ok"]:
        return ProbeResult(values=message["values"], stdout=stdout, elapsed=elapsed)
    error = message["error"]
    if error["kind"] == "grader" or error["kind"] not in SUBMISSION_ERRORS:
        raise GraderError(f"{error['message']}\n{error['details']}")
    raise _with_output(from_kind(error["kind"], error["message"], error["details"]), stdout)


def well_formed(message) -> bool:
    """Whether ``message`` follows the call protocol: a success with a dict of values, or a
    failure with string kind, message and details."""
    if type(message) is not dict:
        return False
    if message.get("ok") is True:
        return type(message.get("values")) is dict
    error = message.get("error")
    return message.get("ok") is False and type(error) is dict and \
        all(type(error.get(key)) is str for key in ("kind", "message", "details"))


# What the runtime (glibc, OpenMP, the allocator) prints when it, not the code it runs, fails:
# a thread that could not be created under a process-count limit shared with other grades, say.
RUNTIME_FAILURE_SIGNS = ("libgomp: Thread creation failed", "OMP: Error", "pthread_create",
                         "Resource temporarily unavailable")


def runtime_failure(output: str) -> str | None:
    """The first line of ``output`` that shows the runtime itself failing, or None."""
    for line in output.splitlines():
        if any(sign in line for sign in RUNTIME_FAILURE_SIGNS):
            return line.strip()[:200]
    return None


def _with_output(error: Exception, stdout: str) -> Exception:
    error.stdout = stdout
    return error


def output_text(data: bytes, total: int) -> str:
    """The captured bytes ``data`` as text, with a note when the call printed ``total`` > them."""
    text = data.decode("utf-8", "replace")
    return text if total <= len(data) else \
        text + f"\n[output truncated: {total} bytes in all, {len(data)} shown]"


def span_output(data: bytes, spans, index: int) -> str | None:
    """What sub-call ``index`` of a batch printed: its span ``[start, end]`` of the batch's
    captured bytes ``data``; None when the batch's (untrusted) spans do not say."""
    try:
        start, end = spans[index]
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    if type(start) is not int or type(end) is not int or not 0 <= start <= end:
        return None
    return output_text(data[start:end], end - start)


class _ZygoteGone(Exception):
    """The zygote closed its pipe: it died or was killed."""


class _Zygote:
    """One fork-server process and its JSON-lines pipe."""

    def __init__(self, config: dict, env: dict, log_path: Path, cwd: Path):
        self.log_path, self._config, self._env, self._cwd = log_path, config, env, cwd
        self.capabilities: dict | None = None
        # A batch's template forks one with the imports done; else (or if it refuses, or the
        # forked one does not come up) a fresh one does them itself. Either runs zygote.main
        # in the same environment.
        with open(log_path, "ab") as log:
            self.process = template.spawn(_template_request(config, env, cwd), log.fileno())
        if self.process is not None:
            self._started, self._buffer = time.monotonic(), b""
            try:
                self.send(config)
                return
            except _ZygoteGone:
                self.stop()
        self._start_fresh()

    def _start_fresh(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, str(paths.ROOT)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, env=self._env, cwd=self._cwd,
                close_fds=True, start_new_session=True)
        self._started, self._buffer = time.monotonic(), b""
        self.send(self._config)

    def wait_ready(self) -> None:
        """Wait for the zygote's imports to finish; GraderError when it failed to start."""
        if self.capabilities is not None:
            return
        forked = isinstance(self.process, template.Spawned)
        try:  # a forked zygote has nothing to import: it is ready in seconds or not at all
            ready = self.receive(self._started + (FORKED_STARTUP_TIMEOUT if forked else STARTUP_TIMEOUT))
        except _ZygoteGone:
            ready = None
        if forked and (ready is None or not ready.get("ready")):
            self.stop()  # a template only ever saves time: the grade gets a fresh zygote
            self._start_fresh()
            return self.wait_ready()
        if ready is None or not ready.get("ready"):
            self.stop()
            detail = ready.get("traceback", ready.get("error", "")) if ready else \
                "no answer; its log ends with:\n" + self.log_path.read_text(errors="replace")[-4000:]
            raise GraderError(f"the sandbox's zygote did not start: {detail}")
        self.capabilities = ready["capabilities"]

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message: dict) -> None:
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise _ZygoteGone() from None

    def receive(self, deadline: float) -> dict | None:
        """The next message, or None when ``deadline`` (monotonic) passes first."""
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise _ZygoteGone()
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def stop(self) -> None:
        if isinstance(self.process, template.Spawned):
            self.process.kill_group()  # through its pidfd: not our child
        else:
            limits_module.kill_group(self.process.pid)
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _template_request(config: dict, env: dict, cwd: Path) -> dict:
    """What a template must match to fork this zygote: what a fresh one would import and run
    with (``template.py``)."""
    return {"provided_dir": config["provided_dir"], "root_dir": config["root_dir"],
            "python": sys.executable, "env": env, "cwd": str(cwd)}


def _zygote_env(device: str) -> dict:
    """Only what Python, torch and the C libraries need: no secret of the grader's environment."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTORCH_NVML_BASED_CUDA_CHECK": "1", "MPLBACKEND": "Agg"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        return env
    # Deterministic kernels refuse cuBLAS matrix products unless its workspace is fixed before
    # the first handle is made. This covers the trusted measurement, whose forks keep this
    # environment; a student's call starts from a cleared one (child._prepare_process), and
    # probes/train.py's _deterministic sets the same value again for the fine-tunes.
    env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def _copy_submission(source: Path, dest: Path) -> None:
    """The sandbox's own copy, readable by the sandbox user, made by intake under intake's rules
    (the four files only, regular files only, links refused, sizes capped)."""
    dest.mkdir(mode=0o755)
    collect(source, dest)


def _discard_kept(kept: "reuse.Kept") -> None:
    """Stop a kept zygote for good, as ``Sandbox.close`` would have: its uid's leftovers swept
    where it is not its own subreaper any more (it died), the slot freed, the folder removed."""
    alive = kept.zygote.alive()
    kept.zygote.stop()
    if kept.sweeps is not None:
        if not alive:
            kept.sweeps.sweep(wait=10.0)
        kept.sweeps.close()
    if kept.slot is not None:
        kept.slot.release()
    shutil.rmtree(kept.base, ignore_errors=True)


def sweep_sandbox_user(limits: Limits = Limits(), *, wait: float = 30.0) -> bool:
    """As root, SIGKILL every process left of the sandbox uids this process's Sandboxes held
    (the named account at least), each once no call of it is in flight (waiting up to ``wait``
    seconds) and only where no other grade's Sandbox holds it now (``slots.sweep``). The last
    step of a Gradescope run, one grade per machine there; returns whether any sweep ran
    (never without root or the user)."""
    if not limits_module.is_root():
        return False
    try:
        named = limits_module.sandbox_account(limits.user).pw_uid
    except GraderError:
        return False
    ran = [slots.sweep(uid, wait=wait) for uid in sorted(slots.used_here() | {named})]
    return any(ran)


class Sandbox:
    """Runs probes against one submission, each call in a fresh forked child.

    ``submission_dir`` holds the student's files (only lab1.py, lab2.py, lab3.py and answers.py
    are copied and used). ``device`` is "cpu", "cuda" or "auto". The zygote starts lazily, at the
    first ``run`` (or ``start``); ``close`` stops it and removes the sandbox's temporary files.
    """

    def __init__(self, submission_dir, *, device: str = "cpu", limits: Limits = Limits(),
                 provided_dir=None):
        self.submission_dir = Path(submission_dir)
        self.device = resolve_device(device)
        self.limits = limits
        self.provided_dir = Path(provided_dir) if provided_dir is not None else paths.PROVIDED_DIR
        self._zygote: _Zygote | None = None
        self._base: Path | None = None
        self._calls = 0
        self.retries = 0  # calls run a second time after a death the grader could not pin
        self._slot: slots.Slot | None = None  # as root: the uid this Sandbox alone runs calls as
        self._sweeps: limits_module.UidSweeps | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self, *, wait: bool = True) -> None:
        """Create the sandbox's directories and start the zygote (a no-op when it is running).

        With wait=False it returns while the zygote still imports torch, so the caller's own
        imports overlap with it; the first ``run`` then waits.
        """
        if self._zygote is not None and self._zygote.alive():
            if wait:
                self._zygote.wait_ready()
            return
        if self._zygote is not None:
            self._zygote.stop()
            self._zygote = None
        if self._base is None and self._take_kept():
            if wait:
                self._zygote.wait_ready()
            return
        if self._base is None:
            if limits_module.is_root():
                self._slot = slots.Slot.claim(self.limits.user)
                self._sweeps = limits_module.UidSweeps(self._slot.account.uid)
            self._base = Path(os.path.realpath(tempfile.mkdtemp(prefix="hw4-sandbox-")))
            os.chmod(self._base, 0o711)  # the sandbox user may enter its call dirs, not list them
            _copy_submission(self.submission_dir, self._base / "submission")
        config = {"provided_dir": str(self.provided_dir), "root_dir": str(paths.ROOT),
                  "submission_dir": str(self._base / "submission"), "limits": asdict(self.limits)}
        if self.account is not None:  # as root: who the children are, what they hide, the check
            hidden = secrets.secret_paths(provided_dir=self.provided_dir, extra=[self._base])
            config.update(account=asdict(self.account), secrets=hidden,
                          canaries=secrets.canaries(hidden), needed=secrets.needed_paths(self.provided_dir))
        self._zygote = _Zygote(config, _zygote_env(self.device), self._base / "zygote.log", self._base)
        if wait:
            self._zygote.wait_ready()

    @property
    def account(self) -> limits_module.Account | None:
        """Who this Sandbox's children run as (root only; None before ``start`` and without
        root): a uid no other live Sandbox on this machine runs as."""
        return self._slot.account if self._slot is not None else None

    @property
    def capabilities(self) -> dict:
        """Which defences are active (see the zygote), for the README and the report."""
        self.start()
        return dict(self._zygote.capabilities)

    def close(self) -> None:
        """Stop the zygote, kill what its calls left and remove the temporary files.

        The zygote is a subreaper that already killed every descendant after each call, so
        only where it is not (or it died) are this Sandbox's uid's processes swept. The uid is
        then free for the next Sandbox.
        """
        if self._keep_zygote():
            return
        if self._zygote is not None:
            own_cleanup = self._owns_cleanup()
            self._zygote.stop()
            self._zygote = None
            if not own_cleanup:
                self.kill_all()
        if self._sweeps is not None:
            self._sweeps.close()
            self._sweeps = None
        if self._slot is not None:
            self._slot.release()
            self._slot = None
        if self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None

    # -- a zygote kept for the next Sandbox (``reuse``) -----------------------------------------

    def _reuse_key(self) -> tuple:
        return (self.device, self.limits, str(self.provided_dir))

    def _take_kept(self) -> bool:
        """Adopt a kept zygote of this configuration, with its uid slot and folder, and put
        this submission's copy where its children import from. False when none is kept."""
        kept = reuse.take(self._reuse_key())
        if kept is None:
            return False
        self._zygote, self._base, self._slot, self._sweeps = kept.zygote, kept.base, kept.slot, kept.sweeps
        _copy_submission(self.submission_dir, self._base / "submission")
        return True

    def _keep_zygote(self) -> bool:
        """On close, with reuse on: hand a ready zygote that cleans up after itself, with its
        slot and folder, to the next Sandbox, this submission's copy removed. False otherwise."""
        zygote = self._zygote
        if not reuse.enabled() or zygote is None or zygote.capabilities is None \
                or not self._owns_cleanup():
            return False
        shutil.rmtree(self._base / "submission")
        kept = reuse.Kept(zygote=zygote, base=self._base, slot=self._slot, sweeps=self._sweeps,
                          discard=_discard_kept)
        self._zygote = self._base = self._slot = self._sweeps = None
        return reuse.keep(self._reuse_key(), kept)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _owns_cleanup(self) -> bool:
        """Whether the running zygote kills its calls' descendants itself (a subreaper)."""
        zygote = self._zygote
        return zygote is not None and zygote.alive() and bool((zygote.capabilities or {}).get("kill_orphans"))

    def kill_all(self, *, wait: float = 10.0) -> bool:
        """SIGKILL every process of this Sandbox's uid (as root): the fallback cleanup where the
        zygote is not a subreaper; ``sweep_sandbox_user`` ends a Gradescope run with it.

        The uid is this Sandbox's alone (``slots``), so no other grade's call is touched; waits
        up to ``wait`` seconds for a call in flight. Returns whether it ran; without root there
        is no user to sweep and it returns False.
        """
        return self._sweeps is not None and self._sweeps.sweep(wait=wait)

    # -- calls -----------------------------------------------------------------------------------

    def run(self, probe: str, inputs: dict | None = None, *, timeout: float = 10.0,
            threads: int = 1, seed: int = 0, _batch_timeouts: Sequence[float] = ()) -> ProbeResult:
        """Run the probe ``probe`` on ``inputs`` in a fresh child; the student's faults are raised
        as SubmissionError subclasses (with the captured output as ``.stdout``), ours as GraderError.

        A child that died in a way the grader cannot pin on the student (it ended without a
        result, was killed from outside or crashed) is run once more: a student's own exit or
        crash happens again, a fault of the machine (a thread that could not start under load,
        a sweep from another grade) seldom does. When the retry dies the same way and its
        output shows the runtime itself failing, the fault is the grader's: GraderError.
        """
        for attempt in (1, 2):
            self.start()  # again after a death: a zygote killed with the child is restarted
            try:
                return self._run_once(probe, inputs, timeout=timeout, threads=threads, seed=seed,
                                      batch_timeouts=_batch_timeouts)
            except (NoResult, Crashed) as error:
                if not getattr(error, "indeterminate", False):
                    raise
                if attempt == 2:
                    cause = runtime_failure(getattr(error, "stdout", "") or "")
                    if cause is not None:
                        raise GraderError(f"the sandbox child's runtime failed twice, not the "
                                          f"submission's code: {cause!r} ({error.message})") from None
                    raise
                self.retries += 1

    def _run_once(self, probe: str, inputs: dict | None, *, timeout: float, threads: int,
                  seed: int, batch_timeouts: Sequence[float] = ()) -> ProbeResult:
        self._calls += 1
        call_dir = self._base / f"call-{self._calls}"
        call_dir.mkdir(mode=0o700)
        try:
            if self.account is not None:
                os.chown(call_dir, self.account.uid, self.account.gid)
            if inputs:
                try:
                    wire.write(call_dir, inputs, stem="in")
                except wire.WireError as error:
                    raise GraderError(f"the inputs of {probe!r} are not plain data: {error}") from None
            request = {"probe": probe, "call_dir": str(call_dir), "timeout": timeout,
                       "threads": threads, "seed": seed, "device": self.device}
            if batch_timeouts:
                request["batch_timeouts"] = [float(limit) for limit in batch_timeouts]
            return self._call(request, call_dir)
        finally:
            shutil.rmtree(call_dir, ignore_errors=True)

    def run_trusted(self, function: str, inputs: dict, *, timeout: float,
                    threads: int = 1) -> ProbeResult:
        """Run the grader's own ``function`` ("module:name", one of ``child.TRUSTED_MODULES``'
        ``TRUSTED_FUNCTIONS``) on ``inputs`` in a fresh fork of the zygote, unconfined.

        The fork shares the zygote's torch, so a measurement costs only what it allocates, and
        the calling process needs no torch of its own. Every failure (an exception, a death,
        the clock) is the grader's: GraderError, with the child's output.
        """
        self.start()
        self._calls += 1
        call_dir = self._base / f"trusted-{self._calls}"
        call_dir.mkdir(mode=0o700)
        try:
            wire.write(call_dir, inputs, stem="in")
            request = {"trusted": function, "probe": function, "call_dir": str(call_dir),
                       "timeout": timeout, "threads": threads, "seed": 0, "device": self.device}
            started = time.monotonic()
            timed_out, status, _, _ = self._wait_for_child(request, started)
            elapsed = time.monotonic() - started
            output = self._read_output(call_dir)
            message = None if timed_out else wire.read(call_dir, max_bytes=self.limits.max_result_bytes)
            if not well_formed(message):
                why = f"did not finish within {timeout:g} s" if timed_out else f"ended ({status}) without a result"
                raise GraderError(f"the grader's measurement {function} {why}\n{output[-2000:]}")
            return decode(message, output, elapsed)
        finally:
            shutil.rmtree(call_dir, ignore_errors=True)

    def run_batch(self, calls: Sequence[Call], *, threads: int = 1,
                  seed: int = 0) -> list[ProbeResult | SubmissionError | GraderError]:
        """Run ``calls`` in one child (the ``batch.run`` probe re-imports the student modules
        and resets global state before each), under the largest of their limits. Returns, per
        call, its ProbeResult or the error it met (a SubmissionError, or a GraderError for a
        fault of ours in that call alone), decoded as a single call's.

        When the batch as a whole fails (a call hung, crashed or ended the process, or the
        replies are not one message per call), each call is run again in its own child, so
        the failure is charged to the call that caused it; a GraderError of one of those lone
        calls is raised. A call that hung for its own whole limit (the batch notes which
        sub-call runs, and the batch is given until that one's limit has run out) is charged
        that timeout at once instead of being run and waited for again.
        """
        if len(calls) < 2:
            return [self._run_alone(call, threads, seed) for call in calls]
        batch = {"calls": [{"probe": call.name, "inputs": call.inputs} for call in calls]}
        hung: TimedOut | None = None
        try:
            # A batch that works takes well under a second. A call that hangs is charged its
            # own whole limit once, here, and the others are asked again alone.
            result = self.run("batch.run", batch, timeout=max(call.timeout for call in calls),
                              threads=threads, seed=seed,
                              _batch_timeouts=[call.timeout for call in calls])
            replies = result.values.get("results")
        except TimedOut as error:
            hung, replies = (error if hasattr(error, "batch_index") else None), None
        except SubmissionError:
            replies = None
        if type(replies) is not list or len(replies) != len(calls) or \
                not all(well_formed(reply) for reply in replies):
            return [hung if hung is not None and index == hung.batch_index
                    else self._run_alone(call, threads, seed) for index, call in enumerate(calls)]
        spans = result.values.get("output_spans")
        outcomes = []
        for index, reply in enumerate(replies):
            printed = span_output(result.output, spans, index)
            try:
                outcomes.append(decode(reply, result.stdout if printed is None else printed))
            except (SubmissionError, GraderError) as error:
                outcomes.append(error)
        return outcomes

    def _run_alone(self, call: Call, threads: int, seed: int) -> ProbeResult | SubmissionError:
        try:
            return self.run(call.name, call.inputs, timeout=call.timeout, threads=threads, seed=seed)
        except SubmissionError as error:
            return error

    def _call(self, request: dict, call_dir: Path) -> ProbeResult:
        started = time.monotonic()
        in_flight = self._sweeps.call() if self._sweeps is not None else contextlib.nullcontext()
        with in_flight:
            waited = self._wait_for_child(request, started)
        timed_out, status, zygote_died = waited.timed_out, waited.status, waited.zygote_died
        # The zygote, a subreaper, already killed every process the child left. A uid sweep
        # (which would also hit other grades' calls on this machine, so it waits for them)
        # only where it is not a subreaper, or when it died and its orphans went to init.
        if zygote_died or not self._owns_cleanup():
            self.kill_all(wait=REAP_TIMEOUT)
        elapsed = time.monotonic() - started
        output, printed = self._read_output(call_dir)
        stdout = output_text(output, printed)
        try:
            message = wire.read(call_dir, max_bytes=self.limits.max_result_bytes)
        except wire.WireError as error:
            raise _with_output(InvalidOutput(f"The result of your code could not be read: {error}."),
                                    stdout) from None
        if timed_out:
            raise self._hung_sub_call(request, waited, output, printed) or \
                _with_output(self._timed_out(request, call_dir, printed), stdout)
        if message is None:
            raise _with_output(self._no_result(status, request, call_dir), stdout)
        result = decode(message, stdout, elapsed)
        return replace(result, output=output)

    def _wait_for_child(self, request: dict, started: float) -> "_Waited":
        """Have the zygote fork the child and wait for it under the wall clock: ``timeout``
        seconds, or for a batch (``batch_timeouts``, each sub-call's limit) until the sub-call
        running then has had its own whole limit (``_batch_deadline``).

        Returns (timed out, exit status or None, whether the zygote died, the deadline it was
        killed at). The child's process group is killed in every case.
        """
        for attempt in (1, 2):  # a zygote that died before forking is restarted once
            try:
                self._zygote.send(request)
                reply = self._zygote.receive(time.monotonic() + FORK_TIMEOUT)
                if reply is None:
                    raise GraderError("the sandbox's zygote did not fork in time")
                break
            except _ZygoteGone:
                self._zygote.stop()
                if attempt == 2:
                    raise GraderError("the sandbox's zygote keeps dying") from None
                self.start()
        pid = reply["pid"]
        deadline = started + request["timeout"]
        try:
            status = self._zygote.receive(deadline)
            if status is None and request.get("batch_timeouts"):
                deadline = self._batch_deadline(request, started, deadline)
                status = self._zygote.receive(deadline)
            if status is not None:
                return _Waited(False, status, False, deadline)
            limits_module.kill_group(pid)
            status = self._zygote.receive(time.monotonic() + REAP_TIMEOUT)
            if status is None:  # the zygote hangs (stopped by a student process?)
                self._zygote.stop()
            return _Waited(True, status, status is None, deadline)
        except _ZygoteGone:
            self._zygote.stop()
            return _Waited(False, None, True, deadline)
        finally:
            limits_module.kill_group(pid)

    # -- a batch that hangs ----------------------------------------------------------------------

    def _batch_progress(self, request: dict) -> tuple[int, float, int] | None:
        """The batch's note of its sub-call running now: (index, start on the monotonic clock,
        byte offset of its output), or None when there is no usable note. Written in the
        child, so checked for range only: a forged note can charge a time limit to one of the
        student's own calls, never take one away or stretch the wait past ``_batch_deadline``'s cap."""
        try:
            with wire.open_regular(Path(request["call_dir"]) / PROGRESS_FILE, 4096) as file:
                index, start, offset = file.read(200).decode("ascii").split()
            index, start, offset = int(index), float(start), int(offset)
        except (wire.WireError, OSError, ValueError, UnicodeDecodeError):
            return None
        if not 0 <= index < len(request["batch_timeouts"]) or offset < 0 or start != start:
            return None
        return index, start, offset

    def _batch_deadline(self, request: dict, started: float, deadline: float) -> float:
        """When a batch whose first ``deadline`` passed is stopped: once the sub-call running
        then has run for its own whole limit, so that it can be charged the timeout at once
        (``run_batch``), but never later than the sum of every sub-call's limit, which is what
        running each alone would cost at most."""
        progress = self._batch_progress(request)
        if progress is None:
            return deadline
        index, start, _ = progress
        cap = started + sum(request["batch_timeouts"])
        return min(max(deadline, start + request["batch_timeouts"][index]), cap)

    def _hung_sub_call(self, request: dict, waited: "_Waited", output: bytes,
                       printed: int) -> TimedOut | None:
        """The timeout of the batch's sub-call that ran for its whole limit when the batch was
        stopped, with what it printed, or None when no sub-call did (a batch run out of time
        by several calls together, or with no note)."""
        progress = self._batch_progress(request) if request.get("batch_timeouts") else None
        if progress is None:
            return None
        index, start, offset = progress
        limit = request["batch_timeouts"][index]
        if waited.deadline - start < limit - 1e-3:  # stopped before its own limit ran out
            return None
        error = TimedOut(f"Your code did not finish within the time limit of {limit:g} s (it was "
                         f"running `{self._running(request, Path(request['call_dir']))}`) and was "
                         f"stopped.")
        error.batch_index = index
        return _with_output(error, output_text(output[offset:], max(printed - offset, 0)))

    # -- results and errors ----------------------------------------------------------------------

    def _running(self, request: dict, call_dir: Path) -> str:
        try:
            with wire.open_regular(call_dir / RUNNING_FILE, 4096) as file:
                text = file.read(200).decode("utf-8", "replace")
            return "".join(ch for ch in text if ch.isprintable()) or request["probe"]
        except (wire.WireError, TypeError, AttributeError, OSError):
            return request["probe"]

    def _timed_out(self, request: dict, call_dir: Path, printed: int) -> TimedOut:
        flood = "" if printed <= self.limits.max_output else (
            f" It had printed {printed:,} bytes by then: printing that much takes time of its own "
            f"(print less, or not inside loops).")
        return TimedOut(f"Your code did not finish within the time limit of {request['timeout']:g} s "
                        f"(it was running `{self._running(request, call_dir)}`) and was stopped.{flood}")

    def _no_result(self, status: dict | None, request: dict, call_dir: Path) -> SubmissionError:
        """The error of a child that left no result. Deaths by a limit of ours (CPU time, file
        size, memory) are the student's for sure; the others are marked ``indeterminate``, and
        ``run`` tries them once more before it believes them."""
        error = self._death(status, request, call_dir)
        error.indeterminate = isinstance(error, (NoResult, Crashed)) and not (
            status is not None and status.get("signal") in (signal.SIGXCPU, signal.SIGXFSZ))
        return error

    def _death(self, status: dict | None, request: dict, call_dir: Path) -> SubmissionError:
        running = self._running(request, call_dir)
        if status is None:
            return NoResult(f"The process running your code (`{running}`) was killed from outside "
                            f"before it returned a result. Do not signal other processes.")
        if "signal" in status:
            number = status["signal"]
            if number == signal.SIGXCPU:
                return TimedOut(f"`{running}` used up its CPU time limit and was stopped.")
            if number == signal.SIGXFSZ:
                return Crashed(f"`{running}` wrote a file larger than the limit of "
                               f"{self.limits.max_file_bytes // limits_module.MiB} MiB (printing too "
                               f"much counts) and was stopped.")
            if number == signal.SIGKILL:
                return OutOfMemory(f"`{running}` was killed, most likely for using too much memory.")
            name = _SIGNAL_WORDS.get(number) or signal.strsignal(number) or f"signal {number}"
            return Crashed(f"`{running}` crashed the Python process: {name} "
                           f"({signal.Signals(number).name}).")
        code = status.get("exit")
        return NoResult(f"`{running}` ended the process (exit code {code}) without returning a result: "
                        f"calling `os._exit`, `sys.exit` or `exit()`, or raising `SystemExit` or "
                        f"`KeyboardInterrupt`, ends it. Return values instead.")

    def _read_output(self, call_dir: Path) -> tuple[bytes, int]:
        """The first ``max_output`` bytes the call printed, and how many it printed in all (the
        child's file may be as large as its file-size limit: only the cap is read)."""
        try:
            file = wire.open_regular(call_dir / OUTPUT_FILE, 1 << 62)
        except wire.WireError as error:
            return f"[output unavailable: {error}]".encode(), 0
        if file is None:
            return b"", 0
        with file:
            data = file.read(self.limits.max_output)
            total = os.fstat(file.fileno()).st_size
        return data, total
