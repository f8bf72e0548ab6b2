"""`predictor`: Bayesian optimization with our predictors as the surrogate, the default of `oneshot.search()`."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from optuna.samplers import BaseSampler

from supernets.space import Arch, SearchSpace

from .base import (ArchSampler, Feasible, History, all_archs, mutate, neighbours, register_search_sampler,
                   sample_many)

__all__ = ["PredictorSampler", "expected_improvement", "upper_confidence_bound", "ACQUISITIONS"]


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """EI of maximizing over `best`, in the scores' units; zero std gives the plain improvement."""
    from scipy.stats import norm

    std = np.maximum(std, 1e-12)
    gain = mean - best - xi
    z = gain / std
    return gain * norm.cdf(z) + std * norm.pdf(z)


ACQUISITIONS = ("ei", "ucb", "ts")


def upper_confidence_bound(mean: np.ndarray, std: np.ndarray, kappa: float = 2.0) -> np.ndarray:
    return mean + kappa * std


class PredictorSampler(ArchSampler):
    """Bayesian optimization with our predictors as the surrogate, as an Optuna sampler.

    After `n_startup` evaluated subnets (random until then), every proposal refits `predictor` (a name from
    `predictors.list_predictors()`, or a factory `space -> Predictor`) on all evaluated subnets and proposes the
    candidate with the highest acquisition: `"ei"` (expected improvement over the best score by a margin `xi`),
    `"ucb"` (mean + `kappa` * std) or `"ts"` (one independent Thompson draw per candidate); EI measured best
    (benchmarks/bench_search.py, 8 seeds). Candidates are every untried feasible subnet when the space has at most
    `exhaustive_limit` subnets, else `n_candidates` random ones plus all neighbours of the `n_parents` best and
    `n_mutations` random mutations of them; all fit the budget and none was tried before.

    `xi` is in units of the standard deviation of the scores seen so far (so it means the same for accuracy as
    a fraction or in %). The predictor defaults to `target_transform="standard"`: EI assumes a Gaussian belief in
    score units, and the rank warp's inverse squeezes exactly the top tail EI looks at (measured on the nb201
    tables of benchmarks/bench_search.py: regret at 100 queries 0.36 -> 0.26 points on `pairwise`, 0.08 -> 0 on
    `additive`, 3 seeds); a GP refits without optimizer restarts (same proposals there, half the time).
    """

    DEFAULT_ARGS = {"gp": {"target_transform": "standard", "n_restarts": 0},
                    "xgb": {"target_transform": "standard", "n_models": 4, "n_rounds": 100}}

    def __init__(self, space: SearchSpace, *, predictor: str | Callable[[SearchSpace], Any] = "gp",
                 acquisition: str = "ei", n_startup: int = 10, n_candidates: int = 1000, n_parents: int = 5,
                 n_mutations: int = 200, exhaustive_limit: int = 0, xi: float = 0.05, kappa: float = 2.0,
                 predictor_args: dict[str, Any] | None = None, seed: int | None = None,
                 feasible: Feasible | None = None) -> None:
        super().__init__(space, seed=seed, feasible=feasible)
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"unknown acquisition {acquisition!r}; allowed: {list(ACQUISITIONS)}")
        self.predictor = predictor
        defaults = self.DEFAULT_ARGS.get(predictor, {}) if isinstance(predictor, str) else {}
        self.predictor_args = {**defaults, **(predictor_args or {})}
        self.acquisition = acquisition
        self.n_startup = max(2, n_startup)
        self.n_candidates = n_candidates
        self.n_parents = n_parents
        self.n_mutations = n_mutations
        self.exhaustive_limit = exhaustive_limit
        self.xi = xi
        self.kappa = kappa
        self._new_model()  # fail now, not at trial 10, on an unknown predictor name

    def _new_model(self) -> Any:
        if callable(self.predictor):
            return self.predictor(self.space)
        from predictors import create_predictor

        return create_predictor(self.predictor, self.space, seed=0 if self.seed is None else int(self.seed),
                                **self.predictor_args)

    def candidates(self, history: History, archs: Sequence[Arch], scores: np.ndarray) -> list[Arch]:
        """Untried feasible subnets to score with the acquisition function."""
        seen = history.seen
        if self.space.size() <= self.exhaustive_limit:
            return [a for a in all_archs(self.space) if a not in seen and self.feasible(a)]
        pool: dict[Arch, None] = {}
        order = np.argsort(-scores)[: self.n_parents]
        parents = [archs[i] for i in order]
        for p in parents:
            for a in neighbours(p):
                if a not in seen and self.feasible(a):
                    pool[a] = None
        for _ in range(self.n_mutations):
            a = mutate(mutate(parents[int(self._rng.integers(len(parents)))], self._rng), self._rng)
            if a not in seen and self.feasible(a):
                pool[a] = None
        for a in sample_many(self.space, self._rng, self.n_candidates):
            if a not in seen and self.feasible(a):
                pool[a] = None
        if not pool:
            return [self.random_unseen(seen)]
        return list(pool)

    def propose(self, history: History) -> Arch:
        archs, scores = history.unique()
        if len(archs) < self.n_startup or np.ptp(scores) == 0:
            return self.random_unseen(history.seen)
        model = self._new_model()
        model.fit(archs, scores)
        pool = self.candidates(history, archs, scores)
        mean, std = model.predict(pool)
        mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        if self.acquisition == "ei":
            acq = expected_improvement(mean, std, float(scores.max()), self.xi * float(scores.std()))
        elif self.acquisition == "ucb":
            acq = upper_confidence_bound(mean, std, self.kappa)
        else:  # independent Thompson sampling: one draw from each candidate's predictive marginal
            acq = mean + std * self._rng.standard_normal(len(mean))
        best = np.flatnonzero(acq >= acq.max() - 1e-12 * max(1.0, abs(acq.max())))
        return pool[int(best[self._rng.integers(len(best))])]


@register_search_sampler
def predictor(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
              **kwargs: Any) -> BaseSampler:
    """Bayesian optimization with our XGB/GP predictors; see `PredictorSampler`."""
    return PredictorSampler(space, seed=seed, feasible=feasible, n_startup=n_startup, **kwargs)
