"""The NAS-Bench-201 cell space and its macro skeleton, so results can be cross-referenced with the benchmark.

A cell has 4 nodes; node j sums one operation applied to each earlier node i (6 edges). The same cell is used
in every one of the 3 x N cells of the skeleton: stem conv, N cells at C channels, a residual reduction block,
N cells at 2C, a reduction block, N cells at 4C, BN-ReLU, global pooling, linear classifier. The arch string is
the benchmark's notation, e.g. `|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|...|`.

Equivalent cells (`space.canonical`): many cells are the same network. Each cell is reduced to the function it
computes, written symbolically (`cell_function`): a node is the sum of its live terms; an edge is dead when its op
is `none` or its input node is zero (any op on zeros counts as zero, the convention of the NAS-Bench-201 paper:
strictly a conv's BN adds a learned constant there); `skip_connect` passes its input's terms on (sums are
associative), `avg_pool_3x3` distributes over a sum (it is linear), and sums are unordered. Two cells are the same
network when their forms are equal, so their ops may sit on different edges (the supernet, whose weights belong to
edges, scores them apart; a network trained from scratch does not care). This gives 4,660 distinct networks
among the 15,625 cells. The paper counts 6,466 with a string key that leaves some equal sums apart (it keeps
`+ 0` terms and sorts nested sums as text); every pair of cells it calls equal is equal here too.
The representative of each class is its cheapest member: fewest ops by index in `OPS` (dead edges become `none`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import torch
from torch import nn

from .base import Cost, FamilyConfig, Supernet
from .space import Arch, Decision, SearchSpace

__all__ = ["NB201Config", "NB201Supernet", "NB201Net", "EDGES", "OPS", "cell_function"]

# Cheapest first, so smallest()/largest() are all-`none` / all-`nor_conv_3x3`.
OPS: tuple[str, ...] = ("none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), benchmark order


def _edge(to: int, frm: int) -> str:
    return f"{to}<-{frm}"


@dataclass(frozen=True)
class NB201Config(FamilyConfig):
    """The benchmark skeleton: `channels` (C) at the first stage, `cells` (N) per stage, `image_size` in pixels."""

    family = "nb201"

    channels: int = 16
    cells: int = 5
    num_classes: int = 10
    in_chans: int = 3
    image_size: int = 32
    ops: tuple[str, ...] = OPS

    def __post_init__(self) -> None:
        unknown = [o for o in self.ops if o not in OPS]
        if unknown:
            raise ValueError(f"unknown nb201 op(s) {unknown}; allowed: {list(OPS)}")

    def search_space(self, name: str = "nb201") -> SearchSpace:
        decisions = tuple(Decision(_edge(t, f), self.ops) for t, f in EDGES)
        return SearchSpace(name, decisions, self.family, self.canonical_json(), _NB201Codec(), _NB201Canonical())

    def build_supernet(self, name: str = "nb201") -> NB201Supernet:
        return NB201Supernet(self, name)

    def build_subnet(self, arch: Arch) -> NB201Net:
        return NB201Net(self, {_edge(t, f): str(arch[_edge(t, f)]) for t, f in EDGES})

    def cost(self, arch: Arch) -> Cost:
        c, r, n = self.channels, self.image_size, self.cells
        macs = r * r * c * self.in_chans * 9
        params = c * self.in_chans * 9 + 2 * c
        for stage in range(3):
            if stage > 0:  # residual reduction block cin -> 2 cin at half resolution
                cin, c, r = c, 2 * c, (r - 1) // 2 + 1
                macs += r * r * c * cin * 9 + r * r * c * c * 9 + r * r * c * cin
                params += c * cin * 9 + c * c * 9 + 4 * c + c * cin
            for t, f in EDGES:
                op = arch[_edge(t, f)]
                k = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}.get(str(op))
                if k:
                    macs += n * r * r * c * c * k * k
                    params += n * (c * c * k * k + 2 * c)
        macs += c * self.num_classes + self.num_classes  # classifier, bias adds counted as the benchmark does
        params += 2 * c + c * self.num_classes + self.num_classes
        return Cost(macs=macs, params=params)


class _NB201Codec:
    """The benchmark's `|op~i|+|op~i|op~i|+|...|` notation, nodes in order, inputs ascending."""

    _token = re.compile(r"^([a-z_0-9]+)~(\d+)$")

    def format(self, space: SearchSpace, values: Mapping[str, Any]) -> str:
        nodes = []
        for to in (1, 2, 3):
            nodes.append("|" + "|".join(f"{values[_edge(to, f)]}~{f}" for f in range(to)) + "|")
        return "+".join(nodes)

    def parse(self, space: SearchSpace, text: str) -> dict[str, Any]:
        nodes = text.strip().split("+")
        if len(nodes) != 3:
            raise ValueError(
                f"arch string {text!r} is not in NAS-Bench-201 notation: expected 3 nodes joined by '+', "
                f"e.g. {str(space.smallest())!r}"
            )
        values: dict[str, Any] = {}
        for to, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise ValueError(f"node {to} of {text!r} must be written |op~i|...|")
            tokens = node[1:-1].split("|")
            if len(tokens) != to:
                raise ValueError(f"node {to} of {text!r} needs {to} input edge(s), got {len(tokens)}")
            for tok in tokens:
                m = self._token.match(tok)
                if not m:
                    raise ValueError(f"cannot read edge {tok!r} in {text!r}: expected op~input")
                frm = int(m.group(2))
                if frm >= to:
                    raise ValueError(f"edge {tok!r} of node {to} in {text!r} reads a later node")
                name = _edge(to, frm)
                if name in values:
                    raise ValueError(f"edge {name!r} appears twice in {text!r}")
                values[name] = m.group(1)
        return values


