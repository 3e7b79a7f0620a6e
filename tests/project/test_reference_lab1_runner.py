"""The provided Lab 1 runner records trajectories faithfully and writes one figure per run."""
import numpy as np

from hw4 import lab1_runner
from reference import lab1


def test_runner_constants_match_lab1():
    for name in ("X", "Y", "W0"):
        np.testing.assert_array_equal(getattr(lab1_runner, name), getattr(lab1, name))
    assert (lab1_runner.LR, lab1_runner.STEPS) == (lab1.LR, lab1.STEPS)


def test_trajectory_records_every_step():
    traj = lab1_runner.run_trajectory(lab1.proximal_l1_step, threshold=0.01)
    assert traj.weights.shape == (lab1.STEPS + 1, 5) and traj.losses.shape == (lab1.STEPS + 1,)
    np.testing.assert_array_equal(traj.weights[0], lab1.W0)
    W = lab1.W0.copy()
    for t in (1, 2, 3):
        W = lab1.proximal_l1_step(W, lab1.X, lab1.Y, lab1.LR, 0.01)
        np.testing.assert_array_equal(traj.weights[t], W)
    np.testing.assert_allclose(traj.losses, [lab1.loss(w, lab1.X, lab1.Y) for w in traj.weights],
                               rtol=1e-12, atol=0)
    assert traj.hyper == {"threshold": 0.01}


def test_trajectory_is_not_fooled_by_in_place_steps():
    def in_place_gd(W, X, Y, lr):
        W -= lr * lab1.gradient(W, X, Y)
        return W

    traj = lab1_runner.run_trajectory(in_place_gd, steps=3)
    expected = lab1_runner.run_trajectory(lab1.gd_step, steps=3)
    np.testing.assert_array_equal(traj.weights, expected.weights)


def test_plot_writes_a_png(tmp_path):
    traj = lab1_runner.run_trajectory(lab1.gd_step, steps=20)
    path = tmp_path / "sub" / "gd.png"
    fig = lab1_runner.plot_trajectory(traj, path, title="2.2")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loss_axis, weight_axis = fig.axes
    assert loss_axis.get_yscale() == "log"
    assert len(weight_axis.get_lines()) == 5


def test_run_all_one_figure_per_setting(tmp_path):
    runs = lab1_runner.run_all(lab1, tmp_path, parts=["2.3", "2.5"])
    assert sorted(runs) == sorted(["2.3_k2.png"] + [f"2.5_threshold{t:g}.png"
                                                    for t in (0.004, 0.01, 0.02, 0.04)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(runs)
    np.testing.assert_allclose(runs["2.3_k2.png"].final_weights, [0, -3, 0, 0, 1], atol=1e-9)
