"""The datasets `create_datamodule` finds by name, each a `SplitDataModule` with its own loader.

- `digits`      scikit-learn's `load_digits` (1,797 8x8 grey images, shipped with scikit-learn: nothing is
                downloaded), split stratified into test / holdout / train and resized to `image_size`.
- `cifar10`     the CIFAR-10 python batches (`data_batch_*`, `test_batch`) from a local folder; train batches are
                split into train / holdout, `test_batch` is the test split.
- `imagefolder` a folder of class sub-folders of images; if it has `train/` and `test/` sub-folders those are
                used, otherwise the one folder is split three ways like digits.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .datamodule import FolderImageDataset, SplitDataModule, _Source, register_datamodule

__all__ = ["DigitsDataModule", "Cifar10DataModule", "ImageFolderDataModule", "read_cifar_batch"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- digits
@register_datamodule
class DigitsDataModule(SplitDataModule):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), bilinearly resized to `image_size`."""

    name = "digits"
    default_hflip = False  # a mirrored digit is another glyph

    def _load(self) -> tuple[_Source, None]:
        from sklearn.datasets import load_digits

        if self.path is not None:
            raise ValueError("digits is embedded in scikit-learn and takes no data.path; remove it from the recipe")
        d = load_digits()
        x = torch.from_numpy(d.images).float().unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
        if self.image_size != 8:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        self.in_chans, self.classes = 1, [str(c) for c in range(10)]
        return _Source(x.contiguous(), d.target.astype(np.int64)), None

    def _default_norm(self, pool: _Source, train_idx: np.ndarray) -> tuple[list[float], list[float]]:
        x = pool.items[torch.from_numpy(train_idx)]
        return [float(x.mean())], [float(x.std())]


# --------------------------------------------------------------------------- CIFAR-10 python batches
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a user's data file must not run code when it is read.

    The CIFAR batches are pickled dicts of bytes, lists and one uint8 array; `find_class` is the only way a pickle
    reaches callables, and it allows just the numpy functions that rebuild an array (under numpy 1 and 2 names).
    """

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
                ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}  # protocol 2 writes bytes so

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays and plain "
                                         f"containers are read from data files")
        # numpy 2 renamed numpy.core to numpy._core: read either spelling with whichever this numpy has.
        for prefix, other in (("numpy.core.", "numpy._core."), ("numpy._core.", "numpy.core.")):
            if module.startswith(prefix):
                try:
                    return super().find_class(other + module[len(prefix):], name)
                except (ImportError, AttributeError):
                    break
        return super().find_class(module, name)


def _load_pickle(file: str | Path) -> Any:
    with open(file, "rb") as f:
        return _ArrayUnpickler(f, encoding="bytes").load()


def read_cifar_batch(file: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch file -> (uint8 images (N, 3, 32, 32), int64 labels (N,)); nothing in it is run."""
    try:
        d = _load_pickle(file)
        data = d[b"data"] if b"data" in d else d["data"]
        labels = d[b"labels"] if b"labels" in d else d["labels"]
        images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(labels, dtype=np.int64)
    except Exception as exc:  # pickle raises many types for foreign or truncated files
        raise ValueError(f"{str(file)!r} is not a readable CIFAR-10 python batch ({type(exc).__name__}: {exc})"
                         ) from None
    if len(images) != len(labels):
        raise ValueError(f"{str(file)!r} holds {len(images)} images but {len(labels)} labels")
    return images, labels


