"""Lightning DataModules with three disjoint splits: supernet training, holdout validation, test.

- `train`   trains the supernet (and is where BN recalibration draws its fixed subset);
- `holdout` scores subnets during evaluation and search (`val_dataloader`);
- `test`    is only for final reports (`test_dataloader`); evaluation and search never read it.

Datasets are found by name with `create_datamodule(name, **kwargs)` (`oneshot.data.datasets` registers them).

Splits are stratified and drawn with `split_seed`, independent of the training seed, so supernets trained with
different seeds are scored on the same holdout images. Normalization (`mean`, `std` per channel) defaults to the
training split's statistics (digits) or the dataset's usual constants, and is saved in checkpoints by `info()`.
Augmentation (random translation by up to `crop_padding` pixels, i.e. a padded random crop, plus an optional
horizontal flip) is applied batch-wise on the device during training only, from a generator seeded by
(seed, step, rank), so resumed runs see the same augmented batches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Sequence

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from supernets._registry import Registry

__all__ = [
    "SplitDataModule", "ResumableDataLoader", "SPLIT_KEYS", "TensorImageDataset", "FolderImageDataset",
    "EpochShuffleSampler", "gather", "register_datamodule", "create_datamodule", "list_datamodules",
    "datamodule_from_info", "datamodule_from_section",
    "augment_batch",
]



def _as_datamodule(name: str, obj: Any) -> type[SplitDataModule]:
    """An `oneshot.datasets` entry point names a `SplitDataModule` subclass whose `name` is the entry point's."""
    if not (isinstance(obj, type) and issubclass(obj, SplitDataModule)):
        raise ValueError(f"must name a oneshot.data.SplitDataModule subclass, got {obj!r} (a plain dataset or "
                         f"LightningDataModule is named in a recipe by data.class_path)")
    if obj.name != name:
        raise ValueError(f"{obj.__name__}.name is {obj.name!r}, not the entry point's name {name!r}")
    return obj


# Installed packages add datasets through the `oneshot.datasets` entry-point group (`mydata = mypkg.data:MyData`).
_DATAMODULES: Registry[type[SplitDataModule]] = Registry("dataset", entry_points="oneshot.datasets",
                                                         adapt=_as_datamodule)

# Constructor arguments that decide which images land in which split (given the data files): overriding one when
# rebuilding a checkpoint's data asks for another split on purpose. `path` is not one: data that moved must split
# the same way, and the split digest checks that it does.
SPLIT_KEYS = ("name", "holdout_fraction", "test_fraction", "split_seed", "max_train_samples", "max_eval_samples")


def register_datamodule(cls: type[SplitDataModule]) -> type[SplitDataModule]:
    """Class decorator: make a DataModule creatable by its `name`."""
    return _DATAMODULES.register(cls)


def list_datamodules(pattern: str = "*") -> list[str]:
    """Registered dataset names matching a shell-style pattern, sorted."""
    return _DATAMODULES.list(pattern)


def create_datamodule(name: str, **kwargs: Any) -> SplitDataModule:
    """Build a registered DataModule, e.g. `create_datamodule("digits", image_size=16, batch_size=64)`."""
    return _DATAMODULES.create(name, **kwargs)


def datamodule_from_info(info: dict[str, Any], **overrides: Any) -> SplitDataModule:
    """Rebuild the DataModule described by `SplitDataModule.info()` (as saved in a checkpoint).

    `overrides` replace constructor arguments, e.g. `path=` where the data now lives elsewhere, or batch sizes.
    """
    if info.get("class_path"):  # a user's class named in the recipe: rebuilt from its path and init args
        from .user import UserDataModule

        cls: type[SplitDataModule] = UserDataModule
    elif info.get("name", "") not in _DATAMODULES:
        raise ValueError(f"unknown dataset {info.get('name')!r} in data info; registered: {list_datamodules()}")
    else:
        cls = _DATAMODULES.get(info["name"])
    kwargs = {k: info[k] for k in cls.init_keys() if k in info}
    unknown = sorted(set(overrides) - set(cls.init_keys()))
    if unknown:
        raise ValueError(f"unknown data override(s) {unknown} for {info.get('name', cls.name)!r}; known: "
                         f"{sorted(cls.init_keys())}")
    kwargs.update(overrides)
    dm = cls(**kwargs)
    if not set(overrides) & set(SPLIT_KEYS):  # the same split was asked for: it must be the same images
        dm.expected_split_digest = info.get("split_digest")
    return dm


