"""Elastic layers: a conv, a batch norm and a linear layer whose widths and kernel are choices of the active subnet.

Each holds the weights of its largest form; a subnet uses the leading slice of the channels and the centre crop
of the kernel (Once-for-All's weight sharing). They subclass the torch layer they generalize, so code that
initializes or inspects `nn.Conv2d` / `nn.BatchNorm2d` / `nn.Linear` modules treats them alike, and each
materializes as that plain layer holding copies of its slices, and states its own cost.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..base import DynamicBatchNorm2d, _first as _cut
from .context import values_for
from .values import Derived, Spec, Value, as_spec, describe_spec, spec_max

__all__ = ["ElasticConv2d", "ElasticBatchNorm2d", "ElasticLinear", "ElasticBlock"]


_BASE_ATTRS = frozenset(nn.Module().__dict__)
_DEFAULTS: dict[type, dict[str, Any]] = {}


def _bare(cls: type, params: dict[str, Any], buffers: dict[str, Any], **attrs: Any) -> Any:
    """A plain torch layer holding the given tensors, built without its `__init__` (whose weight initialization
    costs ~100 us a layer, several times the copy): Module state, the class's own defaults taken once from a real
    instance, then `attrs`."""
    if cls not in _DEFAULTS:
        example = cls(1, 1, 1) if cls is nn.Conv2d else cls(1, 1) if cls is nn.Linear else cls(1)  # CPU: no meta init
        _DEFAULTS[cls] = {k: v for k, v in example.__dict__.items() if k not in _BASE_ATTRS}
    m = cls.__new__(cls)
    nn.Module.__init__(m)
    m.__dict__.update(_DEFAULTS[cls])
    m.__dict__.update(attrs)
    m._parameters.update(params)
    m._buffers.update(buffers)
    return m


def _param(t: torch.Tensor | None, like: torch.Tensor | None) -> nn.Parameter | None:
    return None if t is None else nn.Parameter(t.clone(), like.requires_grad if like is not None else True)


def _get(spec: Spec, values: dict[Any, Any]) -> int:
    return spec if type(spec) is int else values[spec]  # noqa: E721 - the fast path of every forward


class ElasticBlock:
    """What `BlockSupernet` asks of a block: its choices, a check of them, a plain copy and its cost."""

    _block_name: str = ""

    def block_specs(self) -> list[tuple[str, Spec]]:
        """(role, spec) of every argument that may be a choice, in declaration order (roles name auto Values)."""
        raise NotImplementedError

    def block_problem(self) -> str | None:
        """Why the block's choices cannot work (one line), or None."""
        return None

    def materialize(self, values: dict[Any, Any]) -> nn.Module:
        """The plain torch layer of the active choices, holding copies of the used slices."""
        raise NotImplementedError

    def block_cost(self, values: dict[Any, Any], sizes: tuple[int, ...], bias_adds: bool) -> tuple[int, int]:
        """(MACs, params) of the materialized layer; `sizes`: output positions per sample of each recorded call."""
        raise NotImplementedError

    def _in_error(self, spec: Spec, want: int, got: int, what: str) -> ValueError:
        return ValueError(
            f"block {self._block_name or type(self).__name__!r} expects {want} input {what} ({describe_spec(spec)}) "
            f"but got {got}: widths that meet here must be one Value (pass the producing layer's Value)")


def _check_increasing(spec: Spec, what: str) -> str | None:
    if isinstance(spec, Value):
        c = spec.choices
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in c):
            return f"{what} choices of {describe_spec(spec)} must be positive ints, got {list(c)}"
        for a, b in zip(c, c[1:]):
            if b <= a:
                top = max(c)
                return (f"{what} choice {top} of {describe_spec(spec)} is above its largest (last) choice {c[-1]}: "
                        f"list choices cheapest first, got {list(c)}")
    return None


