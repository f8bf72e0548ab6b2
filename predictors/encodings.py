"""Feature encodings of subnets for predictors, derived from the search space alone (no choice list is repeated).

An `Encoding` is built from a `SearchSpace` and turns a batch of `Arch`s into a float matrix `(N, dim)`:

- `onehot`: one column per (decision, choice); a conditional decision also gets an `<inactive>` column, so a block
  removed by depth is encoded as absent rather than as some choice.
- `ordinal`: one column per decision, the choice's index scaled to [0, 1] (choices are declared cheapest first, so
  this is a size trend); an inactive decision is -1, below every choice.
- `path`: the BANANAS path encoding (White et al. 2021) for cell spaces whose decisions are DAG edges named
  `to<-from` (NAS-Bench-201): one column per sequence of ops along an input-to-output path, counting the paths of
  the subnet with that sequence. An edge whose op is `none` cuts its paths, so a disconnected cell encodes as zeros.
- `cost`: log MACs and log params of the subnet from the family's analytic cost model, scaled so the space's
  smallest subnet is 0 and its largest is 1 (only for spaces of a registered supernet family).

Encodings combine with `+`: `get_encoding("onehot+path", space)` concatenates the columns.
"""

from __future__ import annotations

import json
import math
import re
from functools import cached_property
from typing import Callable, ClassVar, Iterable, Sequence

import numpy as np

from supernets.space import Arch, SearchSpace

__all__ = [
    "Encoding", "OneHotEncoding", "OrdinalEncoding", "PathEncoding", "CostEncoding", "ConcatEncoding",
    "register_encoding", "get_encoding", "list_encodings",
]

INACTIVE = "<inactive>"


class Encoding:
    """Maps subnets of one space to fixed-length float vectors; subclasses define the columns."""

    name: ClassVar[str] = ""

    def __init__(self, space: SearchSpace) -> None:
        if not self.supports(space):
            raise ValueError(f"encoding {self.name!r} does not apply to space {space.name!r} ({space.family})")
        self.space = space

    @classmethod
    def supports(cls, space: SearchSpace) -> bool:
        """Whether this encoding can describe subnets of `space`."""
        return True

    @property
    def feature_names(self) -> list[str]:
        """One readable name per column."""
        raise NotImplementedError

    @property
    def dim(self) -> int:
        """Number of columns."""
        return len(self.feature_names)

    def encode(self, archs: Sequence[Arch]) -> np.ndarray:
        """`(len(archs), dim)` float64 matrix; archs must belong to this encoding's space (callers check)."""
        out = np.zeros((len(archs), self.dim))
        for i, arch in enumerate(archs):
            self._fill(arch, out[i])
        return out

    def _fill(self, arch: Arch, row: np.ndarray) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.space.name}, dim={self.dim})"


_ENCODINGS: dict[str, type[Encoding]] = {}


def register_encoding(cls: type[Encoding]) -> type[Encoding]:
    """Class decorator: make an encoding available by its `name` to `get_encoding`."""
    if not cls.name or "+" in cls.name:
        raise ValueError(f"encoding class {cls.__name__} needs a name without '+'")
    if cls.name in _ENCODINGS:
        raise ValueError(f"encoding {cls.name!r} is already registered")
    _ENCODINGS[cls.name] = cls
    return cls


def list_encodings(space: SearchSpace | None = None) -> list[str]:
    """Registered encoding names, or only those that apply to `space`."""
    return sorted(n for n, cls in _ENCODINGS.items() if space is None or cls.supports(space))


def get_encoding(name: str, space: SearchSpace) -> Encoding:
    """Build the encoding `name` (parts joined by `+` are concatenated) for `space`."""
    parts = [p.strip() for p in name.split("+")]
    unknown = [p for p in parts if p not in _ENCODINGS]
    if unknown or not parts:
        raise ValueError(f"unknown encoding(s) {unknown or [name]}; registered: {list_encodings()}")
    for p in parts:
        if not _ENCODINGS[p].supports(space):
            raise ValueError(
                f"encoding {p!r} does not apply to space {space.name!r} (family {space.family!r}); "
                f"usable here: {list_encodings(space)}"
            )
    encs = [_ENCODINGS[p](space) for p in parts]
    return encs[0] if len(encs) == 1 else ConcatEncoding(space, encs)


