"""What the training stage takes from the staff's reference, stood in for in the student handout.

On Gradescope three things of the training stage come from ``reference/``: the 80%-pruned
starting models of 3.3 (layer-wise) and 4.4 (global), and the quantizer the trusted side
measures quantized accuracy with. The handout ships no reference, so there:
- ``build`` ships the two starting models of the embedded checkpoint in
  ``fixtures/handout/starting_models.npz``: the reference's output on the project's own
  checkpoint, none of its code, and no more than a visible test shows;
- quantized accuracy is measured with the student's own ``STE`` from ``lab3.py``; on their own
  machine a student has nothing to gain from fooling it, and a wrong STE also fails 4.1 and
  4.3's quantization checks. The test output says so.

The stand-ins exist only where that file does, and ``build`` never puts it in the Gradescope zip,
so the grader there has the reference as its only source.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from autograder import paths

FOLDER = paths.FIXTURES_DIR / "handout"
STARTING_MODELS = FOLDER / "starting_models.npz"
KINDS = ("layerwise", "global")  # 3.3's and 4.4's starting models
STUDENT_QUANTIZER_NOTE = ("(measured in the handout with your own `STE`; Gradescope measures "
                          "with the staff's quantizer)")


def in_handout() -> bool:
    """Whether this layout is the student handout's (it has the stand-ins, no reference)."""
    return STARTING_MODELS.is_file() and not paths.REFERENCE_DIR.is_dir()


def write_starting_models(states: dict[str, dict], checkpoint_digest: str, target: Path) -> Path:
    """Store ``states`` ({kind: state dict of arrays}) for the checkpoint of that digest, as an
    .npz whose bytes depend on the arrays alone (fixed member times), so builds are reproducible."""
    arrays = {f"{kind}/{key}": value for kind, state in states.items() for key, value in state.items()}
    arrays["checkpoint"] = np.array(checkpoint_digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                             buffer.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return target


def starting_state(kind: str, checkpoint_digest: str) -> dict | None:
    """The shipped starting model ``kind`` for the checkpoint of that digest, or None (no file
    here, or a file made for another checkpoint: a student's own checkpoint has none)."""
    if not in_handout():
        return None
    with np.load(STARTING_MODELS, allow_pickle=False) as stored:
        if str(stored["checkpoint"]) != checkpoint_digest:
            return None
        prefix = f"{kind}/"
        return {name[len(prefix):]: stored[name] for name in stored.files if name.startswith(prefix)}


def student_quantizer():
    """The student's ``STE`` class from ``lab3.py`` at the handout's root (handout only)."""
    if not in_handout():
        raise RuntimeError("the student's quantizer stands in for the staff's in the handout only")
    from autograder.staff import import_private

    return import_private("hw4_handout_lab3", paths.STUDENT_DIR / "lab3.py").STE
