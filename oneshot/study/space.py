"""A `SearchSpace` seen through Optuna: categorical distributions, define-by-run suggestion, trials <-> subnets.

Every decision becomes one `CategoricalDistribution` over its declared choices (ints, floats and strings are all
valid Optuna categories; Optuna stores the choice's index, so values round-trip exactly). Suggestion is
define-by-run in declaration order and asks only for decisions that are active given the values chosen so far, so
a trial never carries a parameter that does not change the network (e.g. the kernel of a block removed by depth).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from supernets.space import Arch, SearchSpace

__all__ = ["TRIAL_ATTR", "distributions", "suggest_arch", "arch_from_params", "arch_from_trial", "trial_for"]

# User attr that every trial a search tells carries: {arch, status, score, cost, seed}. status is "evaluated" (a
# query), "duplicate" (served from the cache), "infeasible" (over budget, never evaluated) or "cached" (a result
# copied in from another study of the same search).
TRIAL_ATTR = "oneshot"


@lru_cache(maxsize=64)
def _distributions(space: SearchSpace) -> tuple[tuple[str, CategoricalDistribution], ...]:
    return tuple((d.name, CategoricalDistribution(d.choices)) for d in space.decisions)


def distributions(space: SearchSpace, arch: Arch | None = None) -> dict[str, CategoricalDistribution]:
    """Optuna distributions of every decision, or only of those active in `arch`."""
    dists = dict(_distributions(space))
    if arch is None:
        return dists
    return {name: dists[name] for name, _ in arch.values}


def suggest_arch(trial: optuna.trial.BaseTrial, space: SearchSpace) -> Arch:
    """Suggest the active decisions of `space` one by one (declaration order) and return the subnet."""
    chosen: dict[str, Any] = {}
    for d in space.decisions:
        if space.is_active(d, chosen):
            chosen[d.name] = trial.suggest_categorical(d.name, d.choices)
    return Arch(space, tuple(chosen.items()))


def arch_from_params(space: SearchSpace, params: Mapping[str, Any]) -> Arch:
    """The subnet of a trial's parameters; raises ValueError when they are not a complete subnet of `space`."""
    return space.make(params)


def arch_from_trial(space: SearchSpace, trial: FrozenTrial) -> Arch | None:
    """The subnet a trial proposed (also for enqueued trials not yet started), or None when it has none yet."""
    params = trial.params
    if trial.state == TrialState.WAITING:
        params = trial.system_attrs.get("fixed_params", {})
    try:
        arch = space.make(params)
    except ValueError:  # a trial still being suggested, or one from another space
        return None
    return arch if len(arch.values) == len(params) else None


def trial_for(arch: Arch, value: float | list[float], user_attrs: Mapping[str, Any] | None = None,
              constraints: Mapping[str, float] | None = None) -> FrozenTrial:
    """A finished trial recording a known evaluation of `arch`, for `study.add_trial` (warm starts)."""
    trial = optuna.trial.create_trial(
        params=arch.as_dict(), distributions=distributions(arch.space, arch),
        values=list(value) if isinstance(value, (list, tuple)) else [float(value)],
        user_attrs=dict(user_attrs or {}),
    )
    for key, v in (constraints or {}).items():
        trial.set_constraint(key, v)
    return trial
