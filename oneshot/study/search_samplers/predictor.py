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

    After `n_startup` evaluated subnets (random until then), every proposal fits `predictor` (a name from
    `predictors.list_predictors()`, or a factory `space -> Predictor`) on the evaluated subnets (`fit_model`) and
    proposes the candidate with the highest acquisition: `"ei"` (expected improvement over the best score by a
    margin `xi`), `"ucb"` (mean + `kappa` * std) or `"ts"` (one independent Thompson draw per candidate).
    Candidates are every untried feasible subnet when the space has at most `exhaustive_limit` subnets, else
    `n_candidates` random ones plus all neighbours of the `n_parents` best and `n_mutations` random mutations of
    them; all fit the budget, and none is a network tried before under any spelling (`space.canonical`): to the
    model, a twin of the incumbent looks like its closest neighbour and has a high EI, a wasted evaluation.

    The acquisition is computed in the predictor's latent units (`predict_latent`: rank-warped, standardized
    scores, where its belief is Gaussian), the incumbent mapped there too, and `xi` is in those units. Fitting
    the rank warp but acquiring in score units, as before, squeezed the top tail EI looks at, so the sampler had
    used standardized scores instead; on a real table that costs ranking quality (NAS-Bench-Macro, 100 networks,
    GP Kendall tau 0.76 standardized vs 0.88 rank-warped) because a long low tail (45% to 93% there, 10% cells
    on NAS-Bench-201) dominates a squared loss. Measured in benchmarks/bench_search.py (NAS-Bench-Macro, 6 seeds,
    best found at 25 / 50 / 100 networks): standardized, hyperparameters refitted every proposal, 92.98 / 93.12 /
    93.12 (optimum found 5/6); latent EI on the rank warp with `hyper_growth=1.2`, 93.10 / 93.13 / 93.13 (6/6).

    `max_fit` and `hyper_growth` bound the cost per proposal on long searches (see `fit_model`); a GP refits
    without optimizer restarts (same proposals in the benchmark, half the time).
    """

    DEFAULT_ARGS = {"gp": {"n_restarts": 0}, "xgb": {"n_models": 4, "n_rounds": 100}}

    def __init__(self, space: SearchSpace, *, predictor: str | Callable[[SearchSpace], Any] = "gp",
                 acquisition: str = "ei", n_startup: int = 10, n_candidates: int = 1000, n_parents: int = 5,
                 n_mutations: int = 200, exhaustive_limit: int = 0, xi: float = 0.05, kappa: float = 2.0,
                 hyper_growth: float = 1.2, max_fit: int = 300,
                 predictor_args: dict[str, Any] | None = None, seed: int | None = None,
                 feasible: Feasible | None = None) -> None:
        super().__init__(space, seed=seed, feasible=feasible)
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"unknown acquisition {acquisition!r}; allowed: {list(ACQUISITIONS)}")
        if hyper_growth < 1 or max_fit < 10:
            raise ValueError(f"need hyper_growth >= 1 and max_fit >= 10, got {hyper_growth} and {max_fit}")
        self.hyper_growth = hyper_growth
        self.max_fit = max_fit
        self._theta: tuple[int, list[float]] | None = None  # (subnets it was fitted on, GP log-hyperparameters)
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

    def _new_model(self, **extra: Any) -> Any:
        if callable(self.predictor):
            return self.predictor(self.space)
        from predictors import create_predictor

        return create_predictor(self.predictor, self.space, seed=0 if self.seed is None else int(self.seed),
                                **{**self.predictor_args, **extra})

    def fit_model(self, archs: Sequence[Arch], scores: np.ndarray) -> Any:
        """The surrogate fitted on (a subset of) the evaluated subnets, within a bounded cost per proposal.

        Above `max_fit` subnets the model sees the best `max_fit // 2` and a random sample of the rest (the top
        is where the next proposal is decided; the sample keeps the global trend). A GP's marginal-likelihood
        fit, the dominant cost, is redone only when the data has grown by `hyper_growth` since the last one;
        in between, the GP conditions on all its data with those hyperparameters (exact, one Cholesky).
        """
        if len(archs) > self.max_fit:
            order = np.argsort(-scores, kind="stable")
            top, rest = order[: self.max_fit // 2], order[self.max_fit // 2:]
            keep = np.concatenate([top, self._rng.choice(rest, self.max_fit - len(top), replace=False)])
            archs, scores = [archs[i] for i in keep], scores[keep]
        reuse = (self.predictor == "gp" and "theta" not in self.predictor_args and self._theta is not None
                 and len(archs) < self._theta[0] * self.hyper_growth)
        model = self._new_model(theta=self._theta[1]) if reuse else self._new_model()
        model.fit(archs, scores)
        if not reuse and hasattr(model, "theta_"):
            self._theta = (len(archs), model.theta_)
        return model

    def candidates(self, history: History, archs: Sequence[Arch], scores: np.ndarray) -> list[Arch]:
        """Untried feasible subnets to score with the acquisition function."""
        seen = history.seen
        if self.exhaustive_limit and self.space.size() <= self.exhaustive_limit:  # size() counts: only if asked
            drawn: list[Arch] = list(all_archs(self.space))
        else:
            order = np.argsort(-scores)[: self.n_parents]
            parents = [archs[i] for i in order]
            drawn = [a for p in parents for a in neighbours(p)]
            drawn += [mutate(mutate(parents[int(self._rng.integers(len(parents)))], self._rng), self._rng)
                      for _ in range(self.n_mutations)]
            drawn += sample_many(self.space, self._rng, self.n_candidates)
        # Every new candidate is checked against the budget in one batch (a latency model predicts them together).
        new = [a for a in dict.fromkeys(drawn) if a not in seen]
        pool = [a for a, ok in zip(new, self.feasible_many(new)) if ok]
        if not pool:
            return [self.random_unseen(history)]
        return pool

    def propose(self, history: History) -> Arch:
        archs, scores = history.unique()
        if len(archs) < self.n_startup or np.ptp(scores) == 0:
            return self.random_unseen(history)
        model = self.fit_model(archs, scores)
        pool = self.candidates(history, archs, scores)
        if hasattr(model, "predict_latent"):
            # Acquire where the model's belief is Gaussian: its latent (warped) units, incumbent mapped there.
            mean, std = model.predict_latent(pool)
            best, spread = float(model.to_latent([scores.max()])[0]), 1.0
        else:  # a user's model with only `predict`: its belief is taken as Gaussian in score units
            mean, std = model.predict(pool)
            best, spread = float(scores.max()), float(scores.std())
        mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        if self.acquisition == "ei":
            acq = expected_improvement(mean, std, best, self.xi * spread)
        elif self.acquisition == "ucb":
            acq = upper_confidence_bound(mean, std, self.kappa)
        else:  # independent Thompson sampling: one draw from each candidate's predictive marginal
            acq = mean + std * self._rng.standard_normal(len(mean))
        # Highest acquisition first (ties in random order), skipping networks tried under another string: an
        # equivalent of the incumbent looks like a close neighbour of it to the model and has a high EI.
        for i in np.lexsort((self._rng.random(len(acq)), -acq)):
            if not history.tried(pool[i]):
                return pool[i]
        return self.random_unseen(history)


@register_search_sampler
def predictor(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
              **kwargs: Any) -> BaseSampler:
    """Bayesian optimization with our XGB/GP predictors; see `PredictorSampler`."""
    return PredictorSampler(space, seed=seed, feasible=feasible, n_startup=n_startup, **kwargs)
