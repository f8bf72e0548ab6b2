"""`BlockSupernet`: a supernet from a plain module tree of elastic blocks; `ModuleConfig`: the "module" family.

The space is derived from the tree (written once, never beside it): every `Value` a block takes is a decision,
named by the user or by the path of its first block; decisions inside `ElasticDepth` blocks beyond the minimum
depth, or inside one `LayerChoice` candidate, are conditional. `forward(x, arch)` activates the arch's values for
the duration of the call; `materialize(arch)` gives a plain torch module with copies of the used slices; `cost(arch)`
is analytic, from the blocks and the spatial sizes recorded once by a trace at construction (an empty batch, or the
meta device), tabulated per block so one subnet's cost is a few lookups.
"""

from __future__ import annotations

import importlib
import itertools
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from ..base import Cost, FamilyConfig, Supernet
from ..space import Arch, Decision, SearchSpace
from .choice import LayerChoice
from .context import _ACTIVE
from .depth import ElasticDepth
from .layers import ElasticBlock
from .values import Derived, Value, spec_parents

__all__ = ["BlockSupernet", "ModuleConfig", "meta_supernet"]

_RESERVED = frozenset({"config", "space", "input_shape", "bias_adds", "net", "forward", "cost", "materialize",
                       "training"})
_N_RANDOM_TRACES = 3  # random subnets traced besides smallest, largest and the shifted diagonals


