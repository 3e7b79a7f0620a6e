"""The training stage's panel: accuracy after the brief fine-tune against the calibrated threshold."""
from __future__ import annotations

import textwrap

import numpy as np


def draw_accuracy(panel, records: list[dict]) -> None:
    """One bar per record (green when it reaches its threshold, red when not), the threshold
    drawn across its bar."""
    labels = [textwrap.fill(str(data["label"]), 18) for data in records]
    accuracy = np.array([np.nan if d["accuracy"] is None else d["accuracy"] for d in records])
    threshold = np.array([np.nan if d["threshold"] is None else d["threshold"] for d in records])
    x = np.arange(len(records))
    panel.subplots_adjust(left=0.2)  # a narrow panel: room for the y label
    axes = panel.subplots()
    colours = ["C2" if a >= t else "C3" for a, t in zip(accuracy, threshold)]
    axes.bar(x, 100 * accuracy, 0.6, color=colours)
    axes.hlines(100 * threshold, x - 0.4, x + 0.4, colors="k", linewidth=2)
    axes.set_xticks(x, labels, fontsize="x-small")
    # Said in the title rather than a legend, which would cover a bar
    axes.set(ylabel="test accuracy (%)", ylim=(0, 100),
             title="your accuracy (bar), threshold (line)")
    axes.title.set_fontsize("small")
