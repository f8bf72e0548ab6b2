"""`random`: random search without replacement, the baseline every other sampler must beat."""

from __future__ import annotations

from typing import Any

from optuna.samplers import BaseSampler

from supernets.space import Arch, SearchSpace

from .base import ArchSampler, Feasible, History, register_search_sampler

__all__ = ["RandomArchSampler"]


class RandomArchSampler(ArchSampler):
    """Random search without replacement: each trial a uniform subnet that fits the budget and is new."""

    supports_multi_objective = True

    def propose(self, history: History) -> Arch:
        return self.random_unseen(history)


@register_search_sampler
def random(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
           **kwargs: Any) -> BaseSampler:
    """Uniform over untried subnets within the budget: the baseline every other sampler must beat."""
    return RandomArchSampler(space, seed=seed, feasible=feasible, **kwargs)
