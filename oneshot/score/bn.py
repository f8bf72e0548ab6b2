"""Batch-norm recalibration: give a subnet running statistics of its own before it is scored.

A supernet's BN running statistics are a blend over every path trained; a subnet's own activations have other
means and variances, so each subnet is scored only after its statistics are re-estimated. `recalibrate_bn` resets
every BN layer and re-estimates it as the exact cumulative average (PyTorch's `momentum=None`) over K batches:
running_mean = mean over batches of the batch means, running_var = mean over batches of the unbiased batch
variances. `CalibrationSet` draws those K batches once from the training split with a fixed seed and keeps them
as tensors on the model's device, so scoring many subnets never re-reads or re-transfers data.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from supernets import Arch, Supernet

from oneshot.data import SplitDataModule, gather

__all__ = ["recalibrate_bn", "has_bn", "CalibrationSet", "DEFAULT_CALIB_BATCHES", "DEFAULT_CALIB_BATCH_SIZE"]

# Chosen from the accuracy-vs-K curves with class-balanced draws on digits and on the CIFAR-10 macro supernet
# (README, "BN recalibration"): K = 3 is as close to the whole training split as K = 4 on both, and on a
# 5,000-image holdout it keeps recalibration under 10% of a subnet's evaluation.
DEFAULT_CALIB_BATCHES = 3
DEFAULT_CALIB_BATCH_SIZE = 128


def _bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def has_bn(model: nn.Module) -> bool:
    """Whether `model` has running statistics to recalibrate (a ViT, with LayerNorm only, has none)."""
    return bool(_bn_layers(model))


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor | tuple], arch: Arch | None = None) -> nn.Module:
    """Reset all BN running statistics of `model` and re-estimate them over `batches` as an exact average.

    model:   a `Supernet` (then `arch` says which path's statistics to estimate) or any plain module, such as an
             extracted subnet (then `arch` must be None).
    batches: input tensors (B, C, H, W) or (input, label) pairs, e.g. a `CalibrationSet`; they should already be on
             the model's device.

    Every BN layer is reset first, including those the path does not reach (they are left at mean 0, var 1 with
    no batches tracked): after the call the statistics belong to this subnet and to no other, and nothing is
    restored behind the caller's back. Other layers (dropout) run in eval mode; the model comes back in eval mode,
    ready to be scored. A model without BN layers (a ViT) is only put in eval mode. Returns `model`.
    """
    if isinstance(model, Supernet):
        if arch is None:
            raise ValueError("recalibrating a supernet needs the subnet: recalibrate_bn(supernet, batches, arch)")
        model.check_arch(arch)
    elif arch is not None:
        raise ValueError(f"arch is only for supernets; {type(model).__name__} is a plain module, pass arch=None")
    layers = _bn_layers(model)
    if not layers:  # nothing to re-estimate: no forward passes, the model is only put in eval mode
        return model.eval()
    momenta = [bn.momentum for bn in layers]
    model.eval()
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: batch k enters with weight 1/k
        bn.train()
    n = 0
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            model(x, arch) if arch is not None else model(x)
            n += 1
    finally:
        for bn, momentum in zip(layers, momenta):
            bn.momentum = momentum
        model.eval()
    if n == 0:
        raise ValueError("recalibrate_bn got no batches; statistics were reset and not re-estimated")
    return model


def _classes_in_turn(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation of all indices that takes one image of every class per round (random within and across)."""
    rank = np.empty(len(labels))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = rng.permutation(len(members)) / len(members)  # a class's k-th image at k / class size
    return np.argsort(rank + rng.random(len(labels)) * 1e-9, kind="stable")


class CalibrationSet:
    """K batches of training images, drawn once with a fixed seed (no augmentation) and kept on one device.

    dataset:     the training split (e.g. `datamodule.train_set`), yielding normalized (image, label) pairs.
    num_batches: K, the number of batches of `batch_size` images. Indices are a seeded random permutation of the
                 dataset; if K * batch_size exceeds it, further permutations follow (the data repeats).
    seed:        fixes the subset, so every subnet and every run sees the same calibration images.
    device:      where the batches live (the model's device).
    balanced:    draw the classes in turn (every batch holds each class in proportion to its share of the split;
                 needs the dataset's `labels`), so the statistics do not move with how many images of each class
                 a random draw happens to hold. None (default): balanced when the dataset has `labels` (every
                 split of a `SplitDataModule` has).
    """

    def __init__(self, dataset: Dataset, num_batches: int = DEFAULT_CALIB_BATCHES,
                 batch_size: int = DEFAULT_CALIB_BATCH_SIZE, seed: int = 0,
                 device: str | torch.device = "cpu", balanced: bool | None = None) -> None:
        self.settings_of(num_batches, batch_size, seed, False)  # checks the sizes before any image is drawn
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            raise ValueError("calibration dataset is empty")
        can = self.can_balance(dataset)
        if balanced is None:
            balanced = can
        if balanced and not can:
            raise ValueError(f"balanced calibration needs the dataset's labels; {type(dataset).__name__} has none")
        rng = np.random.default_rng([seed, 0xB7])
        need = num_batches * batch_size
        draw = (lambda: _classes_in_turn(np.asarray(dataset.labels), rng)) if balanced else (lambda: rng.permutation(n))
        idx = np.concatenate([draw() for _ in range(-(-need // n))])[:need]
        self.num_batches, self.batch_size, self.seed = int(num_batches), int(batch_size), int(seed)
        self.balanced = bool(balanced)
        self.indices = idx
        x, _ = gather(dataset, idx.tolist())
        self.batches: list[torch.Tensor] = [b.to(device) for b in x.split(batch_size)]  # K x (B, C, H, W)

    @staticmethod
    def can_balance(dataset: Dataset) -> bool:
        """Whether `dataset` has one label per item, so that draws can be class-balanced (the default then)."""
        labels = getattr(dataset, "labels", None)
        return labels is not None and len(labels) == len(dataset)  # type: ignore[arg-type]

    @classmethod
    def from_datamodule(cls, datamodule: SplitDataModule, num_batches: int = DEFAULT_CALIB_BATCHES,
                        batch_size: int = DEFAULT_CALIB_BATCH_SIZE, seed: int = 0,
                        device: str | torch.device = "cpu", balanced: bool | None = None) -> CalibrationSet:
        """Draw from the DataModule's training split."""
        datamodule.setup()
        return cls(datamodule.train_set, num_batches, batch_size, seed, device, balanced)

    def settings(self) -> dict[str, int]:
        """What identifies this calibration in result keys."""
        return self.settings_of(self.num_batches, self.batch_size, self.seed, self.balanced)

    @staticmethod
    def settings_of(num_batches: int, batch_size: int, seed: int, balanced: bool) -> dict[str, int]:
        """`settings()` of a calibration set with these arguments, without drawing its images."""
        if num_batches < 1 or batch_size < 1:
            raise ValueError(f"calibration needs num_batches >= 1 and batch_size >= 1, got {num_batches}, {batch_size}")
        keys = {"calib_batches": int(num_batches), "calib_batch_size": int(batch_size), "calib_seed": int(seed)}
        return {**keys, "calib_balanced": True} if balanced else keys  # unbalanced: the keys as before

    def to(self, device: str | torch.device, memory_format: torch.memory_format = torch.contiguous_format
           ) -> CalibrationSet:
        """Move (in place) the cached batches; returns self."""
        self.batches = [b.to(device).contiguous(memory_format=memory_format) for b in self.batches]
        return self

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
