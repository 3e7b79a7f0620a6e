"""The course's own data and checkpoint, shipped inside the Gradescope zip.

``build --data F [--checkpoint C]`` copies the files into the zip's ``course/`` folder and
names them in ``course/course.json``; ``run_autograder`` (``autograder.gradescope``) then runs
the training stage on them instead of the embedded shapes data. Without that file the embedded
defaults apply. ``HW4_DATA`` / ``HW4_CHECKPOINT`` in the environment still win, so a TA can
override a zip without rebuilding it.

The build refuses data that has no current calibration (``autograder.calibration``), since the
training stage could not grade anything on it.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from autograder import paths

FOLDER = "course"
MANIFEST = f"{FOLDER}/course.json"


def shipped(root: Path = paths.ROOT) -> tuple[Path | None, Path | None]:
    """(data, checkpoint) this layout ships, each None where it ships none."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    return (_inside(root, manifest.get("data")), _inside(root, manifest.get("checkpoint")))


def _inside(root: Path, name) -> Path | None:
    if not isinstance(name, str) or not name:
        return None
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or relative.parts[:1] != (FOLDER,):
        return None  # the manifest names files of the course folder only
    return root / relative


def entries(data: Path, checkpoint: Path | None) -> dict[str, bytes]:
    """The zip entries for ``data`` (an .npz file) and ``checkpoint``: the files and the manifest."""
    files = {"data": data, "checkpoint": checkpoint}
    out, manifest = {}, {}
    for role, path in files.items():
        if path is None:
            continue
        name = f"{FOLDER}/{path.name}"
        out[name] = path.read_bytes()
        manifest[role] = name
    out[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return out


def check_calibrated(data: Path, checkpoint: Path | None) -> str:
    """The calibration key the training stage will use on these files on Gradescope's CPU.

    Raises ``autograder.calibration.NotCalibrated`` (its message names the command that makes
    one) when no current calibration matches, and ``ValueError`` for data that is not a file.
    """
    if not data.is_file():
        raise ValueError(f"{data}: --data must be a dataset file (.npz), which the zip can hold")
    from autograder.calibration import Calibration
    from autograder.training.setting import Setting

    setting = Setting.resolve(str(data), str(checkpoint) if checkpoint else None, device="cpu")
    return Calibration.load(setting).key
