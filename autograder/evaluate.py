"""``python -m autograder evaluate``: the test accuracy of a checkpoint, for course staff.

    python -m autograder evaluate                              # embedded checkpoint and data
    python -m autograder evaluate --checkpoint pretrained_model.pt \
        --data cifar10_jpeg_q75.npz --nbits 4 --limit 2000

Quantized evaluation uses the staff STE (``reference/lab3.py``), never a student's. Paths
default to ``HW4_CHECKPOINT`` / ``HW4_DATA`` when set, else to the embedded ones.
"""
from __future__ import annotations

import argparse
import os

from autograder.machine import resolve_device
from autograder.paths import ensure_provided_importable


def reference_ste():
    """The staff ``STE`` class from ``reference/lab3.py`` (``autograder.staff``)."""
    from autograder.staff import reference

    return reference("lab3").STE


def accuracy(checkpoint=None, data=None, nbits=None, limit=None, device="cpu") -> float:
    """Test accuracy in [0, 1] of ``checkpoint`` on the test split of ``data`` (None: embedded),
    at ``nbits`` bits with the reference STE, or in float when ``nbits`` is None."""
    ensure_provided_importable()
    from hw4.data import load_dataset, test_loader
    from hw4.resnet import load_pretrained
    from hw4.training import evaluate

    try:
        ste = reference_ste() if nbits is not None else None
    except ImportError as error:
        raise ImportError(f"cannot import the reference STE from reference/lab3.py: {error}") from error
    net = load_pretrained(checkpoint, Nbits=nbits, ste=ste, device=device)
    return evaluate(net, test_loader(load_dataset(data), limit=limit), device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=os.environ.get("HW4_CHECKPOINT"),
                        help="a state_dict .pt file (default: $HW4_CHECKPOINT, else the embedded one)")
    parser.add_argument("--data", default=os.environ.get("HW4_DATA"),
                        help="a .npz or a torchvision CIFAR-10 folder (default: $HW4_DATA, else embedded)")
    parser.add_argument("--nbits", type=int, default=None,
                        help="quantize the residual blocks to this many bits (default: float)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N test images only")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def run(args: argparse.Namespace) -> int:
    try:
        result = accuracy(args.checkpoint, args.data, args.nbits, args.limit,
                          resolve_device(args.device))
    except (ImportError, FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"evaluate: {error}")
        return 2
    bits = "float" if args.nbits is None else f"{args.nbits} bits"
    print(f"accuracy {result:.4f} ({bits}, checkpoint {args.checkpoint or 'embedded'}, "
          f"data {args.data or 'embedded'}, {args.limit or 'all'} test images)")
    return 0
