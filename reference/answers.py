"""Problem 1 (reference): the True/False key.

THE INSTRUCTOR'S TO CONFIRM. This is the key two independent students agreed on; edit the
values here (and only here) if the instructor decides otherwise, then regenerate the fixtures.
"""

TRUE_FALSE = {
    "1.1": True,   # weight pruning and weight quantization are orthogonal and can be combined
    "1.2": False,  # pruned zeros need not be computed, so training a pruned model on a GPU is much faster
    "1.3": False,  # a pruned model can be Huffman-coded for compression even without quantization
    "1.4": False,  # SGD with L1 (or DeepHoyer) regularization gives exact zeros: no final pruning step
    "1.5": False,  # soft thresholding solves the "bias" problem of L1
    "1.6": True,   # group Lasso applies L1 regularization to the L2 norms of the groups
    "1.7": True,   # adding a proximal term gives smoother convergence
    "1.8": True,   # early exits help against both overfitting and overthinking
    "1.9": False,  # with an STE, the forward pass and gradient accumulation both use full-precision weights
    "1.10": True,  # mixed precision gives higher accuracy at a similar model size
}
