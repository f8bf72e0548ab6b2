"""Latency as a search cost: real timings of standalone subnets, a fitted latency model, budgets on it."""

import json

import numpy as np
import pytest

from oneshot.cli import main
from oneshot.score.latency import LatencyModel, measure_latency
from oneshot.study.search import search
from predictors import kendall_tau
from predictors.synthetic import make_objective
from supernets import Arch, cost, get_space


@pytest.fixture(scope="module")
def space():
    return get_space("mbv3_tiny")


def test_measure_latency_times_subnets_and_never_twice(space, tmp_path):
    table = tmp_path / "lat.jsonl"
    small, large = space.smallest(), space.largest()
    first = measure_latency(space, [small, large], repeats=10, table=table)
    assert set(first) == {str(small), str(large)} and all(v > 0 for v in first.values())
    # The largest subnet does ~3x the work of the smallest; the minimum over repeats ignores other processes.
    assert first[str(large)] > first[str(small)]
    lines = table.read_text().count("\n")
    again = measure_latency(space, [str(large), small], repeats=10, table=table)
    assert again == first and table.read_text().count("\n") == lines  # served from the table, nothing re-timed


def test_latency_model_is_exact_on_measured_subnets_and_ranks_the_rest(space):
    """Fitted on a latency-like function of the subnet (here: set by its costs, plus a per-layer overhead)."""
    rng = np.random.default_rng(0)
    pool = list(dict.fromkeys(space.sample(rng) for _ in range(140)))

    def fake_ms(a):
        c = cost(a)
        return 0.2 + c.macs / 4e6 + c.params / 2e5

    train, test = pool[:60], pool[60:]
    model = LatencyModel(space, {str(a): fake_ms(a) for a in train})
    assert all(model(a) == pytest.approx(fake_ms(a)) for a in train)
    est = np.array([model(a) for a in test])
    assert np.all(est > 0)
    assert kendall_tau([fake_ms(a) for a in test], est) > 0.8
    assert model.quality["n"] == 60 and model.quality["median_rel_error"] < 0.1


def test_latency_model_refuses_another_space_and_too_few_timings(space):
    model = LatencyModel(space, {str(space.smallest()): 1.0, str(space.largest()): 3.0,
                                 str(space.sample(np.random.default_rng(1))): 2.0,
                                 str(space.sample(np.random.default_rng(2))): 2.5,
                                 str(space.sample(np.random.default_rng(3))): 1.5}, folds=2)
    with pytest.raises(ValueError, match="measured on space 'mbv3_tiny'"):
        model(get_space("nb201_test").smallest())
    with pytest.raises(ValueError, match="at least 5 measured subnets"):
        LatencyModel(space, {str(space.smallest()): 1.0})


def test_search_with_a_latency_budget_never_evaluates_a_slower_subnet(space):
    rng = np.random.default_rng(0)
    timed = {str(a): 0.3 + cost(a).macs / 3e6 for a in dict.fromkeys(space.sample(rng) for _ in range(40))}
    model = LatencyModel(space, timed)
    limit = float(np.quantile(list(timed.values()), 0.4))
    f = make_objective(space, "additive", seed=0)
    seen = []
    result = search(space, lambda a: seen.append(a) or f(a), budgets={"latency": [limit]},
                    costs={"latency": model}, n_trials=15, seed=0, storage="memory")
    assert len(seen) == 15 and all(model(a) <= limit for a in seen)
    best = result.best(latency=limit)
    assert best.costs["latency"] <= limit