class ConcatEncoding(Encoding):
    """Several encodings side by side; its name is theirs joined by `+`."""

    def __init__(self, space: SearchSpace, parts: Iterable[Encoding]) -> None:
        self.parts = list(parts)
        self.name = "+".join(p.name for p in self.parts)  # type: ignore[misc]
        super().__init__(space)

    @cached_property
    def feature_names(self) -> list[str]:
        return [f"{p.name}:{f}" for p in self.parts for f in p.feature_names]

    def encode(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.concatenate([p.encode(archs) for p in self.parts], axis=1)


@register_encoding
class OneHotEncoding(Encoding):
    """One column per (decision, choice), plus an `<inactive>` column for each conditional decision."""

    name = "onehot"

    @cached_property
    def _columns(self) -> dict[tuple[str, object], int]:
        cols: dict[tuple[str, object], int] = {}
        for d in self.space.decisions:
            for c in d.choices:
                cols[(d.name, c)] = len(cols)
            if d.when is not None:
                cols[(d.name, INACTIVE)] = len(cols)
        return cols

    @cached_property
    def _conditional(self) -> list[str]:
        return [d.name for d in self.space.decisions if d.when is not None]

    @cached_property
    def feature_names(self) -> list[str]:
        return [f"{name}={value}" for name, value in self._columns]

    @cached_property
    def groups(self) -> np.ndarray:
        """Index of the decision each column belongs to."""
        index = {d.name: i for i, d in enumerate(self.space.decisions)}
        return np.array([index[name] for name, _ in self._columns])

    def _fill(self, arch: Arch, row: np.ndarray) -> None:
        cols = self._columns
        for name, value in arch.values:
            row[cols[(name, value)]] = 1.0
        for name in self._conditional:
            if name not in arch:
                row[cols[(name, INACTIVE)]] = 1.0


@register_encoding
class OrdinalEncoding(Encoding):
    """One column per decision: choice index / (number of choices - 1); -1 where the decision is inactive."""

    name = "ordinal"

    @cached_property
    def _levels(self) -> dict[str, dict[object, float]]:
        return {d.name: {c: i / max(1, len(d.choices) - 1) for i, c in enumerate(d.choices)}
                for d in self.space.decisions}

    @cached_property
    def feature_names(self) -> list[str]:
        return [d.name for d in self.space.decisions]

    @cached_property
    def _column(self) -> dict[str, int]:
        return {d.name: j for j, d in enumerate(self.space.decisions)}

    def _fill(self, arch: Arch, row: np.ndarray) -> None:
        row[:] = -1.0
        column, levels = self._column, self._levels
        for name, value in arch.values:  # only the active decisions (a search encodes thousands per proposal)
            row[column[name]] = levels[name][value]


_EDGE = re.compile(r"^(\d+)<-(\d+)$")


@register_encoding
class PathEncoding(Encoding):
    """BANANAS path encoding for cell spaces whose decisions are DAG edges `to<-from` with op choices.

    Node 0 is the cell input and the highest node its output. Every input-to-output path of the full DAG is a
    sequence of edges; a subnet realizes it with the sequence of ops on those edges unless one of them is `none`.
    Columns are all op sequences of the path lengths that occur (excluding `none`); values count the subnet's
    paths per sequence. NAS-Bench-201: 4 paths of lengths 1, 2, 2, 3 and 4 ops give 4 + 16 + 64 = 84 columns.
    """

    name = "path"
    NONE = "none"

    @classmethod
    def supports(cls, space: SearchSpace) -> bool:
        if not space.decisions or any(d.when is not None or not _EDGE.match(d.name) for d in space.decisions):
            return False
        edges = [tuple(int(x) for x in _EDGE.match(d.name).groups()) for d in space.decisions]  # type: ignore[union-attr]
        return all(frm < to for to, frm in edges)

    @cached_property
    def ops(self) -> tuple[object, ...]:
        """Ops that carry signal, in declaration order (`none` cuts a path instead)."""
        seen: list[object] = []
        for d in self.space.decisions:
            for c in d.choices:
                if c != self.NONE and c not in seen:
                    seen.append(c)
        return tuple(seen)

    @cached_property
    def paths(self) -> list[tuple[str, ...]]:
        """Input-to-output paths of the full cell DAG, each as its decision (edge) names from input to output."""
        into: dict[int, list[tuple[int, str]]] = {}
        nodes = {0}
        for d in self.space.decisions:
            to, frm = (int(x) for x in _EDGE.match(d.name).groups())  # type: ignore[union-attr]
            into.setdefault(to, []).append((frm, d.name))
            nodes |= {to, frm}
        out = max(nodes)

        def back(node: int) -> list[tuple[str, ...]]:
            if node == 0:
                return [()]
            return [p + (name,) for frm, name in into.get(node, []) for p in back(frm)]

        return sorted(back(out), key=lambda p: (len(p), p))

    @cached_property
    def _offsets(self) -> dict[int, int]:
        offsets, start = {}, 0
        for length in sorted({len(p) for p in self.paths}):
            offsets[length] = start
            start += len(self.ops) ** length
        return offsets

    @cached_property
    def feature_names(self) -> list[str]:
        names = [""] * sum(len(self.ops) ** n for n in self._offsets)
        for length, start in self._offsets.items():
            for k in range(len(self.ops) ** length):
                seq, rest = [], k
                for _ in range(length):
                    seq.append(str(self.ops[rest % len(self.ops)]))
                    rest //= len(self.ops)
                names[start + k] = ">".join(seq)
        return names

    def _fill(self, arch: Arch, row: np.ndarray) -> None:
        op_index = {op: i for i, op in enumerate(self.ops)}
        n = len(self.ops)
        for path in self.paths:
            k, scale = 0, 1
            for edge in path:
                op = arch[edge]
                if op == self.NONE:
                    break
                k += op_index[op] * scale
                scale *= n
            else:
                row[self._offsets[len(path)] + k] += 1.0


@register_encoding
class CostEncoding(Encoding):
    """log MACs and log params from the family's analytic cost model, 0 at the smallest subnet and 1 at the largest."""

    name = "cost"

    @staticmethod
    def _config(space: SearchSpace):
        from supernets.registry import config_from_dict

        return config_from_dict(space.family, json.loads(space.config))

    @classmethod
    def supports(cls, space: SearchSpace) -> bool:
        try:
            cls._config(space)
        except (ValueError, TypeError, json.JSONDecodeError):
            return False
        return True

    @cached_property
    def _cost(self) -> Callable[[Arch], tuple[float, float]]:
        cfg = self._config(self.space)

        def logs(arch: Arch) -> tuple[float, float]:
            c = cfg.cost(arch)
            return math.log(max(c.macs, 1)), math.log(max(c.params, 1))

        return logs

    @cached_property
    def _range(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array(self._cost(self.space.smallest()))
        hi = np.array(self._cost(self.space.largest()))
        return lo, np.where(hi - lo > 0, hi - lo, 1.0)

    @cached_property
    def feature_names(self) -> list[str]:
        return ["log_macs", "log_params"]

    def _fill(self, arch: Arch, row: np.ndarray) -> None:
        lo, span = self._range
        row[:] = (np.array(self._cost(arch)) - lo) / span
