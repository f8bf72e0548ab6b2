"""Stage 1, data: Lightning DataModules with train / holdout / test splits, found by name.

`datamodule.py` holds the split logic, the dataset registry and the rebuilding of a checkpoint's data;
`datasets.py` the registered datasets (digits, cifar10, imagefolder); `user.py` a user's own dataset or
LightningDataModule named by class path in a recipe.
"""

from oneshot import _shadow  # noqa: F401  (a clear error when 'oneshot' is a stray folder)
from .datamodule import (
    SPLIT_KEYS,
    EpochShuffleSampler,
    ResumableDataLoader,
    FolderImageDataset,
    SplitDataModule,
    TensorImageDataset,
    augment_batch,
    create_datamodule,
    datamodule_from_info,
    datamodule_from_section,
    gather,
    list_datamodules,
    register_datamodule,
)
from .datasets import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Cifar10DataModule,
    DigitsDataModule,
    ImageFolderDataModule,
    read_cifar_batch,
)
from .user import UserDataModule

__all__ = [
    "SplitDataModule", "SPLIT_KEYS", "ResumableDataLoader", "DigitsDataModule", "Cifar10DataModule",
    "ImageFolderDataModule", "TensorImageDataset",
    "FolderImageDataset", "EpochShuffleSampler", "gather", "register_datamodule", "create_datamodule",
    "list_datamodules", "datamodule_from_info", "datamodule_from_section", "augment_batch", "read_cifar_batch",
    "CIFAR10_MEAN", "CIFAR10_STD", "IMAGENET_MEAN", "IMAGENET_STD", "UserDataModule",
]
