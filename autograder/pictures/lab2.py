"""Lab 2's panel: the fraction of zeros of each layer, the student's bars beside the reference's."""
from __future__ import annotations

import re

import numpy as np


def short_name(layer: str) -> str:
    """A tick label: ``body_op.3.conv1.0.conv`` -> ``b3.conv1``, ``head_conv.0.conv`` -> ``head``."""
    match = re.fullmatch(r"body_op\.(\d+)\.(conv\d|id_mapping)\..*", layer)
    if match:
        return f"b{match[1]}.{'id' if match[2] == 'id_mapping' else match[2]}"
    if layer.startswith("head_conv"):
        return "head"
    if layer.startswith("final_fc"):
        return "fc"
    return layer


def draw_sparsity(panel, records: list[dict]) -> None:
    """Grouped bars per layer (every record's layers, in order), in percent."""
    layers, student, reference = [], [], []
    for data in records:
        layers += [str(name) for name in data["layers"]]
        student += [np.nan if v is None else v for v in data["student"]]
        reference += [np.nan if v is None else v for v in data["reference"]]
    x = np.arange(len(layers))
    if len(layers) > 6:
        panel.subplots_adjust(bottom=0.3, left=0.08)  # room for the vertical layer names
    axes = panel.subplots()
    label = str(records[0].get("reference_label") or "reference")
    axes.bar(x - 0.2, 100 * np.asarray(reference, dtype=float), 0.4, color="0.7", label=label)
    axes.bar(x + 0.2, 100 * np.asarray(student, dtype=float), 0.4, color="C0", label="yours")
    axes.set_xticks(x, [short_name(name) for name in layers],
                    rotation=90 if len(layers) > 6 else 0, fontsize="x-small")
    axes.set(ylabel="zeros (%)", ylim=(0, 105), title="sparsity per layer")
    axes.legend(loc="best", fontsize="small")
