"""Once-for-All style ResNet space, written with the elastic blocks: depth per stage, expansion per bottleneck,
width multiplier per stage (and for the stem).

The network is torchvision's ResNet with bottlenecks (v1.5: the stride sits on the 3x3 conv, each stage's first
block projects its input with a 1x1 conv + BN), and the module names are torchvision's (`conv1`, `bn1`, `layer1.0.
conv1`, `layer1.0.downsample.0`, `fc`), so an extracted subnet's state dict reads like torchvision's. The largest
subnet of `resnet50` is exactly torchvision's `resnet50` (tested: layout, state-dict shapes, cost). Choices follow
Once-for-All's `OFAResNets`:

- depth: a stage may drop its last blocks (`depth_cuts`, OFA's `depth_list` counted from the largest depth);
- expansion: a bottleneck's middle width is `make_divisible(stage_width * expand)` of its stage's active width
  (OFA's `expand_ratio_list`; 0.25 is torchvision's);
- width: every stage's output width, and the stem's, is `make_divisible(width * mult)` (OFA's `width_mult_list`,
  one choice per stage and one for the stem as in OFA).

Unlike OFA, the stem is torchvision's (7x7 stride-2 conv + max pool at 224 px; a 3x3 stride-1 conv without pool
for 32 px inputs) and the projection shortcut is the strided 1x1 conv (OFA uses avg-pool + 1x1 conv), so the
largest subnet is the standard ResNet-50. `ResNetConfig.search_space` lists the decisions the blocks derive (so a
space needs no torch module); every supernet build checks that they are the blocks' own.

Arch string: the stem's width, then one part per stage, joined by `/`; a stage is `w{mult}:` followed by its
blocks' expansions `e{expand}` joined by `-`. Example (2 stages): `w0.5/w1.0:e0.25-e0.75/w0.5:e0.5`. Depth is the
number of blocks written, so blocks removed by depth never appear. Without width choices the `w` parts are left
out; without expansion choices a stage is written `d{depth}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import nn

from .base import Cost, FamilyConfig
from .blocks import (
    BlockSupernet,
    Derived,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepth,
    ElasticLinear,
    Value,
    meta_supernet,
    standalone_subnet,
)
from .space import Arch, Decision, SearchSpace

__all__ = ["ResNetConfig", "ResNetSupernet", "ResNet", "Bottleneck"]


def _make_divisible(v: float, divisor: int) -> int:
    """The nearest multiple of `divisor` (at least `divisor`), never below 90% of `v`: OFA's and timm's rounding."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _scaled(mult: float, width: int, divisor: int) -> int:
    """Channels of a layer of `width` channels at width multiplier `mult`."""
    return _make_divisible(width * mult, divisor)


def _mid(width: int, expand: float, divisor: int) -> int:
    """A bottleneck's middle channels for a stage of `width` channels."""
    return _make_divisible(width * expand, divisor)


