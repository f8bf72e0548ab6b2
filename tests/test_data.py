"""DataModules: three disjoint stratified splits, normalization, CIFAR-10 python batches, image folders, augmentation."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from oneshot.data import (
    CIFAR10_MEAN, CIFAR10_STD, EpochShuffleSampler, augment_batch, create_datamodule, datamodule_from_info,
    list_datamodules,
)

from conftest import image_folder

torch.set_num_threads(1)


def test_registry() -> None:
    assert list_datamodules() == ["cifar10", "digits", "imagefolder"]
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        create_datamodule("mnist")


@pytest.mark.parametrize("size", [8, 16])
def test_digits_splits_disjoint_stratified_and_normalized(size: int) -> None:
    dm = create_datamodule("digits", image_size=size, holdout_fraction=0.2, test_fraction=0.2)
    dm.setup()
    s = dm.split_indices
    train, holdout, test = (set(s[k].tolist()) for k in ("train", "holdout", "test"))
    assert not (train & holdout) and not (train & test) and not (holdout & test)
    assert len(train) + len(holdout) + len(test) == 1797  # nothing lost
    assert abs(len(test) - 0.2 * 1797) < 10 and abs(len(holdout) - 0.2 * 0.8 * 1797) < 10
    from sklearn.datasets import load_digits

    target = load_digits().target
    for idx in s.values():  # every class in every split, in proportion (stratified)
        frac = np.bincount(target[idx], minlength=10) / len(idx)
        assert np.all(np.abs(frac - np.bincount(target, minlength=10) / 1797) < 0.02)
    x, y = dm.train_set.take(range(len(dm.train_set)))
    assert x.shape == (len(train), 1, size, size) and dm.in_chans == 1 and dm.num_classes == 10
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3  # normalized with train statistics
    assert torch.equal(y, torch.from_numpy(target[s["train"]]))


def test_split_seed_fixes_splits_training_seed_does_not_move_them() -> None:
    a = create_datamodule("digits", image_size=8, seed=0)
    b = create_datamodule("digits", image_size=8, seed=5)
    c = create_datamodule("digits", image_size=8, split_seed=1)
    for dm in (a, b, c):
        dm.setup()
    assert all(np.array_equal(a.split_indices[k], b.split_indices[k]) for k in a.split_indices)
    assert not np.array_equal(a.split_indices["holdout"], c.split_indices["holdout"])


def test_balanced_caps_and_info_round_trip() -> None:
    dm = create_datamodule("digits", image_size=8, max_train_samples=60, max_eval_samples=30)
    dm.setup()
    _, y = dm.train_set.take(range(len(dm.train_set)))
    assert len(y) == 60 and set(np.bincount(y.numpy()).tolist()) == {6}
    assert len(dm.holdout_set) == 30 and len(dm.test_set) == 30
    info = dm.info()
    assert info["mean"] == list(dm.mean) and info["split_sizes"] == {"train": 60, "holdout": 30, "test": 30}
    again = datamodule_from_info(info)
    again.setup()
    assert torch.equal(again.holdout_set.take(range(30))[0], dm.holdout_set.take(range(30))[0])
    with pytest.raises(ValueError, match="unknown data override"):
        datamodule_from_info(info, image_sz=3)


def test_train_loader_full_batches_epoch_shuffle() -> None:
    dm = create_datamodule("digits", image_size=8, batch_size=32, max_train_samples=100)
    batches = list(dm.train_dataloader())
    assert len(batches) == 3 and all(len(b[1]) == 32 for b in batches)  # drop_last
    s = EpochShuffleSampler(10, seed=1)
    first = list(s)
    assert first == list(s)  # a function of (seed, epoch)
    s.set_epoch(1)
    assert sorted(list(s)) == list(range(10)) and list(s) != first


def _write_batch(path: Path, images: np.ndarray, labels: list[int]) -> None:
    """The CIFAR-10 python format: a pickled dict with bytes keys, data (N, 3072) uint8 rows in CHW order."""
    payload = {b"batch_label": b"test", b"labels": labels, b"data": images.reshape(len(labels), -1),
               b"filenames": [f"{i}.png".encode() for i in range(len(labels))]}
    with open(path, "wb") as f:
        pickle.dump(payload, f, protocol=2)


def _fake_cifar(root: Path, per_class: int = 4) -> tuple[np.ndarray, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = 10 * per_class
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = [i % 10 for i in range(n)]
    _write_batch(root / "data_batch_1", images[: n // 2], labels[: n // 2])
    _write_batch(root / "data_batch_2", images[n // 2:], labels[n // 2:])
    test = rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    _write_batch(root / "test_batch", test, [i % 10 for i in range(20)])
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)], b"num_vis": 3072}, f, protocol=2)
    return images, test


def test_cifar10_python_batches(tmp_path: Path) -> None:
    images, test = _fake_cifar(tmp_path / "cifar-10-batches-py")
    dm = create_datamodule("cifar10", path=str(tmp_path), image_size=32, holdout_fraction=0.25)
    dm.setup()
    assert dm.classes == [f"c{i}" for i in range(10)] and dm.in_chans == 3
    assert len(dm.train_set) == 30 and len(dm.holdout_set) == 10 and len(dm.test_set) == 20
    x, _ = dm.test_set.take([3])
    raw = torch.from_numpy(test[3]).float() / 255
    expect = (raw - torch.tensor(CIFAR10_MEAN).view(3, 1, 1)) / torch.tensor(CIFAR10_STD).view(3, 1, 1)
    assert torch.allclose(x[0], expect, atol=1e-6)  # test split is test_batch, pixel for pixel
    i = int(dm.split_indices["holdout"][0])
    hx, hy = dm.holdout_set.take([0])
    assert int(hy[0]) == i % 10
    small = create_datamodule("cifar10", path=str(tmp_path / "cifar-10-batches-py"), image_size=16)
    small.setup()
    assert small.train_set.take([0])[0].shape == (1, 3, 16, 16)


def test_cifar10_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere'}.*data_batch_1"):
        create_datamodule("cifar10", path=str(tmp_path / "nowhere")).setup()
    with pytest.raises(ValueError, match="needs data.path"):
        create_datamodule("cifar10").setup()
    _fake_cifar(tmp_path)
    (tmp_path / "data_batch_2").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ValueError, match="data_batch_2.*not a readable CIFAR-10 python batch"):
        create_datamodule("cifar10", path=str(tmp_path)).setup()


def test_imagefolder_flat_and_train_test(tmp_path: Path) -> None:
    image_folder(tmp_path / "flat", 10)
    dm = create_datamodule("imagefolder", path=str(tmp_path / "flat"), image_size=8)
    dm.setup()
    assert dm.classes == ["cat", "dog", "emu"] and sum(map(len, dm.split_indices.values())) == 30
    x, y = dm.train_set[0]
    assert x.shape == (3, 8, 8) and int(y) in (0, 1, 2)
    image_folder(tmp_path / "tt" / "train", 8)
    image_folder(tmp_path / "tt" / "test", 2)
    dm = create_datamodule("imagefolder", path=str(tmp_path / "tt"), image_size=8)
    dm.setup()
    assert len(dm.test_set) == 6 and len(dm.train_set) + len(dm.holdout_set) == 24
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_datamodule("imagefolder", path=str(tmp_path / "none")).setup()
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no images found"):
        create_datamodule("imagefolder", path=str(tmp_path / "empty")).setup()


def test_augment_is_exact_shift_or_flip() -> None:
    x = torch.randn(16, 2, 8, 8)
    fill = [-1.5, 2.0]
    out = augment_batch(x, torch.Generator().manual_seed(0), 2, True, fill)
    assert torch.equal(augment_batch(x, torch.Generator().manual_seed(0), 0, False), x)  # off: identity
    assert torch.equal(out, augment_batch(x, torch.Generator().manual_seed(0), 2, True, fill))  # seeded

    def shifted(img: torch.Tensor, dx: int, dy: int, flip: bool) -> torch.Tensor:
        src = img.flip(-1) if flip else img
        pad = torch.tensor(fill).view(2, 1, 1).expand(2, 12, 12).clone()
        pad[:, 2:10, 2:10] = src
        return pad[:, 2 + dy: 10 + dy, 2 + dx: 10 + dx]

    for img, got in zip(x, out):  # every output is one translated (and maybe mirrored) copy, padded with fill
        matches = [(dx, dy, f) for dx in range(-2, 3) for dy in range(-2, 3) for f in (False, True)
                   if torch.allclose(shifted(img, dx, dy, f), got, atol=1e-5)]
        assert matches, "augmented image is not an exact shift of its input"


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_batches_of_numpy_arrays_still_read(tmp_path, protocol):
    """The restricted unpickler reads what CIFAR batches hold: dicts of bytes, lists and a uint8 array."""
    import pickle

    from oneshot.data import read_cifar_batch

    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    f = tmp_path / "data_batch_1"
    f.write_bytes(pickle.dumps({b"data": data, b"labels": [3, 7], b"batch_label": b"x", b"filenames": [b"a", b"b"]},
                               protocol=protocol))
    images, labels = read_cifar_batch(f)
    assert np.array_equal(images.reshape(2, -1), data) and labels.tolist() == [3, 7]
