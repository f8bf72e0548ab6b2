"""Optuna samplers over a `SearchSpace`, found by name: `create_sampler("rea", space, seed=0)`.

Registered names:

- `tpe`: Optuna's TPE with the settings our benchmark chose (see `benchmarks/bench_search.py`).
- `gp`: Optuna's Gaussian-process sampler (slow per trial; best for small query budgets).
- `nsga2`: Optuna's NSGA-II, for multi-objective studies (accuracy vs cost).
- `random`: uniform over subnets that fit the budget and were not tried yet (random search without replacement).
- `rea`: regularized evolution (Real et al. 2019): aging population, tournament selection, one-decision mutation.
- `predictor`: Bayesian optimization with our own predictors (`predictors.create_predictor`, XGB or GP) as the
  surrogate, refitted as trials arrive, maximizing expected improvement or UCB over a pool of candidate subnets;
  the default of `oneshot.search` (best per query in the benchmark, on NAS-Bench-Macro and the synthetic tables).

Our samplers (`ArchSampler` subclasses) propose a whole subnet per trial through Optuna's relative sampling: the
plan covers exactly the active decisions, and define-by-run suggestion (`oneshot.search_space.suggest_arch`)
then asks for exactly those, so conditional decisions work without special cases. They only propose subnets that
fit the budget (`feasible`) and whose network no trial of the study holds yet (equivalent spellings, as
`space.canonical` says, count as held), each owns its seeded generator, and their only other state is the study
itself (plus a cache of GP hyperparameters in `predictor`), so they work with any storage and with several workers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from supernets.space import Arch, SearchSpace

from .search_space import TRIAL_ATTR, arch_from_trial, distributions

__all__ = [
    "ArchSampler", "RandomArchSampler", "RegularizedEvolutionSampler", "PredictorSampler", "SpaceExhausted",
    "History", "mutate", "neighbours", "random_unseen", "all_archs", "register_sampler", "create_sampler", "list_samplers",
]

Feasible = Callable[[Arch], bool]
ENUMERATE_LIMIT = 200_000  # spaces up to this many subnets may be listed whole (nb201: 15,625)


class SpaceExhausted(RuntimeError):
    """Every subnet that fits the budget has been tried already."""


def _always(arch: Arch) -> bool:
    return True


@lru_cache(maxsize=8)
def all_archs(space: SearchSpace) -> tuple[Arch, ...]:
    """Every subnet of a small space, listed once per process."""
    if space.size() > ENUMERATE_LIMIT:
        raise ValueError(f"space {space.name!r} has {space.size():,} subnets, too many to list")
    return tuple(space)


def _networks(space: SearchSpace, archs: set[Arch] | frozenset[Arch]) -> set[Arch] | None:
    """Canonical forms of `archs`, or None for a space where every arch is its own network."""
    return None if space.canonicalizer is None else {space.canonical(a) for a in archs}


def random_unseen(space: SearchSpace, rng: np.random.Generator, seen: set[Arch] | frozenset[Arch],
                  feasible: Feasible = _always, max_draws: int = 2000, networks: set[Arch] | None = None) -> Arch:
    """A uniform subnet that is `feasible`, not in `seen` and no network of `seen` again (`space.canonical`).

    `networks` is the set of canonical forms of `seen` when the caller keeps it (else it is computed here).
    Raises SpaceExhausted when no such subnet is left.
    """
    if networks is None:
        networks = _networks(space, seen)

    def new(a: Arch) -> bool:
        return a not in seen and (networks is None or space.canonical(a) not in networks) and feasible(a)

    for _ in range(max_draws):
        a = space.sample(rng)
        if new(a):
            return a
    if space.size() <= ENUMERATE_LIMIT:  # tight budget or nearly exhausted: list what is left
        pool = [a for a in all_archs(space) if new(a)]
        if pool:
            return pool[int(rng.integers(len(pool)))]
        raise SpaceExhausted(f"every subnet of {space.name!r} within the budget has been evaluated")
    raise SpaceExhausted(f"no new subnet within the budget found in {max_draws} random draws")


def sample_many(space: SearchSpace, rng: np.random.Generator, n: int) -> list[Arch]:
    """`n` uniform subnets (as `space.sample`, with one generator call for the whole batch)."""
    u = rng.random((n, len(space.decisions)))
    out = []
    for row in u:
        chosen: dict[str, Any] = {}
        for d, x in zip(space.decisions, row):
            if d.when is None or space.is_active(d, chosen):
                chosen[d.name] = d.choices[int(x * len(d.choices))]
        out.append(Arch(space, tuple(chosen.items())))
    return out


def mutate(arch: Arch, rng: np.random.Generator) -> Arch:
    """Change one active decision to another of its choices; decisions this activates get random choices."""
    space = arch.space
    values = arch.as_dict()
    movable = [d for d in space.decisions if d.name in values and len(d.choices) > 1]
    if not movable:
        return arch
    d = movable[int(rng.integers(len(movable)))]
    others = [c for c in d.choices if c != values[d.name]]
    values[d.name] = others[int(rng.integers(len(others)))]
    chosen: dict[str, Any] = {}
    for dec in space.decisions:
        if space.is_active(dec, chosen):
            chosen[dec.name] = values[dec.name] if dec.name in values else dec.choices[int(rng.integers(len(dec.choices)))]
    return Arch(space, tuple(chosen.items()))


def neighbours(arch: Arch) -> list[Arch]:
    """Every subnet one decision away (decisions this activates take their first choice)."""
    space = arch.space
    out = []
    for d in space.decisions:
        if d.name not in arch:
            continue
        for c in d.choices:
            if c == arch[d.name]:
                continue
            values = arch.as_dict()
            values[d.name] = c
            chosen: dict[str, Any] = {}
            for dec in space.decisions:
                if space.is_active(dec, chosen):
                    chosen[dec.name] = values.get(dec.name, dec.choices[0])
            out.append(Arch(space, tuple(chosen.items())))
    return out


@dataclass
class History:
    """What a study knows: evaluated feasible subnets with their scores (trial order) and every subnet proposed.

    `networks` holds the canonical forms of `seen` (`space.canonical`): a subnet equivalent to one proposed
    before is the same network, and evaluating it again would only repeat a known score.
    """

    evaluated: list[tuple[Arch, float]] = field(default_factory=list)
    seen: set[Arch] = field(default_factory=set)
    networks: set[Arch] = field(default_factory=set)

    def tried(self, arch: Arch) -> bool:
        """Whether `arch`, or a subnet equivalent to it, was proposed already."""
        return arch in self.seen or arch.space.canonical(arch) in self.networks

    def best(self) -> float:
        return max(s for _, s in self.evaluated)

    def unique(self) -> tuple[list[Arch], np.ndarray]:
        """Evaluated subnets once each (first score kept) and their scores."""
        scores: dict[Arch, float] = {}
        for a, s in self.evaluated:
            scores.setdefault(a, s)
        return list(scores), np.array(list(scores.values()), dtype=float)


class ArchSampler(BaseSampler):
    """Base of samplers that propose whole subnets: subclasses implement `propose(history) -> Arch`.

    `feasible` says whether a subnet fits the search's budget (the search sets it); `seed` seeds this sampler's
    own generator. Trials whose parameters were fixed by `enqueue_trial` are left alone.
    """

    supports_multi_objective = False

    def __init__(self, space: SearchSpace, *, seed: int | None = None, feasible: Feasible | None = None,
                 max_draws: int = 2000) -> None:
        self.space = space
        self.seed = seed
        self.feasible: Feasible = feasible or _always
        self.max_draws = max_draws  # rejection draws before listing the space (small spaces) or giving up
        self._rng = np.random.default_rng(seed)
        self._done: dict[tuple[int, int], History] = {}  # per study: what its finished prefix of trials holds
        self._done_upto: dict[tuple[int, int], int] = {}

    def __str__(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ optuna glue
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(distributions(self.space))

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space or "fixed_params" in trial.system_attrs:
            return {}
        if study._is_multi_objective() and not self.supports_multi_objective:
            raise ValueError(f"sampler {self} is single-objective; use nsga2, tpe or random for a multi-objective "
                             "study (strategy='pareto')")
        return self.propose(self.history(study)).as_dict()

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        # Only reached for a parameter outside the plan (not a decision of our space): draw it uniformly.
        choices = getattr(param_distribution, "choices", None)
        if choices is None:
            return optuna.samplers.RandomSampler(seed=int(self._rng.integers(2**31))).sample_independent(
                study, trial, param_name, param_distribution)
        return choices[int(self._rng.integers(len(choices)))]

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()

    def state_dict(self) -> dict[str, Any]:
        """The generator state (everything else this sampler knows lives in the study)."""
        return {"rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]

    # ------------------------------------------------------------------ helpers for subclasses
    def history(self, study: Study) -> History:
        """Evaluated feasible subnets and every proposed subnet of the study (other workers' included).

        Trials are read once each: a finished prefix of the study is kept per study, only later trials are
        read again (they may still be running).
        """
        key = (id(study._storage), study._study_id)
        done = self._done.get(key)
        if done is None:
            done = self._done[key] = History()
            self._done_upto[key] = 0
        trials = study.get_trials(deepcopy=False)  # in trial-number order
        multi = study._is_multi_objective()
        pos = self._done_upto[key]
        while pos < len(trials) and trials[pos].state.is_finished():
            self._read(trials[pos], done, multi)
            pos += 1
        self._done_upto[key] = pos
        h = History(list(done.evaluated), set(done.seen), set(done.networks))
        for t in trials[pos:]:
            self._read(t, h, multi)
        return h

    def _read(self, t: FrozenTrial, into: History, multi: bool) -> None:
        arch = arch_from_trial(self.space, t)
        if arch is None:
            return
        into.seen.add(arch)
        into.networks.add(self.space.canonical(arch))
        if (t.state == TrialState.COMPLETE and not multi and t.values
                and t.user_attrs.get(TRIAL_ATTR, {}).get("status") != "duplicate"
                and all(v <= 0 for v in t.constraints.values())):
            into.evaluated.append((arch, float(t.values[0])))

    def random_unseen(self, history: History) -> Arch:
        """A uniformly drawn subnet that fits the budget and is no network the history has tried."""
        return random_unseen(self.space, self._rng, history.seen, self.feasible, self.max_draws, history.networks)

    def propose(self, history: History) -> Arch:
        raise NotImplementedError


class RandomArchSampler(ArchSampler):
    """Random search without replacement: each trial a uniform subnet that fits the budget and is new."""

    supports_multi_objective = True

    def propose(self, history: History) -> Arch:
        return self.random_unseen(history)


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
            return [self.random_unseen(history)]
        return list(pool)

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


# --------------------------------------------------------------------------- registry
_SAMPLERS: dict[str, Callable[..., BaseSampler]] = {}


def register_sampler(fn: Callable[..., BaseSampler]) -> Callable[..., BaseSampler]:
    """Register a factory `fn(space, *, seed, n_startup, feasible, **kwargs) -> BaseSampler` under its name."""
    if fn.__name__ in _SAMPLERS:
        raise ValueError(f"sampler {fn.__name__!r} is already registered")
    _SAMPLERS[fn.__name__] = fn
    return fn


def list_samplers() -> list[str]:
    """Registered sampler names."""
    return list(_SAMPLERS)


def create_sampler(name: str, space: SearchSpace, *, seed: int | None = 0, n_startup: int = 10,
                   feasible: Feasible | None = None, **kwargs: Any) -> BaseSampler:
    """A new sampler by name; `kwargs` are the sampler's own settings (e.g. `population_size` for rea)."""
    try:
        factory = _SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; allowed: {list_samplers()}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory(space, seed=seed, n_startup=n_startup, feasible=feasible, **kwargs)


def _conditional(space: SearchSpace) -> bool:
    return any(d.when is not None for d in space.decisions)


@register_sampler
def tpe(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
        **kwargs: Any) -> BaseSampler:
    """TPE as benchmarked best: multivariate (joint over decisions), grouped on conditional spaces."""
    settings: dict[str, Any] = dict(multivariate=True, group=_conditional(space), n_startup_trials=n_startup,
                                    n_ei_candidates=24, constant_liar=True)
    settings.update(kwargs)
    return optuna.samplers.TPESampler(seed=seed, **settings)


@register_sampler
def gp(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
       **kwargs: Any) -> BaseSampler:
    """Optuna's GP sampler (log-EI; the constrained variant when the study sets constraints)."""
    settings: dict[str, Any] = dict(n_startup_trials=n_startup, warn_independent_sampling=False)
    settings.update(kwargs)
    return optuna.samplers.GPSampler(seed=seed, **settings)


@register_sampler
def nsga2(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
          **kwargs: Any) -> BaseSampler:
    """NSGA-II with a population sized for searches of a few hundred queries."""
    settings: dict[str, Any] = dict(population_size=20)
    settings.update(kwargs)
    return optuna.samplers.NSGAIISampler(seed=seed, **settings)


@register_sampler
def random(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
           **kwargs: Any) -> BaseSampler:
    """Uniform over untried subnets within the budget: the baseline every other sampler must beat."""
    return RandomArchSampler(space, seed=seed, feasible=feasible, **kwargs)


@register_sampler
def rea(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
        **kwargs: Any) -> BaseSampler:
    """Regularized evolution; see `RegularizedEvolutionSampler`."""
    return RegularizedEvolutionSampler(space, seed=seed, feasible=feasible, **kwargs)


@register_sampler
def predictor(space: SearchSpace, *, seed: int | None, n_startup: int, feasible: Feasible | None,
              **kwargs: Any) -> BaseSampler:
    """Bayesian optimization with our XGB/GP predictors; see `PredictorSampler`."""
    return PredictorSampler(space, seed=seed, feasible=feasible, n_startup=n_startup, **kwargs)


def supports_multi_objective(sampler: BaseSampler) -> bool:
    """Whether a sampler can drive a study with several objectives (accuracy and cost)."""
    return getattr(sampler, "supports_multi_objective", True)  # Optuna's TPE, GP, NSGA-II and random all can