def test_cli_latency_then_search_with_latency_budget(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `oneshot search` writes its study under ./runs/: here, never into the clone
    table = tmp_path / "lat.jsonl"
    assert main(["latency", "mbv3_test", "--num-subnets", "10", "--repeats", "5", "--out", str(table)]) == 0
    out = capsys.readouterr().out
    assert "latency model on 12 timed subnets" in out
    rows = [json.loads(line) for line in table.read_text().splitlines()[1:]]
    timed = sorted(r["latency_ms"] for r in rows)
    smallest = next(r["latency_ms"] for r in rows if r["arch"] == str(get_space("mbv3_test").smallest()))
    # The median, or the smallest subnet's own time when a busy machine timed it above the median: search checks
    # a budget is reachable at the smallest subnet, so the limit must not depend on how noisy the timings were.
    limit = max(timed[len(timed) // 2], smallest)
    assert main(["search", "mbv3_test", "--objective", "synthetic:additive", "--budget", f"latency={limit}",
                 "--latency", str(table), "--n-trials", "8", "--storage", "memory"]) == 0
    assert "latency<=" in capsys.readouterr().out
    assert any((tmp_path / "runs").iterdir())  # where the study went
    # A table of another space is refused with a message naming both spaces.
    assert main(["search", "nb201_test", "--objective", "synthetic:additive", "--budget", f"latency={limit}",
                 "--latency", str(table), "--n-trials", "4", "--storage", "memory"]) == 2
    assert "measured on space 'mbv3_test'" in capsys.readouterr().err
    assert main(["search", "mbv3_test", "--objective", "synthetic:additive", "--latency", str(tmp_path / "no.jsonl"),
                 "--storage", "memory"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def nb201_timed():
    """nb201 and 40 of its subnets with ms that follow their costs and ops (no timing: exact, fast data)."""
    space = get_space("nb201")
    rng = np.random.default_rng(1)
    timed = {str(a): 0.2 + cost(a).macs / 1e8 + 0.03 * str(a).count("avg_pool")
             for a in dict.fromkeys(space.sample(rng) for _ in range(40))}
    return space, timed


def test_batched_latency_predictions_equal_one_at_a_time(nb201_timed):
    """`CostModel.many` and `LatencyModel.many` (what a search screens candidates with) give the values of
    one-subnet calls: equal up to the last bit BLAS may round differently in a batch; measured ones exactly."""
    from oneshot.study.budget import CostModel

    space, timed = nb201_timed
    batched, single = LatencyModel(space, timed), LatencyModel(space, timed)
    rng = np.random.default_rng(2)
    archs = [space.sample(rng) for _ in range(200)] + [Arch.from_str(space, a) for a in list(timed)[:5]]
    rows = CostModel({"latency": batched}).many(archs)  # one batch through the cost model
    one_by_one = CostModel({"latency": single})
    want = [one_by_one(a) for a in archs]
    assert [list(r) for r in rows] == [list(w) for w in want]  # same costs, same order
    assert [r["flops"] for r in rows] == [w["flops"] for w in want]
    np.testing.assert_allclose([r["latency"] for r in rows], [w["latency"] for w in want], rtol=1e-12, atol=0)
    assert [r["latency"] for r in rows[-5:]] == [timed[str(a)] for a in archs[-5:]]  # measured: the measurement
    assert batched.many(archs) == [r["latency"] for r in rows]  # remembered: asked again, the same numbers
    with pytest.raises(ValueError, match="measured on space 'nb201'"):
        batched.many([get_space("nb201_test").smallest()])


def test_search_with_batched_latency_chooses_what_one_at_a_time_chooses(nb201_timed):
    """A cost function without `many` is asked one subnet at a time (as every latency budget was before): the
    batched search evaluates the same subnets in the same order and picks the same best."""
    space, timed = nb201_timed
    limit = float(np.median(list(timed.values())))
    f = make_objective(space, "pairwise", seed=0)
    one_at_a_time = LatencyModel(space, timed)
    runs = []
    for latency in (LatencyModel(space, timed), lambda a: one_at_a_time(a)):
        assert hasattr(latency, "many") == (not runs)
        runs.append(search(space, f, budgets={"latency": [limit]}, costs={"latency": latency}, n_trials=12,
                           n_startup=6, seed=0, storage="memory",
                           sampler_args={"n_candidates": 80, "n_mutations": 10, "n_parents": 2}))
    batched, single = runs
    assert [str(r.arch) for r in batched.records] == [str(r.arch) for r in single.records]
    assert batched.best(latency=limit).arch == single.best(latency=limit).arch
    assert all(r.costs["latency"] <= limit for r in batched.records)
