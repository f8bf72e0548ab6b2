"""MobileNetV3 / Once-for-All style space: elastic depth per stage, kernel and expansion per block, width per stage.

Weight sharing follows Once-for-All: fewer channels are the first slice of the largest layer, a smaller depthwise
kernel is the centre crop of the largest, and a shallower stage uses its first blocks. Choices are declared
cheapest first, so `space.smallest()` / `space.largest()` are the cheapest / most expensive subnets.

Arch string: stages joined by `/`, blocks of a stage by `-`, each block `k{kernel}e{expand}`; when the space has
width multipliers each stage starts `w{mult}:`. Example (3 stages): `w0.5:k3e3/w1.0:k5e4-k7e6/w0.75:k3e6`.
Depth is the number of blocks written, so blocks removed by depth never appear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import Cost, DynamicBatchNorm2d, FamilyConfig, Supernet
from .space import Arch, Decision, SearchSpace

__all__ = ["StageSpec", "MBV3Config", "MBV3Supernet", "MBV3Net"]


@dataclass(frozen=True)
class StageSpec:
    """One stage: output width at multiplier 1.0, stride of its first block, squeeze-excite, activation name."""

    width: int
    stride: int = 1
    se: bool = False
    act: str = "hard_swish"


@dataclass(frozen=True)
class MBV3Config(FamilyConfig):
    """Macro skeleton and choice lists of an mbv3 space; `image_size` (pixels) is where costs are counted."""

    family = "mbv3"

    stages: tuple[StageSpec, ...] = (
        StageSpec(24, 2, False, "relu"),
        StageSpec(40, 2, True, "relu"),
        StageSpec(80, 2, False, "hard_swish"),
        StageSpec(112, 1, True, "hard_swish"),
        StageSpec(160, 2, True, "hard_swish"),
    )
    depths: tuple[int, ...] = (2, 3, 4)
    kernels: tuple[int, ...] = (3, 5, 7)
    expands: tuple[int, ...] = (3, 4, 6)
    width_mults: tuple[float, ...] = (1.0,)
    num_classes: int = 1000
    in_chans: int = 3
    stem_width: int = 16
    stem_stride: int = 2
    stem_act: str = "hard_swish"
    head_width: int = 1280
    head_act: str = "hard_swish"
    se_ratio: float = 0.25
    divisor: int = 8  # channel counts are rounded to multiples of this (timm's make_divisible)
    dropout: float = 0.0
    image_size: int = 224

    def __post_init__(self) -> None:
        if any(isinstance(s, Mapping) for s in self.stages):
            object.__setattr__(self, "stages", tuple(StageSpec(**s) if isinstance(s, Mapping) else s for s in self.stages))
        for field_name in ("depths", "kernels", "expands", "width_mults"):
            values = getattr(self, field_name)
            if not values or list(values) != sorted(set(values)):
                raise ValueError(f"mbv3 {field_name} must be non-empty, strictly increasing; got {list(values)}")
        if min(self.depths) < 1:
            raise ValueError(f"mbv3 depths must be >= 1; got {list(self.depths)}")
        if any(k % 2 == 0 for k in self.kernels):
            raise ValueError(f"mbv3 kernels must be odd; got {list(self.kernels)}")
        for i, st in enumerate(self.stages):
            widths = [self.stage_width(i, m) for m in self.width_mults]
            if len(set(widths)) != len(widths):
                raise ValueError(
                    f"stage {i}: width multipliers {list(self.width_mults)} give channel counts {widths} with "
                    f"divisor {self.divisor}; two choices would build the same network"
                )

    # ----------------------------------------------------------------- channel arithmetic
    def stage_width(self, stage: int, mult: float) -> int:
        """Output channels of `stage` at width multiplier `mult`."""
        return int(_make_divisible(self.stages[stage].width * mult, self.divisor))

    def hidden(self, cin: int, expand: float) -> int:
        """Inverted-residual hidden channels for input width `cin`."""
        return int(_make_divisible(cin * expand, self.divisor))

    def se_channels(self, hidden: int) -> int:
        """Squeeze-excite bottleneck channels for a block with `hidden` channels."""
        return int(_make_divisible(hidden * self.se_ratio, self.divisor))

    # ----------------------------------------------------------------- space
    def search_space(self, name: str = "mbv3") -> SearchSpace:
        decisions: list[Decision] = []
        for i in range(len(self.stages)):
            if len(self.width_mults) > 1:
                decisions.append(Decision(f"s{i}.w", self.width_mults))
            decisions.append(Decision(f"s{i}.d", self.depths))
            for j in range(max(self.depths)):
                when = None if j < min(self.depths) else (f"s{i}.d", tuple(d for d in self.depths if d > j))
                decisions.append(Decision(f"s{i}.b{j}.k", self.kernels, when))
                decisions.append(Decision(f"s{i}.b{j}.e", self.expands, when))
        return SearchSpace(name, tuple(decisions), self.family, self.canonical_json(), _MBV3Codec())

    def layout(self, arch: Arch) -> list[tuple[int, list[tuple[int, int]]]]:
        """Per stage: (output channels, [(kernel, expand) per active block])."""
        out = []
        for i in range(len(self.stages)):
            mult = arch.get(f"s{i}.w", self.width_mults[-1])
            blocks = [(int(arch[f"s{i}.b{j}.k"]), arch[f"s{i}.b{j}.e"]) for j in range(int(arch[f"s{i}.d"]))]
            out.append((self.stage_width(i, mult), blocks))
        return out

    def build_supernet(self, name: str = "mbv3") -> MBV3Supernet:
        return MBV3Supernet(self, name)

    def build_subnet(self, arch: Arch) -> MBV3Net:
        return MBV3Net(self, self.layout(arch))

    def cost(self, arch: Arch) -> Cost:
        def conv_out(r: int, k: int, s: int) -> int:
            return (r + 2 * (k // 2) - k) // s + 1

        r = conv_out(self.image_size, 3, self.stem_stride)
        macs = r * r * self.stem_width * self.in_chans * 9
        params = self.stem_width * self.in_chans * 9 + 2 * self.stem_width
        cin = self.stem_width
        for i, (cout, blocks) in enumerate(self.layout(arch)):
            for j, (k, e) in enumerate(blocks):
                hid = self.hidden(cin, e)
                stride = self.stages[i].stride if j == 0 else 1
                r_out = conv_out(r, k, stride)
                macs += r * r * hid * cin + r_out * r_out * hid * k * k + r_out * r_out * cout * hid
                params += hid * cin + hid * k * k + cout * hid + 2 * (2 * hid + cout)
                if self.stages[i].se:
                    rd = self.se_channels(hid)
                    macs += 2 * hid * rd + rd + hid  # two 1x1 convs on the pooled vector, with bias adds
                    params += 2 * hid * rd + rd + hid
                cin, r = cout, r_out
        macs += r * r * self.head_width * cin + self.head_width * self.num_classes + self.num_classes
        params += self.head_width * cin + 2 * self.head_width + self.head_width * self.num_classes + self.num_classes
        return Cost(macs=macs, params=params)


class _MBV3Codec:
    """`w0.5:k3e3-k5e4/...` string form; see the module docstring."""

    _block = re.compile(r"^k(\d+)e(\d+(?:\.\d+)?)$")

    def format(self, space: SearchSpace, values: Mapping[str, Any]) -> str:
        stages = []
        i = 0
        while f"s{i}.d" in values:
            blocks = "-".join(f"k{values[f's{i}.b{j}.k']}e{values[f's{i}.b{j}.e']}" for j in range(int(values[f's{i}.d'])))
            prefix = f"w{values[f's{i}.w']}:" if f"s{i}.w" in values else ""
            stages.append(prefix + blocks)
            i += 1
        return "/".join(stages)

    def parse(self, space: SearchSpace, text: str) -> dict[str, Any]:
        n_stages = sum(1 for d in space.decisions if d.name.endswith(".d"))
        has_width = f"s0.w" in space.by_name
        parts = text.strip().split("/")
        if len(parts) != n_stages:
            raise ValueError(
                f"arch string {text!r} has {len(parts)} stage(s) but space {space.name!r} has {n_stages} "
                f"(stages are separated by '/', e.g. {str(space.smallest())!r}); is it from another space?"
            )
        values: dict[str, Any] = {}
        for i, part in enumerate(parts):
            width, sep, blocks = part.rpartition(":")
            if has_width:
                if not sep or not width.startswith("w"):
                    raise ValueError(
                        f"stage {i} of {text!r} lacks its width 'w<mult>:'; allowed for s{i}.w: "
                        f"{list(space[f's{i}.w'].choices)}"
                    )
                values[f"s{i}.w"] = width[1:]
            elif sep:
                raise ValueError(f"stage {i} of {text!r} names a width, but space {space.name!r} has no width choice")
            tokens = blocks.split("-") if blocks else []
            depth = space[f"s{i}.d"]
            if len(tokens) not in depth.choices:
                raise ValueError(
                    f"stage {i} of {text!r} has {len(tokens)} block(s); allowed for {depth.name!r}: {list(depth.choices)}"
                )
            values[f"s{i}.d"] = len(tokens)
            for j, tok in enumerate(tokens):
                m = self._block.match(tok)
                if not m:
                    raise ValueError(f"cannot read block {tok!r} in stage {i} of {text!r}: expected k<kernel>e<expand>")
                values[f"s{i}.b{j}.k"], values[f"s{i}.b{j}.e"] = m.group(1), m.group(2)
        return values


@lru_cache(maxsize=1 << 14)  # a search computes the costs of thousands of candidates per proposal
def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """timm's `make_divisible`, copied so that a space's sizes need no timm import (timm loads torchvision's models).

    The nearest multiple of `divisor`, at least `min_value` (default `divisor`), and never below `round_limit * v`.
    """
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


# The torch classes timm's `get_act_layer` returns for these names (tested), so building a supernet needs no timm.
_TORCH_ACTS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "hard_swish": nn.Hardswish, "hard_sigmoid": nn.Hardsigmoid,
    "silu": nn.SiLU, "swish": nn.SiLU,
}


def _act(name: str) -> nn.Module:
    if name.lower() in _TORCH_ACTS:
        return _TORCH_ACTS[name.lower()]()
    from timm.layers import get_act_layer  # any other timm activation name

    return get_act_layer(name)()


def _stem(c: MBV3Config) -> nn.Sequential:
    """3x3 conv-BN-act; fixed width, shared by the supernet and every subnet."""
    stem = nn.Sequential()
    stem.conv = nn.Conv2d(c.in_chans, c.stem_width, 3, c.stem_stride, 1, bias=False)
    stem.bn = nn.BatchNorm2d(c.stem_width)
    stem.act = _act(c.stem_act)
    return stem


def _add_head(net: nn.Module, c: MBV3Config, cin: int) -> None:
    """1x1 conv to `head_width`, BN, act, then (after pooling) dropout and the classifier; same names everywhere."""
    net.head_conv = nn.Conv2d(cin, c.head_width, 1, bias=False)
    net.head_bn = nn.BatchNorm2d(c.head_width)
    net.head_act = _act(c.head_act)
    net.dropout = nn.Dropout(c.dropout)
    net.classifier = nn.Linear(c.head_width, c.num_classes)


def _cut(weight: torch.Tensor, *sizes: int) -> torch.Tensor:
    """The leading `sizes[d]` entries of `weight` along each dim d, slicing only the dims that are cut.

    Every slice is a node whose backward allocates a zero gradient of its input's full size and copies into it;
    a dim taken whole needs none, and a subnet at the largest width needs no slice at all (`weight` itself).
    """
    for d, n in enumerate(sizes):
        if n < weight.shape[d]:
            weight = weight.narrow(d, 0, n)
    return weight


def _depthwise(x: torch.Tensor, weight: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Depthwise conv with `kernel` (odd, 'same' padding) cut from `weight` (>= C, 1, K, K) for x (B, C, H, W).

    The kernel is the centre crop of the largest, further cropped to the taps that can reach the input: a tap
    more than H - 1 rows (W - 1 columns) from the centre only ever meets zero padding, whatever the stride. So
    on maps smaller than the kernel (the 2x2 and 1x1 maps of 32 px inputs) the output is the same and so are
    the gradients (those taps get exactly zero either way), for a fraction of the work: a 7x7 kernel on a 2x2
    map needs its centre 3x3, on a 1x1 map only its centre.
    """
    c, h, w = x.shape[1:]
    kh, kw = min(kernel, 2 * h - 1), min(kernel, 2 * w - 1)
    big = weight.shape[2]
    top, left = (big - kh) // 2, (big - kw) // 2
    w_dw = _cut(weight, c)  # (C, 1, K, K)
    if kh < big or kw < big:
        w_dw = w_dw[:, :, top : top + kh, left : left + kw]  # (C, 1, kh, kw)
    return F.conv2d(x, w_dw, None, stride, (kh // 2, kw // 2), 1, c)


class _DynamicMBBlock(nn.Module):
    """Inverted residual at its largest size; `forward` takes the kernel, expansion and widths as arguments."""

    def __init__(self, cfg: MBV3Config, cin: int, cout: int, stride: int, se: bool, act: str, shortcut: bool):
        super().__init__()
        self.cfg, self.stride, self.shortcut = cfg, stride, shortcut
        hid, k = cfg.hidden(cin, max(cfg.expands)), max(cfg.kernels)
        self.conv_pw = nn.Conv2d(cin, hid, 1, bias=False)
        self.bn1 = DynamicBatchNorm2d(hid)
        self.conv_dw = nn.Conv2d(hid, hid, k, stride, k // 2, groups=hid, bias=False)
        self.bn2 = DynamicBatchNorm2d(hid)
        self.se = None
        if se:
            rd = cfg.se_channels(hid)
            self.se = nn.Module()
            self.se.fc1 = nn.Conv2d(hid, rd, 1)
            self.se.fc2 = nn.Conv2d(rd, hid, 1)
            self.se_act, self.se_gate = nn.ReLU(), _act("hard_sigmoid")
        self.conv_pwl = nn.Conv2d(hid, cout, 1, bias=False)
        self.bn3 = DynamicBatchNorm2d(cout)
        self.act = _act(act)

    def forward(self, x: torch.Tensor, kernel: int, expand: float, cout: int) -> torch.Tensor:
        cin = x.shape[1]  # x: (B, cin, H, W)
        hid = self.cfg.hidden(cin, expand)
        h = self.act(self.bn1(F.conv2d(x, _cut(self.conv_pw.weight, hid, cin))))  # (B, hid, H, W)
        h = self.act(self.bn2(_depthwise(h, self.conv_dw.weight, kernel, self.stride)))  # (B, hid, H', W')
        if self.se is not None:
            rd = self.cfg.se_channels(hid)
            # The 1x1 convs of squeeze-excite act on a 1x1 map: as matrix products they give the same values, and
            # forward + backward ran 3-4x faster on CPU than as convolutions (32 x 120 -> 480, one thread).
            s = h.mean((2, 3))  # (B, hid)
            fc1, fc2 = self.se.fc1, self.se.fc2  # (R, HID, 1, 1) and (HID, R, 1, 1) weights, as 2-d views
            s = self.se_act(F.linear(s, _cut(fc1.weight.flatten(1), rd, hid), _cut(fc1.bias, rd)))  # (B, rd)
            s = F.linear(s, _cut(fc2.weight.flatten(1), hid, rd), _cut(fc2.bias, hid))  # (B, hid)
            h = h * self.se_gate(s)[:, :, None, None]
        h = self.bn3(F.conv2d(h, _cut(self.conv_pwl.weight, cout, hid)))  # (B, cout, H', W')
        return h + x if self.shortcut else h


class MBV3Supernet(Supernet):
    """Every subnet of an mbv3 space in one network; parameter names match `MBV3Net` so extraction is slicing."""

    def __init__(self, config: MBV3Config, name: str = "mbv3") -> None:
        super().__init__(config, name)
        c = config
        self.stem = _stem(c)
        self.stages = nn.ModuleList()
        cin = c.stem_width
        for i, st in enumerate(c.stages):
            cout = c.stage_width(i, max(c.width_mults))
            blocks = nn.ModuleList()
            for j in range(max(c.depths)):
                # The first block of a stage changes width (elastically) or resolution: no shortcut there.
                blocks.append(_DynamicMBBlock(c, cin, cout, st.stride if j == 0 else 1, st.se, st.act, j > 0))
                cin = cout
            self.stages.append(blocks)
        _add_head(self, c, cin)

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        self.check_arch(arch)
        x = self.stem(x)  # (B, stem_width, H/s, W/s)
        for blocks, (cout, layout) in zip(self.stages, self.config.layout(arch)):
            for block, (k, e) in zip(blocks, layout):
                x = block(x, k, e, cout)
        x = self.head_act(self.head_bn(F.conv2d(x, _cut(self.head_conv.weight, self.head_conv.out_channels, x.shape[1]))))
        x = x.mean((2, 3))  # (B, head_width)
        return self.classifier(self.dropout(x))


class _MBBlock(nn.Module):
    """Standalone inverted residual with fixed sizes; the same parameter names as the dynamic block."""

    def __init__(self, cin: int, hid: int, cout: int, k: int, stride: int, se_rd: int, act: str, shortcut: bool):
        super().__init__()
        self.shortcut = shortcut
        self.conv_pw = nn.Conv2d(cin, hid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hid)
        self.conv_dw = nn.Conv2d(hid, hid, k, stride, k // 2, groups=hid, bias=False)
        self.bn2 = nn.BatchNorm2d(hid)
        from timm.layers import SEModule  # here, not at import: timm loads torchvision's model zoo (seconds)

        self.se = SEModule(hid, rd_channels=se_rd, act_layer=nn.ReLU, gate_layer="hard_sigmoid") if se_rd else None
        self.conv_pwl = nn.Conv2d(hid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.act = _act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn1(self.conv_pw(x)))
        h = self.act(self.bn2(self.conv_dw(h)))
        if self.se is not None:
            h = self.se(h)
        h = self.bn3(self.conv_pwl(h))
        return h + x if self.shortcut else h


class MBV3Net(nn.Module):
    """A plain MobileNetV3-style network with the widths, depths and kernels of one subnet."""

    def __init__(self, config: MBV3Config, layout: list[tuple[int, list[tuple[int, int]]]]) -> None:
        super().__init__()
        c = config
        self.stem = _stem(c)
        self.stages = nn.ModuleList()
        cin = c.stem_width
        for i, (cout, blocks) in enumerate(layout):
            st, seq = c.stages[i], nn.Sequential()
            for j, (k, e) in enumerate(blocks):
                hid = c.hidden(cin, e)
                rd = c.se_channels(hid) if st.se else 0
                seq.append(_MBBlock(cin, hid, cout, k, st.stride if j == 0 else 1, rd, st.act, j > 0))
                cin = cout
            self.stages.append(seq)
        _add_head(self, c, cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = self.head_act(self.head_bn(self.head_conv(x)))
        return self.classifier(self.dropout(x.mean((2, 3))))
