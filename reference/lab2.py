"""Lab 2 (reference): magnitude pruning of ResNet-20, layer-wise and global.

"Prunable" layers are every nn.Conv2d / nn.Linear whose module name does not contain
"id_mapping" (the 1x1 shortcut convs stay dense): 20 layers in the course's ResNet-20.
Pruning works in place on ``layer.weight`` (same Parameter, device and dtype); biases are
never touched. The mask keeps |w| >= threshold, i.e. it zeroes the weights strictly below it.
"""
import time

import torch
import torch.nn as nn

device = "cuda" if torch.cuda.is_available() else "cpu"


def _prunable_layers(net):
    """(name, module) for every Conv2d / Linear outside the id_mapping shortcuts."""
    return [(name, layer) for name, layer in net.named_modules()
            if isinstance(layer, (nn.Conv2d, nn.Linear)) and "id_mapping" not in name]


@torch.no_grad()
def prune_by_percentage(layer, q=80.0):
    """3.2: zero, in place, the weights of ``layer`` whose |w| is below its q-th percentile."""
    weight = layer.weight
    # float64 so the percentile matches np.percentile's linear interpolation
    threshold = torch.quantile(weight.abs().flatten().double(), q / 100.0)
    keep = weight.abs().double() >= threshold  # same shape as weight
    weight.masked_fill_(~keep, 0.0)


def finetune_after_prune(net, trainloader, criterion, optimizer, prune=True):
    """3.3: one epoch of training; with ``prune``, pruned weights stay exactly 0 throughout.

    The masks of nonzero weights are recorded once, before the first step, and re-applied
    after every optimizer step (momentum and weight decay would otherwise revive them).
    """
    weight_mask = {name: layer.weight.detach() != 0 for name, layer in _prunable_layers(net)}

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
            with torch.no_grad():
                for name, layer in _prunable_layers(net):
                    layer.weight.masked_fill_(~weight_mask[name], 0.0)

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
    """3.4: the q to prune before 0-based ``epoch``: 8, 16, ..., 80 for epochs 0..9, then None."""
    return 8.0 * (epoch + 1) if epoch < 10 else None


@torch.no_grad()
def global_prune_by_percentage(net, q=80.0):
    """3.5: one threshold, the q-th percentile of |w| over all prunable weights, for every layer."""
    layers = _prunable_layers(net)
    all_weights = torch.cat([layer.weight.abs().flatten().double().cpu() for _, layer in layers])
    threshold = torch.quantile(all_weights, q / 100.0).item()
    for _, layer in layers:
        keep = layer.weight.abs().double() >= threshold
        layer.weight.masked_fill_(~keep, 0.0)


def layer_sparsity(layer):
    """3.3 (with finetune_after_prune): the fraction of exact zeros in ``layer.weight``, as a
    Python float in [0, 1]."""
    weight = layer.weight
    return (weight == 0).sum().item() / weight.numel()
