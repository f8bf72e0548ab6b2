"""Conformance of every registered search sampler on a conditional space, plus REA and predictor specifics."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from oneshot.study.budget import Budget, CostModel
from oneshot.study.search import search
from oneshot.study.search_samplers import (
    PredictorSampler, RegularizedEvolutionSampler, create_search_sampler, expected_improvement, list_search_samplers,
    mutate, neighbours, random_unseen, sample_many,
)
from oneshot.study.space import distributions, suggest_arch
from predictors.synthetic import make_objective
from supernets import cost, get_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
FAST = dict(n_startup=4)  # fewer random trials so model-based samplers get to propose within a short test
QUICK_ARGS = {"predictor": {"predictor_args": {"n_restarts": 0}, "n_candidates": 200}}


@pytest.fixture(scope="module")
def mbv3():
    return get_space("mbv3_test")  # conditional: block decisions exist only when the stage is deep enough


def test_registry_names_and_unknown_name_lists_them(mbv3):
    assert set(list_search_samplers()) >= {"tpe", "gp", "nsga2", "random", "rea", "predictor"}
    with pytest.raises(ValueError, match=r"unknown sampler 'cmaes'.*allowed: \['tpe'"):
        create_search_sampler("cmaes", mbv3)


@pytest.mark.parametrize("name", list_search_samplers())
def test_sampler_conformance(name, mbv3):
    """Each sampler: only active decisions, valid distinct subnets within budget, deterministic by seed."""
    flops = sorted(cost(a).flops for a in mbv3)
    limit = flops[len(flops) // 2]
    f = make_objective(mbv3, "pairwise", seed=1)
    n = 8 if name == "gp" else 14
    runs = []
    for _ in range(2):
        calls = []

        def objective(arch):
            assert cost(arch).flops <= limit, f"{arch} over budget reached the objective"
            calls.append(arch)
            return f(arch)

        result = search(mbv3, objective, sampler=name, budgets={"flops": limit}, n_trials=n, seed=3,
                        storage="memory", sampler_args=QUICK_ARGS.get(name), **FAST)
        assert len(calls) == len(set(calls)) == n  # n distinct queries, none repeated
        for t in result.studies[0].get_trials():
            arch = mbv3.make(t.params)
            assert set(t.params) == set(arch.as_dict()), "a trial carries an inactive decision"
            assert suggest_arch(optuna.trial.FixedTrial(t.params), mbv3) == arch
        runs.append([str(a) for a in calls])
    assert runs[0] == runs[1], "same seed, different proposals"


def test_mutate_changes_one_active_decision(rng):
    space = get_space("nb201_test")
    for _ in range(50):
        a = space.sample(rng)
        b = mutate(a, rng)
        assert sum(a[k] != b[k] for k in a.as_dict()) == 1
    a = space.sample(rng)
    assert len(set(neighbours(a))) == sum(len(d.choices) - 1 for d in space.decisions)


def test_mutate_and_sample_many_keep_conditional_subnets_canonical(mbv3, rng):
    for a in sample_many(mbv3, rng, 200):
        b = mutate(a, rng)
        assert mbv3.make(b.as_dict()) == b and mbv3.make(a.as_dict()) == a


def test_random_unseen_lists_the_rest_when_nearly_exhausted(rng):
    space = get_space("nb201_test")
    everything = list(space)
    keep = everything[123]
    seen = set(everything) - {keep}
    assert random_unseen(space, rng, seen, max_draws=5) == keep


def _study_with(space, archs, scores):
    study = optuna.create_study(direction="maximize")
    dists = distributions(space)
    for a, s in zip(archs, scores):
        study.add_trial(optuna.trial.create_trial(params=a.as_dict(), distributions={k: dists[k] for k in a.as_dict()},
                                                  value=s))
    return study


def test_rea_mutates_a_tournament_winner_of_the_recent_population(rng):
    space = get_space("nb201_test")
    f = make_objective(space, "additive", seed=0)
    archs = sample_many(space, rng, 30)
    study = _study_with(space, archs, [f(a) for a in archs])
    sampler = RegularizedEvolutionSampler(space, population_size=10, tournament_size=10, seed=0)
    child = sampler.propose(sampler.history(study))
    best_recent = max(archs[-10:], key=f)  # tournament over the whole population: its best is the parent
    assert child not in archs
    assert sum(child[k] != best_recent[k] for k in child.as_dict()) == 1


def test_predictor_sampler_proposes_new_feasible_subnets_with_real_predictor(rng):
    space = get_space("nb201_test")
    f = make_objective(space, "additive", seed=0)
    budget = Budget.of(flops=float(np.median([cost(a).flops for a in sample_many(space, rng, 500)])))
    costs = CostModel()
    archs = [a for a in sample_many(space, rng, 200) if budget.admits(costs(a))][:20]
    study = _study_with(space, archs, [f(a) for a in archs])
    sampler = PredictorSampler(space, predictor="gp", predictor_args={"n_restarts": 0}, n_startup=5,
                               n_candidates=300, seed=0, feasible=lambda a: budget.admits(costs(a)))
    proposals = {sampler.propose(sampler.history(study)) for _ in range(3)}
    assert all(p not in archs and budget.admits(costs(p)) for p in proposals)
    # The surrogate has learned something: proposals beat the median of what it was fitted on.
    assert np.mean([f(p) for p in proposals]) > np.median([f(a) for a in archs])
    with pytest.raises(ValueError, match="unknown predictor"):
        PredictorSampler(space, predictor="nope")


def test_expected_improvement_properties():
    mean = np.array([0.5, 0.6, 0.7])
    assert np.all(np.diff(expected_improvement(mean, np.full(3, 0.05), best=0.6)) > 0)  # increasing in mean
    assert expected_improvement(np.array([0.5]), np.array([0.1]), 0.6)[0] > \
        expected_improvement(np.array([0.5]), np.array([0.01]), 0.6)[0]  # and in std below the best
    np.testing.assert_allclose(expected_improvement(mean, np.zeros(3), 0.6), [0, 0, 0.1], atol=1e-9)


def test_our_samplers_refuse_multi_objective_studies(mbv3):
    with pytest.raises(ValueError, match="cannot drive the multi-objective study"):
        search(mbv3, make_objective(mbv3), sampler="rea", budgets={"flops": [2e5, 3e5]}, strategy="pareto",
               n_trials=4, storage="memory")
