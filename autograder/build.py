"""``python -m autograder build``: the Gradescope zip and the student handout, reproducibly.

- ``dist/autograder.zip``: ``setup.sh`` and ``run_autograder`` at the root, the engine, the
  provided code, the reference, every grading test, the fixtures, the rubric, requirements,
  and ``expected_counts.json`` (how many grading tests each run must collect).
- ``dist/handout.zip``: one folder, ``homework4/``, holding the four stubs and ``hw4/`` at its
  root, the engine, the visible grading tests (with the helpers beside
  ``tests/grading/conftest.py``), their fixtures, the rubric, a ``pytest.ini`` that runs those
  tests on the files at the root (a part of them when the student selects one), and the handout's own files from ``handout/`` (README, the
  student's requirements, a root conftest). No ``reference/``, no hidden tests, no hidden
  fixtures, no training stage.

Zips are deterministic: sorted entries, fixed timestamps and permissions.
"""
from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

from autograder import paths

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
EXECUTABLES = {"setup.sh", "run_autograder"}
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".DS_Store", ".git"}

HANDOUT_FOLDER = "homework4"  # the handout's one top-level folder
# The handout's own files, kept in the repository's handout/: README, the student's requirements
# (not the project's development file) and the root conftest that lets pytest start anywhere.
HANDOUT_OWN_FILES = ("README.md", "requirements.txt", "conftest.py")


def _files(root: Path, relative: str):
    """Files under ``root/relative`` (a file or folder), sorted, without caches or hidden files."""
    base = root / relative
    if base.is_file():
        yield relative
        return
    if not base.is_dir():
        return
    for path in sorted(base.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and not any(p in SKIPPED_NAMES or p.startswith(".") or p.endswith(".pyc")
                                      for p in parts):
            yield path.relative_to(root).as_posix()


def write_zip(target: Path, entries: dict[str, bytes]) -> Path:
    """Write ``entries`` ({archive name: bytes}) deterministically to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.create_system = 3  # unix, so the permissions below are honoured
            mode = 0o755 if Path(name).name in EXECUTABLES else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name])
    return target


def count_tests(stage: str, visibility: str) -> int:
    """How many grading tests a run of this configuration collects (a collect-only run)."""
    import pytest

    from autograder.grade import pytest_args

    class Count:
        n = 0

        def pytest_collection_finish(self, session):
            Count.n = len(session.items)

    args = pytest_args(paths.REFERENCE_DIR, stage=stage, device="cpu", visibility=visibility)
    pytest.main(args + ["--collect-only", "-p", "no:terminal"], plugins=[Count()])
    return Count.n


def autograder_entries(root: Path, counts: dict) -> dict[str, bytes]:
    names = ["setup.sh", "run_autograder", "rubric.toml", "requirements.txt"]
    for folder in ("autograder", "student", "reference", "tests/grading", "fixtures"):
        names += list(_files(root, folder))
    entries = {name: (root / name).read_bytes() for name in names if (root / name).is_file()}
    entries["expected_counts.json"] = json.dumps(counts, indent=2, sort_keys=True).encode()
    return entries


def handout_entries(root: Path, visible_count: int | None) -> dict[str, bytes]:
    entries = {}
    for name in paths.SUBMISSION_FILES:
        entries[name] = (root / "student" / name).read_bytes()
    for name in _files(root, "student/hw4"):
        entries[name.removeprefix("student/")] = (root / name).read_bytes()
    names = ["rubric.toml"]
    names += list(_files(root, "autograder"))
    names += [p.relative_to(root).as_posix() for p in sorted((root / "tests/grading").glob("*.py"))]
    names += list(_files(root, "tests/grading/visible"))
    names += list(_files(root, "fixtures/expected/visible"))
    entries.update({name: (root / name).read_bytes() for name in names})
    # The provided code finds the embedded checkpoint beside itself in the handout.
    for name in _files(root, "fixtures/embedded"):
        entries["hw4/embedded/" + name.removeprefix("fixtures/embedded/")] = (root / name).read_bytes()
    count = f" --expected-count={visible_count}" if visible_count is not None else ""
    entries["pytest.ini"] = (
        "[pytest]\n"
        "# Runs the visible grading tests on the four files at this folder's root, as Gradescope\n"
        "# does (the grading plugin comes from tests/grading/conftest.py). A file argument or -k\n"
        "# runs the tests it selects only (--allow-partial); -v or --tb=long shows the grader's\n"
        "# tracebacks, for course staff.\n"
        "testpaths = tests/grading/visible\n"
        "pythonpath = .\n"
        f"addopts = -p no:cacheprovider --stage=unit --visibility=visible --allow-partial{count}\n").encode()
    for name in HANDOUT_OWN_FILES:
        entries[name] = (root / "handout" / name).read_bytes()
    return entries


def in_folder(entries: dict[str, bytes], folder: str) -> dict[str, bytes]:
    """The same entries under one top-level folder, so that unzipping makes one folder."""
    return {f"{folder}/{name}": data for name, data in entries.items()}


def build(root: Path = paths.ROOT, dist: Path | None = None, *, count: bool = True) -> tuple[Path, Path]:
    """Write both zips into ``dist`` (default ``root/dist``); returns their paths."""
    dist = dist or root / "dist"
    counts = {}
    if count:
        for stage in ("unit", "train", "all"):
            counts[f"{stage}/all"] = count_tests(stage, "all")
        counts["unit/visible"] = count_tests("unit", "visible")
    autograder_zip = write_zip(dist / "autograder.zip", autograder_entries(root, counts))
    handout_zip = write_zip(dist / "handout.zip",
                            in_folder(handout_entries(root, counts.get("unit/visible")), HANDOUT_FOLDER))
    return autograder_zip, handout_zip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Write dist/autograder.zip (Gradescope) and dist/handout.zip (students)."
    parser.add_argument("--dist", default=str(paths.ROOT / "dist"), help="output folder")
    parser.add_argument("--no-count", action="store_true",
                        help="skip counting the grading tests (no expected counts recorded)")


def run(args: argparse.Namespace) -> int:
    for path in build(paths.ROOT, Path(args.dist), count=not args.no_count):
        with zipfile.ZipFile(path) as archive:
            print(f"{path}: {len(archive.infolist())} files")
    return 0
