"""The base of our search samplers and their registry: `create_search_sampler("rea", space, seed=0)`.

Registered names (one module each; Optuna's own in `optuna_samplers.py`):

- `tpe`: Optuna's TPE with the settings our benchmark chose (see `benchmarks/bench_search.py`).
- `gp`: Optuna's Gaussian-process sampler (slow per trial; best for small query budgets).
- `nsga2`: Optuna's NSGA-II, for multi-objective studies (accuracy vs cost).
- `random`: uniform over subnets that fit the budget and were not tried yet (random search without replacement).
- `rea`: regularized evolution (Real et al. 2019): aging population, tournament selection, one-decision mutation.
- `predictor`: Bayesian optimization with our own predictors (`predictors.create_predictor`, XGB or GP) as the
  surrogate, refitted as trials arrive, maximizing expected improvement or UCB over a pool of candidate subnets;
  the default of `oneshot.search()` (best per query in the benchmark).

Our samplers (`ArchSampler` subclasses) propose a whole subnet per trial through Optuna's relative sampling: the
plan covers exactly the active decisions, and define-by-run suggestion (`oneshot.study.space.suggest_arch`)
then asks for exactly those, so conditional decisions work without special cases. They only propose subnets that
fit the budget (`feasible`) and that no trial of the study holds yet, each owns its seeded generator, and their
only other state is the study itself, so they work with any storage and with several workers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from supernets._registry import Registry
from supernets.sampling import ENUMERATE_LIMIT, SpaceExhausted, all_archs, random_unseen, sample_many
from supernets.space import Arch, SearchSpace

from oneshot.study.space import TRIAL_ATTR, arch_from_trial, distributions

__all__ = [
    "ArchSampler", "History", "Feasible", "SpaceExhausted", "ENUMERATE_LIMIT", "mutate", "neighbours",
    "random_unseen", "all_archs", "sample_many", "register_search_sampler", "create_search_sampler",
    "list_search_samplers", "supports_multi_objective", "conditional",
]

Feasible = Callable[[Arch], bool]


def _always(arch: Arch) -> bool:
    return True


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
        self._done: dict[tuple[str, int], History] = {}  # per study: what its finished prefix of trials holds
        self._done_upto: dict[tuple[str, int], int] = {}

    def __str__(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ optuna glue
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(distributions(self.space))

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space or "fixed_params" in trial.system_attrs:
            return {}
        if len(study.directions) > 1 and not self.supports_multi_objective:
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
        # Keyed by the study object a search holds for its whole run (public attributes only); a study that holds
        # fewer trials than were read is another one reusing the name and key, so it is read afresh.
        key = (study.study_name, id(study))
        trials = study.get_trials(deepcopy=False)  # in trial-number order
        done = self._done.get(key)
        if done is None or self._done_upto[key] > len(trials):
            done = self._done[key] = History()
            self._done_upto[key] = 0
        multi = len(study.directions) > 1
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

    def feasible_many(self, archs: Sequence[Arch]) -> list[bool]:
        """`feasible` of each subnet; asked once for the whole batch when it can be (a latency model predicts a
        thousand candidates in about the time of one)."""
        many = getattr(self.feasible, "many", None)
        return list(many(archs)) if callable(many) else [self.feasible(a) for a in archs]

    def random_unseen(self, history: History) -> Arch:
        """A uniformly drawn subnet that fits the budget and is no network the history has tried."""
        return random_unseen(self.space, self._rng, history.seen, self.feasible, self.max_draws, history.networks)

    def propose(self, history: History) -> Arch:
        raise NotImplementedError


# Listed in registration order: Optuna's tuned samplers first, then ours (as `search` documents them).
_SEARCH_SAMPLERS: Registry[Callable[..., BaseSampler]] = Registry("sampler", key=lambda fn: fn.__name__, sort=False)


def register_search_sampler(fn: Callable[..., BaseSampler]) -> Callable[..., BaseSampler]:
    """Register a factory `fn(space, *, seed, n_startup, feasible, **kwargs) -> BaseSampler` under its name."""
    return _SEARCH_SAMPLERS.register(fn)


def list_search_samplers(pattern: str = "*") -> list[str]:
    """Registered search sampler names."""
    return _SEARCH_SAMPLERS.list(pattern)


def create_search_sampler(name: str, space: SearchSpace, *, seed: int | None = 0, n_startup: int = 10,
                          feasible: Feasible | None = None, **kwargs: Any) -> BaseSampler:
    """A new sampler by name; `kwargs` are the sampler's own settings (e.g. `population_size` for rea)."""
    if name not in _SEARCH_SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; allowed: {list_search_samplers()}")
    factory = _SEARCH_SAMPLERS.get(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory(space, seed=seed, n_startup=n_startup, feasible=feasible, **kwargs)


def conditional(space: SearchSpace) -> bool:
    """Whether some decision of `space` exists only for some values of others (e.g. elastic depth)."""
    return any(d.when is not None for d in space.decisions)


def supports_multi_objective(sampler: BaseSampler) -> bool:
    """Whether a sampler can drive a study with several objectives (accuracy and cost)."""
    return getattr(sampler, "supports_multi_objective", True)  # Optuna's TPE, GP, NSGA-II and random all can