def _is_block(m: nn.Module) -> bool:
    return isinstance(m, (ElasticBlock, LayerChoice, ElasticDepth))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class BlockSupernet(Supernet):
    """A weight-sharing supernet from `net`, a module tree of elastic blocks with a plain `forward(x)`.

    net:         the user's module; its children are registered here (state-dict names are `net`'s own).
    name:        the space's name.
    input_shape: (channels, height, width) of one input, for the cost trace and `count_cost`.
    space:       a family's own space (with its codec and canonicalizer); must have the derived decisions.
    bias_adds:   whether `cost` counts bias adds in MACs (give `count_cost` the same flag).
    config:      the family config that rebuilds this supernet (default: a `ModuleConfig` naming `net`'s class
                 without init args, which records the space but cannot rebuild it in another process).
    """

    def __init__(self, net: nn.Module, name: str, input_shape: tuple[int, ...], space: SearchSpace | None = None,
                 bias_adds: bool = True, config: FamilyConfig | None = None) -> None:
        nn.Module.__init__(self)
        if not isinstance(net, nn.Module):
            raise TypeError(f"BlockSupernet needs an nn.Module, got {type(net).__name__}")
        shape = tuple(input_shape)
        if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
            raise ValueError(f"input_shape must be positive ints (channels, height, width), got {input_shape!r}")
        clash = sorted((set(net._modules) | set(net._parameters) | set(net._buffers)) & _RESERVED)
        if clash:
            raise ValueError(f"{type(net).__name__} has a child or tensor named {clash[0]!r}, which BlockSupernet "
                             f"uses itself; rename it")
        object.__setattr__(self, "_net", net)  # not a child: its children are registered here, without a prefix
        for key, child in net._modules.items():
            self.add_module(key, child)
        for key, p in net._parameters.items():
            self.register_parameter(key, p)
        for key, b in net._buffers.items():
            self.register_buffer(key, b, persistent=key not in net._non_persistent_buffers_set)
        self.input_shape, self.bias_adds = shape, bias_adds
        self.config = config if config is not None else ModuleConfig(
            class_path=f"{type(net).__module__}.{type(net).__qualname__}", init_args=None, input_shape=shape,
            bias_adds=bias_adds)
        self.train(net.training)
        self._derive(name, space)
        self._trace()
        self._program = _finish(_compile(self._net, self._sizes, bias_adds, set(), set()))
        self._cost_needs_derived = _needs_derived(self._program)

    # ------------------------------------------------------------------ the space
    def _derive(self, name: str, given: SearchSpace | None) -> None:
        uses: dict[Value, list[tuple[str, str, tuple]]] = {}  # Value -> (block path, role, condition chain) per use
        deriveds: dict[Derived, None] = {}
        blocks: dict[nn.Module, str] = {}

        def walk(m: nn.Module, path: str, chain: tuple) -> None:
            if _is_block(m):
                blocks.setdefault(m, path)
                for role, spec in m.block_specs():
                    if isinstance(spec, Derived):
                        deriveds.update(dict.fromkeys(_derived_order(spec)))
                    for v in spec_parents(spec):
                        uses.setdefault(v, []).append((path, role, chain))
            if isinstance(m, LayerChoice):
                for key, cand in m._modules.items():
                    walk(cand, f"{path}.{key}" if path else key, chain + ((m.value, frozenset({key})),))
            elif isinstance(m, ElasticDepth):
                for i, b in enumerate(m._modules.values()):
                    allowed = frozenset(d for d in m.value.choices if d > i)
                    vacuous = m.fixed or len(allowed) == len(m.value.choices)
                    walk(b, f"{path}.{i}" if path else str(i), chain if vacuous else chain + ((m.value, allowed),))
            else:
                for key, child in m._modules.items():
                    if child is not None:
                        walk(child, f"{path}.{key}" if path else key, chain)

        walk(self._net, "", ())
        for m, path in blocks.items():
            m._block_name = path
        self._name_values(uses)
        for m, path in blocks.items():
            problem = m.block_problem() if hasattr(m, "block_problem") else None
            if problem:
                raise ValueError(f"block {path!r}: {problem}")
        decisions = tuple(Decision(v.key, v.choices, _condition(v, u))  # type: ignore[arg-type]
                          for v, u in uses.items())
        if given is not None:
            if given.decisions != decisions:
                ours, theirs = {d.name: d for d in decisions}, {d.name: d for d in given.decisions}
                diff = next((n for n in [*theirs, *ours] if ours.get(n) != theirs.get(n)), None)
                if diff is None:
                    raise ValueError(f"space {given.name!r} lists the decisions of {type(self._net).__name__}'s blocks "
                                     f"in another order: {[d.name for d in given.decisions]} against "
                                     f"{[d.name for d in decisions]} (module-tree order)")
                raise ValueError(f"space {given.name!r} does not match the blocks of {type(self._net).__name__}: "
                                 f"decision {diff!r} is {theirs.get(diff)} in the space, {ours.get(diff)} in the "
                                 f"blocks")
            self.space = given
        else:
            self.space = SearchSpace(name, decisions, self.config.family, self.config.canonical_json(),
                                     canonicalizer=_UnusedToFirst.of(uses))
        self._keys = tuple((v, v.key) for v in uses)
        self._deriveds = tuple(deriveds)
        self._owners = {v.key: u[0][0] for v, u in uses.items()}  # decision -> its first block's path

    @staticmethod
    def _name_values(uses: dict[Value, list[tuple[str, str, tuple]]]) -> None:
        owner: dict[str, str] = {}
        for v, u in uses.items():  # user names first: they win over auto names
            if v.name is not None:
                if v.name in owner:
                    raise ValueError(f"two Values are named {v.name!r}: one used by block {owner[v.name]!r}, the "
                                     f"other by block {u[0][0]!r}; give each decision its own name")
                owner[v.name] = u[0][0]
                v.key = v.name
        for v, u in uses.items():
            if v.name is None:
                path, role = u[0][0], u[0][1]
                base = f"{path}.{role}" if path else role
                key, n = base, 1
                while key in owner:
                    n += 1
                    key = f"{base}_{n}"
                owner[key] = path
                v.key = key

    def owner_of(self, decision: str) -> str:
        """Path of the first block using `decision` (for messages naming the block at fault)."""
        return self._owners.get(decision, "")

    # ------------------------------------------------------------------ running a subnet
    def _resolve(self, arch: Arch, derived: bool = True) -> dict[Any, Any]:
        chosen = arch._dict
        values = {v: chosen[k] for v, k in self._keys if k in chosen}
        for d in self._deriveds if derived else ():
            if all(p in values for p in d.leaves):
                values[d] = d.resolve(values)
        return values

    def forward(self, x: torch.Tensor, arch: Arch) -> Any:  # the net's own forward, with the arch's choices active
        self.check_arch(arch)
        token = _ACTIVE.set(self._resolve(arch))
        try:
            return self._net(x)
        finally:
            _ACTIVE.reset(token)

    def materialize(self, arch: Arch) -> nn.Module:
        """A plain module for `arch` (the net's own classes, plain torch layers) holding copies of its weights."""
        self.check_arch(arch)
        with torch.no_grad():
            return _materialize(self._net, self._resolve(arch), {})

    def cost(self, arch: Arch) -> Cost:
        """Analytic MACs and params of `arch` at `input_shape`; equals `count_cost(materialize(arch), ...)`."""
        self.check_arch(arch)
        macs, params = self._program.eval(self._resolve(arch, self._cost_needs_derived))
        return Cost(macs=macs, params=params)

    def cost_terms(self, arch: Arch) -> dict[str, tuple[int, int]]:
        """(MACs, params) per module of the materialized subnet (its module paths), for naming a wrong formula."""
        self.check_arch(arch)
        out: dict[str, tuple[int, int]] = {}
        _terms(self._net, "", self._resolve(arch), self._sizes, self.bias_adds, set(), set(), out)
        return out

    def weight_source(self, name: str, arch: Arch) -> str:
        # A LayerChoice is skipped in the materialized tree: its chosen key comes back into the name here.
        parts, out, m = name.split("."), [], self._net
        chosen = arch._dict
        for part in parts:
            out.append(part)
            m = m._modules.get(part) if m is not None else None
            if isinstance(m, LayerChoice):
                key = str(chosen[m.value.key])
                out.append(key)
                m = m._modules[key]
        return ".".join(out)

    # ------------------------------------------------------------------ keeping `net` in step
    def train(self, mode: bool = True) -> BlockSupernet:
        super().train(mode)
        self._net.training = mode
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        net = self.__dict__.get("_net")
        if net is not None and (name in net._modules or name in net._parameters or name in net._buffers):
            setattr(net, name, value)  # a child or tensor replaced here (a module swap) is replaced in `net` too

    def _apply(self, fn: Any, recurse: bool = True) -> BlockSupernet:
        super()._apply(fn, recurse)
        for key in self._net._parameters:  # the net's own tensors may be replaced by conversions: share again
            self._net._parameters[key] = self._parameters[key]
        for key in self._net._buffers:
            self._net._buffers[key] = self._buffers[key]
        return self

    # ------------------------------------------------------------------ the trace
    def _trace_archs(self) -> list[Arch]:
        """Smallest, largest, shifted diagonals (neighbouring decisions differ), seeded random draws, then one
        subnet per (decision, choice) pair not yet seen, so every candidate and block runs at least once."""
        space = self.space
        archs = [space.smallest(), space.largest()]
        k = max(len(d.choices) for d in space.decisions) if space.decisions else 0
        for j in range(k):
            chosen: dict[str, Any] = {}
            for i, d in enumerate(space.decisions):
                if space.is_active(d, chosen):
                    chosen[d.name] = d.choices[(j + i) % len(d.choices)]
            archs.append(space.make(chosen))
        rng = np.random.default_rng(0)
        archs += [space.sample(rng) for _ in range(_N_RANDOM_TRACES if space.decisions else 0)]
        seen = {pair for a in archs for pair in a.values}
        for d in space.decisions:
            for c in d.choices:
                if (d.name, c) not in seen:
                    a = space.make(_enabling(space, d.name, c))
                    seen.update(a.values)
                    archs.append(a)
        return list(dict.fromkeys(archs))

    def _trace(self) -> None:
        """Run the net for a set of subnets: record each conv/linear layer's output positions per call, check they
        do not depend on the subnet, and turn any failure into one line naming the module being run.

        First on an empty batch with the net's own tensors (no arithmetic, no extra imports); a net that cannot take
        an empty batch (a `view(B, -1)`), or one already on the meta device, runs on the meta device instead, whose
        kernels cost a one-time import of about a second of CPU.
        """
        net = self._net
        archs = self._trace_archs()
        ref = next(itertools.chain(net.parameters(), net.buffers()), None)
        if ref is not None and ref.device.type != "meta":
            empty = torch.zeros((0, *self.input_shape), device=ref.device,
                                dtype=ref.dtype if ref.is_floating_point() else torch.get_default_dtype())
            try:
                self._sizes, self._ran = self._record(archs, lambda: net(empty))
                return
            except ValueError:
                pass  # the meta run below reports the failure (or succeeds where an empty batch cannot run)
        tensors = {**dict(net.named_parameters(remove_duplicate=False)),
                   **dict(net.named_buffers(remove_duplicate=False))}
        meta = {k: torch.empty_like(t, device="meta") for k, t in tensors.items()}
        x = torch.zeros((1, *self.input_shape), device="meta")
        self._sizes, self._ran = self._record(archs, lambda: torch.func.functional_call(net, meta, (x,), strict=False))

    def _record(self, archs: list[Arch], run: Any) -> tuple[dict[nn.Module, tuple[int, ...]], set[nn.Module]]:
        """(output positions per call of each conv/linear layer, modules that ran) over `archs`, run by `run()`."""
        net = self._net
        paths = {m: p for p, m in net.named_modules()}
        stack: list[nn.Module] = []
        calls: dict[nn.Module, list[int]] = {}
        sizes: dict[nn.Module, tuple[int, ...]] = {}
        first: dict[nn.Module, Arch] = {}
        ran: set[nn.Module] = set()

        def pre(m: nn.Module, args: Any) -> None:
            stack.append(m)

        def post(m: nn.Module, args: Any, out: Any) -> None:
            stack.pop()
            ran.add(m)
            if isinstance(m, (nn.Conv2d, nn.Linear)) and isinstance(out, torch.Tensor):
                # positions per sample: a conv's output pixels, a linear layer's rows (dims between batch and features)
                per_sample = out.shape[2:].numel() if isinstance(m, nn.Conv2d) else out.shape[1:-1].numel()
                calls.setdefault(m, []).append(int(per_sample))

        modes = {m: m.training for m in net.modules()}
        hooks = [h for m in net.modules() for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
        net.eval()
        try:
            for arch in archs:
                stack.clear()
                calls.clear()
                token = _ACTIVE.set(self._resolve(arch))
                try:
                    with torch.no_grad():
                        run()
                except Exception as exc:
                    where = stack[-1] if stack else net
                    if isinstance(exc, ValueError) and str(exc).startswith("block "):
                        raise ValueError(f"{exc} (subnet {arch})") from None
                    raise ValueError(f"block {paths.get(where) or type(net).__name__!r} ({type(where).__name__}) "
                                     f"fails for subnet {arch}: {_first_line(exc)}") from None
                finally:
                    _ACTIVE.reset(token)
                for m, got in calls.items():
                    got_t = tuple(got)
                    if m in sizes and sizes[m] != got_t:
                        raise ValueError(
                            f"block {paths.get(m)!r} has {sizes[m]} output positions per call for subnet {first[m]} "
                            f"but {got_t} for subnet {arch}: spatial sizes must not depend on the subnet (cost "
                            f"assumes one size per layer)")
                    sizes.setdefault(m, got_t)
                    first.setdefault(m, arch)
        finally:
            for h in hooks:
                h.remove()
            for m, mode in modes.items():
                m.training = mode
        return sizes, ran

    def never_run(self) -> list[tuple[str, str]]:
        """(decision, block path) of blocks holding a decision that never ran in the trace (forward ignores them)."""
        paths = {m: p for p, m in self._net.named_modules()}
        out = []
        for m, path in paths.items():
            if _is_block(m) and m not in self._ran:
                for _, spec in m.block_specs():
                    out += [(v.key, path) for v in spec_parents(spec)]  # type: ignore[misc]
        return out


def _derived_order(d: Derived) -> list[Derived]:
    out: list[Derived] = []
    for v in d.values:
        if isinstance(v, Derived):
            out += _derived_order(v)
    return out + [d]


def _condition(v: Value, uses: list[tuple[str, str, tuple]]) -> tuple[str, tuple] | None:
    """The strongest `when` implied by every use of `v`: the innermost container common to all of them, with the
    union of the values letting each use run; None (unconditional) when a use has no container in common."""
    chains = []
    for _, _, chain in uses:
        by_parent: dict[Value, frozenset] = {}
        for parent, allowed in chain:
            if parent is not v:
                by_parent[parent] = by_parent[parent] & allowed if parent in by_parent else allowed
        chains.append(by_parent)
    common = [p for p in chains[0] if all(p in c for c in chains[1:])]
    for parent in reversed(common):  # innermost first
        allowed = frozenset().union(*(c[parent] for c in chains))
        if len(allowed) < len(parent.choices):
            return parent.key, tuple(c for c in parent.choices if c in allowed)  # type: ignore[return-value]
    return None


@dataclass(frozen=True)
class _UnusedToFirst:
    """A decision used in several places gets the weakest condition covering them all, so a subnet may carry it
    where none of its blocks runs (a width used in two LayerChoice candidates, neither chosen): such a value
    changes nothing, and the canonical form gives it the first choice."""

    uses: tuple[tuple[str, tuple[tuple[tuple[str, frozenset], ...], ...]], ...]  # decision -> its uses' chains

    @staticmethod
    def of(uses: dict[Value, list[tuple[str, str, tuple]]]) -> _UnusedToFirst | None:
        """The rule for a tree's uses, or None when every decision exists exactly where it is used."""
        table = []
        for v, u in uses.items():
            chains = tuple(dict.fromkeys(tuple((p.key, a) for p, a in chain if p is not v) for _, _, chain in u))
            if len(chains) > 1 and all(chains):  # used in several places, none of them unconditional
                table.append((v.key, chains))
        return _UnusedToFirst(tuple(table)) if table else None  # type: ignore[arg-type]

    def canonical(self, space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(values)
        for name, chains in self.uses:
            if name in out and not any(
                    all(p in values and values[p] in allowed for p, allowed in chain) for chain in chains):
                out[name] = space[name].choices[0]
        return out


def _enabling(space: SearchSpace, name: str, choice: Any) -> dict[str, Any]:
    """Values of a subnet (largest elsewhere) where decision `name` is active and takes `choice`."""
    values = {d.name: d.choices[-1] for d in space.decisions}
    values[name] = choice
    d = space[name]
    while d.when is not None:
        parent, allowed = d.when
        values[parent] = allowed[-1]
        d = space[parent]
    chosen: dict[str, Any] = {}
    for d in space.decisions:
        if space.is_active(d, chosen):
            chosen[d.name] = values[d.name]
    return chosen


# ---------------------------------------------------------------------- materialize
def _materialize(m: nn.Module, values: dict[Any, Any], memo: dict[int, Any]) -> nn.Module:
    done = memo.get(id(m))
    if done is not None:
        return done
    if isinstance(m, ElasticBlock):
        out = m.materialize(values)
    elif isinstance(m, LayerChoice):
        out = _materialize(m._modules[values[m.value]], values, memo)  # type: ignore[index]
    elif isinstance(m, ElasticDepth):
        out = nn.Sequential(*[_materialize(b, values, memo) for b in list(m._modules.values())[:m.depth(values)]])
        out.training = m.training
    else:
        out = m.__class__.__new__(m.__class__)
        # New containers (hooks, tensor and child dicts) so the copy never shares mutable state with the supernet.
        state = {k: (type(v)(v) if type(v) in (dict, OrderedDict, set) else v) for k, v in m.__dict__.items()}
        state["_parameters"] = {k: None if p is None else _clone_param(p, memo) for k, p in m._parameters.items()}
        state["_buffers"] = {k: None if b is None else _clone_tensor(b, memo) for k, b in m._buffers.items()}
        state["_modules"] = {k: None if c is None else _materialize(c, values, memo) for k, c in m._modules.items()}
        out.__dict__.update(state)
    memo[id(m)] = out
    return out


def _clone_param(p: torch.Tensor, memo: dict[int, Any]) -> nn.Parameter:
    got = memo.get(id(p))
    if got is None:
        got = memo[id(p)] = nn.Parameter(p.detach().clone(), p.requires_grad)
    return got


def _clone_tensor(t: torch.Tensor, memo: dict[int, Any]) -> torch.Tensor:
    got = memo.get(id(t))
    if got is None:
        got = memo[id(t)] = t.detach().clone()
    return got


# ---------------------------------------------------------------------- cost
def _plain_cost(m: nn.Module, sizes: dict[nn.Module, tuple[int, ...]], bias_adds: bool,
                seen_params: set[int]) -> tuple[int, int]:
    """(MACs, params) of a plain module's own tensors: its conv/linear work at the recorded sizes."""
    params = 0
    for p in m._parameters.values():
        if p is not None and id(p) not in seen_params:
            seen_params.add(id(p))
            params += p.numel()
    macs = 0
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        positions = sum(sizes.get(m, ()))
        out = m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
        macs = positions * (m.weight.numel() + (out if m.bias is not None and bias_adds else 0))
    return macs, params


class _Const:
    __slots__ = ("macs", "params")

    def __init__(self, macs: int, params: int) -> None:
        self.macs, self.params = macs, params

    def eval(self, values: dict[Any, Any]) -> tuple[int, int]:
        return self.macs, self.params


class _Leaf:
    __slots__ = ("block", "sizes", "bias_adds")

    def __init__(self, block: Any, sizes: tuple[int, ...], bias_adds: bool) -> None:
        self.block, self.sizes, self.bias_adds = block, sizes, bias_adds

    def eval(self, values: dict[Any, Any]) -> tuple[int, int]:
        return self.block.block_cost(values, self.sizes, self.bias_adds)


class _Sum:
    __slots__ = ("macs", "params", "parts")

    def __init__(self, macs: int, params: int, parts: list[Any]) -> None:
        self.macs, self.params, self.parts = macs, params, parts

    def eval(self, values: dict[Any, Any]) -> tuple[int, int]:
        macs, params = self.macs, self.params
        for part in self.parts:
            m, p = part.eval(values)
            macs += m
            params += p
        return macs, params


class _Table:
    """A choice or depth whose every option costs a constant: one lookup."""

    __slots__ = ("value", "table", "fixed")

    def __init__(self, value: Value, table: dict[Any, tuple[int, int]], fixed: Any = None) -> None:
        self.value, self.table, self.fixed = value, table, fixed

    def eval(self, values: dict[Any, Any]) -> tuple[int, int]:
        return self.table[self.fixed if self.fixed is not None else values[self.value]]


class _Choice:
    __slots__ = ("value", "nodes")

    def __init__(self, value: Value, nodes: dict[Any, Any]) -> None:
        self.value, self.nodes = value, nodes

    def eval(self, values: dict[Any, Any]) -> tuple[int, int]:
        return self.nodes[values[self.value]].eval(values)


class _Depth:
    __slots__ = ("block", "nodes")

    def __init__(self, block: ElasticDepth, nodes: list[Any]) -> None:
        self.block, self.nodes = block, nodes

    def eval(self, values: dict[Any, Any]) -> tuple[int, int]:
        macs = params = 0
        for node in self.nodes[:self.block.depth(values)]:
            m, p = node.eval(values)
            macs += m
            params += p
        return macs, params


class _Tab:
    """Leaves that always run together, their summed cost tabulated over every combination of their Values."""

    __slots__ = ("deps", "table")

    def __init__(self, deps: tuple[Value, ...], table: dict[tuple, tuple[int, int]]) -> None:
        self.deps, self.table = deps, table

    def eval(self, values: dict[Any, Any]) -> tuple[int, int]:
        return self.table[tuple([values[v] for v in self.deps])]


_MAX_TABLE = 4096  # entries of one cost table (a block's width x expansion x kernel x width is 81 in mbv3)


def _tabulate(node: Any) -> Any:
    """A sum of leaves (or one leaf) as one table lookup, when the product of its Values' choices is small: the
    leaves' formulas run once per combination here instead of once per `cost` call."""
    leaves = [node] if isinstance(node, _Leaf) else list(node.parts)
    base = (0, 0) if isinstance(node, _Leaf) else (node.macs, node.params)
    deps: dict[Value, None] = {}
    deriveds: dict[Derived, None] = {}
    for leaf in leaves:
        for _, spec in leaf.block.block_specs():
            deps.update(dict.fromkeys(spec_parents(spec)))
            if isinstance(spec, Derived):
                deriveds.update(dict.fromkeys(_derived_order(spec)))
    if int(np.prod([len(v.choices) for v in deps])) > _MAX_TABLE:
        return node
    table = {}
    for combo in itertools.product(*(v.choices for v in deps)):
        values: dict[Any, Any] = dict(zip(deps, combo))
        for d in deriveds:
            values[d] = d.resolve(values)
        macs, params = base
        for leaf in leaves:
            m, p = leaf.eval(values)
            macs, params = macs + m, params + p
        table[combo] = (macs, params)
    if not deps:  # fixed widths and kernels: a constant
        return _Const(*table[()])
    if len(deps) == 1:
        (value,) = deps
        return _Table(value, {c[0]: mp for c, mp in table.items()})
    return _Tab(tuple(deps), table)


def _finish(node: Any) -> Any:
    """At a boundary (a choice's candidate, a depth's block, the root) the leaves of a sum always run together:
    tabulate them as one lookup (or one per leaf when their Values combine into too large a table)."""
    if isinstance(node, _Leaf):
        return _tabulate(node)
    if not isinstance(node, _Sum):
        return node
    leaves = [p for p in node.parts if isinstance(p, _Leaf)]
    others = [p for p in node.parts if not isinstance(p, _Leaf)]
    if not leaves:
        return node
    tab = _tabulate(_Sum(node.macs, node.params, leaves))
    if tab is not None and not isinstance(tab, _Sum):
        return tab if not others else _Sum(0, 0, [tab, *others])
    return _Sum(node.macs, node.params, [_tabulate(leaf) for leaf in leaves] + others)


def _needs_derived(node: Any) -> bool:
    """Whether evaluating `node` reads Derived values (a leaf left out of the tables)."""
    if isinstance(node, _Leaf):
        return True
    if isinstance(node, _Sum):
        return any(_needs_derived(p) for p in node.parts)
    if isinstance(node, _Choice):
        return any(_needs_derived(n) for n in node.nodes.values())
    if isinstance(node, _Depth):
        return any(_needs_derived(n) for n in node.nodes)
    return False


def _sum(parts: Iterable[Any]) -> Any:
    macs = params = 0
    rest = []
    for part in parts:
        if isinstance(part, _Const):
            macs += part.macs
            params += part.params
        elif isinstance(part, _Sum):
            macs += part.macs
            params += part.params
            rest += part.parts
        else:
            rest.append(part)
    if not rest:
        return _Const(macs, params)
    if len(rest) == 1 and macs == params == 0:
        return rest[0]
    return _Sum(macs, params, rest)


def _compile(m: nn.Module, sizes: dict[nn.Module, tuple[int, ...]], bias_adds: bool, seen: set[int],
             seen_params: set[int]) -> Any:
    """The cost of the subtree `m` as a small evaluator, constants folded (a choice of constants is a lookup).

    Shared modules and parameters count once, where first met (as `module.parameters()` does)."""
    if id(m) in seen:
        return _Const(0, 0)
    seen.add(id(m))
    if isinstance(m, ElasticBlock):
        for p in m._parameters.values():
            if p is not None:
                seen_params.add(id(p))
        return _Leaf(m, sizes.get(m, ()), bias_adds)
    if isinstance(m, LayerChoice):
        nodes = {k: _finish(_compile(c, sizes, bias_adds, seen, seen_params)) for k, c in m._modules.items()}
        if all(isinstance(n, _Const) for n in nodes.values()):
            return _Table(m.value, {k: (n.macs, n.params) for k, n in nodes.items()})
        return _Choice(m.value, nodes)
    if isinstance(m, ElasticDepth):
        nodes = [_finish(_compile(b, sizes, bias_adds, seen, seen_params)) for b in m._modules.values()]
        if all(isinstance(n, _Const) for n in nodes):
            table, macs, params = {}, 0, 0
            for d, n in enumerate(nodes, start=1):
                macs, params = macs + n.macs, params + n.params
                table[d] = (macs, params)
            return _Table(m.value, {d: table[d] for d in m.value.choices}, m.value.choices[0] if m.fixed else None)
        return _Depth(m, nodes)
    own = _Const(*_plain_cost(m, sizes, bias_adds, seen_params))
    children = [_compile(c, sizes, bias_adds, seen, seen_params) for c in m._modules.values() if c is not None]
    return _sum([own, *children])


def _terms(m: nn.Module, path: str, values: dict[Any, Any], sizes: dict[nn.Module, tuple[int, ...]],
           bias_adds: bool, seen: set[int], seen_params: set[int], out: dict[str, tuple[int, int]]) -> None:
    """`cost` spelled out per module of the materialized subnet (paths as in `materialize`'s result)."""
    if id(m) in seen:
        return
    seen.add(id(m))
    if isinstance(m, ElasticBlock):
        seen_params.update(id(p) for p in m._parameters.values() if p is not None)
        out[path] = m.block_cost(values, sizes.get(m, ()), bias_adds)
        return
    if isinstance(m, LayerChoice):
        chosen = m._modules[values[m.value]]  # type: ignore[index]
        _terms(chosen, path, values, sizes, bias_adds, seen, seen_params, out)  # type: ignore[arg-type]
        return
    if isinstance(m, ElasticDepth):
        children = list(m._modules.items())[:m.depth(values)]
    else:
        macs, params = _plain_cost(m, sizes, bias_adds, seen_params)
        if macs or params:
            out[path] = (macs, params)
        children = list(m._modules.items())
    for key, child in children:
        if child is not None:
            _terms(child, f"{path}.{key}" if path else key, values, sizes, bias_adds, seen, seen_params, out)


# ---------------------------------------------------------------------- the "module" family
@lru_cache(maxsize=64)
def meta_supernet(config: FamilyConfig, name: str) -> Supernet:
    """The family's supernet built on the meta device (no memory, no init), once per (config, name): its space,
    cost program and materialize serve `search_space`, `cost` and `build_subnet` of block-built families."""
    with torch.device("meta"):
        return config.build_supernet(name)


_RESETTABLE = ("reset_parameters", "reset_running_stats")


def standalone_subnet(config: FamilyConfig, arch: Arch) -> nn.Module:
    """A freshly initialized plain module for `arch`: materialized on the meta device then given memory and each
    layer's own `reset_parameters()`; a net with tensors no reset method covers is built for real and cut instead
    (its own init, so nothing is left uninitialized)."""
    meta = meta_supernet(config, arch.space.name)
    sub = meta.materialize(arch)  # type: ignore[operator]
    covered = all(
        any(hasattr(m, r) for r in _RESETTABLE) or not (m._parameters or m._buffers) for m in sub.modules())
    if not covered:
        return config.build_supernet(arch.space.name).materialize(arch)  # type: ignore[operator]
    sub = sub.to_empty(device="cpu")
    with torch.no_grad():
        for m in sub.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
            elif hasattr(m, "reset_running_stats"):
                m.reset_running_stats()
    return sub


@dataclass(frozen=True)
class ModuleConfig(FamilyConfig):
    """A supernet from user code: `class_path` (`pkg.module.Class`, an nn.Module of elastic blocks) built with
    `init_args` (JSON-able keyword arguments), for inputs of `input_shape` (channels, height, width).

    `init_args=None` marks a space recorded from a module object (`BlockSupernet(net, ...)`): it describes the
    space but cannot rebuild the network. `bias_adds`: whether MACs count bias adds (NAS-Bench-201's convention).
    """

    family: ClassVar[str] = "module"

    class_path: str = ""
    init_args: dict[str, Any] | None = field(default_factory=dict)
    input_shape: tuple[int, ...] = (3, 32, 32)
    bias_adds: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.class_path, str) or "." not in self.class_path:
            raise ValueError(f"class_path must be 'package.module.Class', got {self.class_path!r}")
        if self.init_args is not None:
            if not isinstance(self.init_args, dict):
                raise ValueError(f"init_args must be a dict of keyword arguments, got {self.init_args!r}")
            try:
                json.dumps(self.init_args)
            except TypeError as exc:
                raise ValueError(f"init_args of {self.class_path!r} must be JSON-able: {exc}") from None
        shape = self.input_shape
        if not isinstance(shape, tuple) or not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"input_shape must be positive ints (channels, height, width), got {shape!r}")
        object.__setattr__(self, "_hash", hash(self.canonical_json()))  # init_args is a dict: hash its text, once

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined]

    @property
    def bias_adds_in_macs(self) -> bool:  # type: ignore[override]
        return self.bias_adds

    @property
    def in_chans(self) -> int:
        """Input channels (the first entry of `input_shape`)."""
        return self.input_shape[0]

    @property
    def image_size(self) -> int:
        """Input height in pixels (square inputs: the width is the same)."""
        return self.input_shape[1] if len(self.input_shape) > 1 else 1

    def module_class(self) -> type[nn.Module]:
        """The class `class_path` names; a one-line error naming the path when it does not import."""
        module_name, _, attr = self.class_path.rpartition(".")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # a missing package, a syntax error in it, a missing name
            raise ValueError(f"class path {self.class_path!r} does not import: {_first_line(exc)}") from None
        if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
            raise ValueError(f"class path {self.class_path!r} is {obj!r}, not an nn.Module class")
        return obj

    def build_net(self) -> nn.Module:
        """The user's module, built with `init_args` (on the current default device)."""
        if self.init_args is None:
            raise ValueError(f"space of {self.class_path!r} was recorded from a module object, so it cannot be "
                             f"rebuilt: build the supernet with ModuleConfig(class_path, init_args, input_shape)")
        cls = self.module_class()
        try:
            return cls(**self.init_args)
        except TypeError as exc:
            raise ValueError(f"{self.class_path}(**{self.init_args}) fails: {_first_line(exc)}") from None

    def search_space(self, name: str = "module") -> SearchSpace:
        return meta_supernet(self, name).space

    def build_supernet(self, name: str = "module") -> BlockSupernet:
        return BlockSupernet(self.build_net(), name, self.input_shape, bias_adds=self.bias_adds, config=self)

    def build_subnet(self, arch: Arch) -> nn.Module:
        return standalone_subnet(self, arch)

    def cost(self, arch: Arch) -> Cost:
        return meta_supernet(self, arch.space.name).cost(arch)  # type: ignore[operator]
