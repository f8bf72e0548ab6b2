"""A user's own data, named in a recipe by class path (`data: {class_path: mypkg.data.MyData, init_args: {...}}`).

The class is one of two kinds, told apart when it is imported:

- a map-style dataset (any class with `__getitem__` and `__len__`, e.g. a `torch.utils.data.Dataset`) whose items
  are `(image tensor (C, H, W), int label)`: oneshot splits it into train / holdout / test, stratified with
  `split_seed`, exactly as it splits the digits (`holdout_fraction`, `test_fraction`);
- a `LightningDataModule`: its own splits are used, read as the datasets behind `train_dataloader()`,
  `val_dataloader()` (the holdout split) and `test_dataloader()`, which must be map-style datasets of the same
  items. oneshot builds its own loaders over them (seeded shuffling, exact mid-epoch resume, batch augmentation),
  so the module's loader settings (batch size, sampler, collate) and batch hooks are not used.

What oneshot reads from the data, and from where:
- labels: the dataset's `targets` or `labels` attribute when it has one per item (torchvision's convention;
  `torch.utils.data.Subset` is followed to its dataset), otherwise one pass over the items;
- number of classes: the LightningDataModule's `num_classes` attribute, else the dataset's `classes` (a sequence of
  names), else the largest label + 1;
- input shape (C, H, W): the first training item (every split must agree).
Images are used as the dataset returns them (float tensors): the recipe's `data.mean` / `data.std` normalize them
further where given (default: not at all). A mapping of `class_path` (and `init_args`) inside init_args is built
into that object first, as in Lightning's CLI (a transform for a torchvision dataset). Only the named classes are
imported, and only when the data is built.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from .datamodule import SplitDataModule, _balanced_subset, _Source

__all__ = ["UserDataModule", "import_class_path", "instantiate", "build_init_args"]


def import_class_path(class_path: str, key: str = "class_path") -> Any:
    """The object `pkg.module.Name` names; a one-line ValueError naming `key` and the path when it does not import.

    Only this module is imported: a recipe runs no code it does not name.
    """
    if not isinstance(class_path, str) or "." not in class_path.strip(". "):
        raise ValueError(f"{key} must be a dotted path such as mypkg.models.MyNet, got {class_path!r}")
    module_name, _, attr = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # ModuleNotFoundError included; the message names the module that is missing
        raise ValueError(f"{key} {class_path!r} does not import: {type(exc).__name__}: {exc} (is its package "
                         f"installed or on PYTHONPATH?)") from None
    except Exception as exc:  # the user's module raised while it was imported
        raise ValueError(f"{key} {class_path!r}: importing {module_name!r} raised {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"{key} {class_path!r} does not import: module {module_name!r} has no {attr!r}") from None


def instantiate(cls: Any, init_args: dict[str, Any], class_path: str, key: str = "class_path") -> Any:
    """`cls(**init_args)`; init_args that do not fit the constructor are a one-line ValueError naming the path."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # some builtins have no signature: let the call decide
        sig = None
    if sig is not None:
        try:
            sig.bind(**init_args)
        except TypeError as exc:
            raise ValueError(f"init_args {sorted(init_args)} do not fit {class_path}{sig}: {exc}") from None
    return cls(**init_args)