def datamodule_from_section(section: Any, seed: int = 0, eval_batch_size: int = 256) -> SplitDataModule:
    """The DataModule a recipe's `data` section describes (`seed` shuffles and augments, the split has its own).

    A section with `class_path` names the user's own dataset or LightningDataModule (`oneshot.data.user`).
    """
    common = dict(
        batch_size=section.batch_size, eval_batch_size=eval_batch_size, holdout_fraction=section.holdout_fraction,
        test_fraction=section.test_fraction, augment=section.augment, crop_padding=section.crop_padding,
        hflip=section.hflip, mean=section.mean, std=section.std, split_seed=section.split_seed, seed=seed,
        max_train_samples=section.max_train_samples, max_eval_samples=section.max_eval_samples,
        num_workers=section.num_workers,
    )
    if getattr(section, "class_path", None):
        from .user import UserDataModule

        return UserDataModule(section.class_path, section.init_args, **common)
    return create_datamodule(section.name, path=section.path, image_size=section.image_size, **common)


# --------------------------------------------------------------------------- datasets
class TensorImageDataset(Dataset):
    """Images held in memory as one tensor (N, C, H, W), raw values times `scale` in [0, 1], normalized on access."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 scale: float = 1.0) -> None:
        self.images, self.labels, self.scale = images, labels.long(), float(scale)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[i].float() * self.scale  # (C, H, W) in [0, 1]
        return (x - self.mean) / self.std, self.labels[i]

    def take(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Many items at once, vectorized: (images (B, C, H, W), labels (B,))."""
        t = torch.as_tensor(idx, dtype=torch.long)
        return (self.images[t].float() * self.scale - self.mean) / self.std, self.labels[t]


