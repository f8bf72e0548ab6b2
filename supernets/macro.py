"""The NAS-Bench-Macro space: 8 MobileNetV2-style layers, each identity or one of two inverted residuals.

Exact to the benchmark (Su et al., CVPR 2021), so its table of 6,561 networks trained from scratch on CIFAR-10 is
ground truth for this space: stem conv 3x3 + BN + ReLU, three stages of 2, 3, 3 layers whose first layer has
stride 2 and doubles the channels (32 -> 64 -> 128 -> 256), conv 1x1 to 1280 + BN + ReLU, global average pool,
linear classifier. Each layer chooses

    0  identity (a 1x1 conv + BN when the layer changes the shape: a stage's first layer),
    1  inverted residual, kernel 3, expansion 3,
    2  inverted residual, kernel 5, expansion 6,

and the arch string is the benchmark's own key: one digit per layer, e.g. `22212220`. The supernet holds every op
of every layer with its own weights (no sharing between ops, as in SPOS); a subnet runs one op per layer.

Built on the elastic blocks: `MacroNet` is a plain module whose layers are `LayerChoice`s (the shape-keeping
identity is an `nn.Identity` candidate, the shape-changing one a 1x1 conv + BN), `MacroSupernet` is the
`BlockSupernet` of it with this module's codec and canonicalizer, and the extracted subnet is the same `MacroNet`
with each layer's chosen op in place of its choice. Cost and the standalone subnet come from the blocks too, so no
formula beside the modules restates what they compute (tests/test_macro.py checks all 6,561 keys against the
former hand-written family, kept in tests/reference_macro.py).

Costs are counted as the benchmark counts them: `Cost.macs` is the multiply-accumulates of convs and the linear
layer with no bias adds (the table's `flops` column, e.g. 7,713,280 for `00000000`), `Cost.params` every parameter
including BN affine weights (the table's `params`). Only the classifier has a bias, so `count_cost` on an extracted
net must be called with `bias_adds=False` (`MacroConfig.bias_adds_in_macs`) to agree.

Equivalent strings: an identity inside a stage (after its first layer) commutes with the layers beside it, so
`22212220` and `22212202` are the same network; `canonical` moves such identities to the end of their stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from .base import Cost, FamilyConfig
from .blocks import BlockSupernet, LayerChoice, meta_supernet, standalone_subnet
from .space import Arch, Choice, Decision, SearchSpace

__all__ = ["MacroConfig", "MacroSupernet", "MacroNet", "OPS"]

# Digit i of an arch string is OPS[i]; cheapest first, so smallest()/largest() are `00000000` / `22222222`.
OPS: tuple[str, ...] = ("id", "ir_k3_e3", "ir_k5_e6")
_IR: dict[str, tuple[int, int]] = {"ir_k3_e3": (3, 3), "ir_k5_e6": (5, 6)}  # op -> (kernel, expansion)
_OP_WORDS = {"id": "identity", "ir_k3_e3": "inverted residual k3 e3", "ir_k5_e6": "inverted residual k5 e6"}


@dataclass(frozen=True)
class MacroConfig(FamilyConfig):
    """The benchmark skeleton: channels per stage, layers per stage (first one strided), `image_size` in pixels."""

    family = "macro"
    bias_adds_in_macs: ClassVar[bool] = False  # the benchmark's flops count no bias adds

    stem_width: int = 32
    stage_widths: tuple[int, ...] = (64, 128, 256)
    stage_layers: tuple[int, ...] = (2, 3, 3)
    stage_strides: tuple[int, ...] = (2, 2, 2)
    head_width: int = 1280
    num_classes: int = 10
    in_chans: int = 3
    image_size: int = 32

    def __post_init__(self) -> None:
        n = len(self.stage_widths)
        if not (len(self.stage_layers) == len(self.stage_strides) == n) or n == 0:
            raise ValueError(
                f"macro stage_widths, stage_layers and stage_strides need one entry per stage, got "
                f"{len(self.stage_widths)}, {len(self.stage_layers)}, {len(self.stage_strides)}"
            )
        if min(self.stage_layers) < 1:
            raise ValueError(f"every macro stage needs at least one layer, got stage_layers={self.stage_layers}")
        if min((self.stem_width, self.head_width, self.image_size, *self.stage_widths, *self.stage_strides)) < 1:
            raise ValueError("macro widths, strides and image_size must be positive")

    def plan(self) -> list[tuple[int, int, int]]:
        """(in channels, out channels, stride) of every searchable layer, in arch-string order."""
        out, cin = [], self.stem_width
        for width, layers, stride in zip(self.stage_widths, self.stage_layers, self.stage_strides):
            for i in range(layers):
                out.append((cin, width, stride if i == 0 else 1))
                cin = width
        return out

    def search_space(self, name: str = "macro") -> SearchSpace:
        decisions = tuple(Decision(f"layer{i}", OPS) for i in range(len(self.plan())))
        keeps = tuple((cin, stride) == (cout, 1) for cin, cout, stride in self.plan())
        return SearchSpace(name, decisions, self.family, self.canonical_json(), _MacroCodec(), _MacroCanonical(keeps))

    def build_supernet(self, name: str = "macro") -> MacroSupernet:
        return MacroSupernet(self, name)

    def build_subnet(self, arch: Arch) -> MacroNet:
        return standalone_subnet(self, arch)  # type: ignore[return-value]

    def cost(self, arch: Arch) -> Cost:
        return meta_supernet(self, arch.space.name).cost(arch)  # type: ignore[operator]


class _MacroCodec:
    """The benchmark's key: one digit per layer, the index of the layer's op in `OPS`."""

    def format(self, space: SearchSpace, values: Mapping[str, Any]) -> str:
        return "".join(str(space[name].choices.index(v)) for name, v in values.items())

    def parse(self, space: SearchSpace, text: str) -> dict[str, Any]:
        key = text.strip()
        legend = ", ".join(f"{i} = {_OP_WORDS.get(str(c), c)}" for i, c in enumerate(space.decisions[0].choices))
        if len(key) != len(space.decisions):
            raise ValueError(
                f"arch string {text!r} has {len(key)} digit(s); a {space.name} arch has {len(space.decisions)}, "
                f"one per layer ({legend}), e.g. {str(space.largest())!r}"
            )
        values: dict[str, Any] = {}
        for pos, (ch, d) in enumerate(zip(key, space.decisions), start=1):
            digits = {str(i): c for i, c in enumerate(d.choices)}
            if ch not in digits:
                raise ValueError(f"arch string {text!r} has {ch!r} at position {pos}; layer digits are {legend}")
            values[d.name] = digits[ch]
        return values


@dataclass(frozen=True)
class _MacroCanonical:
    """Moves identities that keep the shape to the end of their run of shape-keeping layers (they commute)."""

    keeps_shape: tuple[bool, ...]  # per layer: stride 1 and as many channels out as in

    def canonical(self, space: SearchSpace, values: Mapping[str, Choice]) -> dict[str, Choice]:
        names, ops = list(values), list(values.values())
        out: list[Choice] = []
        run: list[Choice] = []  # ops of the current run of shape-keeping layers
        for op, keeps in zip(ops + [None], self.keeps_shape + (False,)):  # a sentinel closes the last run
            if keeps:
                run.append(op)
                continue
            out += [o for o in run if o != "id"] + [o for o in run if o == "id"]
            run = []
            if op is not None:
                out.append(op)
        return dict(zip(names, out))


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]


class _InvertedResidual(nn.Module):
    """MobileNetV2 block: pw expand + BN + ReLU, kxk depthwise + BN + ReLU, pw-linear + BN, residual if shapes match."""

    def __init__(self, cin: int, cout: int, kernel: int, expand: int, stride: int) -> None:
        super().__init__()
        hid = cin * expand
        self.conv = nn.Sequential(
            *_conv_bn(cin, hid, 1), nn.ReLU(inplace=True),
            *_conv_bn(hid, hid, kernel, stride, groups=hid), nn.ReLU(inplace=True),
            *_conv_bn(hid, cout, 1),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, H, W) -> (B, cout, H / stride, W / stride)
        y = self.conv(x)
        return x + y if self.residual else y


def _make_op(op: str, cin: int, cout: int, stride: int) -> nn.Module:
    """The module of one layer's op: an inverted residual, or the identity (a 1x1 conv + BN if it changes shape)."""
    if op in _IR:
        return _InvertedResidual(cin, cout, *_IR[op], stride)
    if (cin, stride) == (cout, 1):
        return nn.Identity()
    return nn.Sequential(*_conv_bn(cin, cout, 1, stride))  # the benchmark's downsampling identity


