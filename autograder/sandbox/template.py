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

Anything that goes wrong returns None on the client's side, or a forked zygote that does not
come up, and the Sandbox starts a fresh zygote as it would without a template: a template only
ever saves time. No request ends the template.

Who can reach it: as root, only root (the folder is 0700, and a call's /tmp is private); the
sandbox user cannot. Without root there is no sandbox user: student code runs as the batch's
own user, who can already reach everything the batch can, the template included. A forked
zygote's /proc cmdline is the template's (its socket path among it); its ``sys.argv`` is a fresh
zygote's.
"""
from __future__ import annotations

import functools
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
_SOCKET = "zygote-template.sock"  # in the template's own folder
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from autograder.sandbox.template import serve; serve(*sys.argv[2:])")


@functools.lru_cache(maxsize=None)
def supported() -> bool:
    """Whether this Python and kernel have what a template needs (fd passing, pidfds: 5.3+)."""
    if not (hasattr(socket, "send_fds") and hasattr(os, "pidfd_open")
            and hasattr(signal, "pidfd_send_signal")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


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

    def _exited(self, timeout: float | None) -> bool:
        if self._pidfd < 0:
            return True
        poller = select.poll()  # not select(): a grader process may hold fds above 1023
        poller.register(self._pidfd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else int(timeout * 1000)))

    def poll(self) -> int | None:
        """None while the zygote runs; 0 once it has exited (its status is the template's)."""
        return 0 if self._exited(0) else None

    def kill_group(self) -> None:
        """SIGKILL the zygote's group while it runs, and the zygote itself through its pidfd
        (never a pid that another process may have taken since)."""
        if self._exited(0):
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)  # unreaped (the template waits for us): still its
        except (ProcessLookupError, PermissionError):
            pass
        try:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        except (ProcessLookupError, OSError):
            pass

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until the zygote has exited (or ``timeout`` passes), then let the template
        reap it."""
        if self._pidfd >= 0:
            if not self._exited(timeout):
                return None
            os.close(self._pidfd)
            self._pidfd = -1
            self._connection.close()
        return 0


def spawn(request: dict, log_fd: int) -> Spawned | None:
    """Ask the template named by ``ENV`` for a zygote logging to ``log_fd``; None when there is
    no template, or it refused or failed (the caller then starts a fresh zygote)."""
    address = os.environ.get(ENV)
    if not address or not supported():
        return None
    mine: list = []  # what to close if no zygote comes of it
    reply, fds = {}, []
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mine.append(connection)
        stdin_r, stdin_w = os.pipe()
        mine += [stdin_r, stdin_w]
        stdout_r, stdout_w = os.pipe()
        mine += [stdout_r, stdout_w]
        connection.settimeout(REPLY_TIMEOUT)
        connection.connect(address)
        socket.send_fds(connection, [json.dumps(request).encode()], [stdin_r, stdout_w, log_fd])
        message, fds, _, _ = socket.recv_fds(connection, _MAX_MESSAGE, 1)
        reply = json.loads(message or b"{}")
    except (OSError, ValueError):
        pass
    pid = reply.get("pid") if isinstance(reply, dict) else None
    if type(pid) is not int or pid <= 0 or len(fds) != 1:  # (no reply unless all was made)
        for item in (*fds, *mine):
            _close(item)
        return None
    for item in (stdin_r, stdout_w):  # the zygote holds its own copies now
        _close(item)
    os.set_inheritable(fds[0], False)
    connection.settimeout(None)
    return Spawned(pid, fds[0], connection, stdin_w, stdout_r)


def _close(item) -> None:
    try:
        item.close() if isinstance(item, socket.socket) else os.close(item)
    except OSError:
        pass


# -- the batch's side: start and stop one ----------------------------------------------------

class Template:
    """A running template process and the folder of its socket."""

    def __init__(self, process: subprocess.Popen, folder: Path):
        self.process, self.folder = process, folder
        self.address = str(folder / _SOCKET)  # what ENV is set to

    @classmethod
    def start(cls, device: str, *, provided_dir: Path | None = None, log: Path | None = None,
              preexec_fn=None) -> "Template | None":
        """Start a template for Sandboxes of ``device`` and wait until it is ready; None when
        it did not start (the grades then start their own zygotes)."""
        from autograder.machine import resolve_device
        from autograder.sandbox.client import _zygote_env

        device = resolve_device(device)
        folder = Path(tempfile.mkdtemp(prefix="hw4-zygote-template-"))  # mode 0700: ours alone
        address = folder / _SOCKET
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
    its stdin closes and its last zygote's connection with it."""
    from autograder.sandbox import zygote

    sys.dont_write_bytecode = True
    sys.stdout = sys.stderr  # fd 1 carries only the ready line
    # The environment it was started with: importing torch._dynamo adds to os.environ, as it
    # does in a fresh zygote.
    expected = {"provided_dir": provided_dir, "root_dir": str(paths.ROOT),
                "python": sys.executable, "env": dict(os.environ)}
    if not supported():  # a kernel without pidfds (< 5.3): no ready line, no template
        raise SystemExit("zygote template: this kernel has no pidfds")
    zygote.import_trusted(Path(provided_dir))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(16)
    # SIGTERM (what the batch's death sends it, PR_SET_PDEATHSIG) ends it like EOF does, so
    # its folder goes with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.write(1, b'{"ready": true}\n')  # inside the try: a SIGTERM right after it still cleans
        _serve_requests(listener, address, expected, zygote)
    finally:
        listener.close()
        shutil.rmtree(os.path.dirname(address), ignore_errors=True)


def _serve_requests(listener: socket.socket, address: str, expected: dict, zygote) -> None:
    """Fork a zygote per request; reap each one once its client has closed its connection.
    At EOF on stdin no new request is taken, but the zygotes still open are waited for, so a
    client never kills a pid that init has reaped and handed to another process."""
    zygotes: dict[socket.socket, int] = {}  # open connection -> its zygote
    unreaped: set[int] = set()              # zygotes whose client closed its connection
    accepting = True
    while accepting or zygotes or unreaped:
        waiting = [0, listener] if accepting else []
        readable, _, _ = select.select([*waiting, *zygotes], [], [], 1.0)
        if accepting and 0 in readable and not os.read(0, 1):
            accepting = False  # the batch is done
            listener.close()
            shutil.rmtree(os.path.dirname(address), ignore_errors=True)
            continue
        if accepting and listener in readable:
            _accept(listener, zygotes, expected, zygote)
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


def _accept(listener: socket.socket, zygotes: dict, expected: dict, zygote) -> None:
    """One request: a zygote forked and its connection kept, or the request dropped. Nothing
    a request meets (no fds left, fork refused) ends the template: the client then starts a
    fresh zygote."""
    try:
        connection, _ = listener.accept()
    except OSError as error:
        print(f"accept failed: {error}", file=sys.stderr, flush=True)
        return
    try:
        pid = _fork_zygote(connection, [listener, *zygotes], expected, zygote)
    except Exception as error:  # noqa: BLE001 - a request's fault, never the template's end
        print(f"request failed: {error!r}", file=sys.stderr, flush=True)
        pid = None
    if pid is None:
        connection.close()
    else:
        zygotes[connection] = pid


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
            _become_zygote(request, fds, [*others, connection], zygote)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            os.kill(pid, signal.SIGKILL)  # never handed out: not ours to keep
            os.waitpid(pid, 0)
            raise
        print(f"forked zygote {pid} in {request['cwd']}", file=sys.stderr, flush=True)
        try:
            _reply(connection, {"pid": pid}, [pidfd])
        finally:
            os.close(pidfd)
        connection.settimeout(None)
        return pid
    finally:
        for fd in fds:
            _close(fd)


def _become_zygote(request: dict, fds: list[int], sockets: list, zygote) -> None:
    """In the forked child: become what ``python -I -c <boot> ROOT`` started by ``_Zygote``
    would be (fds 0-2, its own session, its cwd, default signals, its argv), then run the
    zygote. Never returns."""
    code = 1
    try:
        for sock in sockets:
            sock.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.setsid()  # its own group, as Popen(start_new_session=True) gives
        os.chdir(request["cwd"])
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter has
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.argv[:] = ["-c", str(paths.ROOT)]  # not the template's socket and folder
        zygote.main()
        code = 0
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else 1
    except BaseException:  # the zygote's log says why, as a fresh zygote's traceback would
        import traceback
        traceback.print_exc()
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reply(connection: socket.socket, message: dict, fds=()) -> None:
    try:
        socket.send_fds(connection, [json.dumps(message).encode()], list(fds))
    except OSError:
        pass
