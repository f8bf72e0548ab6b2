"""`oneshot.search`: budgets, errors, results against brute force, strategies, records, CLI."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from oneshot import search as search_from_package
from oneshot.study.budget import Budget, CostModel, parse_budget_text, parse_budgets
from oneshot.cli import main
from oneshot.study.search import search
from oneshot.study.results import SearchResult
from predictors import create_predictor
from predictors.synthetic import make_objective
from supernets import Arch, cost, get_space

from counting import counted

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201_test")


@pytest.fixture(scope="module")
def mbv3():
    return get_space("mbv3_test")


def _quantile_flops(space, q):
    return float(np.quantile([cost(a).flops for a in space], q))


# --------------------------------------------------------------------------- budgets
@pytest.mark.parametrize("given, expected", [
    (None, [{}]),
    ({"flops": 1e8}, [{"flops": 1e8}]),
    ({"flops": [2e8, 5e7]}, [{"flops": 5e7}, {"flops": 2e8}]),  # tightest first
    ({"flops": [5e7, 2e8], "params": 1e6}, [{"flops": 5e7, "params": 1e6}, {"flops": 2e8, "params": 1e6}]),
    ({"macs": [1, 2], "params": [3, 4]}, [{"macs": 1, "params": 3}, {"macs": 2, "params": 4}]),
])
def test_parse_budgets(given, expected):
    assert [b.as_dict() for b in parse_budgets(given)] == expected


@pytest.mark.parametrize("given, match", [
    ({"flop": 1e8}, r"unknown cost 'flop'.*known costs: \['macs', 'flops', 'params'\]"),
    ({"flops": [1, 2], "params": [1, 2, 3]}, "same number of limits"),
    ({"flops": -5}, "must be a positive number"),
    ({"flops": []}, "has no limits"),
    ({"flops": "many"}, "must be numbers"),
])
def test_parse_budgets_rejects(given, match):
    with pytest.raises(ValueError, match=match):
        parse_budgets(given)


def test_budget_text_and_violations():
    assert parse_budget_text(["flops=50e6,100e6", "params=1e6"]) == {"flops": [5e7, 1e8], "params": [1e6]}
    with pytest.raises(ValueError, match="expected COST=LIMIT"):
        parse_budget_text(["flops"])
    b = Budget.of(flops=100.0)
    assert b.violations({"flops": 150.0}) == {"flops": 0.5} and not b.admits({"flops": 150.0})
    assert Budget.of(flops=200.0).contains(b) and not b.contains(Budget.of(flops=200.0))


def test_impossible_budget_names_budget_and_cheapest_cost(nb201):
    cheapest = cost(nb201.smallest()).flops
    with pytest.raises(ValueError, match=rf"budget flops<=1000 cannot be met.*costs flops={cheapest:,.0f} > 1000"):
        search(nb201, make_objective(nb201), budgets={"flops": [1e3, 1e9]}, storage="memory")


def test_argument_errors(nb201):
    f = make_objective(nb201)
    with pytest.raises(ValueError, match=r"unknown sampler 'bayes'; allowed: \['tpe', 'gp', 'nsga2'"):
        search(nb201, f, sampler="bayes", storage="memory")
    with pytest.raises(ValueError, match=r"unknown strategy 'both'; allowed: \['constrained', 'pareto'\]"):
        search(nb201, f, strategy="both", storage="memory")
    with pytest.raises(ValueError, match="unknown space 'nb999'"):
        search("nb999", f, storage="memory")
    with pytest.raises(ValueError, match="needs a checkpoint file"):
        search(nb201, "supernet", storage="memory")
    with pytest.raises(ValueError, match="unknown objective 'accuracy'"):
        search(nb201, "accuracy", storage="memory")


def test_extra_cost_latency_table_is_budgeted(nb201, rng):
    latency = {str(a): float(i % 7) for i, a in enumerate(nb201)}  # a measured table, in ms
    seen = []
    result = search(nb201, lambda a: seen.append(a) or 0.5 + 0.01 * latency[str(a)], budgets={"latency": 3.0},
                    costs={"latency": latency}, n_trials=20, sampler="tpe", storage="memory")
    assert seen and all(latency[str(a)] <= 3.0 for a in seen)
    assert result.best(latency=3.0).costs["latency"] <= 3.0


# --------------------------------------------------------------------------- search behaviour
@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_infeasible_proposals_never_reach_objective_and_are_told_infeasible(sampler, mbv3):
    limit = _quantile_flops(mbv3, 0.15)  # tight: Optuna's own samplers will propose over-budget subnets
    f = make_objective(mbv3, seed=2)

    def objective(arch):
        assert cost(arch).flops <= limit
        return f(arch)

    result = search(mbv3, objective, budgets={"flops": limit}, sampler=sampler, n_trials=25, seed=1,
                    storage="memory", max_rejects=5)
    assert len(result) == 25
    for t in result.studies[0].get_trials():
        info = t.user_attrs["oneshot"]
        over = cost(mbv3.make(t.params)).flops > limit
        assert (info["status"] == "infeasible") == over
        assert (t.constraints["flops"] > 0) == over


def test_best_and_pareto_match_brute_force(nb201):
    f = make_objective(nb201, "pairwise", seed=4)
    result = search(nb201, f, sampler="random", n_trials=400, seed=0, storage="memory")
    recs = result.records
    for q in (0.1, 0.4, 0.8):
        limit = _quantile_flops(nb201, q)
        fits = [r for r in recs if r.flops <= limit]
        assert result.best(flops=limit).score == max(r.score for r in fits)
    assert result.best().score == max(r.score for r in recs)
    front = result.pareto()
    brute = [r for r in recs if not any((o.flops <= r.flops and o.score >= r.score)
                                        and (o.flops < r.flops or o.score > r.score) for o in recs)]
    assert sorted(map(str, (r.arch for r in front))) == sorted(map(str, (r.arch for r in brute)))
    assert [r.flops for r in front] == sorted(r.flops for r in front)
    assert all(a.score < b.score for a, b in zip(front, front[1:]))
    with pytest.raises(ValueError, match="no evaluated subnet fits budget flops<=1"):
        result.best(flops=1)


def test_exhaustive_search_finds_global_best_per_budget(mbv3):
    """Asking for more subnets than fit the budget evaluates all of them once, then stops."""
    f = make_objective(mbv3, "pairwise", seed=5)
    limit = _quantile_flops(mbv3, 0.1)
    everything = [a for a in mbv3 if cost(a).flops <= limit]
    result = search(mbv3, f, budgets={"flops": limit}, sampler="rea", n_trials=10_000, storage="memory")
    assert len(result) == len(everything)
    assert result.best(flops=limit).score == max(f(a) for a in everything)
    brute_front = {str(a) for a in everything
                   if not any(cost(o).flops <= cost(a).flops and f(o) >= f(a) and (cost(o).flops, f(o)) !=
                              (cost(a).flops, f(a)) for o in everything)}
    assert {str(r.arch) for r in result.pareto()} == brute_front


@pytest.mark.parametrize("strategy", ["constrained", "pareto"])
def test_many_budgets(strategy, nb201):
    f = make_objective(nb201, "pairwise", seed=6)
    limits = [_quantile_flops(nb201, q) for q in (0.2, 0.5, 0.8)]
    calls = []
    result = search(nb201, lambda a: calls.append(a) or f(a), budgets={"flops": limits}, sampler="tpe",
                    n_trials=45, seed=0, storage="memory", strategy=strategy)
    assert len(calls) == len(set(calls)) == len(result) == 45  # n_trials counts distinct queries in total
    assert all(cost(a).flops <= limits[-1] for a in calls)
    per = result.best_per_budget()
    assert list(per) == [f"flops<={v:g}" for v in limits]
    for v in limits:
        assert per[f"flops<={v:g}"].flops <= v
    if strategy == "constrained":
        names = [s.study_name for s in result.studies]
        tag = "+".join(f"flops<={v:g}" for v in limits)
        assert names == [f"nb201_test-objective-{tag}-seed0[flops<={v:g}]" for v in limits]
        # Later studies start from every earlier evaluation that fits them.
        loose = result.studies[-1].get_trials()
        cached = [t for t in loose if t.user_attrs["oneshot"]["status"] == "cached"]
        assert len(cached) == len([a for a in calls[:30] if cost(a).flops <= limits[-1]])
    else:
        assert len(result.studies) == 1 and len(result.studies[0].directions) == 2


def test_start_subnets_are_evaluated_first_where_they_fit_and_count_as_queries(nb201, rng):
    """`start=`: the subnets whose scores are known (a calibration's trained networks) are evaluated before the
    random startup ones, those that fit each budget, each once, and count towards n_trials."""
    f = make_objective(nb201, "pairwise", seed=9)
    limit = _quantile_flops(nb201, 0.5)
    start = list(dict.fromkeys(nb201.canonical(nb201.sample(rng)) for _ in range(12)))
    inside = [a for a in start if cost(a).flops <= limit]
    assert 0 < len(inside) < len(start)
    calls, counted_f = counted(f)
    result = search(nb201, counted_f, budgets={"flops": [limit, 1e12]}, start=[*map(str, start), start[0]],
                    n_trials=2 * len(start) + 4, sampler="random", n_startup=0, storage="memory")
    tight, loose = result.studies
    first = [t.user_attrs["oneshot"] for t in tight.get_trials()[:len(inside)]]
    assert {x["arch"] for x in first} == set(map(str, inside)) and {x["source"] for x in first} == {"start"}
    # the loose budget gets the tight one's as known results, then evaluates the rest of the start subnets first
    ev = [t.user_attrs["oneshot"] for t in loose.get_trials() if t.user_attrs["oneshot"]["status"] == "evaluated"]
    assert {x["arch"] for x in ev[:len(start) - len(inside)]} == {str(a) for a in start if a not in inside}
    assert len(calls) == len(set(map(str, calls))) == len(result)  # each subnet once, every one a query
    assert result.settings["start"].endswith(f"({len(start)} subnets)")
    with pytest.raises(ValueError, match=r"start subnet #1 'nope' is not in space 'nb201_test'"):
        search(nb201, f, start=[str(start[0]), "nope"], n_trials=2, storage="memory")
    with pytest.raises(ValueError, match=r"start subnet #0 .* from space 'mbv3_test'.*this search is for space 'nb201"):
        search(nb201, f, start=[get_space("mbv3_test").smallest()], n_trials=2, storage="memory")
    with pytest.raises(TypeError, match="start must be a list of subnets"):
        search(nb201, f, start=str(start[0]), n_trials=2, storage="memory")


def test_objective_may_be_a_fitted_predictor(nb201, rng, tmp_path):
    f = make_objective(nb201, "additive", seed=7)
    train = [nb201.sample(rng) for _ in range(40)]
    pred = create_predictor("xgb", nb201, seed=0, n_models=2, n_rounds=30).fit(train, [f(a) for a in train])
    result = search(nb201, pred, n_trials=12, storage="memory")
    assert result.settings["objective"] == "predictor-xgb"
    r = result.best()
    assert r.score == pytest.approx(float(pred.predict([r.arch])[0][0]))
    path = pred.save(tmp_path / "xgb.predictor")  # a saved predictor names its space: no target needed
    again = search(None, f"predictor:{path}", n_trials=12, storage="memory")
    assert again.to_records() == result.to_records()


def test_records_and_settings_round_trip(nb201, tmp_path):
    f = make_objective(nb201, seed=8)
    result = search(nb201, f, budgets={"flops": [_quantile_flops(nb201, 0.5), 1e9]}, n_trials=12, seed=11,
                    run_dir=tmp_path / "run", study_name="rt")
    assert (tmp_path / "run" / "study.db").is_file()
    saved = json.loads((tmp_path / "run" / "search.json").read_text())
    assert saved["settings"]["seed"] == 11 and saved["settings"]["sampler"] == "predictor"
    assert saved["settings"]["code_version"] and saved["settings"]["budgets"]
    for rec in result.to_records():
        assert {"arch", "score", "macs", "flops", "params", "trial", "study", "seed"} <= set(rec)
        assert rec["seed"] == 11 and rec["score"] == f(Arch.from_str(nb201, rec["arch"]))
    loaded = SearchResult.load(tmp_path / "run" / "search.json")
    assert [str(r.arch) for r in loaded.records] == [str(r.arch) for r in result.records]
    assert loaded.best().score == result.best().score == max(f(r.arch) for r in result.records)
    # `from oneshot import search` is callable whether it resolves to the function or to this module. Running
    # a finished search again (the same objective: same name and identity) evaluates nothing and returns the same
    # result.
    calls, same = counted(f)
    again = search_from_package(nb201, same, budgets={"flops": [_quantile_flops(nb201, 0.5), 1e9]}, n_trials=12,
                                seed=11, run_dir=tmp_path / "run", study_name="rt")
    assert again.to_records() == result.to_records() and calls == []


class _Bar:
    """Stands in for `progress_bar`: records what each progress bar was told."""

    bars: list = []

    def __init__(self, iterable=None, *, total, desc, enabled, **kwargs):
        self.total, self.desc, self.disable, self.n = total, desc, not enabled, 0
        _Bar.bars.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def set_postfix(self, **kwargs):
        pass

    def refresh(self):
        pass


def test_cli_search(tmp_path, capsys, nb201, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("oneshot.study.search.progress_bar", _Bar)
    _Bar.bars = []
    limit = _quantile_flops(nb201, 0.5)
    rc = main(["search", "nb201_test", "--objective", "synthetic:additive", "--budget", f"flops={limit:.0f},1e9",
               "--n-trials", "12", "--storage", f"sqlite:///{tmp_path}/s.db", "--study-name", "cli"])
    captured = capsys.readouterr()
    out = captured.out
    assert rc == 0
    assert f"flops<={float(f'{limit:.0f}'):g}" in out and "pareto front" in out
    # A progress bar per budget's study, shown, counting that study's share of the 12 subnets up to its end.
    assert [(b.desc, b.total, b.n, b.disable) for b in _Bar.bars] == [
        (f"search flops<={float(f'{limit:.0f}'):g}", 6, 6, False), ("search flops<=1e+09", 6, 6, False)]
    rc = main(["search", "nb201_test", "--objective", "synthetic:additive", "--sampler", "nope",
               "--storage", f"sqlite:///{tmp_path}/s.db"])
    assert rc == 2 and "allowed: ['tpe'" in capsys.readouterr().err
    assert main(["search", "nb201_test"]) == 2 and "needs --objective" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec|log_every_n_steps).*")
def test_supernet_objective_uses_the_evaluation_table(tiny_checkpoint, tmp_path):
    from oneshot.score.evaluate import TABLE_NAME
    from oneshot.table import read_table

    ckpt = tmp_path / "supernet.ckpt"  # the shared tiny checkpoint, copied: the table is written beside it
    ckpt.write_bytes(tiny_checkpoint.read_bytes())
    space = get_space("mbv3_test")
    limit = _quantile_flops(space, 0.5)
    result = search(ckpt, "supernet", budgets={"flops": limit}, n_trials=4, n_startup=2, storage="memory",
                    evaluate_args={"calib_batches": 1, "calib_batch_size": 16})
    _, rows = read_table(ckpt.parent / TABLE_NAME)
    table = {r["arch"]: r["holdout_acc"] for r in rows}
    assert len(result) == 4 and result.settings["objective"] == "supernet-" + ckpt.stem
    for r in result.records:
        assert r.flops <= limit and r.score == table[str(r.arch)]  # scores are the table's holdout accuracy
