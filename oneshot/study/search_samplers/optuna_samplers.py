"""Optuna's own samplers (TPE, GP, NSGA-II) with the settings our benchmark chose (`benchmarks/bench_search.py`)."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.samplers import BaseSampler

from supernets.space import SearchSpace

from .base import Feasible, conditional, register_search_sampler

__all__: list[str] = []


@register_search_sampler
def tpe(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
        **kwargs: Any) -> BaseSampler:
    """TPE as benchmarked best: multivariate (joint over decisions), grouped on conditional spaces."""
    settings: dict[str, Any] = dict(multivariate=True, group=conditional(space), n_startup_trials=n_startup,
                                    n_ei_candidates=24, constant_liar=True)
    settings.update(kwargs)
    return optuna.samplers.TPESampler(seed=seed, **settings)


@register_search_sampler
def gp(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
       **kwargs: Any) -> BaseSampler:
    """Optuna's GP sampler (log-EI; the constrained variant when the study sets constraints)."""
    settings: dict[str, Any] = dict(n_startup_trials=n_startup, warn_independent_sampling=False)
    settings.update(kwargs)
    return optuna.samplers.GPSampler(seed=seed, **settings)


@register_search_sampler
def nsga2(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
          **kwargs: Any) -> BaseSampler:
    """NSGA-II with a population sized for searches of a few hundred queries."""
    settings: dict[str, Any] = dict(population_size=20)
    settings.update(kwargs)
    return optuna.samplers.NSGAIISampler(seed=seed, **settings)
