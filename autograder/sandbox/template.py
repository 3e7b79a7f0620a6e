"""Zygote templates: one trusted process that has done a zygote's imports forks zygotes for
other grade processes, so a batch pays torch's import once instead of once per submission.

A zygote's start is mostly its imports (torch, ``torch._dynamo``, the probes: some 3.3 of a
unit-stage grade's 8 CPU seconds on a 2-core machine). A batch grades every submission in its
own grader process (``batch.worker``), so each would start its own zygote; with a template,
the batch starts one process that imports the same modules and nothing else (no config, no
student code, no torch op), and each grader process's ``Sandbox`` asks it for a zygote instead
of starting one. The forked zygote then runs ``zygote.main`` exactly as a fresh one does: it
reads its config from the grader process, confines itself, runs the self-check as root and
serves calls. Only its imports were done earlier, by the same code in the same environment.

    with Template.start("cpu") as template:         # the batch
        env = {**os.environ, ENV: template.address}  # each grader process it starts
    spawn(request) -> Spawned | None                 # _Zygote, in the grader process

Protocol, over a Unix socket in a folder only the template's user can enter: the client sends
one JSON request (``provided_dir``, ``root_dir``, ``python``, ``env``: what a fresh zygote of
its Sandbox would get, and ``cwd``) with three file descriptors: the zygote's stdin and stdout
pipes and its log. The template refuses a request that differs from what it imported for or
runs with (``{"error"}``); else it forks, and answers ``{"pid"}`` with a pidfd of the zygote.
The connection stays open for the zygote's life: the template reaps the zygote only after the
client closes it, so the pid a client kills (``kill_group``) is never another process's.

Anything that goes wrong on the client's side returns None, and the Sandbox starts a fresh
zygote as it would without a template: a template only ever saves time.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder import paths

ENV = "HW4_ZYGOTE_TEMPLATE"  # the template's socket, in a grader process's environment
READY_TIMEOUT = 120.0        # importing torch on a loaded 2-core machine
REPLY_TIMEOUT = 10.0         # from a request to the template's {"pid"}
_MAX_MESSAGE = 1 << 16
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from autograder.sandbox.template import serve; serve(*sys.argv[2:])")


# -- the client's side: a zygote that is not our child -------------------------------------

class Spawned:
    """A zygote forked by a template: the part of ``subprocess.Popen`` that ``_Zygote`` uses.

    It is not our child, so its exit is seen through a pidfd; the connection to the template
    holds it unreaped (a zombie at worst) until ``wait`` has seen it go and closed it.
    """

    def __init__(self, pid: int, pidfd: int, connection: socket.socket, stdin_fd: int,
                 stdout_fd: int):
        self.pid, self._pidfd, self._connection = pid, pidfd, connection
        self.stdin, self.stdout = os.fdopen(stdin_fd, "wb"), os.fdopen(stdout_fd, "rb")

    def poll(self) -> int | None:
        """None while the zygote runs; 0 once it has exited (its status is the template's)."""
        if self._pidfd < 0:
            return 0
        readable, _, _ = select.select([self._pidfd], [], [], 0)
        return 0 if readable else None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until the zygote has exited (or ``timeout`` passes), then let the template
        reap it."""
        if self._pidfd >= 0:
            readable, _, _ = select.select([self._pidfd], [], [], timeout)
            if not readable:
                return None
            os.close(self._pidfd)
            self._pidfd = -1
            self._connection.close()
        return 0


def spawn(request: dict, log_fd: int) -> Spawned | None:
    """Ask the template named by ``ENV`` for a zygote logging to ``log_fd``; None when there is
    no template, or it refused or failed (the caller then starts a fresh zygote)."""
    address = os.environ.get(ENV)
    if not address or not hasattr(socket, "send_fds") or not hasattr(os, "pidfd_open"):
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    (stdin_r, stdin_w), (stdout_r, stdout_w) = os.pipe(), os.pipe()
    reply, fds = {}, []
    try:
        connection.settimeout(REPLY_TIMEOUT)
        connection.connect(address)
        socket.send_fds(connection, [json.dumps(request).encode()], [stdin_r, stdout_w, log_fd])
        message, fds, _, _ = socket.recv_fds(connection, _MAX_MESSAGE, 1)
        reply = json.loads(message or b"{}")
    except (OSError, ValueError):
        pass
    finally:
        os.close(stdin_r)  # the zygote holds its own copies now
        os.close(stdout_w)
    pid = reply.get("pid") if isinstance(reply, dict) else None
    if type(pid) is not int or pid <= 0 or len(fds) != 1:
        for fd in (*fds, stdin_w, stdout_r):
            os.close(fd)
        connection.close()
        return None
    connection.settimeout(None)
    return Spawned(pid, fds[0], connection, stdin_w, stdout_r)


# -- the batch's side: start and stop one ----------------------------------------------------

class Template:
    """A running template process and the folder of its socket."""

    def __init__(self, process: subprocess.Popen, folder: Path):
        self.process, self.folder = process, folder
        self.address = str(folder / "zygote-template.sock")  # what ENV is set to

    @classmethod
    def start(cls, device: str, *, provided_dir: Path | None = None, log: Path | None = None,
              preexec_fn=None) -> "Template | None":
        """Start a template for Sandboxes of ``device`` and wait until it is ready; None when
        it did not start (the grades then start their own zygotes)."""
        from autograder.machine import resolve_device
        from autograder.sandbox.client import _zygote_env

        device = resolve_device(device)
        folder = Path(tempfile.mkdtemp(prefix="hw4-zygote-template-"))  # mode 0700: ours alone
        address = folder / "zygote-template.sock"
        provided = Path(provided_dir) if provided_dir is not None else paths.PROVIDED_DIR
        sink = open(log, "ab") if log is not None else subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, str(paths.ROOT), str(address), str(provided)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sink,
                env=_zygote_env(device), cwd=folder, close_fds=True, start_new_session=True,
                preexec_fn=preexec_fn)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            return None
        finally:
            if log is not None:
                sink.close()
        template = cls(process, folder)
        readable, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
        if not readable or process.stdout.readline().strip() != b'{"ready": true}':
            template.close()
            return None
        return template

    def close(self) -> None:
        """Stop the template (its zygotes live on until their grader processes close them)."""
        try:
            self.process.stdin.close()  # EOF: the template's loop ends
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "Template":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# -- the template process --------------------------------------------------------------------

def serve(address: str, provided_dir: str) -> None:
    """The template process: the zygote's imports, then one fork per accepted request, until
    its stdin closes."""
    from autograder.sandbox import zygote

    sys.dont_write_bytecode = True
    sys.stdout = sys.stderr  # fd 1 carries only the ready line
    # The environment it was started with: importing torch._dynamo adds to os.environ, as it
    # does in a fresh zygote.
    expected = {"provided_dir": provided_dir, "root_dir": str(paths.ROOT),
                "python": sys.executable, "env": dict(os.environ)}
    zygote.import_trusted(Path(provided_dir))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(16)
    # SIGTERM (what the batch's death sends it, PR_SET_PDEATHSIG) ends it like EOF does, so
    # its folder goes with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.write(1, b'{"ready": true}\n')  # inside the try: a SIGTERM right after it still cleans
        _serve_requests(listener, expected, zygote)
    finally:
        listener.close()
        shutil.rmtree(os.path.dirname(address), ignore_errors=True)


def _serve_requests(listener: socket.socket, expected: dict, zygote) -> None:
    zygotes: dict[socket.socket, int] = {}  # open connection -> its zygote
    unreaped: set[int] = set()              # zygotes whose client closed its connection
    while True:
        readable, _, _ = select.select([0, listener, *zygotes], [], [], 1.0)
        if 0 in readable and not os.read(0, 1):
            return  # the batch is done: zygotes still running are reparented, never killed
        if listener in readable:
            connection, _ = listener.accept()
            pid = _fork_zygote(connection, [listener, *zygotes], expected, zygote)
            if pid is None:
                connection.close()
            else:
                zygotes[connection] = pid
        for connection in [c for c in readable if c in zygotes]:
            try:
                closed = not connection.recv(1)
            except OSError:
                closed = True
            if closed:
                unreaped.add(zygotes.pop(connection))
                connection.close()
        for pid in list(unreaped):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                unreaped.discard(pid)


def _fork_zygote(connection: socket.socket, others: list, expected: dict, zygote) -> int | None:
    """Fork one zygote for the request on ``connection``; its pid, or None (refused). The
    zygote keeps none of ``others`` (the listener, other zygotes' connections)."""
    try:
        connection.settimeout(REPLY_TIMEOUT)
        message, fds, _, _ = socket.recv_fds(connection, _MAX_MESSAGE, 3)
        request = json.loads(message)
    except (OSError, ValueError):
        return None
    try:
        mismatch = [name for name in expected if request.get(name) != expected[name]]
        if len(fds) != 3 or mismatch or not isinstance(request.get("cwd"), str):
            why = f"refused: differs in {mismatch or 'its fds or cwd'}"
            print(why, file=sys.stderr, flush=True)  # the template's log: why a grade was slow
            _reply(connection, {"error": why})
            return None
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for sock in (*others, connection):
                    sock.close()
                for target, fd in enumerate(fds):
                    os.dup2(fd, target)
                    os.close(fd)
                os.setsid()  # its own group, as Popen(start_new_session=True) gives
                os.chdir(request["cwd"])
                for sig in (signal.SIGINT, signal.SIGTERM):  # as a fresh interpreter has them
                    signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT
                                  else signal.SIG_DFL)
                zygote.main()
                code = 0
            except SystemExit as end:
                code = end.code if isinstance(end.code, int) else 1
            finally:
                os._exit(code)
        print(f"forked zygote {pid} in {request['cwd']}", file=sys.stderr, flush=True)
        pidfd = os.pidfd_open(pid)
        try:
            _reply(connection, {"pid": pid}, [pidfd])
        finally:
            os.close(pidfd)
        connection.settimeout(None)
        return pid
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


def _reply(connection: socket.socket, message: dict, fds=()) -> None:
    try:
        socket.send_fds(connection, [json.dumps(message).encode()], list(fds))
    except OSError:
        pass
