"""Lab 3's panel: the student's quantized values against the reference's, on one input vector."""
from __future__ import annotations

import numpy as np


def draw_levels(panel, records: list[dict]) -> None:
    """x: each input value w; y: its quantized value. Grey lines are the reference's levels;
    hollow circles the reference's values, filled dots the student's."""
    data = records[-1]
    w = np.asarray(data["w"], dtype=float).ravel()
    reference = np.asarray(data["reference"], dtype=float).ravel()
    student = np.asarray(data["student"], dtype=float).ravel() if data.get("student") is not None \
        else np.full_like(w, np.nan)
    axes = panel.subplots()
    for level in np.unique(reference):
        axes.axhline(level, color="0.85", linewidth=1, zorder=0)
    axes.plot(w, w, ":", color="0.6", label="w (unquantized)")
    axes.scatter(w, reference, s=120, facecolors="none", edgecolors="k", label="reference")
    if student.shape == w.shape:
        axes.scatter(w, student, s=30, color="C3", label="yours", zorder=3)
    bit = data.get("bit")
    axes.set(xlabel="w", ylabel="quantized w",
             title=f"quantizer on the handout's vector, bit = {bit:g}" if bit is not None else "quantizer")
    axes.legend(loc="upper left", fontsize="small")