@register_datamodule
class Cifar10DataModule(SplitDataModule):
    """CIFAR-10 from the python-version batches in a local folder (or its `cifar-10-batches-py` sub-folder)."""

    name = "cifar10"

    def _folder(self) -> Path:
        if self.path is None:
            raise ValueError("cifar10 needs data.path: a folder with data_batch_1..5 and test_batch (python version)")
        root = Path(self.path).expanduser()
        for folder in (root, root / "cifar-10-batches-py"):
            if (folder / "test_batch").is_file() and any(folder.glob("data_batch_*")):
                return folder
        raise FileNotFoundError(
            f"CIFAR-10 python batches not found in {str(root)!r}: expected data_batch_1..data_batch_5 and test_batch "
            f"there or in its cifar-10-batches-py/ sub-folder (nothing is downloaded)"
        )

    def _load(self) -> tuple[_Source, _Source]:
        folder = self._folder()
        parts = [read_cifar_batch(f) for f in sorted(folder.glob("data_batch_*"))]
        train_x, train_y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        test_x, test_y = read_cifar_batch(folder / "test_batch")
        bad = sorted(set(np.unique(np.concatenate([train_y, test_y])).tolist()) - set(range(10)))
        if bad:
            raise ValueError(f"CIFAR-10 batches in {str(folder)!r} have labels {bad} outside 0..9")
        names = [f"class{i}" for i in range(10)]
        if (folder / "batches.meta").is_file():
            try:
                raw = _load_pickle(folder / "batches.meta").get(b"label_names", [])
            except Exception as exc:  # as in read_cifar_batch: many types for foreign files
                raise ValueError(f"{str(folder / 'batches.meta')!r} is not a readable CIFAR-10 meta file "
                                 f"({type(exc).__name__}: {exc})") from None
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw] or names
        self.in_chans, self.classes = 3, names
        return _Source(self._resize(train_x), train_y), _Source(self._resize(test_x), test_y)

    def _resize(self, images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(images)  # (N, 3, 32, 32) uint8
        if self.image_size == 32:
            return x
        out = []
        for chunk in x.split(4096):  # bounds the float copy's memory
            f = F.interpolate(chunk.float(), size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=self.image_size < 32)
            out.append(f.round().clamp(0, 255).to(torch.uint8))
        return torch.cat(out)

    def _default_norm(self, pool: _Source, train_idx: np.ndarray) -> tuple[Sequence[float], Sequence[float]]:
        return CIFAR10_MEAN, CIFAR10_STD


# --------------------------------------------------------------------------- image folders
def _scan_classes(root: Path) -> tuple[list[str], _Source]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files, labels = [], []
    for i, c in enumerate(classes):
        for f in sorted((root / c).rglob("*")):
            if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file():
                files.append(str(f))
                labels.append(i)
    if not files:
        raise FileNotFoundError(f"no images found under {str(root)!r}: expected class sub-folders holding image "
                                f"files ({', '.join(IMAGE_EXTENSIONS)})")
    return classes, _Source(files, np.asarray(labels, dtype=np.int64))


@register_datamodule
class ImageFolderDataModule(SplitDataModule):
    """Any folder of class sub-folders; `train/` + `test/` sub-folders, if present, give the test split."""

    name = "imagefolder"

    def _load(self) -> tuple[_Source, _Source | None]:
        if self.path is None:
            raise ValueError("imagefolder needs data.path: a folder of class sub-folders (or with train/ and test/)")
        root = Path(self.path).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
        test = None
        if (root / "train").is_dir() and (root / "test").is_dir():
            classes, pool = _scan_classes(root / "train")
            test_classes, test = _scan_classes(root / "test")
            if test_classes != classes:
                raise ValueError(f"{str(root)!r}: train/ has classes {classes} but test/ has {test_classes}")
        else:
            classes, pool = _scan_classes(root)
        self.in_chans, self.classes = 3, classes
        return pool, test

    def _dataset(self, source: _Source, idx: np.ndarray) -> Dataset:
        return FolderImageDataset([source.items[i] for i in idx], source.labels[idx], self.image_size, self.mean,
                                  self.std)

    def _default_norm(self, pool: _Source, train_idx: np.ndarray) -> tuple[Sequence[float], Sequence[float]]:
        return IMAGENET_MEAN, IMAGENET_STD
