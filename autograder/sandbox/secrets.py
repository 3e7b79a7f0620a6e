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
_registered: list[str] = []


def hide_also(*extra) -> None:
    """Add paths (folders or files) every Sandbox started later in this process must hide."""
    for path in extra:
        real = os.path.realpath(path)
        if real not in _registered:
            _registered.append(real)


def registered() -> list[str]:
    return list(_registered)


def _top_entry(path: str, root: str) -> str | None:
    """The entry of ``root`` that holds ``path``, or None when ``path`` is not below ``root``."""
    relative = os.path.relpath(path, root)
    if relative == "." or relative.startswith(".."):
        return None
    return relative.split(os.sep, 1)[0]


def needed_paths(provided_dir: Path | str = paths.PROVIDED_DIR) -> list[str]:
    """Real paths a sandboxed call reads: the engine package, the provided code, the embedded
    fixtures and the Python installation (prefixes and import path)."""
    # What the zygote (``python -I``: no cwd, no PYTHONPATH) imports from; never this process's
    # own sys.path, which may hold the tests' folders.
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    python |= {value for key, value in sysconfig.get_paths().items()
               if key in ("stdlib", "platstdlib", "purelib", "platlib")}
    needed = [paths.ROOT / "autograder", Path(provided_dir) / "hw4",
              *(paths.FIXTURES_DIR / name for name in _KEPT_FIXTURES), *python]
    return sorted({os.path.realpath(path) for path in needed})


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
    hidden += [os.path.realpath(path) for path in (*_registered, *extra)]
    # A needed path never hides below a secret: drop secrets that would cover one.
    hidden = [secret for secret in hidden
              if not any(need == secret or need.startswith(secret + os.sep) for need in needed)]
    return sorted({path for path in hidden if os.path.lexists(path)})


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

    The fallback where the platform refuses mount namespaces; root keeps full access.
    """
    for secret in secrets:
        if os.path.islink(secret):
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
