"""What student code must not see, and how to tell whether it can.

Secrets live in the engine's tree (``paths.ROOT``): the reference and its True/False key, the
tests (hidden ones included), the fixtures other than ``fixtures/embedded``, the rubric, built
zips, the git history, caches. Hiding is deny-by-default: every entry of ROOT is secret except
what a sandboxed call needs (the ``autograder`` package, the provided code, ``fixtures/embedded``
and the Python installation when it lives there). The grader adds its own places with
``hide_also`` (the results folder, Gradescope's submission metadata) before the sandbox starts;
the Sandbox adds its own temporary folder.

As root the sandbox covers these paths in each child's private mount namespace (``mounts``);
where mounts are refused, ``restrict_permissions`` (what setup.sh does on Gradescope) makes them
unreadable to others. ``canaries`` names files that must stay unreadable either way, and
``unreadable_check`` (run as the sandbox user at zygote start) reports the ones it could read.
"""
from __future__ import annotations

import os
import stat
import sys
import sysconfig
from pathlib import Path

from autograder import paths

_KEPT_FIXTURES = ("embedded",)
HIDE_ENV = "HW4_SANDBOX_HIDE"
_registered: list[str] = []


def hide_also(*extra) -> None:
    """Add paths (folders or files) every Sandbox started later in this process must hide."""
    for path in extra:
        real = os.path.realpath(path)
        if real not in _registered:
            _registered.append(real)


def registered() -> list[str]:
    """The paths given to ``hide_also``, then those of ``$HW4_SANDBOX_HIDE`` (os.pathsep-separated:
    staff can hide more of a machine, e.g. another checkout of the engine)."""
    from_env = [os.path.realpath(path) for path in os.environ.get(HIDE_ENV, "").split(os.pathsep) if path]
    return _registered + [path for path in from_env if path not in _registered]


def _top_entry(path: str, root: str) -> str | None:
    """The entry of ``root`` that holds ``path``, or None when ``path`` is not below ``root``."""
    relative = os.path.relpath(path, root)
    if relative == "." or relative.startswith(".."):
        return None
    return relative.split(os.sep, 1)[0]


def needed_paths(provided_dir: Path | str = paths.PROVIDED_DIR) -> list[str]:
    """Real paths of the folders a sandboxed call reads (those that exist): the engine package,
    the provided code, the embedded fixtures and the Python installation (prefixes, stdlib,
    site-packages)."""
    # What the zygote (``python -I``: no cwd, no PYTHONPATH) imports from; never this process's
    # own sys.path, which may hold the tests' folders.
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    python |= {value for key, value in sysconfig.get_paths().items()
               if key in ("stdlib", "platstdlib", "purelib", "platlib")}
    needed = [paths.ROOT / "autograder", Path(provided_dir) / "hw4",
              *(paths.FIXTURES_DIR / name for name in _KEPT_FIXTURES), *python]
    return sorted({os.path.realpath(path) for path in needed if os.path.isdir(path)})


def secret_paths(*, root: Path | str = paths.ROOT, provided_dir: Path | str = paths.PROVIDED_DIR,
                 extra=()) -> list[str]:
    """Real paths to hide from student code: ROOT's entries but the needed ones, the fixtures
    but the embedded ones, the registered paths and ``extra``. Only paths that exist."""
    root = os.path.realpath(root)
    needed = needed_paths(provided_dir)
    kept = {_top_entry(path, root) for path in needed} - {None}
    hidden = []
    for name in sorted(os.listdir(root)):
        if name not in kept:
            hidden.append(os.path.join(root, name))
    fixtures = os.path.realpath(paths.FIXTURES_DIR)
    if os.path.isdir(fixtures) and _top_entry(fixtures, root) in kept:
        hidden += [os.path.join(fixtures, name) for name in sorted(os.listdir(fixtures))
                   if name not in _KEPT_FIXTURES]
    hidden += [os.path.realpath(path) for path in (*registered(), *extra)]
    # A registered secret may hold a needed path (a checkout holding the Python in use): the
    # mount namespace puts the needed path back; the permission fallback leaves it alone.
    return sorted({path for path in hidden if os.path.lexists(path) and path not in needed})


def canaries(secrets: list[str], *, root: Path | str = paths.ROOT) -> list[str]:
    """Files and folders the sandbox user must not read: the T/F key, one hidden test, one
    hidden fixture, and every secret outside ROOT (the results folder, temp dirs)."""
    root = Path(root)
    found = [root / "reference" / "answers.py", root / "rubric.toml"]
    for hidden in (root / "tests" / "grading" / "hidden", paths.FIXTURES_DIR / "expected" / "hidden"):
        if hidden.is_dir():
            files = sorted(p for p in hidden.rglob("*") if p.is_file())
            found += files[:1]
    found = [os.path.realpath(path) for path in found if path.exists()]
    root_real = os.path.realpath(root)
    found += [path for path in secrets if _top_entry(path, root_real) is None]
    return found


def readable(candidates: list[str]) -> list[str]:
    """The candidates this process can read something of: a byte of a file, a folder's listing."""
    seen = []
    for path in candidates:
        try:
            if os.path.isdir(path):
                os.listdir(path)
            else:
                with open(path, "rb") as handle:
                    if not handle.read(1):
                        continue  # covered by /dev/null, or empty: nothing to learn
        except OSError:
            continue
        seen.append(path)
    return seen


def restrict_permissions(secrets: list[str]) -> None:
    """Make ``secrets`` unreadable to others (chmod -R o-rwx, links left alone); idempotent.

    The fallback where the platform refuses mount namespaces; root keeps full access. A secret
    that holds a needed path (see ``needed_paths``) is left alone: closing it would lock the
    sandbox user out of Python; the self-check then reports what stays readable.
    """
    needed = needed_paths()
    for secret in secrets:
        if os.path.islink(secret) or any(need.startswith(secret + os.sep) for need in needed):
            continue
        _restrict(secret)
        if os.path.isdir(secret):
            for folder, subfolders, files in os.walk(secret):
                for name in subfolders + files:
                    path = os.path.join(folder, name)
                    if not os.path.islink(path):
                        _restrict(path)


def _restrict(path: str) -> None:
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    if mode & 0o007:
        os.chmod(path, mode & ~0o007)
