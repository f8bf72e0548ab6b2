"""Conformance of every registered search sampler on a conditional space, plus REA and predictor specifics."""

from __future__ import annotations

import collections

import numpy as np
import optuna
import pytest

from oneshot.study.budget import Budget, CostModel
from oneshot.study.search import search
from oneshot.study.search_samplers import (
    PredictorSampler, RegularizedEvolutionSampler, SpaceExhausted, create_search_sampler, expected_improvement,
    list_search_samplers, mutate, neighbours, random_unseen, sample_many,
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
    copies = collections.Counter(space.canonical(a) for a in everything)
    keep = [a for a in everything if copies[space.canonical(a)] == 1][17]  # a network with one spelling
    seen = set(everything) - {keep}
    assert random_unseen(space, rng, seen, max_draws=5) == keep


def test_random_unseen_never_returns_a_network_already_seen(rng):
    space = get_space("nb201_test")
    everything = list(space)
    spellings = collections.defaultdict(list)
    for a in everything:
        spellings[space.canonical(a)].append(a)
    twin = next(group for group in spellings.values() if len(group) > 1)[1]
    with pytest.raises(SpaceExhausted):  # only `twin` is unseen, and its network was seen as another string
        random_unseen(space, rng, set(everything) - {twin}, max_draws=5)


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


def test_predictor_sampler_never_proposes_a_network_evaluated_under_another_string(rng):
    space = get_space("nb201_test")
    f = make_objective(space, "additive", seed=0)
    score = {a: f(space.canonical(a)) for a in space}  # a table: equal networks share a score
    spellings = collections.Counter(space.canonical(a) for a in space)
    # Start from the best networks that have twins: their twins look like perfect neighbours to the model.
    twinned = sorted((a for a in space if spellings[space.canonical(a)] > 1), key=score.get, reverse=True)
    archs = list({space.canonical(a): a for a in twinned[:200]}.values())[:15]
    archs += sample_many(space, rng, 15)
    study = _study_with(space, archs, [score[a] for a in archs])
    sampler = PredictorSampler(space, predictor="gp", n_candidates=200, seed=0)
    for _ in range(5):
        history = sampler.history(study)
        proposal = sampler.propose(history)
        assert space.canonical(proposal) not in {space.canonical(a) for a in history.seen}
        study.add_trial(optuna.trial.create_trial(params=proposal.as_dict(), distributions=distributions(space),
                                                  value=score[proposal]))


def test_predictor_sampler_bounds_the_model_and_reuses_gp_hyperparameters(rng):
    space = get_space("nb201_test")
    f = make_objective(space, "pairwise", seed=0)
    archs = list(dict.fromkeys(sample_many(space, rng, 80)))[:60]
    y = np.array([f(a) for a in archs])
    sampler = PredictorSampler(space, predictor="gp", max_fit=20, hyper_growth=1.5, seed=0)
    model = sampler.fit_model(archs, y)
    assert model.n_train_ == 20 and "theta" not in model.hparams or model.hparams["theta"] is None
    # The model saw the 10 best subnets: it predicts each of them at least as high as the median subnet.
    top = np.argsort(-y)[:10]
    assert np.all(model.predict([archs[i] for i in top])[0] >= np.median(model.predict(archs)[0]))
    again = sampler.fit_model(archs, y)  # same size: the GP's hyperparameters are reused, not refitted
    assert again.hparams["theta"] == pytest.approx(model.theta_)
    small = PredictorSampler(space, predictor="gp", max_fit=100, hyper_growth=1.5, seed=0)
    small.fit_model(archs[:20], y[:20])
    assert small.fit_model(archs[:29], y[:29]).hparams["theta"] is not None  # grew by less than 1.5x
    assert small.fit_model(archs[:30], y[:30]).hparams["theta"] is None  # grew by 1.5x: refitted
    with pytest.raises(ValueError, match="hyper_growth"):
        PredictorSampler(space, hyper_growth=0.5)