@dataclass(frozen=True)
class ResNetConfig(FamilyConfig):
    """Skeleton and choice lists of a ResNet space; widths are at multiplier 1.0, `image_size` in pixels.

    stage_blocks: bottlenecks per stage in the largest subnet; depth_cuts: how many of a stage's last blocks a
    subnet may drop (must include 0); expands: middle width / stage width of a bottleneck; width_mults: per stage
    and stem; divisor: channel counts are multiples of it. The defaults are ImageNet's ResNet-50 (`resnet50`).
    """

    family = "resnet"

    stage_widths: tuple[int, ...] = (256, 512, 1024, 2048)
    stage_blocks: tuple[int, ...] = (3, 4, 6, 3)
    stage_strides: tuple[int, ...] = (1, 2, 2, 2)
    depth_cuts: tuple[int, ...] = (0, 1, 2)
    expands: tuple[float, ...] = (0.15, 0.2, 0.25)
    width_mults: tuple[float, ...] = (0.65, 0.8, 1.0)
    stem_width: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    max_pool: bool = True
    divisor: int = 8
    num_classes: int = 1000
    in_chans: int = 3
    image_size: int = 224

    def __post_init__(self) -> None:
        n = len(self.stage_widths)
        if n == 0 or not len(self.stage_blocks) == len(self.stage_strides) == n:
            raise ValueError(f"resnet stage_widths, stage_blocks and stage_strides need one entry per stage, got "
                             f"{len(self.stage_widths)}, {len(self.stage_blocks)}, {len(self.stage_strides)}")
        for name in ("depth_cuts", "expands", "width_mults"):
            values = getattr(self, name)
            if not values or list(values) != sorted(set(values)) or min(values) < 0:
                raise ValueError(f"resnet {name} must be non-empty, non-negative, strictly increasing; got {list(values)}")
        if self.depth_cuts[0] != 0:
            raise ValueError(f"resnet depth_cuts must include 0 (the largest subnet runs every block); got "
                             f"{list(self.depth_cuts)}")
        if min(self.stage_blocks) - max(self.depth_cuts) < 1:
            raise ValueError(f"resnet depth_cuts {list(self.depth_cuts)} would leave a stage of "
                             f"{min(self.stage_blocks)} block(s) empty")
        if min(self.expands) <= 0 or min(self.width_mults) <= 0:
            raise ValueError("resnet expands and width_mults must be positive")
        if min((self.stem_width, self.divisor, self.num_classes, self.in_chans, self.image_size, self.stem_stride,
                *self.stage_widths, *self.stage_strides)) < 1:
            raise ValueError("resnet widths, strides, divisor, classes, channels and image_size must be positive")
        if self.stem_kernel < 1 or self.stem_kernel % 2 == 0:
            raise ValueError(f"resnet stem_kernel must be odd and positive, got {self.stem_kernel}")
        # Two choices giving the same channel counts would be two names for one network.
        for what, width in [("stem", self.stem_width), *((f"stage {i}", w) for i, w in enumerate(self.stage_widths))]:
            widths = [self.width(width, m) for m in self.width_mults]
            if len(set(widths)) != len(widths):
                raise ValueError(f"{what}: width_mults {list(self.width_mults)} give channel counts {widths} with "
                                 f"divisor {self.divisor}; two choices would build the same network")
            if what == "stem":
                continue
            for w in widths:
                mids = [self.mid(w, e) for e in self.expands]
                if len(set(mids)) != len(mids):
                    raise ValueError(f"{what} at width {w}: expands {list(self.expands)} give middle widths {mids} "
                                     f"with divisor {self.divisor}; two choices would build the same network")

    # ----------------------------------------------------------------- channel arithmetic
    def width(self, width: int, mult: float) -> int:
        """Channels of a layer of `width` channels (at multiplier 1.0) at width multiplier `mult`."""
        return _scaled(mult, width, self.divisor)

    def mid(self, stage_width: int, expand: float) -> int:
        """A bottleneck's middle channels in a stage of `stage_width` active channels."""
        return _mid(stage_width, expand, self.divisor)

    def depths(self, stage: int) -> tuple[int, ...]:
        """Depth choices of `stage`, shallowest first."""
        return tuple(sorted(self.stage_blocks[stage] - c for c in self.depth_cuts))

    # ----------------------------------------------------------------- family protocol
    def search_space(self, name: str = "resnet") -> SearchSpace:
        # The blocks' own decisions, listed here so that a space needs no torch module (a fresh process rebuilding
        # one from a file builds nothing); `ResNetSupernet` checks on every build that the blocks derive exactly
        # these (names, choices, conditions, order), so the two cannot drift apart.
        decisions: list[Decision] = []
        if len(self.width_mults) > 1:
            decisions.append(Decision("stem.w", self.width_mults))
        for i in range(len(self.stage_widths)):
            depths = self.depths(i)
            if len(depths) > 1:
                decisions.append(Decision(f"s{i}.d", depths))
            if len(self.width_mults) > 1:
                decisions.append(Decision(f"s{i}.w", self.width_mults))
            if len(self.expands) > 1:
                for j in range(max(depths)):
                    when = None if j < min(depths) else (f"s{i}.d", tuple(d for d in depths if d > j))
                    decisions.append(Decision(f"s{i}.b{j}.e", self.expands, when))
        return SearchSpace(name, tuple(decisions), self.family, self.canonical_json(),
                           _ResNetCodec(tuple(self.depths(i) for i in range(len(self.stage_widths)))))

    def build_supernet(self, name: str = "resnet") -> ResNetSupernet:
        return ResNetSupernet(self, name)

    def build_subnet(self, arch: Arch) -> nn.Module:
        return _init_weights(standalone_subnet(self, arch))

    def cost(self, arch: Arch) -> Cost:
        return meta_supernet(self, arch.space.name).cost(arch)  # type: ignore[operator]


