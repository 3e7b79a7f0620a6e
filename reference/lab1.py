"""Lab 1 (reference): sparse optimization of a linear model, in NumPy.

Objective L(W) = sum_i (X_i . W - y_i)^2 (no 1/2, no mean). Each step function takes ONE
full-batch step from W and returns a new float64 array of W's shape; no input is modified.
"""
import numpy as np

# Provided constants of the handout.
X = np.array([[1., -2., -1., -1., 1.],
              [2., -1., 2., 0., -2.],
              [-1., 0., 2., 2., 1.]])  # (3, 5)
Y = np.array([7., 1., 1.])            # (3,)
W0 = np.zeros(5)                      # (5,)
LR = 0.02
STEPS = 200


def loss(W, X, Y):
    """Sum of squared residuals, as a Python float."""
    residual = X @ W - Y  # (3,)
    return float(np.sum(residual ** 2))


def gradient(W, X, Y):
    """dL/dW = 2 X^T (X W - y), shape (5,)."""
    return 2.0 * X.T @ (X @ W - Y)


def gd_step(W, X, Y, lr):
    """2.2: W+ = W - lr * grad."""
    return W - lr * gradient(W, X, Y)


def projected_gd_step(W, X, Y, lr, k=2):
    """2.3: a gradient step, then keep the k largest-magnitude entries and zero the rest."""
    V = W - lr * gradient(W, X, Y)
    keep = np.argsort(-np.abs(V), kind="stable")[:k]  # indices of the k largest |V|
    W_new = np.zeros_like(V)
    W_new[keep] = V[keep]
    return W_new


def subgradient_l1_step(W, X, Y, lr, lam):
    """2.4: a subgradient step on L + lam * ||W||_1, with sign(0) = 0."""
    return W - lr * (gradient(W, X, Y) + lam * np.sign(W))


def soft_threshold(W, threshold):
    """sign(v) * max(|v| - threshold, 0), elementwise; a new array."""
    return np.sign(W) * np.maximum(np.abs(W) - threshold, 0.0)


def proximal_l1_step(W, X, Y, lr, threshold):
    """2.5: a gradient step, then soft-threshold every entry (threshold = lr * lambda)."""
    return soft_threshold(W - lr * gradient(W, X, Y), threshold)


def trimmed_l1_step(W, X, Y, lr, threshold, h=3):
    """2.6: a gradient step, then soft-threshold only the h smallest-magnitude entries.

    The largest entries are left alone, which removes the L1 bias on them.
    """
    V = W - lr * gradient(W, X, Y)
    smallest = np.argsort(np.abs(V), kind="stable")[:h]  # indices of the h smallest |V|
    W_new = V.copy()
    W_new[smallest] = soft_threshold(V[smallest], threshold)
    return W_new
