"""`rea`: regularized evolution (Real et al. 2019) as an Optuna sampler."""

from __future__ import annotations

from typing import Any

from optuna.samplers import BaseSampler

from supernets.space import Arch, SearchSpace

from .base import ArchSampler, Feasible, History, mutate, register_search_sampler

__all__ = ["RegularizedEvolutionSampler"]


class RegularizedEvolutionSampler(ArchSampler):
    """Regularized evolution (REA, Real et al. 2019) as an Optuna sampler.

    The population is the `population_size` most recently evaluated subnets (older ones age out); each proposal
    takes the best of `tournament_size` random members and changes one of its active decisions. Until the
    population is full, proposals are random. Children over budget or already tried are redrawn.
    """

    def __init__(self, space: SearchSpace, *, population_size: int = 20, tournament_size: int = 5,
                 seed: int | None = None, feasible: Feasible | None = None, max_mutations: int = 100) -> None:
        super().__init__(space, seed=seed, feasible=feasible)
        if population_size < 1 or not 1 <= tournament_size <= population_size:
            raise ValueError("REA needs population_size >= 1 and 1 <= tournament_size <= population_size")
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.max_mutations = max_mutations

    def propose(self, history: History) -> Arch:
        population = history.evaluated[-self.population_size:]
        if len(population) < self.population_size:
            return self.random_unseen(history)
        for _ in range(self.max_mutations):
            picks = self._rng.choice(len(population), size=self.tournament_size, replace=False)
            parent = max((population[i] for i in picks), key=lambda p: p[1])[0]
            child = mutate(parent, self._rng)
            if not history.tried(child) and self.feasible(child):
                return child
        return self.random_unseen(history)  # the neighbourhood of the population is used up


@register_search_sampler
def rea(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
        **kwargs: Any) -> BaseSampler:
    """Regularized evolution; see `RegularizedEvolutionSampler`."""
    return RegularizedEvolutionSampler(space, seed=seed, feasible=feasible, **kwargs)