class ElasticConv2d(nn.Conv2d, ElasticBlock):
    """Conv whose in/out widths (int, Value, Derived) and kernel (int, tuple or Value of odd sizes) are choices.

    The weight is the largest (max out, max in, largest kernel); a subnet uses `weight[:out, :in, crop, crop]`
    with padding k // 2 (unless `padding` is given). `groups="depthwise"` convolves each channel alone (in and
    out must then be the same int or Value). Stride and dilation are fixed.
    """

    def __init__(self, in_channels: Any, out_channels: Any, kernel_size: Any, stride: int = 1,
                 groups: int | str = 1, bias: bool = False, padding: int | None = None) -> None:
        self.in_spec = as_spec(in_channels, "in_channels", choices_ok=False)
        self.out_spec = as_spec(out_channels, "out_channels")
        self.kernel_spec = as_spec(kernel_size, "kernel_size")
        if isinstance(self.kernel_spec, Derived):
            raise TypeError("kernel_size cannot be a Derived: give an int, a tuple of sizes or a Value")
        self.depthwise = groups == "depthwise"
        if self.depthwise:
            same_int = isinstance(self.in_spec, int) and self.in_spec == self.out_spec
            if self.in_spec is not self.out_spec and not same_int:
                raise ValueError("a depthwise ElasticConv2d needs in_channels and out_channels to be the same int or "
                                 "Value")
        elif groups != 1 and not (isinstance(groups, int) and isinstance(self.in_spec, int)
                                  and isinstance(self.out_spec, int)):
            raise ValueError(f"groups={groups!r}: an ElasticConv2d takes groups=1 or 'depthwise' (other groups only "
                             f"with fixed widths)")
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be a positive int, got {stride!r}")
        cin, cout, k = spec_max(self.in_spec), spec_max(self.out_spec), max(_kernels(self.kernel_spec))
        g = cin if self.depthwise else int(groups)
        super().__init__(cin, cout, k, stride, k // 2 if padding is None else padding, groups=g, bias=bias)
        self.fixed_padding = padding

    def block_specs(self) -> list[tuple[str, Spec]]:
        return [("in_width", self.in_spec), ("width", self.out_spec), ("kernel", self.kernel_spec)]

    def block_problem(self) -> str | None:
        ks = _kernels(self.kernel_spec)
        even = [k for k in ks if k % 2 == 0]
        if even:
            return (f"kernel choice {even[0]} of {describe_spec(self.kernel_spec)} is even: kernels are centre crops "
                    f"of the largest, so every choice must be odd, got {list(ks)}")
        return _check_increasing(self.kernel_spec, "kernel") or _check_increasing(self.out_spec, "width")

    def _active(self, values: dict[Any, Any], cin: int) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        """(weight, bias, padding, groups) of the active subnet for an input of `cin` channels."""
        cout = cin if self.depthwise else _get(self.out_spec, values)
        k = _get(self.kernel_spec, values)
        w = self.weight
        kmax = w.shape[-1]
        if self.depthwise:
            if cin < w.shape[0]:
                w = w[:cin]
        elif cout < w.shape[0] or cin < w.shape[1] * self.groups:
            w = w[:cout, :cin]
        if k < kmax:
            lo = (kmax - k) // 2
            w = w[:, :, lo:lo + k, lo:lo + k]
        b = self.bias
        if b is not None and cout < b.shape[0]:
            b = b[:cout]
        pad = k // 2 if self.fixed_padding is None else self.fixed_padding
        return w, b, pad, (cin if self.depthwise else self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in, H, W) -> (B, out, H / stride, W / stride)
        values = values_for(self)
        cin = x.shape[1]
        want = _get(self.in_spec, values)
        if cin != want:
            raise self._in_error(self.in_spec, want, cin, "channels")
        w, b, pad, groups = self._active(values, cin)
        return F.conv2d(x, w, b, self.stride, pad, self.dilation, groups)

    @torch.no_grad()
    def materialize(self, values: dict[Any, Any]) -> nn.Conv2d:
        w, b, pad, groups = self._active(values, _get(self.in_spec, values))
        k = w.shape[-1]
        return _bare(nn.Conv2d, {"weight": _param(w, self.weight), "bias": _param(b, self.bias)}, {},
                     in_channels=w.shape[1] * groups, out_channels=w.shape[0], kernel_size=(k, k), stride=self.stride,
                     padding=(pad, pad), dilation=self.dilation, groups=groups,
                     _reversed_padding_repeated_twice=(pad, pad, pad, pad), training=self.training)

    def block_cost(self, values: dict[Any, Any], sizes: tuple[int, ...], bias_adds: bool) -> tuple[int, int]:
        cin = _get(self.in_spec, values)
        cout = cin if self.depthwise else _get(self.out_spec, values)
        k = _get(self.kernel_spec, values)
        weights = cout * (1 if self.depthwise else cin // self.groups) * k * k
        positions = sum(sizes)
        has_bias = self.bias is not None
        return positions * (weights + (cout if has_bias and bias_adds else 0)), weights + (cout if has_bias else 0)


def _kernels(spec: Spec) -> tuple[int, ...]:
    if isinstance(spec, Value):
        return tuple(spec.choices)  # type: ignore[arg-type]
    return (int(spec),)  # type: ignore[arg-type]


class ElasticBatchNorm2d(DynamicBatchNorm2d, ElasticBlock):
    """BatchNorm over the first `width` channels of its largest width (running stats of those channels update)."""

    def __init__(self, width: Any, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        self.width_spec = as_spec(width, "width")
        super().__init__(spec_max(self.width_spec), eps, momentum, affine, track_running_stats)

    def block_specs(self) -> list[tuple[str, Spec]]:
        return [("width", self.width_spec)]

    def block_problem(self) -> str | None:
        return _check_increasing(self.width_spec, "width")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) with C the active width
        values = values_for(self)
        c = x.shape[1]
        want = _get(self.width_spec, values)
        if c != want:
            raise self._in_error(self.width_spec, want, c, "channels")
        return super().forward(x)  # DynamicBatchNorm2d: the first c channels of stats and affine weights

    @torch.no_grad()
    def materialize(self, values: dict[Any, Any]) -> nn.BatchNorm2d:
        c = _get(self.width_spec, values)
        params = {"weight": _param(_cut(self.weight, c), self.weight), "bias": _param(_cut(self.bias, c), self.bias)}
        stats = {k: None if t is None else t[:c].clone() for k, t in
                 (("running_mean", self.running_mean), ("running_var", self.running_var))}
        nbt = self.num_batches_tracked
        return _bare(nn.BatchNorm2d, params, {**stats, "num_batches_tracked": None if nbt is None else nbt.clone()},
                     num_features=c, eps=self.eps, momentum=self.momentum, affine=self.affine,
                     track_running_stats=self.track_running_stats, training=self.training)

    def block_cost(self, values: dict[Any, Any], sizes: tuple[int, ...], bias_adds: bool) -> tuple[int, int]:
        return 0, (2 * _get(self.width_spec, values) if self.affine else 0)


class ElasticLinear(nn.Linear, ElasticBlock):
    """Linear layer on the first `in_features` inputs giving the first `out_features` outputs of its largest form."""

    def __init__(self, in_features: Any, out_features: Any, bias: bool = True) -> None:
        self.in_spec = as_spec(in_features, "in_features", choices_ok=False)
        self.out_spec = as_spec(out_features, "out_features")
        super().__init__(spec_max(self.in_spec), spec_max(self.out_spec), bias)

    def block_specs(self) -> list[tuple[str, Spec]]:
        return [("in_width", self.in_spec), ("width", self.out_spec)]

    def block_problem(self) -> str | None:
        return _check_increasing(self.out_spec, "width")

    def _active(self, values: dict[Any, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        cin, cout = _get(self.in_spec, values), _get(self.out_spec, values)
        w, b = self.weight, self.bias
        if cout < w.shape[0] or cin < w.shape[1]:
            w = w[:cout, :cin]
            b = None if b is None else b[:cout]
        return w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        values = values_for(self)
        want = _get(self.in_spec, values)
        if x.shape[-1] != want:
            raise self._in_error(self.in_spec, want, x.shape[-1], "features")
        w, b = self._active(values)
        return F.linear(x, w, b)

    @torch.no_grad()
    def materialize(self, values: dict[Any, Any]) -> nn.Linear:
        w, b = self._active(values)
        return _bare(nn.Linear, {"weight": _param(w, self.weight), "bias": _param(b, self.bias)}, {},
                     in_features=w.shape[1], out_features=w.shape[0], training=self.training)

    def block_cost(self, values: dict[Any, Any], sizes: tuple[int, ...], bias_adds: bool) -> tuple[int, int]:
        cin, cout = _get(self.in_spec, values), _get(self.out_spec, values)
        has_bias = self.bias is not None
        params = cin * cout + (cout if has_bias else 0)
        return sum(sizes) * (cin * cout + (cout if has_bias and bias_adds else 0)), params
