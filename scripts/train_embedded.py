"""Train the embedded ResNet-20 checkpoint on the embedded shapes data set, deterministically.

    .venv/bin/python scripts/train_embedded.py            # writes fixtures/embedded/

Writes ``checkpoint.pt`` (a plain state dict, loadable by ``hw4.resnet.load_pretrained``) and
``checkpoint.json`` (recipe version, seeds, schedule, sha256, and the test accuracies in float and
at 6..2 bits). Re-run it whenever ``hw4.data.EMBEDDED_VERSION`` changes.

Deterministic on one machine and torch version: fixed seeds, deterministic algorithms, 2 CPU
threads, seeded loaders. The schedule is not the course's (that one finetunes a trained model);
it trains from scratch with a one-cycle learning rate so that it finishes in a few minutes on
two cores.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "student")]

from hw4.data import EMBEDDED_SEED, EMBEDDED_VERSION, embedded_dataset, test_loader, train_loader  # noqa: E402
from hw4.resnet import ResNetCIFAR  # noqa: E402
from hw4.training import evaluate  # noqa: E402

OUT_DIR = ROOT / "fixtures" / "embedded"
TRAIN_SEED = 0
EPOCHS = 16
BATCH = 128
PEAK_LR = 0.1
WEIGHT_DECAY = 5e-4


def train(epochs: int) -> dict:
    torch.manual_seed(TRAIN_SEED)
    ds = embedded_dataset()
    net = ResNetCIFAR()
    optimizer = torch.optim.SGD(net.parameters(), lr=PEAK_LR, momentum=0.9, nesterov=True,
                                weight_decay=WEIGHT_DECAY)
    steps_per_epoch = -(-len(ds.x_train) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, PEAK_LR, total_steps=epochs * steps_per_epoch,
                                                   pct_start=0.25)
    criterion = torch.nn.CrossEntropyLoss()
    start = time.time()
    for epoch in range(epochs):
        net.train()
        for images, labels in train_loader(ds, batch_size=BATCH, seed=TRAIN_SEED + epoch):
            optimizer.zero_grad()
            loss = criterion(net(images), labels)
            loss.backward()
            optimizer.step()
            schedule.step()
        print(f"epoch {epoch + 1}/{epochs}: last loss {loss.item():.3f}, "
              f"{time.time() - start:.0f} s", flush=True)
    return {"net": net, "ds": ds, "seconds": round(time.time() - start)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    trained = train(args.epochs)
    net, ds = trained["net"], trained["ds"]
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.out / "checkpoint.pt"
    torch.save(net.state_dict(), checkpoint)

    from reference.lab3 import STE as ste  # the quantizer the figures are measured with
    ste_name = "reference.lab3.STE"
    loader = test_loader(ds)
    accuracy = {"float": evaluate(net, loader)}
    for bits in (6, 5, 4, 3, 2):
        quantized = ResNetCIFAR(Nbits=bits, ste=ste)
        quantized.load_state_dict(net.state_dict())
        accuracy[str(bits)] = evaluate(quantized, loader)
    record = {
        "dataset": f"embedded-{EMBEDDED_VERSION}", "dataset_seed": EMBEDDED_SEED,
        "train_images": len(ds.x_train), "test_images": len(ds.x_test),
        "train_seed": TRAIN_SEED, "epochs": args.epochs, "batch_size": BATCH,
        "optimizer": f"SGD nesterov momentum 0.9, weight decay {WEIGHT_DECAY}, one-cycle peak lr {PEAK_LR}",
        "augmentation": "course: random crop 32 padding 4, horizontal flip",
        "torch": torch.__version__, "threads": 2, "train_seconds": trained["seconds"],
        "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        "quantizer": ste_name,
        "test_accuracy": {key: round(value, 4) for key, value in accuracy.items()},
    }
    (args.out / "checkpoint.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
