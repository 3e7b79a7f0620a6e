"""Where the embedded checkpoint lives (no torch here: the grader's own process asks too).

The embedded checkpoint (trained on the embedded data set by scripts/train_embedded.py) lives in
fixtures/embedded/ of the repository; the handout carries a copy in hw4/embedded/.
"""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
EMBEDDED_CHECKPOINT_CANDIDATES = (_HERE / "embedded" / "checkpoint.pt",
                                  _HERE.parent.parent / "fixtures" / "embedded" / "checkpoint.pt")


def embedded_checkpoint() -> Path:
    """Where the embedded checkpoint is, in the handout or in the repository."""
    for candidate in EMBEDDED_CHECKPOINT_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("no embedded checkpoint at " + " or ".join(map(str, EMBEDDED_CHECKPOINT_CANDIDATES)))
