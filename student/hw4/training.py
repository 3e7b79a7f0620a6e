"""Training and evaluation with the course's hyperparameters.

    from hw4.training import course_optimizer, course_criterion, train_epoch, evaluate
    optimizer = course_optimizer(net)                 # SGD lr 0.002, momentum 0.875, wd 1e-4
    train_epoch(net, train_loader(ds), course_criterion(), optimizer, device)
    accuracy = evaluate(net, test_loader(ds), device)  # in [0, 1]

A progress bar (tqdm) is drawn only when stderr is a terminal, so logs and graders stay clean.
"""
from __future__ import annotations

import sys

import torch
import torch.nn as nn

LEARNING_RATE = 0.002
MOMENTUM = 0.875
WEIGHT_DECAY = 1e-4


def course_optimizer(net: nn.Module, lr: float = LEARNING_RATE) -> torch.optim.SGD:
    """SGD over all of ``net``'s parameters with the course's momentum and weight decay."""
    return torch.optim.SGD(net.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def course_criterion() -> nn.CrossEntropyLoss:
    return nn.CrossEntropyLoss()


def _progress(loader, description: str, show: bool | None):
    """``loader`` wrapped in a tqdm bar when ``show`` (None: when stderr is a terminal)."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return loader
    from tqdm import tqdm
    return tqdm(loader, desc=description, leave=False)


def train_epoch(net: nn.Module, loader, criterion, optimizer, device="cpu",
                progress: bool | None = None) -> float:
    """One pass over ``loader`` in train mode, one optimizer step per batch; ``net`` is updated
    in place. Returns the mean training loss over the samples seen."""
    net.train()
    total_loss, seen = 0.0, 0
    for images, labels in _progress(loader, "train", progress):
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(net(images), labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        seen += len(labels)
    return total_loss / max(seen, 1)


@torch.no_grad()
def evaluate(net: nn.Module, loader, device="cpu", progress: bool | None = None) -> float:
    """Top-1 accuracy of ``net`` (put in eval mode) over ``loader``, a float in [0, 1]."""
    net.eval()
    correct, seen = 0, 0
    for images, labels in _progress(loader, "test", progress):
        logits = net(images.to(device))  # (B, 10)
        correct += (logits.argmax(dim=1).cpu() == labels).sum().item()
        seen += len(labels)
    return correct / max(seen, 1)
