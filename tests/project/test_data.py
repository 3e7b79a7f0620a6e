"""The data layer: the three sources, the loaders, and ``prepare-data``."""
from __future__ import annotations

import argparse
import pickle

import numpy as np
import pytest
import torch

from autograder import prepare_data
from hw4 import data
from hw4.data import (MEAN, STD, SHAPE_CLASSES, generate_shapes, load_dataset, normalize,
                      random_crop_flip, train_loader)


def fake_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random uint8 NHWC images and labels cycling 0..9 in a shuffled order."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), labels


def write_cifar_folder(root, train_batches, test, names=tuple(f"c{i}" for i in range(10))):
    """A folder in torchvision's CIFAR-10 layout, with batches pickled the way CIFAR-10's are:
    ``data`` uint8 (N, 3072) channel-major rows, ``labels`` a list of ints."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def dump(name, x, y):
        rows = x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # (N, 3 * 32 * 32) R plane, G, B
        entry = {"batch_label": name, "labels": [int(v) for v in y], "data": rows,
                 "filenames": [f"{i}.png" for i in range(len(x))]}
        with open(folder / name, "wb") as file:
            pickle.dump(entry, file, protocol=2)

    for index, (x, y) in enumerate(train_batches, start=1):
        dump(f"data_batch_{index}", x, y)
    dump("test_batch", *test)
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({"label_names": list(names), "num_vis": 3072}, file, protocol=2)
    return root


# --- the embedded default -------------------------------------------------------------------

@pytest.fixture(scope="module")
def embedded():
    return load_dataset()


def test_embedded_dataset_shapes_and_balance(embedded):
    assert embedded.classes == SHAPE_CLASSES
    for x, y in ((embedded.x_train, embedded.y_train), (embedded.x_test, embedded.y_test)):
        assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3)
        assert y.dtype == np.int64 and y.shape == (len(x),)
        np.testing.assert_array_equal(y[:20], np.tile(np.arange(10), 2))  # interleaved
        assert np.bincount(y, minlength=10).min() == len(y) // 10


def test_embedded_splits_differ(embedded):
    assert not np.array_equal(embedded.x_train[:100], embedded.x_test[:100])


def test_shape_generator_is_deterministic_in_its_seed():
    a, labels_a = generate_shapes(3, seed=7)
    b, labels_b = generate_shapes(3, seed=7)
    c, _ = generate_shapes(3, seed=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(labels_a, labels_b)
    assert not np.array_equal(a, c)


def test_shape_classes_differ_on_average():
    """Noise-free class means must be distinct images, or the set would be unlearnable."""
    x, y = generate_shapes(40, seed=1, noise=0.0)
    means = np.stack([x[y == k].astype(np.float64).mean(axis=0) for k in range(10)])
    gaps = [np.abs(means[i] - means[j]).mean() for i in range(10) for j in range(i + 1, 10)]
    assert min(gaps) > 0.5


# --- files ----------------------------------------------------------------------------------

def test_npz_source_round_trips(tmp_path):
    x_train, y_train = fake_images(30, 0)
    x_test, y_test = fake_images(20, 1)
    np.savez(tmp_path / "tiny.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             classes=np.array([f"k{i}" for i in range(10)]))
    ds = load_dataset(tmp_path / "tiny.npz")
    assert ds.name == "tiny" and ds.classes == tuple(f"k{i}" for i in range(10))
    np.testing.assert_array_equal(ds.x_train, x_train)
    np.testing.assert_array_equal(ds.y_test, y_test)


def test_npz_with_wrong_layout_is_refused(tmp_path):
    x, y = fake_images(10, 0)
    np.savez(tmp_path / "nchw.npz", x_train=x.transpose(0, 3, 1, 2), y_train=y, x_test=x, y_test=y)
    with pytest.raises(ValueError, match="uint8 \\(N, 32, 32, 3\\)"):
        load_dataset(tmp_path / "nchw.npz")


def test_cifar_folder_source_reads_torchvision_layout(tmp_path):
    (x1, y1), (x2, y2), test = fake_images(20, 0), fake_images(10, 1), fake_images(10, 2)
    write_cifar_folder(tmp_path, [(x1, y1), (x2, y2)], test)
    ds = load_dataset(tmp_path)
    np.testing.assert_array_equal(ds.x_train, np.concatenate([x1, x2]))  # NHWC restored
    np.testing.assert_array_equal(ds.y_train, np.concatenate([y1, y2]))
    np.testing.assert_array_equal(ds.x_test, test[0])
    assert ds.y_train.dtype == np.int64 and ds.classes[3] == "c3"
    assert load_dataset(tmp_path / "cifar-10-batches-py").x_test.shape == (10, 32, 32, 3)


def test_cifar_folder_refuses_foreign_pickles(tmp_path):
    write_cifar_folder(tmp_path, [fake_images(10, 0)], fake_images(10, 1))
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as file:
        pickle.dump({"data": argparse.Namespace(), "labels": []}, file)
    with pytest.raises(pickle.UnpicklingError, match="Namespace"):
        load_dataset(tmp_path)


def test_unknown_source_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "nothing.bin")


# --- loaders --------------------------------------------------------------------------------

def test_normalize_uses_the_course_constants():
    images = torch.full((1, 32, 32, 3), 255, dtype=torch.uint8)
    out = normalize(images)
    assert out.shape == (1, 3, 32, 32)
    expected = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(out[0, :, 5, 7], expected)


def test_crop_flip_matches_pad_crop_flip_by_hand():
    images = torch.randint(0, 256, (6, 32, 32, 3), dtype=torch.uint8)
    out = random_crop_flip(images, torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)  # replay the same draws
    top = torch.randint(0, 9, (6,), generator=generator)
    left = torch.randint(0, 9, (6,), generator=generator)
    flip = torch.rand(6, generator=generator) < 0.5
    padded = torch.zeros(6, 40, 40, 3, dtype=torch.uint8)
    padded[:, 4:36, 4:36] = images
    for i in range(6):
        crop = padded[i, top[i]:top[i] + 32, left[i]:left[i] + 32]
        expected = crop.flip(1) if flip[i] else crop
        torch.testing.assert_close(out[i], expected)


def test_train_loader_is_deterministic_for_a_seed(embedded):
    def batches(seed):
        return [(x, y) for x, y in train_loader(embedded, batch_size=64, seed=seed, limit=200)]

    first, again, other = batches(5), batches(5), batches(6)
    assert len(first) == 4 and first[0][0].shape == (64, 3, 32, 32)
    for (xa, ya), (xb, yb) in zip(first, again):
        torch.testing.assert_close(xa, xb)
        torch.testing.assert_close(ya, yb)
    assert not torch.equal(first[0][1], other[0][1])


def test_train_loader_limit_takes_the_first_images(embedded):
    labels = torch.cat([y for _, y in train_loader(embedded, augment=False, limit=50)])
    assert sorted(labels.tolist()) == sorted(embedded.y_train[:50].tolist())


def test_test_loader_is_in_order_and_not_augmented(embedded):
    images, labels = next(iter(data.test_loader(embedded, limit=30)))
    assert images.shape == (30, 3, 32, 32)
    torch.testing.assert_close(images, normalize(torch.from_numpy(embedded.x_test[:30])))
    np.testing.assert_array_equal(labels.numpy(), embedded.y_test[:30])


# --- prepare-data ---------------------------------------------------------------------------

def test_balanced_interleaved_keeps_the_first_of_each_class():
    labels = np.array([3, 1, 0, 1, 3, 0, 2, 2, 0])
    index = prepare_data.balanced_interleaved(labels, 2, num_classes=4)
    np.testing.assert_array_equal(index, [2, 1, 6, 0, 5, 3, 7, 4])
    with pytest.raises(ValueError, match="class 0 has 3"):
        prepare_data.balanced_interleaved(labels, 4, num_classes=4)


def test_prepare_data_writes_balanced_subsets(tmp_path, capsys):
    write_cifar_folder(tmp_path / "cifar", [fake_images(50, 0), fake_images(40, 1)], fake_images(60, 2))
    parser = argparse.ArgumentParser()
    prepare_data.add_arguments(parser)
    args = parser.parse_args(["--cifar", str(tmp_path / "cifar"), "--out", str(tmp_path / "small.npz"),
                              "--train-per-class", "7", "--test-per-class", "4"])
    assert prepare_data.run(args) == 0
    ds = load_dataset(tmp_path / "small.npz")
    source = load_dataset(tmp_path / "cifar")
    assert len(ds.x_train) == 70 and len(ds.x_test) == 40
    np.testing.assert_array_equal(ds.y_train, np.tile(np.arange(10), 7))
    np.testing.assert_array_equal(ds.y_test, np.tile(np.arange(10), 4))
    first_of_class_2 = np.nonzero(source.y_train == 2)[0][0]
    np.testing.assert_array_equal(ds.x_train[2], source.x_train[first_of_class_2])
    assert ds.classes == source.classes


def test_prepare_data_reports_too_few_images(tmp_path, capsys):
    write_cifar_folder(tmp_path / "cifar", [fake_images(20, 0)], fake_images(20, 1))
    args = argparse.Namespace(cifar=tmp_path / "cifar", out=tmp_path / "x.npz",
                              train_per_class=3, test_per_class=1)
    assert prepare_data.run(args) == 2
    assert "fewer than 3" in capsys.readouterr().out
    assert not (tmp_path / "x.npz").exists()
