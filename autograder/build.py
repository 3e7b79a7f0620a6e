"""``python -m autograder build``: the Gradescope zip and the student handout, reproducibly.

- ``dist/autograder.zip``: ``setup.sh`` and ``run_autograder`` at the root, the engine, the
  provided code, the reference, every grading test, the fixtures, the rubric, requirements,
  and ``expected_counts.json`` (how many grading tests each run must collect). With
  ``--data F [--checkpoint C]`` also the course's dataset and checkpoint in ``course/``
  (``autograder.course_data``), which ``run_autograder`` then trains on; the build refuses data
  that has no current calibration.
- ``dist/handout.zip``: one folder, ``homework4/``, holding the four stubs and ``hw4/`` at its
  root, the engine, the visible grading tests (with the helpers beside
  ``tests/grading/conftest.py``), the training-stage tests and the calibrations Gradescope
  uses, the visible fixtures, the rubric, a ``pytest.ini`` that runs the unit stage on the files
  at the root (a part of it when the student selects one; ``pytest --stage=train`` or
  ``--stage=all`` runs the training stage on the embedded data, with Gradescope's thresholds),
  ``expected_counts.json`` for its visible tests, and the handout's own files from ``handout/``
  (README, the student's requirements, a root conftest). No ``reference/``, no hidden tests, no
  hidden fixtures, no course data.

Zips are deterministic: sorted entries, fixed timestamps and permissions.
"""
from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

from autograder import course_data, paths
from autograder.counts import COUNTS_FILE

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


def _counts_entry(counts: dict) -> bytes:
    return json.dumps(counts, indent=2, sort_keys=True).encode()


def autograder_entries(root: Path, counts: dict, course: dict[str, bytes] | None = None
                       ) -> dict[str, bytes]:
    """The Gradescope zip's entries; ``course``: those of ``course_data.entries`` to ship too."""
    names = ["setup.sh", "run_autograder", "rubric.toml", "requirements.txt"]
    for folder in ("autograder", "student", "reference", "tests/grading", "fixtures"):
        names += list(_files(root, folder))
    entries = {name: (root / name).read_bytes() for name in names if (root / name).is_file()
               and not name.startswith("fixtures/handout/")}  # the handout's stand-ins only
    entries[COUNTS_FILE] = _counts_entry({k: v for k, v in counts.items() if k.endswith("/all")})
    entries.update(course or {})
    return entries


def handout_entries(root: Path, counts: dict) -> dict[str, bytes]:
    entries = {}
    for name in paths.SUBMISSION_FILES:
        entries[name] = (root / "student" / name).read_bytes()
    for name in _files(root, "student/hw4"):
        entries[name.removeprefix("student/")] = (root / name).read_bytes()
    names = ["rubric.toml"]
    names += list(_files(root, "autograder"))
    names += [p.relative_to(root).as_posix() for p in sorted((root / "tests/grading").glob("*.py"))]
    names += list(_files(root, "tests/grading/visible"))
    names += [name for name in _files(root, "tests/grading/train")  # the training stage's
              if "hidden" not in name.split("/")]                  # visible tests, run locally
    names += list(_files(root, "fixtures/expected/visible"))
    names += list(_files(root, "fixtures/calibration"))  # with the thresholds Gradescope uses
    entries.update({name: (root / name).read_bytes() for name in names})
    # The provided code finds the embedded checkpoint beside itself in the handout.
    for name in _files(root, "fixtures/embedded"):
        entries["hw4/embedded/" + name.removeprefix("fixtures/embedded/")] = (root / name).read_bytes()
    visible = {k: v for k, v in counts.items() if k.endswith("/visible")}
    if visible:  # the plugin checks a whole run against it (autograder.counts)
        entries[COUNTS_FILE] = _counts_entry(visible)
    entries["pytest.ini"] = (
        "[pytest]\n"
        "# Runs the visible grading tests on the four files at this folder's root, as Gradescope\n"
        "# does (the grading plugin comes from tests/grading/conftest.py). The unit stage by\n"
        "# default; `pytest --stage=train` (or all) runs the training stage on the embedded data,\n"
        "# with the thresholds Gradescope uses, on the CPU as Gradescope does. A file argument\n"
        "# or -k runs the tests it selects only (--allow-partial); -v or --tb=long shows the\n"
        "# grader's tracebacks, for course staff.\n"
        "testpaths = tests/grading\n"
        "pythonpath = .\n"
        "addopts = -p no:cacheprovider --stage=unit --visibility=visible --allow-partial\n").encode()
    for name in HANDOUT_OWN_FILES:
        entries[name] = (root / "handout" / name).read_bytes()
    entries.update(starting_models_entry())
    return entries


