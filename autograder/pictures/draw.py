"""One problem's picture: its recorded panels side by side in one small PNG.

``draw(problem, records)`` is the only entry point; each kind of panel has its drawer in this
package (``lab1``, ``lab2``, ``lab3``, ``training``), which draws into a matplotlib SubFigure.
matplotlib is imported here, inside ``draw``, and rendered by the Agg canvas without pyplot:
no display, no global figure state, and no import at all in a process that draws nothing.
"""
from __future__ import annotations

import io

# Width of each kind's panel (inches); every panel is PANEL_HEIGHT tall. At DPI 72 a two-panel
# Lab 1 figure is ~650 x 200 px and 15-30 KB as a PNG: legible in Gradescope's output column.
PANEL_WIDTH = {"trajectory": 9.0, "sparsity": 7.5, "accuracy": 4.0, "levels": 4.5}
PANEL_HEIGHT = 3.0
DPI = 72
MARGINS = {"left": 0.11, "right": 0.97, "bottom": 0.17, "top": 0.78, "wspace": 0.3}  # a drawer may widen
MAX_BYTES = 64 * 1024  # a larger PNG is refused: results.json carries every picture inline


class PictureTooLarge(ValueError):
    """The PNG came out above ``MAX_BYTES``."""


def draw(problem: str, records: list[dict]) -> bytes:
    """The PNG of ``problem``'s ``records`` (``{"kind", "data"}``, in the order attached): one
    panel per kind, in order of first appearance, each drawn from all records of its kind. A
    drawer may return a caption, which joins the figure's title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from autograder.pictures import lab1, lab2, lab3, training

    drawers = {"trajectory": lab1.draw_trajectories, "sparsity": lab2.draw_sparsity,
               "accuracy": training.draw_accuracy, "levels": lab3.draw_levels}
    kinds = list(dict.fromkeys(record["kind"] for record in records))
    widths = [PANEL_WIDTH[kind] for kind in kinds]
    figure = Figure(figsize=(sum(widths), PANEL_HEIGHT), dpi=DPI)  # fixed margins: a layout
    # engine draws the figure twice and measures every tick label, ~4x the cost of a picture
    FigureCanvasAgg(figure)
    panels = figure.subfigures(1, len(kinds), width_ratios=widths, squeeze=False)[0]
    captions = []
    for panel, kind in zip(panels, kinds):
        panel.subplots_adjust(**MARGINS)
        captions.append(drawers[kind](panel, [r["data"] for r in records if r["kind"] == kind]))
    figure.suptitle(": ".join([f"Problem {problem}, your run"] + [c for c in captions if c]),
                    fontsize="medium")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    png = buffer.getvalue()
    if len(png) > MAX_BYTES:
        raise PictureTooLarge(f"{len(png)} bytes, above the cap of {MAX_BYTES}")
    return png
