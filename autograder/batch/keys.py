"""Keys: content hashes that decide whether a submission's stored grade is still current.

A grade is reused only when its key is unchanged. The key is the hash of
- the submission's bytes (a zip's bytes; a folder's files, by relative path and content, links
  by their target text, never followed);
- the grader: the grading tests, the fixtures (expected outputs, calibration, embedded data and
  checkpoint), the rubric, the reference (hidden tests may call it in the trusted process), the
  provided code the sandbox imports, and the engine's own source (the batch package aside: it
  changes no grade);
- the options that change a grade: stage, device, and the training stage's data and
  checkpoint files.
So a fix to a test, a fixture or a rubric weight regrades everyone, and nothing else does.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from autograder import paths

KEY_VERSION = "hw4-batch-key/1"  # bump when the key's recipe changes


@dataclass(frozen=True)
class GradeOptions:
    """The options of ``grade`` a batch passes on to every submission's grade."""

    stage: str = "unit"
    device: str = "cpu"
    data: str | None = None
    checkpoint: str | None = None

    def grade_arguments(self) -> list[str]:
        """The matching ``python -m autograder grade`` options."""
        args = ["--stage", self.stage, "--device", self.device]
        if self.data:
            args += ["--data", self.data]
        if self.checkpoint:
            args += ["--checkpoint", self.checkpoint]
        return args


def grader_parts(root: Path = paths.ROOT) -> list[Path]:
    """The files and folders whose content a grade depends on (see the module docstring)."""
    return [root / "tests" / "grading", root / "fixtures", root / "rubric.toml",
            root / "reference", paths.PROVIDED_DIR / "hw4", root / "autograder"]


def grader_key(options: GradeOptions, root: Path = paths.ROOT) -> str:
    """The hash of the grader and the grade options; computed once per batch."""
    digest = hashlib.sha256(KEY_VERSION.encode())
    for part in grader_parts(root):
        digest.update(f"\0part:{part.relative_to(root) if part.is_relative_to(root) else part}".encode())
        _hash_tree(part, digest, skip=root / "autograder" / "batch")
    digest.update(f"\0stage:{options.stage}\0device:{options.device}".encode())
    for label, value in (("data", options.data), ("checkpoint", options.checkpoint)):
        digest.update(f"\0{label}:".encode())
        if value:
            _hash_tree(Path(value), digest)
    return digest.hexdigest()


def submission_key(path: Path | None) -> str:
    """The hash of a submission's bytes ("" when it has none on disk)."""
    if path is None:
        return ""
    digest = hashlib.sha256(b"submission")
    _hash_tree(path, digest)
    return digest.hexdigest()


def grade_key(grader: str, submission: str) -> str:
    return hashlib.sha256(f"{grader}\0{submission}".encode()).hexdigest()


def _hash_tree(path: Path, digest, *, skip: Path | None = None) -> None:
    """Feed ``path`` (file or folder, recursively, in sorted order) into ``digest``.

    Caches and bytecode are left out: they change with every run and no grade reads them.
    """
    try:
        info = os.lstat(path)
    except OSError:
        digest.update(b"\0missing")
        return
    if stat.S_ISLNK(info.st_mode):
        digest.update(b"\0link:" + os.fsencode(os.readlink(path)))
    elif stat.S_ISDIR(info.st_mode):
        for child in sorted(os.listdir(path)):
            if child in ("__pycache__", ".pytest_cache") or child.endswith(".pyc"):
                continue
            child_path = path / child
            if skip is not None and child_path == skip:
                continue
            digest.update(b"\0entry:" + os.fsencode(child))
            _hash_tree(child_path, digest, skip=skip)
    elif stat.S_ISREG(info.st_mode):
        digest.update(b"\0file:%d:" % info.st_size)
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    else:
        digest.update(b"\0special")