def starting_models_entry() -> dict[str, bytes]:
    """The training stage's reference-pruned starting models of the embedded checkpoint, for
    the handout, which has no reference to prune with (``autograder.stand_ins``)."""
    import tempfile

    from autograder import stand_ins
    from autograder.training.measure import starting_states
    from autograder.training.setting import file_digest

    paths.ensure_provided_importable()
    built = starting_states({"checkpoint": None})  # trusted: the build runs no student code
    states = {"layerwise": built["pruned"], "global": built["global_pruned"]}
    with tempfile.TemporaryDirectory() as folder:
        path = stand_ins.write_starting_models(states, file_digest(None),
                                               Path(folder) / stand_ins.STARTING_MODELS.name)
        data = path.read_bytes()
    return {stand_ins.STARTING_MODELS.relative_to(paths.ROOT).as_posix(): data}


def in_folder(entries: dict[str, bytes], folder: str) -> dict[str, bytes]:
    """The same entries under one top-level folder, so that unzipping makes one folder."""
    return {f"{folder}/{name}": data for name, data in entries.items()}


def build(root: Path = paths.ROOT, dist: Path | None = None, *, count: bool = True,
          data: Path | None = None, checkpoint: Path | None = None) -> tuple[Path, Path]:
    """Write both zips into ``dist`` (default ``root/dist``); returns their paths.

    ``data`` (an .npz) and ``checkpoint``: the course's files for Gradescope's training stage;
    raises ``autograder.calibration.NotCalibrated`` or ``ValueError`` before writing anything
    when they cannot be graded on (``course_data.check_calibrated``)."""
    dist = dist or root / "dist"
    course = None
    if data is not None or checkpoint is not None:
        if data is None:
            raise ValueError("--checkpoint needs --data: the calibrations are per dataset")
        course_data.check_calibrated(data, checkpoint)
        course = course_data.entries(data, checkpoint)
    counts = {}
    if count:
        for stage in ("unit", "train", "all"):
            for visibility in ("all", "visible"):
                counts[f"{stage}/{visibility}"] = count_tests(stage, visibility)
    autograder_zip = write_zip(dist / "autograder.zip", autograder_entries(root, counts, course))
    handout_zip = write_zip(dist / "handout.zip",
                            in_folder(handout_entries(root, counts), HANDOUT_FOLDER))
    return autograder_zip, handout_zip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Write dist/autograder.zip (Gradescope) and dist/handout.zip (students)."
    parser.add_argument("--dist", default=str(paths.ROOT / "dist"), help="output folder")
    parser.add_argument("--no-count", action="store_true",
                        help="skip counting the grading tests (no expected counts recorded)")
    parser.add_argument("--data", default=None,
                        help="the course's dataset (.npz) for Gradescope's training stage; it "
                             "must be calibrated (python -m autograder calibrate --data F)")
    parser.add_argument("--checkpoint", default=None,
                        help="the course's checkpoint for it (default: the embedded one)")


def run(args: argparse.Namespace) -> int:
    from autograder.calibration import NotCalibrated

    data = Path(args.data).expanduser() if args.data else None
    checkpoint = Path(args.checkpoint).expanduser() if args.checkpoint else None
    if checkpoint is not None and not checkpoint.is_file():
        print(f"build: {checkpoint}: no such checkpoint file", file=sys.stderr)
        return 2
    try:
        zips = build(paths.ROOT, Path(args.dist), count=not args.no_count, data=data,
                     checkpoint=checkpoint)
    except (NotCalibrated, ValueError) as error:
        print(f"build: {error}", file=sys.stderr)
        return 2
    if data is not None:
        print(f"autograder.zip trains on {data.name}"
              + (f" from {checkpoint.name}" if checkpoint else " from the embedded checkpoint"))
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            print(f"{path}: {len(archive.infolist())} files")
    return 0
