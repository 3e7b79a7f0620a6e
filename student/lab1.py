"""Lab 1: sparse optimization of a linear model (NumPy only).

Objective:  L(W) = sum_i (X_i . W - y_i)^2     (no 1/2 factor, no mean over samples)

Contract for every function below (the autograder checks each one separately):
- W is a float ndarray of shape (5,); X has shape (3, 5); Y has shape (3,).
- Every ``*_step`` function takes exactly ONE full-batch step: the gradient of the whole
  objective, over all three samples at once, then a single update of W. Do NOT loop over the
  samples updating W once per sample (that is three updates per step, and a different method).
- Every function returns a NEW float ndarray (W's shape for the steps) and leaves W, X and Y
  unchanged: do not update W in place (no ``W -= ...``, no ``W[...] = ...`` on the input).
  A Python list (or tuple) is not an ndarray, even with the right values: a function that
  returns one loses that function's points, with a message; wrap it, ``return np.array(...)``.
- The step functions should call ``gradient`` (and ``proximal_l1_step`` / ``trimmed_l1_step``
  should call ``soft_threshold``) instead of repeating the math: the grader tests each helper on
  its own, so one bug is found in one place and not charged several times.

Use ``lab1_runner`` from the provided ``hw4`` package to run 200 steps and plot the results.
"""
import numpy as np

# Provided constants (do not change them): the data, the start point and the schedule.
X = np.array([[1., -2., -1., -1., 1.],
              [2., -1., 2., 0., -2.],
              [-1., 0., 2., 2., 1.]])  # (3, 5)
Y = np.array([7., 1., 1.])            # (3,)
W0 = np.zeros(5)                      # (5,)
LR = 0.02
STEPS = 200


def loss(W, X, Y):
    """The objective L(W) = sum_i (X_i . W - y_i)^2 as a Python float.

    No 1/2 factor and no mean. Returns float (a NumPy scalar is accepted).
    """
    # Your code here: compute the residuals X W - Y, then the sum of their squares
    raise NotImplementedError("loss: compute the sum of squared residuals")


def gradient(W, X, Y):
    """The gradient of L at W: 2 X^T (X W - Y), a new float ndarray of shape (5,)."""
    # Your code here: the full-batch gradient, over all three samples at once
    raise NotImplementedError("gradient: return 2 X^T (X W - Y)")


def gd_step(W, X, Y, lr):
    """Problem 2.2: one full-batch gradient-descent step, W+ = W - lr * gradient(W, X, Y).

    Returns a new ndarray of shape (5,); W is not modified.
    """
    # Your code here: one update using gradient()
    raise NotImplementedError("gd_step: one full-batch gradient-descent step")


def projected_gd_step(W, X, Y, lr, k=2):
    """Problem 2.3: one full-batch projected-gradient step onto the set of k-sparse vectors.

    V = W - lr * gradient(W, X, Y); keep the k entries of V with the largest magnitude |V| and
    set the others to 0. Returns a new ndarray of shape (5,); W is not modified.

    k is an argument: use ``k``, never the literal 2. The handout's k = 2 carries most of the
    points; the grader also calls it with other values of k (k = 3 in the handout's tests) and
    other shapes of W and X.
    """
    # Your code here: the gradient step V, using gradient()
    # Your code here: find the indices of the k largest |V| (e.g. np.argsort)
    # Your code here: zero every other entry of V and return it
    raise NotImplementedError("projected_gd_step: gradient step, then keep the k largest |V|")


def subgradient_l1_step(W, X, Y, lr, lam):
    """Problem 2.4: one full-batch subgradient step on L(W) + lam * ||W||_1.

    W+ = W - lr * (gradient(W, X, Y) + lam * sign(W)), with sign(0) = 0 (as np.sign does).
    Returns a new ndarray of shape (5,); W is not modified.
    """
    # Your code here: a subgradient of lam * ||W||_1 is lam * sign(W)
    # Your code here: one update using gradient() plus that subgradient
    raise NotImplementedError("subgradient_l1_step: step along gradient + lam * sign(W)")


def soft_threshold(W, threshold):
    """The proximal operator of threshold * ||.||_1: sign(v) * max(|v| - threshold, 0) per entry.

    Entries with |v| <= threshold become exactly 0; the others shrink toward 0 by threshold.
    Returns a new ndarray of W's shape; W is not modified.
    """
    # Your code here: elementwise sign(W) * max(|W| - threshold, 0)
    raise NotImplementedError("soft_threshold: sign(v) * max(|v| - threshold, 0)")


def proximal_l1_step(W, X, Y, lr, threshold):
    """Problem 2.5: one full-batch proximal-gradient step for L(W) + lam * ||W||_1.

    W+ = soft_threshold(W - lr * gradient(W, X, Y), threshold), where threshold = lr * lam.
    Returns a new ndarray of shape (5,); W is not modified.
    """
    # Your code here: the gradient step, using gradient()
    # Your code here: the proximal step, using soft_threshold()
    raise NotImplementedError("proximal_l1_step: gradient step, then soft_threshold")


def trimmed_l1_step(W, X, Y, lr, threshold, h=3):
    """Problem 2.6: one full-batch proximal-gradient step for the trimmed L1 penalty.

    V = W - lr * gradient(W, X, Y); soft-threshold (by ``threshold``) ONLY the h entries of V
    with the smallest magnitude |V|; the other entries of V are kept unchanged.
    Returns a new ndarray of shape (5,); W is not modified.

    h is an argument: use ``h``, never the literal 3. The handout's h = 3 carries most of the
    points; the grader also calls it with other values of h (h = 2 in the handout's tests) and
    other shapes of W and X.
    """
    # Your code here: the gradient step V, using gradient()
    # Your code here: find the indices of the h smallest |V| (e.g. np.argsort)
    # Your code here: apply soft_threshold() to those entries only, and return the result
    raise NotImplementedError("trimmed_l1_step: soft-threshold only the h smallest |V|")
