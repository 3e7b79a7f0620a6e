"""``python -m autograder build``: the Gradescope zip and the student handout, reproducibly.

- ``dist/autograder.zip``: ``setup.sh`` and ``run_autograder`` at the root, the engine, the
  provided code, the reference, every grading test, the fixtures, the rubric, requirements,
  and ``expected_counts.json`` (how many grading tests each run must collect).
- ``dist/handout.zip``: the four stubs and ``hw4/`` at the root, the engine, the visible
  grading tests (with the helpers beside ``tests/grading/conftest.py``), their fixtures, the
  rubric, a ``pytest.ini`` that runs those tests on the files at the root, and a README. No
  ``reference/``, no hidden tests, no hidden fixtures, no training stage.

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

HANDOUT_README = """\
# Homework 4: Pruning and Fixed-point Quantization

Write your code in `lab1.py`, `lab2.py`, `lab3.py` and `answers.py` (this folder's root);
`hw4/` is the provided code (ResNet-20, data, training loop). Submit those four files.

## Or submit your notebooks
Notebooks (`.ipynb`, any names) are accepted instead of, or beside, the four files. For every
graded name (the Lab 1 step functions, the Lab 2 functions, `STE`, and `device`) the grader
takes its last definition at the top level of a code cell (not one inside a loop or a
function), with the imports, constants and helpers it uses; nothing else is taken and no cell
is ever run, so training, download and `!pip` cells do no harm. A cell that does not parse is
skipped, with a note. A `.py` file you submit wins over your notebooks. Without `answers.py`,
the True/False answers are read from your report (a PDF, a `.md` or `.txt` file, or your
notebooks' markdown cells), one line per question such as `Problem 1.1: True, because ...`
or `1.3 F`. Your feedback lists which cells each lab came from and every answer as read. To
see what will be graded: `python -m autograder extract YOUR.ipynb... [REPORT] --out extracted/`.

## Check your work
    pip install -r requirements.txt
    pytest

`pytest` runs the visible tests, exactly those Gradescope runs, on the four files here, and
prints a per-problem table. Gradescope also runs hidden tests (other inputs and edge cases)
and a short training stage, and plots and comments are graded by hand, so a full score here
is necessary, not sufficient.
"""


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
    names = ["rubric.toml", "requirements.txt"]
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
        "# does (the grading plugin comes from tests/grading/conftest.py).\n"
        "testpaths = tests/grading/visible\n"
        "pythonpath = .\n"
        f"addopts = -p no:cacheprovider --stage=unit --visibility=visible{count}\n").encode()
    entries["README.md"] = HANDOUT_README.encode()
    return entries


def build(root: Path = paths.ROOT, dist: Path | None = None, *, count: bool = True) -> tuple[Path, Path]:
    """Write both zips into ``dist`` (default ``root/dist``); returns their paths."""
    dist = dist or root / "dist"
    counts = {}
    if count:
        for stage in ("unit", "train", "all"):
            counts[f"{stage}/all"] = count_tests(stage, "all")
        counts["unit/visible"] = count_tests("unit", "visible")
    autograder_zip = write_zip(dist / "autograder.zip", autograder_entries(root, counts))
    handout_zip = write_zip(dist / "handout.zip", handout_entries(root, counts.get("unit/visible")))
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