def build_init_args(value: Any, key: str = "init_args") -> Any:
    """init_args with nested objects built, as Lightning's CLI does: a mapping of exactly `class_path` (and
    `init_args`) anywhere inside, lists included, becomes that object (e.g. a torchvision transform:
    `transform: {class_path: torchvision.transforms.ToTensor}`); everything else is passed as it is."""
    if isinstance(value, dict) and "class_path" in value and set(value) <= {"class_path", "init_args"}:
        path = value["class_path"]
        args = value.get("init_args") or {}
        if not isinstance(args, dict):
            raise ValueError(f"{key}.init_args of {path!r} must be a mapping of keyword arguments, got {args!r}")
        return instantiate(import_class_path(path, f"{key}.class_path"), build_init_args(args, f"{key}.init_args"),
                           path, f"{key}.class_path")
    if isinstance(value, dict):
        return {k: build_init_args(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [build_init_args(v, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _is_map_dataset_class(obj: Any) -> bool:
    return isinstance(obj, type) and callable(getattr(obj, "__getitem__", None)) and hasattr(obj, "__len__")


def _labels_of(dataset: Any, where: str) -> np.ndarray:
    """One int label per item: the `targets` / `labels` attribute when it has one per item, else read item by item."""
    n = len(dataset)
    if isinstance(dataset, Subset):  # random_split and friends: follow the indices into the parent's labels
        parent = _labels_of(dataset.dataset, where)
        return parent[np.asarray(dataset.indices, dtype=np.int64)]
    for attr in ("targets", "labels"):
        values = getattr(dataset, attr, None)
        if values is not None and not callable(values):
            try:
                labels = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values)
            except (TypeError, ValueError):
                continue
            if labels.ndim == 1 and len(labels) == n and np.issubdtype(labels.dtype, np.integer):
                return _check_labels(labels.astype(np.int64), where)
    return _check_labels(np.asarray([_label(dataset[i][1], where) for i in range(n)], dtype=np.int64), where)


def _label(y: Any, where: str) -> int:
    if isinstance(y, torch.Tensor) and y.numel() == 1 and not y.is_floating_point():
        return int(y)
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
        return int(y)
    raise ValueError(f"{where}: items must be (image tensor (C, H, W), int label), got a label of type "
                     f"{type(y).__name__}")


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    if len(labels) and labels.min() < 0:
        raise ValueError(f"{where}: labels must be class indices 0..K-1, found {int(labels.min())}")
    return labels


def _item_shape(dataset: Any, where: str) -> tuple[int, int, int]:
    """(C, H, W) of the first item; a one-line error when items are not (float image tensor, int label)."""
    if len(dataset) == 0:
        raise ValueError(f"{where} is empty")
    item = dataset[0]
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise ValueError(f"{where}: items must be (image tensor (C, H, W), int label) pairs, got "
                         f"{type(item).__name__}")
    x, y = item
    _label(y, where)
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = f" of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else ""
        raise ValueError(f"{where}: images must be tensors (C, H, W), got {type(x).__name__}{shape}")
    if not x.is_floating_point():
        raise ValueError(f"{where}: images must be float tensors (e.g. x.float() / 255), got {x.dtype}")
    return tuple(int(s) for s in x.shape)  # type: ignore[return-value]


class _UserSplit(Dataset):
    """Items `idx` of a user's dataset, normalized with (mean, std) when they are not the identity; has `labels`."""

    def __init__(self, dataset: Any, idx: np.ndarray, labels: np.ndarray, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        self.dataset, self.idx, self.labels = dataset, np.asarray(idx, dtype=np.int64), torch.from_numpy(labels)
        identity = all(m == 0.0 for m in mean) and all(s == 1.0 for s in std)
        self.mean = None if identity else torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = None if identity else torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, _ = self.dataset[int(self.idx[i])]
        x = x.float()
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x, self.labels[i]


class UserDataModule(SplitDataModule):
    """The data a recipe names by class path (a map-style dataset or a LightningDataModule), with oneshot's splits,
    loaders, augmentation and `info()`, so every phase uses it as it uses the shipped datasets.

    class_path: dotted path of the class; init_args: its constructor's keyword arguments (JSON-able: they are saved
    in checkpoints, which rebuild the data from them). The other arguments are `SplitDataModule`'s, except `path`
    and `image_size`, which the class decides (through its init_args). `holdout_fraction` and `test_fraction` apply
    to datasets only (a LightningDataModule has its own splits); `max_train_samples` / `max_eval_samples` cap both.
    """

    name = "class_path"
    default_hflip = False  # a mirrored image may be another class (digits, text); ask for flips with data.hflip

    def __init__(self, class_path: str, init_args: dict[str, Any] | None = None, **kwargs: Any) -> None:
        for key in ("path", "image_size"):
            if kwargs.get(key) is not None:
                raise ValueError(f"data.{key} does not apply to data.class_path {class_path!r}: the class decides "
                                 f"it (pass it in data.init_args)")
            kwargs.pop(key, None)
        crop = kwargs.pop("crop_padding", None)
        super().__init__(crop_padding=0, **kwargs)  # image_size is unknown until the data is read: set in setup
        self._crop_arg = crop
        self.crop_padding = 0 if crop is None else int(crop)
        self.class_path = str(class_path)
        self.init_args = dict(init_args or {})
        self.name = self.class_path.rpartition(".")[2]
        self.kind = ""  # "dataset" | "datamodule", known once the class is imported
        self._input_shape: tuple[int, int, int] = (0, 0, 0)
        self.path, self.image_size = None, 0
        try:
            json.dumps(self.init_args)
        except TypeError as exc:
            raise ValueError(f"data.init_args of {self.class_path!r} must be plain data (numbers, strings, lists, "
                             f"mappings): they are saved in checkpoints ({exc})") from None

    @classmethod
    def init_keys(cls) -> tuple[str, ...]:
        return ("class_path", "init_args", *(k for k in super().init_keys() if k not in ("path", "image_size")))

    # ----------------------------------------------------------------- reading the user's class
    def _instantiate(self) -> Any:
        cls = import_class_path(self.class_path, "data.class_path")
        if isinstance(cls, type) and issubclass(cls, L.LightningDataModule):
            self.kind = "datamodule"
        elif _is_map_dataset_class(cls):
            self.kind = "dataset"
        else:
            raise ValueError(f"data.class_path {self.class_path!r} is neither a LightningDataModule nor a map-style "
                             f"dataset class (one with __getitem__ and __len__)")
        return instantiate(cls, build_init_args(self.init_args, "data.init_args"), self.class_path, "data.class_path")

    def _load(self) -> tuple[_Source, None]:
        """A dataset: the whole pool, split three ways by `SplitDataModule.setup` (stratified, `split_seed`)."""
        dataset = self._user
        labels = _labels_of(dataset, self.class_path)
        self._set_shape(_item_shape(dataset, self.class_path))
        self._set_classes(dataset, None, labels)
        return _Source(dataset, labels), None

    def _dataset(self, source: _Source, idx: np.ndarray) -> Dataset:
        return _UserSplit(source.items, idx, source.labels[idx], self.mean, self.std)

    def _default_norm(self, pool: _Source, train_idx: np.ndarray) -> tuple[list[float], list[float]]:
        return [0.0] * self.in_chans, [1.0] * self.in_chans  # images are used as the dataset returns them

    def _set_shape(self, shape: tuple[int, int, int]) -> None:
        self._input_shape = shape
        c, h, w = shape
        self.in_chans = c
        self.image_size = h if h == w else [h, w]  # type: ignore[assignment]  # square: an int as for our datasets
        if self._crop_arg is None:
            self.crop_padding = min(h, w) // 8  # the shipped datasets' default shift

    def _set_classes(self, dataset: Any, declared: Any, labels: np.ndarray) -> None:
        top = int(labels.max()) + 1 if len(labels) else 0
        while isinstance(dataset, Subset) and not hasattr(dataset, "classes"):  # random_split: the parent's names
            dataset = dataset.dataset
        names = getattr(dataset, "classes", None)
        if not (isinstance(names, Sequence) and not isinstance(names, str)):
            names = None
        if declared is not None:
            if not isinstance(declared, (int, np.integer)) or isinstance(declared, bool) or declared < 1:
                raise ValueError(f"{self.class_path}.num_classes must be a positive int, got {declared!r}")
            fits = names is not None and len(names) == declared  # the dataset's names, where they agree
            self.classes = [str(c) for c in names] if fits else [str(i) for i in range(int(declared))]
        elif names is not None and len(names) >= max(top, 1):
            self.classes = [str(c) for c in names]
        else:
            self.classes = [str(i) for i in range(top)]
        if top > len(self.classes):
            raise ValueError(f"{self.class_path}: label {top - 1} is out of range for {len(self.classes)} classes")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the first training image (every split has this shape)."""
        self.setup()
        return self._input_shape

    def setup(self, stage: str | None = None) -> None:
        """Import and build the user's class, then cut (dataset) or take (LightningDataModule) the three splits."""
        if self.train_set is not None:
            return
        self._user = self._instantiate()
        if self.kind == "dataset":
            super().setup(stage)
            return
        self._setup_datamodule()

    def _setup_datamodule(self) -> None:
        dm = self._user
        dm.prepare_data()
        dm.setup("fit")
        dm.setup("test")
        parts = {split: self._loader_dataset(dm, method)
                 for split, method in (("train", "train_dataloader"), ("holdout", "val_dataloader"),
                                       ("test", "test_dataloader"))}
        shapes = {split: _item_shape(ds, f"{self.class_path}.{method}().dataset")
                  for (split, ds), method in zip(parts.items(), ("train_dataloader", "val_dataloader",
                                                                 "test_dataloader"))}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"{self.class_path}: the splits' images differ in shape ({shapes}); oneshot needs one "
                             f"input shape")
        self._set_shape(shapes["train"])
        labels = {split: _labels_of(ds, f"{self.class_path} {split} split") for split, ds in parts.items()}
        self._set_classes(parts["train"], getattr(dm, "num_classes", None),
                          np.concatenate(list(labels.values())))
        rng = np.random.default_rng(self.split_seed)
        caps = {"train": self.max_train_samples, "holdout": self.max_eval_samples, "test": self.max_eval_samples}
        idx = {split: _balanced_subset(labels[split], np.arange(len(labels[split])), caps[split], rng)
               for split in parts}
        self.split_indices = idx
        self._labels = labels
        mean, std = self._norm_arg
        c = self.in_chans
        self.mean = tuple(float(v) for v in (mean if mean is not None else [0.0] * c))
        self.std = tuple(float(v) for v in (std if std is not None else [1.0] * c))
        if len(self.mean) != c or len(self.std) != c:
            raise ValueError(f"{self.name}: mean and std need {c} value(s), one per channel; got {list(self.mean)} "
                             f"and {list(self.std)}")
        digest = self.split_digest()
        if self.expected_split_digest is not None and digest != self.expected_split_digest:
            raise ValueError(f"{self.class_path}: the rebuilt train/holdout/test splits differ from the ones the "
                             f"checkpoint was trained with (split digest {digest}, expected "
                             f"{self.expected_split_digest}): the data or the code that reads it changed")
        self.train_set, self.holdout_set, self.test_set = (
            _UserSplit(parts[s], idx[s], labels[s][idx[s]], self.mean, self.std) for s in ("train", "holdout", "test"))

    def _loader_dataset(self, dm: L.LightningDataModule, method: str) -> Any:
        if getattr(type(dm), method) is getattr(L.LightningDataModule, method):
            raise ValueError(f"{self.class_path} defines no {method}(): oneshot needs train_dataloader, "
                             f"val_dataloader (the holdout split that scores subnets) and test_dataloader")
        loader = getattr(dm, method)()
        dataset = getattr(loader, "dataset", None)
        if dataset is None or not (callable(getattr(dataset, "__getitem__", None)) and hasattr(dataset, "__len__")):
            raise ValueError(f"{self.class_path}.{method}() must return a DataLoader over a map-style dataset "
                             f"(oneshot draws calibration and holdout images by index), got "
                             f"{type(loader).__name__}")
        return dataset

    def split_digest(self) -> str:
        """Short hash of split membership; for a LightningDataModule's own splits, of their sizes and labels."""
        if self.kind != "datamodule":
            return super().split_digest()
        if not self.split_indices:
            self.setup()
        h = hashlib.sha256()
        for split in ("train", "holdout", "test"):
            idx = np.ascontiguousarray(self.split_indices[split], dtype="<i8")
            h.update(split.encode() + idx.tobytes() + np.ascontiguousarray(self._labels[split][idx], "<i8").tobytes())
        return h.hexdigest()[:16]

    def info(self) -> dict[str, Any]:
        """`SplitDataModule.info()` plus the class path, init args, kind and input shape (C, H, W)."""
        out = super().info()
        out.update(path=None, image_size=self.image_size, kind=self.kind, input_shape=list(self._input_shape))
        return out
