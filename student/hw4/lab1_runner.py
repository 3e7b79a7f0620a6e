"""Lab 1 runner (provided, not graded): run a step rule for 200 steps and plot what it does.

Every part of Lab 1 asks for the same two plots over the 200 full-batch steps from W0: the loss
L(W) on a log scale, and the trajectory of each of the five weights. This module records those
trajectories for any step function with the signature of ``lab1.py``'s steps, and draws one
figure per part and hyperparameter.

    import lab1
    from hw4.lab1_runner import run_trajectory, plot_trajectory, run_all
XX
    plot_trajectory(traj, "plots/2.5_threshold0.01.png", title="2.5 proximal, threshold 0.01")
    run_all(lab1, "plots")            # every part and hyperparameter of the handout, one PNG each

or from a terminal, in the folder that holds lab1.py:  python -m hw4.lab1_runner --out plots

Figures are drawn with matplotlib's object-oriented API and rendered by the Agg backend, so no
display is needed; in a notebook the returned Figure shows itself.
"""
from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

# The handout's data, start point and schedule: the same constants lab1.py provides, copied
# because the provided package must import without the student's file (a test pins them equal).
X = np.array([[1., -2., -1., -1., 1.],
              [2., -1., 2., 0., -2.],
              [-1., 0., 2., 2., 1.]])  # (3, 5)
Y = np.array([7., 1., 1.])            # (3,)
W0 = np.zeros(5)                      # (5,)
LR = 0.02
STEPS = 200

# Every part of Lab 1: (problem, name of the step function in lab1.py, hyperparameter settings).
PARTS = [
    ("2.2", "gd_step", [{}]),
    ("2.3", "projected_gd_step", [{"k": 2}]),
    ("2.4", "subgradient_l1_step", [{"lam": lam} for lam in (0.2, 0.5, 1.0, 2.0)]),
    ("2.5", "proximal_l1_step", [{"threshold": t} for t in (0.004, 0.01, 0.02, 0.04)]),
    ("2.6", "trimmed_l1_step", [{"threshold": t, "h": 3} for t in (0.02, 0.04, 0.1, 0.2)]),
]


def squared_error(W, X, Y):
    """The Lab 1 objective sum_i (X_i . W - y_i)^2, used when no loss function is given."""
    return float(np.sum((X @ W - Y) ** 2))


@dataclass
class Trajectory:
    """The path of one run: ``weights[t]`` and ``losses[t]`` after t steps, t = 0..steps."""
    weights: np.ndarray  # (steps + 1, 5), row 0 is W0
    losses: np.ndarray   # (steps + 1,)
    hyper: dict = field(default_factory=dict)

    @property
    def final_weights(self) -> np.ndarray:
        return self.weights[-1]

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])


def run_trajectory(step, W0=W0, X=X, Y=Y, lr=LR, steps=STEPS, loss_fn=None, **hyper) -> Trajectory:
    """Apply ``step(W, X, Y, lr, **hyper)`` ``steps`` times from W0 and record every W and loss.

    ``step`` must return the new W (the runner keeps its own copy of each, so a step that
    modified W in place would still be recorded correctly, though lab1.py forbids it).
    ``loss_fn(W, X, Y)`` defaults to the Lab 1 objective; pass ``lab1.loss`` to plot yours.
    """
    loss_fn = loss_fn or squared_error
    W = np.array(W0, dtype=np.float64)
    weights, losses = [W.copy()], [loss_fn(W, X, Y)]
    for _ in range(steps):
        W = np.asarray(step(W.copy(), X, Y, lr, **hyper), dtype=np.float64)
        weights.append(W.copy())
        losses.append(loss_fn(W, X, Y))
    return Trajectory(np.stack(weights), np.array(losses, dtype=np.float64), dict(hyper))


def plot_trajectory(traj: Trajectory, path=None, title: str = "") -> Figure:
    """Draw log L over the steps (left) and one line per weight (right); save to ``path`` if given.

    A loss of exactly 0 cannot sit on a log axis, so losses are floored at the smallest positive
    float64 for the plot only.
    """
    steps = np.arange(len(traj.losses))
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_w = fig.subplots(1, 2)

    ax_loss.semilogy(steps, np.maximum(traj.losses, np.finfo(np.float64).tiny))
    ax_loss.set(xlabel="step", ylabel="loss L(W) (log scale)", title="loss")
    ax_loss.grid(True, which="major", alpha=0.3)

    for i in range(traj.weights.shape[1]):
        ax_w.plot(steps, traj.weights[:, i], label=f"W[{i}]")
    ax_w.set(xlabel="step", ylabel="weight value", title="weights")
    ax_w.grid(True, alpha=0.3)
    ax_w.legend(loc="best")

    fig.suptitle(f"{title}   (final loss {traj.final_loss:.3g})".strip())
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig


def figure_name(problem: str, hyper: dict) -> str:
    """A file name for one part and setting, e.g. ``2.5_threshold0.01.png``."""
    settings = "_".join(f"{key}{value:g}" for key, value in hyper.items())
    return f"{problem}_{settings}.png" if settings else f"{problem}.png"


def run_all(lab1, out_dir, parts=None) -> dict:
    """Run every part (or the problems listed in ``parts``) with ``lab1``'s step functions.

    Uses lab1's own X, Y, W0, LR, STEPS and loss; saves one PNG per part and hyperparameter
    under ``out_dir``; returns {file name: Trajectory}.
    """
    out_dir = Path(out_dir)
    runs = {}
    for problem, step_name, settings in PARTS:
        if parts and problem not in parts:
            continue
        step = getattr(lab1, step_name)
        for hyper in settings:
            traj = run_trajectory(step, lab1.W0, lab1.X, lab1.Y, lab1.LR, lab1.STEPS,
                                  loss_fn=lab1.loss, **hyper)
            name = figure_name(problem, hyper)
            label = ", ".join(f"{k}={v:g}" for k, v in hyper.items())
            plot_trajectory(traj, out_dir / name, title=f"{problem} {step_name} {label}")
            runs[name] = traj
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run and plot every part of Lab 1.")
    parser.add_argument("--lab1", default="lab1", help="module to import (default: lab1)")
    parser.add_argument("--out", default="lab1_plots", help="folder for the PNG files")
    parser.add_argument("--parts", nargs="*", help="problems to run, e.g. 2.2 2.5 (default: all)")
    args = parser.parse_args(argv)
    lab1 = importlib.import_module(args.lab1)
    for name, traj in run_all(lab1, args.out, args.parts).items():
        print(f"{name:28s} loss {traj.final_loss:.3g}  W {np.round(traj.final_weights, 4)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
