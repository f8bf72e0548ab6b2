"""TEST-ONLY REFERENCE: the hand-written NAS-Bench-Macro family as it was before it moved onto the blocks.

Kept verbatim (imports made absolute) so tests/test_macro.py can prove the block-built `supernets.macro` has the same
space, strings, costs, state-dict names and extracted outputs; benchmarks/bench_blocks.py times both side by side.
Not part of the package; nothing outside tests/ and benchmarks/ imports it.

The original module docstring follows.

The NAS-Bench-Macro space: 8 MobileNetV2-style layers, each identity or one of two inverted residuals.

Exact to the benchmark (Su et al., CVPR 2021), so its table of 6,561 networks trained from scratch on CIFAR-10 is
ground truth for this space: stem conv 3x3 + BN + ReLU, three stages of 2, 3, 3 layers whose first layer has
stride 2 and doubles the channels (32 -> 64 -> 128 -> 256), conv 1x1 to 1280 + BN + ReLU, global average pool,
linear classifier. Each layer chooses

    0  identity (a 1x1 conv + BN when the layer changes the shape: a stage's first layer),
    1  inverted residual, kernel 3, expansion 3,
    2  inverted residual, kernel 5, expansion 6,

and the arch string is the benchmark's own key: one digit per layer, e.g. `22212220`. The supernet holds every op
of every layer with its own weights (no sharing between ops, as in SPOS); a subnet runs one op per layer.

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

from supernets.base import Cost, FamilyConfig, Supernet
from supernets.space import Arch, Choice, Decision, SearchSpace

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
        return MacroNet(self, [str(v) for _, v in arch.values])

    def cost(self, arch: Arch) -> Cost:
        r = self.image_size
        macs = r * r * self.stem_width * self.in_chans * 9
        params = self.stem_width * self.in_chans * 9 + 2 * self.stem_width
        for (cin, cout, stride), (_, op) in zip(self.plan(), arch.values):
            r_out = (r - 1) // stride + 1  # k x k conv with padding k // 2 (and 1x1 with none) at this stride
            if op in _IR:
                k, e = _IR[str(op)]
                hid = cin * e
                macs += r * r * cin * hid + r_out * r_out * hid * k * k + r_out * r_out * hid * cout
                params += cin * hid + hid * k * k + hid * cout + 2 * (2 * hid + cout)
            elif (cin, stride) != (cout, 1):  # identity that changes the shape: 1x1 conv + BN
                macs += r_out * r_out * cin * cout
                params += cin * cout + 2 * cout
            r = r_out
        cin = self.stage_widths[-1]
        macs += r * r * cin * self.head_width + self.head_width * self.num_classes  # no bias adds, as the table
        params += cin * self.head_width + 2 * self.head_width + self.head_width * self.num_classes + self.num_classes
        return Cost(macs=macs, params=params)


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


def _make_op(op: str, cin: int, cout: int, stride: int) -> nn.Module | None:
    """The module of one layer's op; None for an identity that keeps the shape (no weights, nothing to run)."""
    if op in _IR:
        return _InvertedResidual(cin, cout, *_IR[op], stride)
    if (cin, stride) == (cout, 1):
        return None
    return nn.Sequential(*_conv_bn(cin, cout, 1, stride))  # the benchmark's downsampling identity


def _build_skeleton(net: nn.Module, c: MacroConfig, make_layer) -> None:
    """Stem, searchable layers from `make_layer(i, cin, cout, stride)`, head and classifier on `net`."""
    net.stem = nn.Sequential(*_conv_bn(c.in_chans, c.stem_width, 3), nn.ReLU(inplace=True))
    net.layers = nn.ModuleList(make_layer(i, *p) for i, p in enumerate(c.plan()))
    net.head = nn.Sequential(*_conv_bn(c.stage_widths[-1], c.head_width, 1), nn.ReLU(inplace=True))
    net.classifier = nn.Linear(c.head_width, c.num_classes)


class MacroSupernet(Supernet):
    """All 3^8 networks in one: every layer holds each of its ops with separate weights; a subnet runs one per layer."""

    def __init__(self, config: MacroConfig, name: str = "macro") -> None:
        super().__init__(config, name)
        _build_skeleton(self, config, lambda i, cin, cout, s: nn.ModuleDict(
            {op: m for op in OPS if (m := _make_op(op, cin, cout, s)) is not None}))

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        self.check_arch(arch)
        x = self.stem(x)
        for layer, (_, op) in zip(self.layers, arch.values):
            if op in layer:  # a shape-keeping identity has no module
                x = layer[op](x)
        return self.classifier(self.head(x).mean((2, 3)))

    def weight_source(self, name: str, arch: Arch) -> str:
        # layers.I.<rest> in the standalone net is layers.I.<op>.<rest> here.
        parts = name.split(".")
        if parts[0] == "layers":
            parts.insert(2, str(arch.values[int(parts[1])][1]))
        return ".".join(parts)


class MacroNet(nn.Module):
    """A plain NAS-Bench-Macro network for one arch; shape-keeping identities are `nn.Identity`."""

    def __init__(self, config: MacroConfig, ops: list[str]) -> None:
        super().__init__()
        _build_skeleton(self, config, lambda i, cin, cout, s: _make_op(ops[i], cin, cout, s) or nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.classifier(self.head(x).mean((2, 3)))