# ---------------------------------------------------------------------- the modules
class _Formula:
    """`fn(*args)` where some args are choices (Values, Deriveds): `Derived` calls it with the chosen values of
    those only, the fixed ones are kept here. Named after `fn` for messages."""

    def __init__(self, fn: Callable[..., int], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args
        self.__name__ = fn.__name__

    def __call__(self, *chosen: Any) -> int:
        it = iter(chosen)
        return self.fn(*(next(it) if isinstance(a, (Value, Derived)) else a for a in self.args))


def _derive(fn: Callable[..., int], *args: Any) -> int | Derived:
    """`fn(*args)` as an int when no arg is a choice, else a Derived of the choices among them."""
    choices = [a for a in args if isinstance(a, (Value, Derived))]
    return Derived(_Formula(fn, args), *choices) if choices else fn(*args)


def _choice(choices: tuple[Any, ...], name: str) -> Any:
    """A named decision, or the value itself when there is nothing to choose (no one-choice decisions)."""
    return Value(choices, name=name) if len(choices) > 1 else choices[0]


class Bottleneck(nn.Module):
    """torchvision's bottleneck (v1.5) with elastic widths: 1x1 in -> mid, 3x3 mid -> mid (strided), 1x1 mid -> out,
    each + BN, added to the input (or to its 1x1 conv + BN projection when `project`), then ReLU.

    Widths are ints, Values or Deriveds; the out width is the stage's, shared by every block of the stage so the
    residual adds agree.
    """

    def __init__(self, cin: Any, mid: Any, cout: Any, stride: int, project: bool) -> None:
        super().__init__()
        self.conv1 = ElasticConv2d(cin, mid, 1)
        self.bn1 = ElasticBatchNorm2d(mid)
        self.conv2 = ElasticConv2d(mid, mid, 3, stride)
        self.bn2 = ElasticBatchNorm2d(mid)
        self.conv3 = ElasticConv2d(mid, cout, 1)
        self.bn3 = ElasticBatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.Sequential(ElasticConv2d(cin, cout, 1, stride), ElasticBatchNorm2d(cout)) if project else None

    def forward(self, x):  # (B, in, H, W) -> (B, out, H / stride, W / stride)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, mid, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # (B, mid, H / stride, W / stride)
        out = self.bn3(self.conv3(out))  # (B, out, H / stride, W / stride)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Stem, one `ElasticDepth` of bottlenecks per stage (`layer1`, `layer2`, ...), pool, classifier.

    In the supernet its layers are elastic; `supernets.extract` gives the same class holding plain layers (and
    `nn.Sequential` stages), which runs this same forward.
    """

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        c = config
        stem = _derive(_scaled, _choice(c.width_mults, "stem.w"), c.stem_width, c.divisor)
        self.conv1 = ElasticConv2d(c.in_chans, stem, c.stem_kernel, c.stem_stride)
        self.bn1 = ElasticBatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if c.max_pool else nn.Identity()
        self.stages = len(c.stage_widths)
        cin = stem
        for i, (w, n, stride) in enumerate(zip(c.stage_widths, c.stage_blocks, c.stage_strides)):
            width = _derive(_scaled, _choice(c.width_mults, f"s{i}.w"), w, c.divisor)
            blocks = []
            for j in range(n):
                mid = _derive(_mid, width, _choice(c.expands, f"s{i}.b{j}.e"), c.divisor)
                blocks.append(Bottleneck(cin if j == 0 else width, mid, width, stride if j == 0 else 1, j == 0))
            self.add_module(f"layer{i + 1}", ElasticDepth(blocks, _choice(c.depths(i), f"s{i}.d")))
            cin = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = ElasticLinear(cin, c.num_classes)
        _init_weights(self)

    def forward(self, x):  # (B, C, H, W) -> (B, classes)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(self.avgpool(x).flatten(1))


def _init_weights(net: nn.Module) -> nn.Module:
    """torchvision's ResNet init (He normal, fan-out, for convs; BN at weight 1, bias 0); linear layers keep theirs."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d) and not m.weight.is_meta:  # normal_ on meta imports torch._dynamo (seconds)
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


class ResNetSupernet(BlockSupernet):
    """Every subnet of a ResNet space in one network: the blocks' `ResNet`, with this family's arch strings."""

    def __init__(self, config: ResNetConfig, name: str = "resnet") -> None:
        shape = (config.in_chans, config.image_size, config.image_size)
        super().__init__(ResNet(config), name, shape, space=config.search_space(name),
                         bias_adds=config.bias_adds_in_macs, config=config)


# ---------------------------------------------------------------------- arch strings
@dataclass(frozen=True)
class _ResNetCodec:
    """`w0.5/w1.0:e0.25-e0.75/w0.5:e0.5` string form; see the module docstring."""

    depths: tuple[tuple[int, ...], ...]  # per stage, its depth choices (a stage with one has no decision)

    _num = r"(\d+(?:\.\d+)?)"

    def format(self, space: SearchSpace, values: Mapping[str, Any]) -> str:
        parts = [f"w{values['stem.w']}"] if "stem.w" in values else []
        for i, choices in enumerate(self.depths):
            d = int(values.get(f"s{i}.d", choices[0]))
            body = ("-".join(f"e{values[f's{i}.b{j}.e']}" for j in range(d)) if f"s{i}.b0.e" in space.by_name
                    else f"d{d}")
            parts.append((f"w{values[f's{i}.w']}:" if f"s{i}.w" in values else "") + body)
        return "/".join(parts)

    def parse(self, space: SearchSpace, text: str) -> dict[str, Any]:
        has_w = "stem.w" in space.by_name
        parts = text.strip().split("/")
        if len(parts) != len(self.depths) + has_w:
            raise ValueError(
                f"arch string {text!r} has {len(parts)} part(s) separated by '/'; a {space.name} arch has "
                f"{len(self.depths) + has_w} ({'the stem width, then ' if has_w else ''}one per stage), e.g. "
                f"{str(space.smallest())!r}")
        values: dict[str, Any] = {}
        if has_w:
            stem = parts.pop(0)
            m = re.fullmatch(rf"w{self._num}", stem)
            if not m:
                raise ValueError(f"cannot read the stem part {stem!r} of {text!r}: expected w<mult>, one of "
                                 f"{list(space['stem.w'].choices)}")
            values["stem.w"] = m.group(1)
        for i, part in enumerate(parts):
            width, sep, body = part.rpartition(":")
            if has_w:
                m = re.fullmatch(rf"w{self._num}", width) if sep else None
                if not m:
                    raise ValueError(f"stage {i} of {text!r} lacks its width 'w<mult>:'; allowed for s{i}.w: "
                                     f"{list(space[f's{i}.w'].choices)}")
                values[f"s{i}.w"] = m.group(1)
            elif sep:
                raise ValueError(f"stage {i} of {text!r} names a width, but space {space.name!r} has no width choice")
            if f"s{i}.b0.e" in space.by_name:
                tokens = body.split("-") if body else []
                for j, tok in enumerate(tokens):
                    m = re.fullmatch(rf"e{self._num}", tok)
                    if not m:
                        raise ValueError(f"cannot read block {tok!r} in stage {i} of {text!r}: expected e<expand>")
                    values[f"s{i}.b{j}.e"] = m.group(1)
                depth = len(tokens)
            else:
                m = re.fullmatch(r"d(\d+)", body)
                if not m:
                    raise ValueError(f"cannot read stage {i} {body!r} of {text!r}: expected d<depth>")
                depth = int(m.group(1))
            if depth not in self.depths[i]:
                raise ValueError(f"stage {i} of {text!r} has {depth} block(s); allowed: {list(self.depths[i])}")
            if len(self.depths[i]) > 1:
                values[f"s{i}.d"] = depth
        return values