def cell_function(ops: Mapping[str, Any]) -> tuple:
    """Symbolic form of the function a cell computes from edge -> op: equal forms are the same network.

    A node is a sorted tuple of terms (its sum; `()` is zero); a term is `"x"` (the cell input) or `(op, terms)`.
    """
    nodes: list[tuple] = [("x",)]
    for to in (1, 2, 3):
        terms: list[Any] = []
        for frm in range(to):
            op, value = str(ops[_edge(to, frm)]), nodes[frm]
            if op == "none" or not value:  # dead edge: contributes zero (see the module docstring)
                continue
            if op == "skip_connect":
                terms += value  # (a + b) + c = a + b + c
            elif op == "avg_pool_3x3":
                terms += [(op, (t,)) for t in value]  # pool(a + b) = pool(a) + pool(b)
            else:
                terms.append((op, value))
        nodes.append(tuple(sorted(terms, key=repr)))  # a + b = b + a
    return nodes[3]


@dataclass(frozen=True)
class _NB201Canonical:
    """Maps a cell to the cheapest cell computing the same function (`cell_function`)."""

    def canonical(self, space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
        return dict(_representatives(space)[cell_function(values)])


@lru_cache(maxsize=8)
def _representatives(space: SearchSpace) -> dict[tuple, tuple[tuple[str, Any], ...]]:
    """Function form -> its cheapest cell, found once per space by enumerating it (5^6 cells, about 0.2 s)."""
    best: dict[tuple, tuple[tuple[int, tuple[int, ...]], tuple[tuple[str, Any], ...]]] = {}
    names = [d.name for d in space.decisions]
    for index in itertools.product(*(range(len(d.choices)) for d in space.decisions)):
        values = tuple((n, d.choices[i]) for n, d, i in zip(names, space.decisions, index))
        rank = (sum(index), index)
        key = cell_function(dict(values))
        if key not in best or rank < best[key][0]:
            best[key] = (rank, values)
    return {k: v for k, (_, v) in best.items()}


def _make_op(op: str, c: int) -> nn.Module | None:
    if op == "none":
        return None
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    k = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}[op]
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, 1, k // 2, bias=False), nn.BatchNorm2d(c))  # ReLU-Conv-BN


class _Reduction(nn.Module):
    """The benchmark's residual block between stages: two ReLU-Conv-BN (first stride 2) plus pooled 1x1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout))
        self.conv_b = nn.Sequential(nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def _build_skeleton(net: nn.Module, config: NB201Config, make_cell) -> None:
    """Stem, 3 stages of cells with reductions, BN-ReLU and classifier on `net`; cells come from `make_cell(C)`."""
    c = config.channels
    net.stem = nn.Sequential(nn.Conv2d(config.in_chans, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
    net.cells = nn.ModuleList()
    for stage in range(3):
        if stage > 0:
            net.cells.append(_Reduction(c, 2 * c))
            c *= 2
        for _ in range(config.cells):
            net.cells.append(make_cell(c))
    net.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
    net.classifier = nn.Linear(c, config.num_classes)


class _SuperCell(nn.Module):
    def __init__(self, c: int, ops: tuple[str, ...]) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        for t, f in EDGES:
            self.edges[_edge(t, f)] = nn.ModuleDict({op: m for op in ops if (m := _make_op(op, c)) is not None})

    def forward(self, x: torch.Tensor, ops: Mapping[str, str]) -> torch.Tensor:
        nodes = [x]  # each (B, C, H, W)
        for to in (1, 2, 3):
            terms = [self.edges[_edge(to, f)][ops[_edge(to, f)]](nodes[f]) for f in range(to) if ops[_edge(to, f)] != "none"]
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[3]


class NB201Supernet(Supernet):
    """All 15,625 cells in one network: each edge holds every parametric op, a subnet picks one per edge."""

    def __init__(self, config: NB201Config, name: str = "nb201") -> None:
        super().__init__(config, name)
        _build_skeleton(self, config, lambda c: _SuperCell(c, config.ops))

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        self.check_arch(arch)
        ops = {k: str(v) for k, v in arch.values}
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, ops) if isinstance(cell, _SuperCell) else cell(x)
        return self.classifier(self.lastact(x).mean((2, 3)))

    def weight_source(self, name: str, arch: Arch) -> str:
        # cells.K.edges.<edge>.<rest> in the standalone net is cells.K.edges.<edge>.<op>.<rest> here.
        parts = name.split(".")
        if len(parts) > 3 and parts[2] == "edges":
            parts.insert(4, str(arch[parts[3]]))
        return ".".join(parts)


class _Cell(nn.Module):
    def __init__(self, c: int, ops: Mapping[str, str]) -> None:
        super().__init__()
        self.ops = dict(ops)
        self.edges = nn.ModuleDict({k: m for k, op in ops.items() if (m := _make_op(op, c)) is not None})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to in (1, 2, 3):
            terms = [self.edges[_edge(to, f)](nodes[f]) for f in range(to) if self.ops[_edge(to, f)] != "none"]
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[3]


class NB201Net(nn.Module):
    """A plain NAS-Bench-201 network for one cell; `none` edges hold no module at all."""

    def __init__(self, config: NB201Config, ops: Mapping[str, str]) -> None:
        super().__init__()
        _build_skeleton(self, config, lambda c: _Cell(c, ops))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classifier(self.lastact(x).mean((2, 3)))
