"""Lab 2: pruning ResNet-20 on CIFAR-10 (PyTorch).

"Prunable" layers: every nn.Conv2d and nn.Linear of the network whose module name does NOT
contain "id_mapping" (the 1x1 shortcut convs are never pruned). In the course's ResNet-20 these
are 20 layers, found with:

    for name, layer in net.named_modules():
        if (isinstance(layer, nn.Conv2d) or isinstance(layer, nn.Linear)) and "id_mapping" not in name:
            ...

Conventions the grader accepts everywhere in this file:
- NumPy or torch (e.g. ``layer.weight.data.cpu().numpy()`` and ``np.percentile``, or
  ``torch.quantile`` / ``torch.kthvalue`` / ``topk`` on the tensor);
- a mask that keeps ``|w| >= threshold`` or ``|w| > threshold``;
- changing weights in place through ``layer.weight.data`` or under ``torch.no_grad()``.
What it requires: ``layer.weight`` stays the SAME nn.Parameter object (do not assign a new
tensor or Parameter to ``layer.weight``), on the same device with the same dtype, and biases
are left untouched.

Use the global ``device`` below for any tensor you create (masks, inputs, targets): the grader
runs your code on CPU or on a GPU, and sets ``device`` accordingly. Do not call ``.cuda()``.
"""
import time

import numpy as np
import torch
import torch.nn as nn

device = "cuda" if torch.cuda.is_available() else "cpu"


def prune_by_percentage(layer, q=80.0):
    """Problem 3.2: prune one layer by the q-th percentile of the magnitude of its weights.

    layer: an nn.Conv2d or nn.Linear (weight of any shape). q: a percentage in [0, 100].
    threshold = the q-th percentile of abs(layer.weight) of THIS layer; the weights whose
    magnitude is below it are set to exactly 0, in place (about q% of the layer).
    Returns None (returning the mask is also accepted).
    """
    # Convert the weight of "layer" to a numpy array (or keep working in torch)

    # Compute the q-th percentile of the abs of the converted array

    # Generate a binary mask of the same shape as the weight to decide which elements to prune

    # Convert the mask to a torch tensor and put it on `device`

    # Multiply the weight by the mask to perform pruning (in place, under torch.no_grad()
    # or through layer.weight.data)
    raise NotImplementedError("prune_by_percentage: zero the weights below the q-th percentile")


def finetune_after_prune(net, trainloader, criterion, optimizer, prune=True):
    """Problem 3.3: finetune the (pruned) model for ONE epoch over ``trainloader``.

    With prune=True, the weights that are 0 when the function starts must still be exactly 0
    after every optimizer step (momentum and weight decay would otherwise move them).
    With prune=False, this is one ordinary epoch of training: no mask is applied, so pruned
    weights become nonzero again (the grader checks that they do). Returns None.
    (``layer_sparsity``, at the end of this file, is graded under 3.3 too.)
    The printout every 50 steps is for you; the grader does not read it.
    """
    # Build a dictionary for the nonzero weights
    weight_mask = {}
    for name, layer in net.named_modules():
        if (isinstance(layer, nn.Conv2d) or isinstance(layer, nn.Linear)) and "id_mapping" not in name:
            # Your code here: a mask on `device` with 1 for each nonzero weight and 0 for each zero
            # weight_mask[name] = ...
            raise NotImplementedError("finetune_after_prune: record the masks of nonzero weights")

    net.train()
    global_steps = 0
    train_loss = 0
    correct = 0
    total = 0
    start = time.time()
    for batch_idx, (inputs, targets) in enumerate(trainloader):
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()

        if prune:
            for name, layer in net.named_modules():
                if (isinstance(layer, nn.Conv2d) or isinstance(layer, nn.Linear)) and "id_mapping" not in name:
                    # Your code here: use weight_mask to make sure zero elements remain zero
                    raise NotImplementedError("finetune_after_prune: re-apply the masks after each step")

        train_loss += loss.item()
        _, predicted = outputs.max(1)
        total += targets.size(0)
        correct += predicted.eq(targets).sum().item()
        global_steps += 1

        if global_steps % 50 == 0:
            end = time.time()
            num_examples_per_second = 50 * targets.size(0) / (end - start)
            print("[Step=%d]\tLoss=%.4f\tacc=%.4f\t%.1f examples/second"
                  % (global_steps, train_loss / (batch_idx + 1), (correct / total),
                     num_examples_per_second))
            start = time.time()


def iterative_prune_percentage(epoch):
    """Problem 3.4: the percentage q to prune (with prune_by_percentage) before epoch ``epoch``.

    epoch is 0-based. Iterative pruning prunes 8% more before each of the first 10 epochs:
    q = 8 * (epoch + 1) for epoch = 0..9 (8, 16, ..., 80); from epoch 10 on nothing more is
    pruned: return None (returning 80 is also accepted). Finetune with prune=False for epochs
    0..8 and prune=True from epoch 9 on.
    """
    # Your code here
    raise NotImplementedError("iterative_prune_percentage: 8 * (epoch + 1) for epoch < 10")


def global_prune_by_percentage(net, q=80.0):
    """Problem 3.5: prune all prunable layers with ONE threshold, in place.

    threshold = the q-th percentile of abs of ALL prunable weights, flattened and concatenated
    (every layer counts by its number of weights); then every prunable layer zeroes its
    weights whose magnitude is below that threshold. Layers differ in the fraction they lose;
    the network as a whole loses about q%. id_mapping layers are untouched. Returns None.
    """
    # A list to gather all the weights
    flattened_weights = []
    # Find the global threshold
    for name, layer in net.named_modules():
        if (isinstance(layer, nn.Conv2d) or isinstance(layer, nn.Linear)) and "id_mapping" not in name:
            # Your code here: add the flattened weight of this layer to the list
            pass
    # Your code here: concatenate them and compute the q-th percentile of their abs

    # Apply the pruning threshold to all layers
    for name, layer in net.named_modules():
        if (isinstance(layer, nn.Conv2d) or isinstance(layer, nn.Linear)) and "id_mapping" not in name:
            # Your code here: zero, in place, the weights of this layer below the threshold
            pass
    raise NotImplementedError("global_prune_by_percentage: one threshold for all prunable layers")


def layer_sparsity(layer):
    """Problem 3.3 (with finetune_after_prune): the fraction of the weights of ``layer`` that
    are exactly 0, a Python float in [0, 1]; the code that measures each layer's sparsity.

    Counts ``layer.weight`` only (not the bias): number of zeros / number of weights.
    """
    # Your code here
    raise NotImplementedError("layer_sparsity: count the zeros of layer.weight")
