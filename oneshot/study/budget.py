"""Cost budgets for search: which subnets may be evaluated at all, decided with the fast cost model.

A `Budget` is a set of upper limits on named costs (`flops<=1e8`, `params<=5e5`, both at once). Costs come from a
`CostModel`: MACs, FLOPs and parameters from `supernets.cost` (analytic, memoized, thousands of subnets a second),
plus any cost the caller measures, such as latency, given as a function or a lookup. A search checks every
proposal against its budget before the objective runs, so an over-budget subnet is never evaluated.

`parse_budgets({"flops": [50e6, 100e6]})` gives two budgets; scalars apply to every budget
(`{"flops": [50e6, 100e6], "params": 1e6}`), lists of equal length pair up, and an empty mapping is one
unconstrained budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from supernets.cost import cost as analytic_cost
from supernets.space import Arch, SearchSpace

__all__ = ["COST_KEYS", "Budget", "BudgetCheck", "CostModel", "parse_budgets", "parse_budget_text", "check_reachable"]

COST_KEYS = ("macs", "flops", "params")  # always available through supernets.cost


@dataclass(frozen=True)
class Budget:
    """Upper limits on named costs, e.g. `Budget((("flops", 1e8),))`; a subnet fits when every cost <= its limit."""

    limits: tuple[tuple[str, float], ...] = ()

    @classmethod
    def of(cls, **limits: float) -> Budget:
        """`Budget.of(flops=1e8, params=5e5)`, keys sorted so equal budgets compare equal."""
        return cls(tuple(sorted((k, float(v)) for k, v in limits.items())))

    def as_dict(self) -> dict[str, float]:
        return dict(self.limits)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.limits)

    def __bool__(self) -> bool:
        return bool(self.limits)

    def __str__(self) -> str:
        return ",".join(f"{k}<={v:g}" for k, v in self.limits) or "unconstrained"

    def violations(self, costs: Mapping[str, float]) -> dict[str, float]:
        """Relative excess per limit, `cost / limit - 1`: <= 0 fits. Optuna reads these as constraint values."""
        return {k: float(costs[k]) / v - 1.0 if v > 0 else float(costs[k]) - v for k, v in self.limits}

    def admits(self, costs: Mapping[str, float]) -> bool:
        """Whether a subnet with these costs fits every limit."""
        return all(float(costs[k]) <= v for k, v in self.limits)

    def contains(self, other: Budget) -> bool:
        """Whether every subnet that fits `other` also fits this budget (a looser or equal budget)."""
        mine, theirs = self.as_dict(), other.as_dict()
        return all(k in theirs and theirs[k] <= v for k, v in mine.items())


class CostModel:
    """The costs a budget may name for one subnet: `macs`, `flops`, `params`, plus the caller's extra costs.

    `extra` maps a cost name (e.g. "latency", in the caller's units such as ms) to a function `arch -> float` or to
    a mapping from arch string to value (a measured table). Extra costs are memoized per subnet. A function that
    also has a method `many(archs) -> values` (as `LatencyModel` has) is asked once for a whole batch of new
    subnets by `CostModel.many`, which is how a search screens its candidates.
    """

    def __init__(self, extra: Mapping[str, Callable[[Arch], float] | Mapping[str, float]] | None = None) -> None:
        self._extra: dict[str, Callable[[Arch], float]] = {}
        if extra is not None and not isinstance(extra, Mapping):
            raise TypeError(f"costs must be a mapping like {{'latency': fn}}, got {type(extra).__name__}")
        for name, fn in (extra or {}).items():
            if name in COST_KEYS:
                raise ValueError(f"cost {name!r} is built in (from supernets.cost); give extra costs other names")
            if not callable(fn) and not isinstance(fn, Mapping):
                raise TypeError(f"cost {name!r} must be a function arch -> value or a mapping from arch string to "
                                f"value, got {type(fn).__name__}")
            self._extra[name] = fn if callable(fn) else _lookup(name, fn)
        self._memo: dict[Arch, dict[str, float]] = {}

    @property
    def keys(self) -> tuple[str, ...]:
        return (*COST_KEYS, *self._extra)

    def __call__(self, arch: Arch) -> dict[str, float]:
        out = self._memo.get(arch)
        if out is None:
            out = self._analytic(arch)
            for name, fn in self._extra.items():
                out[name] = float(fn(arch))
            self._memo[arch] = out
        return out

    def many(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        """The costs of each subnet, as `__call__` gives them; extra costs with a `many` method are asked once for
        all the subnets not memoized yet (one batched prediction instead of one per subnet)."""
        new = [a for a in dict.fromkeys(archs) if a not in self._memo]
        if new:
            rows = {a: self._analytic(a) for a in new}
            for name, fn in self._extra.items():
                batch = getattr(fn, "many", None)
                values = batch(new) if callable(batch) else [fn(a) for a in new]
                for a, v in zip(new, values):
                    rows[a][name] = float(v)
            self._memo.update(rows)
        return [self._memo[a] for a in archs]

    @staticmethod
    def _analytic(arch: Arch) -> dict[str, float]:
        c = analytic_cost(arch)
        return {"macs": float(c.macs), "flops": float(c.flops), "params": float(c.params)}


class BudgetCheck:
    """Whether subnets fit `budget` under `costs`: one subnet (`check(arch)`) or a batch (`check.many(archs)`)."""

    def __init__(self, budget: Budget, costs: CostModel) -> None:
        self.budget, self.costs = budget, costs

    def __call__(self, arch: Arch) -> bool:
        return self.budget.admits(self.costs(arch))

    def many(self, archs: Sequence[Arch]) -> list[bool]:
        return [self.budget.admits(c) for c in self.costs.many(archs)]


def _lookup(name: str, table: Mapping[str, float]) -> Callable[[Arch], float]:
    def fn(arch: Arch) -> float:
        try:
            return float(table[str(arch)])
        except KeyError:
            raise ValueError(f"no measured {name} for subnet {str(arch)!r}; the {name} table has "
                             f"{len(table)} entries") from None

    return fn


def parse_budget_text(items: Sequence[str]) -> dict[str, list[float]]:
    """CLI form `["flops=50e6,100e6", "params=1e6"]` -> `{"flops": [5e7, 1e8], "params": [1e6]}`."""
    out: dict[str, list[float]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise ValueError(f"cannot read budget {item!r}: expected COST=LIMIT[,LIMIT...], e.g. flops=50e6,100e6")
        try:
            out.setdefault(key.strip(), []).extend(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"cannot read budget {item!r}: limits must be numbers, e.g. flops=50e6,100e6") from None
    return out


def parse_budgets(budgets: Mapping[str, Any] | Sequence[Budget] | Budget | None,
                  keys: Sequence[str] = COST_KEYS) -> list[Budget]:
    """Budgets from a mapping of cost name to a limit or list of limits (see the module docstring), sorted tight first.

    `keys` are the cost names the cost model knows; another name is an error that lists them.
    """
    if budgets is None:
        return [Budget()]
    if isinstance(budgets, Budget):
        out = [budgets]
    elif isinstance(budgets, Sequence) and not isinstance(budgets, (str, bytes)):
        out = list(budgets)
        if not all(isinstance(b, Budget) for b in out):
            raise TypeError("budgets must be a mapping like {'flops': [5e7, 1e8]} or a list of Budget")
    elif isinstance(budgets, Mapping):
        lists: dict[str, list[float]] = {}
        for k, v in budgets.items():
            vals = list(v) if isinstance(v, (list, tuple)) else [v]
            if not vals:
                raise ValueError(f"budget {k!r} has no limits")
            try:
                if any(isinstance(x, bool) for x in vals):
                    raise TypeError
                lists[k] = [float(x) for x in vals]
            except (TypeError, ValueError):
                raise ValueError(f"budget {k!r} limits must be numbers, got {v!r}") from None
        n = max((len(v) for v in lists.values()), default=0)
        for k, v in lists.items():
            if len(v) not in (1, n):
                raise ValueError(
                    f"budget lists must have one limit or the same number of limits: {k!r} has {len(v)}, "
                    f"another has {n}"
                )
        out = [Budget.of(**{k: (v[0] if len(v) == 1 else v[i]) for k, v in lists.items()}) for i in range(n)]
        if not out:
            out = [Budget()]
    else:
        raise TypeError(f"budgets must be a mapping like {{'flops': [5e7, 1e8]}}, got {type(budgets).__name__}")
    for b in out:
        for k, v in b.limits:
            if k not in keys:
                raise ValueError(f"unknown cost {k!r} in budget {b}; known costs: {list(keys)} "
                                 "(measured costs such as latency need costs={'latency': fn})")
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"budget limit {k}<={v!r} must be a positive number")
    unique = list(dict.fromkeys(out))
    # Tightest first: every limit's sum of logs orders nested budgets correctly and others deterministically.
    return sorted(unique, key=lambda b: (sum(math.log(v) for _, v in b.limits), str(b)))


def check_reachable(space: SearchSpace, budgets: Sequence[Budget], costs: CostModel) -> None:
    """Refuse budgets that no subnet can meet, naming the budget and the cheapest subnet's cost."""
    cheapest = space.smallest()
    c = costs(cheapest)
    for b in budgets:
        if not b.admits(c):
            over = ", ".join(f"{k}={c[k]:,.0f} > {v:g}" for k, v in b.limits if c[k] > v)
            raise ValueError(
                f"budget {b} cannot be met in space {space.name!r}: its cheapest subnet {str(cheapest)!r} "
                f"costs {over} (macs={c['macs']:,.0f}, flops={c['flops']:,.0f}, params={c['params']:,.0f})"
            )