class MacroNet(nn.Module):
    """The NAS-Bench-Macro network: stem, one `LayerChoice` of `OPS` per searchable layer, head, classifier.

    In the supernet each layer holds every op; in an extracted subnet (`supernets.extract`) the same class holds
    the chosen op per layer, so both run this forward.
    """

    def __init__(self, config: MacroConfig) -> None:
        super().__init__()
        c = config
        self.stem = nn.Sequential(*_conv_bn(c.in_chans, c.stem_width, 3), nn.ReLU(inplace=True))
        self.layers = nn.ModuleList(
            LayerChoice({op: _make_op(op, *p) for op in OPS}, name=f"layer{i}") for i, p in enumerate(c.plan()))
        self.head = nn.Sequential(*_conv_bn(c.stage_widths[-1], c.head_width, 1), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(c.head_width, c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.classifier(self.head(x).mean((2, 3)))


class MacroSupernet(BlockSupernet):
    """All 3^8 networks in one: every layer holds each of its ops with separate weights; a subnet runs one per layer."""

    def __init__(self, config: MacroConfig, name: str = "macro") -> None:
        shape = (config.in_chans, config.image_size, config.image_size)
        super().__init__(MacroNet(config), name, shape, space=config.search_space(name),
                         bias_adds=config.bias_adds_in_macs, config=config)
