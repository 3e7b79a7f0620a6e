"""A private mount namespace for one sandboxed call: secrets covered, fresh temporary folders.

Linux only, as root, in the forked child before it drops privileges (``hide_in_child``). The
child's view of the filesystem then differs from the grader's in three ways:
- every secret path is covered by an empty read-only tmpfs (a file, by /dev/null), so the
  reference, the tests, the results folder and the grader's own temporary folders are not there;
  so is every top-level folder but the system's (``SYSTEM_TOP_DIRS``), wherever a copy may lie;
- /tmp, /var/tmp and /dev/shm are fresh size-capped tmpfs mounts: what the call writes there
  is bounded, invisible to others, and gone with the call;
- the few folders the call needs inside hidden places (its call dir, the submission copy, the
  engine, the provided code, the Python installation) are bind-mounted back at their own paths,
  the submission read-only.
Mounts are made private first, so nothing propagates back to the grader's namespace; the
namespace and its tmpfs mounts vanish when the call's last process exits.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

PRIVATE_TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
# The top-level folders a call sees as they are: the system's programs, libraries and settings.
# Every other top-level folder (/home, /root, /work, /opt, /srv, /mnt, /autograder, ...) is covered
# like a secret, so a copy of the reference that this list of secrets does not name (a second
# checkout, a backup) is out of reach too; the folders a call needs there are put back.
SYSTEM_TOP_DIRS = frozenset({"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/etc",
                             "/dev", "/proc", "/sys", "/run", "/var", "/tmp"})
_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                                ctypes.c_char_p]
        _libc.unshare.argtypes = [ctypes.c_int]
    return _libc


def _encode(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2); OSError on failure."""
    if _lib().mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {fstype or 'bind'} on {target}: {os.strerror(errno)}")


def unshare_mounts() -> None:
    """Enter a new mount namespace whose mounts never propagate back; OSError on failure."""
    if not sys.platform.startswith("linux"):
        raise OSError("mount namespaces exist only on Linux")
    if _lib().unshare(CLONE_NEWNS) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWNS): {os.strerror(errno)}")
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _make_mountpoint(path: str, is_dir: bool) -> None:
    """Create ``path`` (root-owned, traversable only) inside a fresh tmpfs that now covers it."""
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o711, exist_ok=True)
    if is_dir:
        os.makedirs(path, mode=0o711, exist_ok=True)
    elif not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def hide_in_child(secrets: list[str], *, keep: dict[str, bool], tmp_bytes: int) -> None:
    """Build the call's private view (see the module docstring). Root only; OSError on failure.

    ``secrets``: absolute real paths to cover (folders or files; missing ones are skipped).
    ``keep``: {absolute real path: read-only?} of folders the call needs even where they lie
    under a secret or a temporary folder (the call dir, the submission, an engine or a Python
    unpacked under /tmp); they are bind-mounted back, outermost first. Must run before any
    other thread exists (a forked child), with cwd outside the paths it covers.
    """
    unshare_mounts()
    # Opened in the new namespace, before anything covers them: a bind mount's source must be
    # a mount of the caller's own namespace.
    handles = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in keep}
    try:
        covered: list[str] = []
        for folder in PRIVATE_TMP_DIRS:
            if os.path.isdir(folder) and not os.path.islink(folder):
                mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV,
                      f"size={max(tmp_bytes, 4096)},mode=1777,nr_inodes=4096")
                covered.append(folder)
        read_only_tmpfs = []
        others = [os.path.join("/", name) for name in sorted(os.listdir("/"))]
        others = [path for path in others if path not in SYSTEM_TOP_DIRS
                  and os.path.isdir(path) and not os.path.islink(path)]
        for secret in sorted(set(secrets) | set(others), key=len):
            if any(_is_under(secret, folder) for folder in covered) or not os.path.lexists(secret):
                continue  # already inside a fresh mount: it is not there any more
            if os.path.isdir(secret):
                mount("tmpfs", secret, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0711,nr_inodes=64")
                read_only_tmpfs.append(secret)
            else:
                mount("/dev/null", secret, None, MS_BIND)
            covered.append(secret)
        _put_back(keep, handles, covered, read_only_tmpfs)
    finally:
        for handle in handles.values():
            os.close(handle)


def _put_back(keep: dict[str, bool], handles: dict[str, int], covered: list[str],
              read_only_tmpfs: list[str]) -> None:
    """Bind-mount each kept folder that a cover hides back at its own path (outermost first,
    from the handle opened before the covers), then make the covering tmpfs mounts read-only."""
    restored: list[str] = []
    for path, read_only in sorted(keep.items(), key=lambda item: len(item[0])):
        if any(_is_under(path, folder) for folder in restored) or \
                not any(_is_under(path, folder) and path != folder for folder in covered):
            continue  # still visible where it is, or already inside a folder put back
        restored.append(path)
        _make_mountpoint(path, is_dir=True)
        mount(f"/proc/self/fd/{handles[path]}", path, None, MS_BIND)
        if read_only:
            mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for cover in read_only_tmpfs:  # the mountpoints exist now: freeze the covers
        mount(None, cover, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def locked_folders(needed: list[str]) -> list[str]:
    """The folders above ``needed`` paths that others cannot traverse (no o+x), outermost first:
    a Python under /root (mode 700) is out of the sandbox user's reach behind /root."""
    locked = set()
    for path in needed:
        folder = os.path.dirname(os.path.abspath(path))
        while folder != os.path.dirname(folder):
            try:
                if not os.stat(folder).st_mode & 0o001:
                    locked.add(folder)
            except OSError:
                pass
            folder = os.path.dirname(folder)
    return sorted(locked, key=lambda folder: (len(folder), folder))


def reach_in_child(locked: list[str], *, keep: list[str]) -> None:
    """Let the sandbox user reach ``keep`` (the Python installation, the engine) through
    ``locked`` folders, without changing their modes for anyone else: in a private mount
    namespace, each locked folder is covered by an empty traversable tmpfs (mode 0711, read-only)
    and the kept folders under it are bind-mounted back at their own paths. What else the
    locked folder holds is out of the call's sight. Root only, in a forked child before the
    privilege drop, where secrets are hidden by file permissions; OSError on failure."""
    unshare_mounts()
    keep = [path for path in keep if any(_is_under(path, folder) and path != folder for folder in locked)]
    handles = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in keep}
    try:
        covered: list[str] = []
        for folder in locked:
            if not any(_is_under(folder, outer) for outer in covered):
                mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0711,nr_inodes=64")
                covered.append(folder)
        _put_back(dict.fromkeys(keep, True), handles, covered, covered)
    finally:
        for handle in handles.values():
            os.close(handle)


def available() -> bool:
    """Whether this process may build a private mount namespace (Linux, root, CAP_SYS_ADMIN):
    a forked helper tries one, with a tmpfs on /tmp. Leaves nothing behind."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the helper's life is two syscalls
        try:
            unshare_mounts()
            mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=4096")
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
