"""What every supernet family provides: a config, a space derived from it, the supernet and standalone builders."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .space import Arch, SearchSpace

__all__ = ["FamilyConfig", "Cost", "Supernet", "DynamicBatchNorm2d", "crop_to"]


@dataclass(frozen=True)
class Cost:
    """Multiply-accumulates of conv and linear layers for one image, and parameters.

    Bias adds are included as NAS-Bench-201 counts them, unless the family says otherwise (its config's
    `bias_adds_in_macs`; the macro family follows NAS-Bench-Macro, which counts none).
    """

    macs: int
    params: int

    @property
    def flops(self) -> int:
        """FLOPs in the usual convention of two per multiply-accumulate."""
        return 2 * self.macs


@dataclass(frozen=True)
class FamilyConfig:
    """Base of family configs: frozen, JSON round-trippable, and knows its family's builders."""

    family: ClassVar[str] = ""
    # Whether `cost(arch).macs` counts bias adds (NAS-Bench-201's convention, the default); pass it to `count_cost`.
    bias_adds_in_macs: ClassVar[bool] = True

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FamilyConfig:
        """Inverse of `to_dict`; unknown keys are an error, not silently dropped."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.family} config key(s) {unknown}; known: {sorted(names)}")
        return cls(**{k: _tuplify(v) for k, v in data.items()})

    def canonical_json(self) -> str:
        """Stable text form stored in the space, so the space (and its archs) pin the exact network."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes: Any) -> FamilyConfig:
        """A copy with some fields changed (validated like construction)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    # Implemented by each family.
    def search_space(self, name: str) -> SearchSpace:
        """The declarative space of subnets this config describes."""
        raise NotImplementedError

    def build_supernet(self, name: str) -> Supernet:
        """The weight-sharing network holding every subnet."""
        raise NotImplementedError

    def build_subnet(self, arch: Arch) -> nn.Module:
        """A plain standalone network for `arch`, randomly initialized (used by extraction and retraining)."""
        raise NotImplementedError

    def cost(self, arch: Arch) -> Cost:
        """Analytic MACs and params at the config's `image_size`; tests check it against the flop counter."""
        raise NotImplementedError


def _tuplify(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tuplify(x) for x in v)
    if isinstance(v, dict):
        return {k: _tuplify(x) for k, x in v.items()}
    return v


class Supernet(nn.Module):
    """A weight-sharing network run as `supernet(x, arch)`: the subnet is an argument, never hidden state."""

    def __init__(self, config: FamilyConfig, name: str) -> None:
        super().__init__()
        self.config = config
        self.space = config.search_space(name)

    def check_arch(self, arch: Arch) -> None:
        """Refuse subnets of another space with a message naming both spaces."""
        if not isinstance(arch, Arch):
            raise TypeError(f"expected an Arch of space {self.space.name!r}, got {type(arch).__name__}")
        if arch.space.fingerprint != self.space.fingerprint:
            raise ValueError(
                f"arch {arch} belongs to space {arch.space.name!r} ({arch.space.fingerprint}), "
                f"not to this supernet's space {self.space.name!r} ({self.space.fingerprint})"
            )

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def weight_source(self, name: str, arch: Arch) -> str:
        """Name of the supernet tensor that the standalone subnet's tensor `name` is cut from."""
        return name

    def cut(self, name: str, big: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """The part of shared tensor `big` that the subnet's tensor `name` (of `shape`) holds (a view, not a copy).

        The default is `crop_to`: leading slices, centre crops of kernels. Families whose tensors stack several
        sliced blocks (a fused q/k/v projection) override it for those names.
        """
        return crop_to(big, shape)


def crop_to(big: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Cut a shared tensor down to a subnet's shape: leading slice on channel dims, centre crop on kernel dims."""
    if big.shape == shape:
        return big
    if big.dim() != len(shape):
        raise ValueError(f"cannot cut tensor of shape {tuple(big.shape)} to {tuple(shape)}")
    index = []
    for dim, (have, want) in enumerate(zip(big.shape, shape)):
        if want > have:
            raise ValueError(f"cannot cut tensor of shape {tuple(big.shape)} to larger {tuple(shape)}")
        if big.dim() == 4 and dim >= 2:  # conv kernel: a smaller kernel is the centre of the largest
            start = (have - want) // 2
            index.append(slice(start, start + want))
        else:
            index.append(slice(0, want))
    return big[tuple(index)]


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first C channels of its largest width; running stats of those channels are updated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W) with C <= num_features
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(x, _first(self.running_mean, c), _first(self.running_var, c), _first(self.weight, c),
                            _first(self.bias, c), use_batch_stats, factor, self.eps)


def _first(t: torch.Tensor | None, c: int) -> torch.Tensor | None:
    """The first `c` entries of an optional tensor (BN without affine or running stats has None)."""
    return None if t is None else t[:c]

