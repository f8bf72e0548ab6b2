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
- `zc`: zero-cost proxy scores of the subnet (e.g. synflow, nwot), each rank-normalized to [0, 1] against a
  fixed reference set of subnets. Proxies need a network and data, which this package does not have: the
  values come from a `ProxySource` given as `get_encoding("onehot+zc", space, proxies=source)` (oneshot's
  `ProxyLookup` reads a proxy table and computes unseen subnets on demand).
- `signals`: any per-subnet scalars (supernet holdout accuracy and loss, proxies, MACs, params, latency) with the
  same rank normalization as `zc` (which is the same encoding under its historic name); values come from a
  `SignalSource` given as `signals=`, e.g. `Signals({"supernet_acc": fn, "macs": fn}, sources=[proxy_lookup])`.

Encodings combine with `+`: `get_encoding("onehot+path", space)` concatenates the columns. Keyword arguments of
`get_encoding` are context handed to the parts that declare them (`proxies` for `zc`, `signals` for `signals`).
"""

from __future__ import annotations

import json
import math
import re
from functools import cached_property
from typing import Any, Callable, ClassVar, Iterable, Mapping, Protocol, Sequence

import numpy as np

from supernets._registry import Registry
from supernets.space import Arch, SearchSpace

__all__ = [
    "Encoding", "OneHotEncoding", "OrdinalEncoding", "PathEncoding", "CostEncoding", "ConcatEncoding",
    "ZCEncoding", "SignalEncoding", "Signals", "SignalSource", "ProxySource", "cost_signals", "register_encoding",
    "get_encoding", "list_encodings",
]

INACTIVE = "<inactive>"


class Encoding:
    """Maps subnets of one space to fixed-length float vectors; subclasses define the columns."""

    name: ClassVar[str] = ""
    context: ClassVar[tuple[str, ...]] = ()  # keyword arguments of `get_encoding` this encoding takes
    by_name: ClassVar[bool] = True  # `get_encoding(name, space)` alone rebuilds it (no context, no state)

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

    def state_dict(self) -> dict[str, Any]:
        """What a saved predictor must keep beyond the name to encode exactly as now (empty for most)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` (nothing for most encodings)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.space.name}, dim={self.dim})"


_ENCODINGS: Registry[type[Encoding]] = Registry("encoding")


def register_encoding(cls: type[Encoding]) -> type[Encoding]:
    """Class decorator: make an encoding available by its `name` to `get_encoding`."""
    if not cls.name or "+" in cls.name:
        raise ValueError(f"encoding class {cls.__name__} needs a name without '+'")
    return _ENCODINGS.register(cls)


def list_encodings(space: SearchSpace | None = None) -> list[str]:
    """Registered encoding names, or only those that apply to `space` by name alone (`zc` needs `proxies=`)."""
    return sorted(n for n, cls in _ENCODINGS.items() if space is None or (cls.supports(space) and not cls.context))


def get_encoding(name: str, space: SearchSpace, **context: Any) -> Encoding:
    """Build the encoding `name` (parts joined by `+` are concatenated) for `space`; `context` goes to the parts
    that take it (e.g. `proxies=` for `zc`)."""
    parts = [p.strip() for p in name.split("+")]
    unknown = [p for p in parts if p not in _ENCODINGS]
    if unknown or not parts:
        raise ValueError(f"unknown encoding(s) {unknown or [name]}; registered: {list_encodings()}")
    known_context = {k for _, cls in _ENCODINGS.items() for k in cls.context}
    if set(context) - known_context:
        raise ValueError(f"unknown encoding argument(s) {sorted(set(context) - known_context)}; "
                         f"known: {sorted(known_context)}")
    for p in parts:
        if not _ENCODINGS.get(p).supports(space):
            raise ValueError(
                f"encoding {p!r} does not apply to space {space.name!r} (family {space.family!r}); "
                f"usable here: {list_encodings(space)}"
            )
    encs = [_ENCODINGS.create(p, space, **{k: v for k, v in context.items() if k in _ENCODINGS.get(p).context})
            for p in parts]
    return encs[0] if len(encs) == 1 else ConcatEncoding(space, encs)


class ConcatEncoding(Encoding):
    """Several encodings side by side; its name is theirs joined by `+`."""

    def __init__(self, space: SearchSpace, parts: Iterable[Encoding]) -> None:
        # Nested concatenations are flattened, so the name lists leaf encodings and rebuilds the same columns.
        self.parts = [q for p in parts for q in (p.parts if isinstance(p, ConcatEncoding) else [p])]
        self.name = "+".join(p.name for p in self.parts)  # type: ignore[misc]
        self.by_name = all(p.by_name for p in self.parts)  # type: ignore[misc]
        super().__init__(space)

    def state_dict(self) -> dict[str, Any]:
        return {p.name: p.state_dict() for p in self.parts if p.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for p in self.parts:
            if p.name in state:
                p.load_state_dict(state[p.name])

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
        from supernets.cost import cost  # the family's formula, memoized: a search encodes thousands per proposal

        def logs(arch: Arch) -> tuple[float, float]:
            c = cost(arch)
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


class SignalSource(Protocol):
    """Where a signal encoding gets its values: `names` of the P signals and `source(archs) -> (N, P)` raw values
    (NaN where a signal is undefined or missing for a subnet); `reference()` optionally gives the (M, P) values
    that new values are ranked against."""

    names: Sequence[str]

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray: ...


ProxySource = SignalSource  # the name `zc` has always used: zero-cost proxies are one kind of signal


@register_encoding
class SignalEncoding(Encoding):
    """Per-subnet scalar signals, each mapped to its mid-rank quantile in [0, 1] within a fixed reference set.

    A signal is anything measured or computed per subnet that may track its accuracy: the supernet's holdout
    accuracy or loss, a zero-cost proxy, MACs, params, latency. Raw values span orders of magnitude (synflow
    reaches 1e20), have opposite orientations (a loss falls as accuracy rises) and only their order carries
    signal, so each value becomes the fraction of reference values below it (ties count half); NaN (undefined,
    e.g. a proxy of a disconnected cell, or not measured) becomes 0, below everything. The reference is
    `reference` when given, else the source's `reference()` when it holds at least 2 subnets, else the first set
    of subnets encoded (typically the training set); it is then fixed, so training and prediction share one
    scale, and saved with predictors (as numbers: the file loads without pickle). A reference of many subnets
    (e.g. every candidate scored) ranks finely; one of the training set alone gives only N + 1 levels.

    Stacked predictors (`predictors.stacking`) treat these columns as the proxy group: the orientation and the
    weight of each signal are learned from the training scores, so a useless signal is weighed out.
    """

    name = "signals"
    context: ClassVar[tuple[str, ...]] = ("signals",)
    by_name = False

    def __init__(self, space: SearchSpace, signals: SignalSource | None = None,
                 reference: np.ndarray | None = None) -> None:
        super().__init__(space)
        self.source = signals
        self._names: list[str] = list(signals.names) if signals is not None else []
        if len(set(self._names)) != len(self._names):
            raise ValueError(f"{self.name} names must be distinct, got {self._names}")
        self._reference: np.ndarray | None = None  # (P, M) sorted finite values per signal, NaN-padded
        if reference is None and signals is not None and hasattr(signals, "reference"):
            ref = np.asarray(signals.reference(), dtype=float)
            reference = ref if ref.ndim == 2 and len(ref) >= 2 else None
        if reference is not None:
            self._set_reference(np.asarray(reference, dtype=float))

    @property
    def feature_names(self) -> list[str]:
        return list(self._names)

    @property
    def reference_size(self) -> int:
        """Subnets in the fixed reference (0 until it is set)."""
        return 0 if self._reference is None else int(self._reference.shape[1])

    def _set_reference(self, values: np.ndarray) -> None:
        if values.ndim != 2 or values.shape[1] != len(self._names):
            raise ValueError(f"{self.name} reference must be (subnets, {len(self._names)}) values, got {values.shape}")
        self._reference = np.sort(values.T, axis=1)  # NaN sorts last

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """(N, P) raw values -> (N, P) mid-rank quantiles in the reference, NaN -> 0."""
        out = np.zeros(raw.shape)
        for j, ref in enumerate(self._reference):  # type: ignore[union-attr]
            ref = ref[np.isfinite(ref)]
            col = raw[:, j]
            ok = np.isfinite(col)
            if ref.size == 0:
                out[ok, j] = 0.5
                continue
            below = np.searchsorted(ref, col[ok], side="left")
            upto = np.searchsorted(ref, col[ok], side="right")
            out[ok, j] = (below + upto) / (2.0 * ref.size)
        return out

    def raw(self, archs: Sequence[Arch]) -> np.ndarray:
        """(N, P) raw values from the source (NaN where undefined), before rank normalization."""
        if self.source is None:
            raise ValueError(f"the {self.name} encoding has no values: give {self.context[0]}=<a SignalSource, "
                             f"e.g. predictors.Signals or oneshot's ProxyLookup> to get_encoding / load_predictor")
        return np.asarray(self.source(archs), dtype=float).reshape(len(archs), len(self._names))

    def encode(self, archs: Sequence[Arch]) -> np.ndarray:
        raw = self.raw(archs)
        if self._reference is None:
            if len(archs) < 2:
                raise ValueError(f"the {self.name} encoding needs a reference of at least 2 subnets before "
                                 "encoding one")
            self._set_reference(raw)
        return self.normalize(raw)

    def state_dict(self) -> dict[str, Any]:
        if self._reference is None:
            return {"names": list(self._names)}
        return {"names": list(self._names), "reference": self._reference.T.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        names = list(state.get("names", []))
        if self.source is not None and names and names != self._names:
            raise ValueError(f"the saved {self.name} encoding used {names}, the given source has {self._names}")
        self._names = names or self._names
        if "reference" in state:
            self._set_reference(np.asarray(state["reference"], dtype=float))


@register_encoding
class ZCEncoding(SignalEncoding):
    """Zero-cost proxy scores as signals (`SignalEncoding` under its historic name and `proxies=` context), so
    predictor files saved with `zc` load as before."""

    name = "zc"
    context: ClassVar[tuple[str, ...]] = ("proxies",)

    def __init__(self, space: SearchSpace, proxies: SignalSource | None = None,
                 reference: np.ndarray | None = None) -> None:
        super().__init__(space, proxies, reference)


SignalValues = Callable[[Arch], float] | Mapping[str, float]


class Signals:
    """A `SignalSource` from named per-subnet scalars, and from other sources' columns side by side.

    columns:   name -> `arch -> float` (e.g. a cost or a supernet score) or a mapping from arch strings to
               values (e.g. a table read from a file; a subnet missing from it is NaN, looked up by its string,
               then by its space's canonical form).
    sources:   other `SignalSource`s (e.g. oneshot's `ProxyLookup`), their columns first.
    reference: subnets whose values are the default rank reference of encodings built on this source (a broad
               sample, e.g. every candidate scored: ranks stay fine between the training subnets); computed once,
               on first use.
    Values are cached per subnet string, so an expensive signal is computed once per subnet.
    """

    def __init__(self, columns: Mapping[str, SignalValues] | None = None, sources: Sequence[SignalSource] = (),
                 reference: Sequence[Arch] | None = None) -> None:
        self.columns = dict(columns or {})
        self.sources = list(sources)
        self.names = [*(n for s in self.sources for n in s.names), *self.columns]
        dup = sorted({n for n in self.names if self.names.count(n) > 1})
        if dup:
            raise ValueError(f"signal name(s) {dup} given twice; each signal needs its own name")
        if not self.names:
            raise ValueError("Signals needs at least one column or source")
        for name, values in self.columns.items():
            if not callable(values) and not isinstance(values, Mapping):
                raise TypeError(f"signal {name!r} must be a function arch -> float or a mapping from arch strings "
                                f"to values, got {type(values).__name__}")
        self._reference_archs = list(reference) if reference is not None else None
        self._reference: np.ndarray | None = None
        self._cache: dict[str, np.ndarray] = {}

    def _column(self, values: SignalValues, arch: Arch) -> float:
        if isinstance(values, Mapping):
            v = values.get(str(arch))
            if v is None:
                v = values.get(str(arch.space.canonical(arch)))
        else:
            v = values(arch)
        try:
            return float("nan") if v is None else float(v)
        except (TypeError, ValueError):
            return float("nan")

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        """(len(archs), P) values in the order of `names`, NaN where a signal has none."""
        missing = list(dict.fromkeys(str(a) for a in archs if str(a) not in self._cache))
        if missing:
            by_str = {str(a): a for a in archs}
            todo = [by_str[k] for k in missing]
            parts = [np.asarray(s(todo), dtype=float).reshape(len(todo), len(s.names)) for s in self.sources]
            own = np.array([[self._column(v, a) for v in self.columns.values()] for a in todo],
                           dtype=float).reshape(len(todo), len(self.columns))
            for k, row in zip(missing, np.concatenate([*parts, own], axis=1)):
                self._cache[k] = row
        if not archs:
            return np.zeros((0, len(self.names)))
        return np.stack([self._cache[str(a)] for a in archs])

    def reference(self) -> np.ndarray:
        """(M, P) values of the reference subnets (empty when none were given)."""
        if self._reference_archs is None:
            return np.zeros((0, len(self.names)))
        if self._reference is None:
            self._reference = self(self._reference_archs)
        return self._reference


def cost_signals(space: SearchSpace) -> dict[str, Callable[[Arch], float]]:
    """`{"macs": ..., "params": ...}`: the family's analytic cost per subnet, as `Signals` columns."""
    if not CostEncoding.supports(space):
        raise ValueError(f"space {space.name!r} has no analytic cost model (family {space.family!r})")
    from supernets.cost import cost

    return {"macs": lambda a: float(cost(a).macs), "params": lambda a: float(cost(a).params)}