class FolderImageDataset(Dataset):
    """Image files decoded on access (PIL), converted to RGB, resized to `image_size` square, normalized."""

    def __init__(self, files: Sequence[str], labels: Sequence[int], image_size: int, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        self.files, self.labels, self.image_size = list(files), torch.as_tensor(labels).long(), image_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        try:
            with Image.open(self.files[i]) as im:
                im = im.convert("RGB")
                if im.size != (self.image_size, self.image_size):
                    im = im.resize((self.image_size, self.image_size), Image.BILINEAR)
                x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for truncated or foreign files
            raise ValueError(f"cannot read image {self.files[i]!r}: {exc}") from None
        return (x - self.mean) / self.std, self.labels[i]


def gather(dataset: Dataset, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Items `idx` of an (image, label) dataset as two stacked tensors; vectorized where the dataset can `take`."""
    if hasattr(dataset, "take"):
        return dataset.take(idx)
    items = [dataset[int(i)] for i in idx]
    return torch.stack([x for x, _ in items]), torch.as_tensor([int(y) for _, y in items])


class EpochShuffleSampler(Sampler[int]):
    """A random order that is a function of (seed, epoch): Lightning calls `set_epoch`, so resume is exact."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class ResumableDataLoader(DataLoader):
    """A DataLoader that continues mid-epoch where a resumed run stopped, so resuming from any step is exact.

    `position()` says (epoch, optimizer steps so far) of the trainer, as restored from the checkpoint. With one
    optimizer step per batch and a fixed number of batches per epoch (`drop_last`), `steps - epoch * len(self)`
    batches of the current epoch are done; the epoch's iteration skips them. Its order is a function of (seed,
    epoch) (`EpochShuffleSampler`), so the batches that follow are the ones the interrupted run would have seen.
    The skip is decided at the first batch, not in `__iter__`: Lightning creates the iterator before it restores
    the loop state and sets the sampler's epoch. `state_dict` exposes the position (so Lightning knows the loader
    resumes); nothing needs loading back, the trainer's restored step is the position. Skipped batches are still
    read, which is cheap for in-memory datasets and at most one epoch of decoding for image folders.
    """

    def __init__(self, *args: Any, position: Callable[[], tuple[int, int]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.position = position

    def _batches_done(self) -> int:
        epoch, steps = self.position() if self.position is not None else (0, 0)
        return int(min(max(steps - epoch * len(self), 0), len(self)))

    def state_dict(self) -> dict[str, int]:
        return {"batches_done": self._batches_done()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Nothing to load: the position is the trainer's restored (epoch, step)."""

    def __iter__(self) -> Iterator[Any]:
        return self._resume(super().__iter__())

    def _resume(self, it: Iterator[Any]) -> Iterator[Any]:
        for _ in range(self._batches_done()):  # first `next`: the loop state is restored by now
            next(it, None)
        yield from it


def augment_batch(x: torch.Tensor, generator: torch.Generator, max_shift: int, hflip: bool,
                  fill: Sequence[float] | torch.Tensor = 0.0) -> torch.Tensor:
    """Random translation by up to `max_shift` pixels (a padded random crop) and optional horizontal flip.

    x: (B, C, H, W) normalized images; `fill` is the value of uncovered pixels per channel, i.e. a raw 0 (black)
    after normalization, -mean/std, so padding looks like the background of dark-background data such as digits.
    The random numbers come from `generator` (CPU), so the result is reproducible. One `grid_sample` with nearest
    sampling: integer shifts land exactly on pixel centres, so nothing is interpolated.
    """
    b, _, h, w = x.shape
    if max_shift <= 0 and not hflip:
        return x
    shift = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=generator).float()  # pixels (dx, dy)
    flip = (torch.rand(b, generator=generator) < 0.5) if hflip else torch.zeros(b, dtype=torch.bool)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.where(flip, -1.0, 1.0)
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 2.0 * shift[:, 0] / w
    theta[:, 1, 2] = 2.0 * shift[:, 1] / h
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    fill = torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    return F.grid_sample(x - fill, grid, mode="nearest", padding_mode="zeros", align_corners=False) + fill


# --------------------------------------------------------------------------- splitting
def _stratified_take(labels: np.ndarray, idx: np.ndarray, fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Split `idx` into (rest, taken) with `fraction` of each class (rounded per class) in `taken`."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"split fraction must be in [0, 1), got {fraction}")
    taken = []
    for c in np.unique(labels[idx]):
        members = rng.permutation(idx[labels[idx] == c])
        taken.append(members[: int(round(fraction * len(members)))])
    took = np.sort(np.concatenate(taken)) if taken else np.array([], dtype=np.int64)
    return np.setdiff1d(idx, took), took


def _balanced_subset(labels: np.ndarray, idx: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most `limit` indices of `idx`, as equal per class as the classes allow (None: all)."""
    if limit is None or limit >= len(idx):
        return idx
    classes = np.unique(labels[idx])
    per_class = [rng.permutation(idx[labels[idx] == c]) for c in classes]
    # round-robin over classes keeps the subset balanced even when `limit` is not a multiple of the class count
    order = [m[i] for i in range(max(len(m) for m in per_class)) for m in per_class if i < len(m)]
    return np.sort(np.array(order[:limit], dtype=np.int64))


# --------------------------------------------------------------------------- base DataModule
@dataclass
class _Source:
    """Labelled images of one part of a dataset: a tensor (N, C, H, W) or a list of file paths, with labels (N,)."""

    items: Any
    labels: np.ndarray


class SplitDataModule(L.LightningDataModule):
    """Shared logic of the datasets: splits, normalization, loaders, batch augmentation, `info()`.

    Arguments (units): `path` local data folder (datasets that need one); `image_size` pixels (square);
    `batch_size` training images per step and rank; `eval_batch_size` images per holdout/test batch;
    `holdout_fraction` of the training pool held out to score subnets; `test_fraction` of the whole pool for the
    test split (only where the dataset has no test part of its own); `augment` turns training augmentation on;
    `crop_padding` largest random shift in pixels (None: image_size // 8); `hflip` random horizontal flips (None:
    the dataset's default); `mean` / `std` per-channel normalization (None: the dataset's default); `split_seed`
    seeds the splits and subsets; `seed` the shuffling and augmentation; `max_train_samples` / `max_eval_samples`
    class-balanced caps on the train and on the holdout and test splits; `num_workers` DataLoader processes.
    """

    name: ClassVar[str] = ""
    default_hflip: ClassVar[bool] = True

    def __init__(
        self,
        path: str | None = None,
        image_size: int = 16,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        holdout_fraction: float = 0.2,
        test_fraction: float = 0.2,
        augment: bool = True,
        crop_padding: int | None = None,
        hflip: bool | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        split_seed: int = 0,
        seed: int = 0,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if int(image_size) < 4:
            raise ValueError(f"image_size must be at least 4 pixels, got {image_size}")
        self.path = None if path is None else str(path)
        self.image_size, self.batch_size, self.eval_batch_size = int(image_size), int(batch_size), int(eval_batch_size)
        self.holdout_fraction, self.test_fraction = float(holdout_fraction), float(test_fraction)
        self.augment = bool(augment)
        self.crop_padding = self.image_size // 8 if crop_padding is None else int(crop_padding)
        self.hflip = self.default_hflip if hflip is None else bool(hflip)
        self._norm_arg = (mean, std)
        self.split_seed, self.seed = int(split_seed), int(seed)
        self.max_train_samples, self.max_eval_samples = max_train_samples, max_eval_samples
        self.num_workers = int(num_workers)
        self.mean: tuple[float, ...] = ()
        self.std: tuple[float, ...] = ()
        self.classes: list[str] = []
        self.in_chans = 3
        self.split_indices: dict[str, np.ndarray] = {}
        self.expected_split_digest: str | None = None  # set when rebuilt from a checkpoint: setup() checks it
        self.train_set: Dataset | None = None
        self.holdout_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @classmethod
    def init_keys(cls) -> tuple[str, ...]:
        """Constructor argument names (what `info()` saves and `datamodule_from_info` passes back)."""
        return ("path", "image_size", "batch_size", "eval_batch_size", "holdout_fraction", "test_fraction",
                "augment", "crop_padding", "hflip", "mean", "std", "split_seed", "seed", "max_train_samples",
                "max_eval_samples", "num_workers")

    # ----------------------------------------------------------------- implemented per dataset
    def _load(self) -> tuple[_Source, _Source | None]:
        """(labelled pool, test part or None); sets `in_chans` and `classes`."""
        raise NotImplementedError

    def _dataset(self, source: _Source, idx: np.ndarray) -> Dataset:
        """A Dataset of `source`'s items at `idx`, normalized with `self.mean` / `self.std`."""
        t = torch.from_numpy(idx)
        return TensorImageDataset(source.items[t], torch.from_numpy(source.labels)[t], self.mean, self.std,
                                  scale=1 / 255 if source.items.dtype == torch.uint8 else 1.0)

    def _default_norm(self, pool: _Source, train_idx: np.ndarray) -> tuple[Sequence[float], Sequence[float]]:
        raise NotImplementedError

    # ----------------------------------------------------------------- Lightning hooks
    @property
    def num_classes(self) -> int:
        self.setup()
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image, as the supernet takes it."""
        self.setup()
        return (self.in_chans, self.image_size, self.image_size)

    def setup(self, stage: str | None = None) -> None:
        """Load the data and cut the three disjoint splits (idempotent)."""
        if self.train_set is not None:
            return
        pool, test = self._load()
        rng = np.random.default_rng(self.split_seed)
        idx = np.arange(len(pool.labels))
        if test is None:  # no test part of its own: cut it from the pool first, so it never overlaps train/holdout
            idx, test_idx = _stratified_take(pool.labels, idx, self.test_fraction, rng)
            test = pool
        else:
            test_idx = np.arange(len(test.labels))
        train_idx, holdout_idx = _stratified_take(pool.labels, idx, self.holdout_fraction, rng)
        if len(train_idx) == 0 or len(holdout_idx) == 0:
            raise ValueError(f"{self.name}: {len(pool.labels)} labelled images are too few for train and holdout "
                             f"splits (holdout_fraction={self.holdout_fraction})")
        train_idx = _balanced_subset(pool.labels, train_idx, self.max_train_samples, rng)
        holdout_idx = _balanced_subset(pool.labels, holdout_idx, self.max_eval_samples, rng)
        test_idx = _balanced_subset(test.labels, test_idx, self.max_eval_samples, rng)
        mean, std = self._norm_arg
        if mean is None or std is None:
            default_mean, default_std = self._default_norm(pool, train_idx)
            mean = default_mean if mean is None else mean
            std = default_std if std is None else std
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        if len(self.mean) != self.in_chans or len(self.std) != self.in_chans:
            raise ValueError(f"{self.name}: mean and std need {self.in_chans} value(s), one per channel; "
                             f"got {list(self.mean)} and {list(self.std)}")
        self.split_indices = {"train": train_idx, "holdout": holdout_idx, "test": test_idx}
        digest = self.split_digest()
        if self.expected_split_digest is not None and digest != self.expected_split_digest:
            self.split_indices = {}
            raise ValueError(f"{self.name}: the rebuilt train/holdout/test split differs from the one the checkpoint "
                             f"was trained with (split digest {digest}, expected {self.expected_split_digest}): the "
                             f"data files or the numpy / scikit-learn version changed, so images could move between "
                             f"splits; use the original data and versions, or retrain")
        self.train_set = self._dataset(pool, train_idx)
        self.holdout_set = self._dataset(pool, holdout_idx)
        self.test_set = self._dataset(test, test_idx)

    def split_digest(self) -> str:
        """Short hash of the split membership (which pool indices are train, holdout, test), saved in checkpoints."""
        if not self.split_indices:
            self.setup()
        h = hashlib.sha256()
        for name in ("train", "holdout", "test"):
            h.update(name.encode() + np.ascontiguousarray(self.split_indices[name], dtype="<i8").tobytes())
        return h.hexdigest()[:16]

    def train_dataloader(self) -> DataLoader:
        """Shuffled per epoch (seeded), full batches only."""
        self.setup()
        if len(self.train_set) < self.batch_size:
            raise ValueError(f"{self.name}: the train split has {len(self.train_set)} images, fewer than one batch "
                             f"of {self.batch_size}; lower data.batch_size")
        return ResumableDataLoader(self.train_set, batch_size=self.batch_size, drop_last=True,
                                   num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                                   sampler=EpochShuffleSampler(len(self.train_set), self.seed),
                                   position=self._position)

    def _position(self) -> tuple[int, int]:
        """(epoch, optimizer steps so far) of the trainer fitting this DataModule: the train loader's position."""
        trainer = self.trainer
        return (0, 0) if trainer is None else (trainer.current_epoch, trainer.global_step)

    def val_dataloader(self) -> DataLoader:
        """The holdout split, which scores subnets (never the test split)."""
        self.setup()
        return DataLoader(self.holdout_set, batch_size=self.eval_batch_size, num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        """The test split, for final reports only."""
        self.setup()
        return DataLoader(self.test_set, batch_size=self.eval_batch_size, num_workers=self.num_workers)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self.trainer
        if not (self.augment and trainer is not None and trainer.training):
            return batch
        x, y = batch
        g = torch.Generator().manual_seed(int(np.random.SeedSequence(
            [self.seed, trainer.global_step, trainer.global_rank]).generate_state(1)[0]))
        fill = [-m / s for m, s in zip(self.mean, self.std)]  # raw 0 after normalization
        return augment_batch(x, g, self.crop_padding, self.hflip, fill), y

    def info(self) -> dict[str, Any]:
        """Everything needed to rebuild this DataModule without the recipe (saved in supernet checkpoints)."""
        self.setup()
        out: dict[str, Any] = {"name": self.name}
        for k in self.init_keys():
            out[k] = list(getattr(self, k)) if k in ("mean", "std") else getattr(self, k)
        out.update(num_classes=len(self.classes), in_chans=self.in_chans, classes=list(self.classes),
                   split_sizes={k: int(len(v)) for k, v in self.split_indices.items()},
                   split_digest=self.split_digest())
        return out
