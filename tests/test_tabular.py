"""Tabular benchmarks: loading JSON/CSV tables, clear errors, objectives, costs, predictor data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import optuna
import pytest

from oneshot.score.tabular import TabularBenchmark
from oneshot.search import search
from predictors import create_predictor, cross_validate
from supernets import Arch, cost, get_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

REAL = Path(os.environ.get("NAS_BENCH_MACRO", "/work/shared/data/nas-bench-macro/nas-bench-macro_cifar10.json"))


def _row(key: str) -> dict:
    """A made-up record: accuracy grows with the digits, three runs around it (no real data needed)."""
    digits = [int(c) for c in key]
    mean = 50.0 + 5.0 * sum(digits) + 0.1 * int(key, 3) / 6561
    runs = [mean - 0.5, mean, mean + 0.5]
    return {"test_acc": runs, "mean_acc": mean, "std": 0.4, "params": 1000 + sum(digits), "flops": 10 * sum(digits)}


@pytest.fixture(scope="module")
def space():
    return get_space("macro_test")


@pytest.fixture
def small_json(tmp_path, space):
    rng = np.random.default_rng(0)
    keys = sorted({str(space.sample(rng)) for _ in range(60)})
    path = tmp_path / "table.json"
    path.write_text(json.dumps({k: _row(k) for k in keys}, indent=1))
    return path, keys


def test_json_table_serves_objective_costs_and_arrays(small_json, space):
    path, keys = small_json
    table = TabularBenchmark.load(path, space)
    assert table.metrics == ["flops", "mean_acc", "params", "std", "test_acc"]
    f = table.objective("mean_acc")
    for k in keys:
        assert f(Arch.from_str(space, k)) == _row(k)["mean_acc"]
    costs = table.costs()
    assert set(costs) == {"table_params", "table_flops"}
    assert costs["table_flops"](Arch.from_str(space, keys[0])) == _row(keys[0])["flops"]
    archs, y = table.to_arrays("mean_acc")
    assert len(archs) == len(y) == len(table) and len({space.canonical(a) for a in archs}) == len(archs)
    assert all(y[i] == _row(str(a))["mean_acc"] for i, a in enumerate(archs))
    with pytest.raises(ValueError, match="no row for subnet"):
        f(next(a for a in space if a not in table))


def test_equivalent_keys_share_a_record(tmp_path, space):
    # 22212202 and 22212220 are one network (the identity commutes inside stage 3).
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"22212202": _row("22212202"), "00000000": _row("00000000")}))
    table = TabularBenchmark.load(path, space)
    f = table.objective("mean_acc")
    assert f(Arch.from_str(space, "22212220")) == f(Arch.from_str(space, "22212202")) == _row("22212202")["mean_acc"]
    assert len(table) == 2 and table.n_rows == 2
    # Two rows for one network: the canonically spelled one is served, wherever it is in the file.
    path.write_text(json.dumps({"22212202": _row("22212202"), "22212220": _row("00000000")}))
    table = TabularBenchmark.load(path, space)
    assert len(table) == 1 and table.n_rows == 2
    assert table.objective()(Arch.from_str(space, "22212202")) == _row("00000000")["mean_acc"]


@pytest.mark.parametrize("content, message", [
    ('{\n"22212220": {"mean_acc": 1},\n"2221x220": {"mean_acc": 2}\n}', r"entry 2 \(line 3\): key '2221x220'.*'x' at position 5"),
    ('{"2221222": {"mean_acc": 1}}', "has 7 digit"),
    ('{"22212220": {"mean_acc": "high"}}', "'mean_acc' of '22212220' must be a finite number"),
    ('{"22212220": {"mean_acc": NaN}}', "finite number"),
    ('{"22212220": {"mean_acc": [1, true]}}', "finite number"),
    ('{"22212220": 5}', "must be an object of metrics"),
    ('{"22212220": {"a": 1}, "22212220": {"a": 2}}', "'22212220' appears twice"),
    ('{"22212220": {"a": 1}', "not valid JSON"),
    ('[{"arch": "22212220", "a": 1}, {"key": "1"}]', "entry 2: expected an object with an 'arch' field"),
    ('{}', "holds no rows"),
    ("arch,mean_acc\n22212220,93.1\n00000000,45.4\n2221222,1\n", "line 4: key '2221222'"),
    ("arch,mean_acc\n22212220,93.1\n00000000,4x\n", "line 3: 'mean_acc' of '00000000'"),
    ("arch,mean_acc\n22212220,93.1,7\n", "line 2: expected 2 fields"),
    ("key,mean_acc\n22212220,93.1\n", "needs an 'arch' column"),
    ("arch,mean_acc\n22212220,93.1\n22212220,93.2\n", "line 3: key '22212220' appears twice"),
])
def test_bad_tables_give_one_line_errors(tmp_path, space, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        TabularBenchmark.load(path, space)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file_and_missing_metric(tmp_path, small_json, space):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TabularBenchmark.load(tmp_path / "nope.json", space)
    table = TabularBenchmark.load(small_json[0], space)
    with pytest.raises(ValueError, match="has no 'top1'; metrics: \\['flops'"):
        table.objective("top1")


def test_csv_table_with_seed_columns(tmp_path, space):
    lines = ["arch,acc_seed0,acc_seed1,params"]
    keys = ["00000000", "22212220", "10101010"]
    for i, k in enumerate(keys):
        lines.append(f"{k},{60 + i},{70 + i},{100 * i}")
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    table = TabularBenchmark.load(path, "macro_test")
    assert table.metrics == ["acc_seed0", "acc_seed1", "params"]
    assert table.cost("params")(Arch.from_str(space, "22212202")) == 100.0
    one = table.noisy_objective(["acc_seed0", "acc_seed1"], seed=0)
    for i, k in enumerate(keys):
        assert one(Arch.from_str(space, k)) in (60 + i, 70 + i)


def test_noisy_objective_is_deterministic_per_seed_and_draws_every_run(small_json, space):
    path, keys = small_json
    table = TabularBenchmark.load(path, space)
    archs = [Arch.from_str(space, k) for k in keys]
    a = [table.noisy_objective("test_acc", seed=3)(x) for x in archs]
    b = [table.noisy_objective("test_acc", seed=3)(x) for x in reversed(archs)][::-1]
    assert a == b  # a fixed function of (seed, network), not of query order
    assert a != [table.noisy_objective("test_acc", seed=4)(x) for x in archs]
    offsets = {round(v - _row(str(x))["mean_acc"], 6) for v, x in zip(a, archs)}
    assert offsets == {-0.5, 0.0, 0.5}  # every run is drawn, and only the table's runs
    same = Arch.from_str(space, "22212220"), Arch.from_str(space, "22212202")
    one = TabularBenchmark(space, [("22212220", _row("22212220"))]).noisy_objective("test_acc", seed=9)
    assert one(same[0]) == one(same[1])  # one network, one training run


def test_plugs_into_search_and_predictors(tmp_path, space):
    path = tmp_path / "full.json"
    path.write_text(json.dumps({str(a): _row(str(a)) for a in space}))  # every key, as a real benchmark
    table = TabularBenchmark.load(path, space)
    assert table.n_rows == space.size() and len(table) == len({space.canonical(a) for a in space})
    limit = float(np.median([_row(str(a))["flops"] for a in space]))
    result = search(space, table.objective("mean_acc"), costs=table.costs(), budgets={"table_flops": limit},
                    sampler="random", n_trials=10, seed=0, storage="memory")
    assert len(result) == 10 and all(r.costs["table_flops"] <= limit for r in result.records)
    # Each network's row is the one spelled canonically (equivalent spellings hold other made-up values here).
    assert all(r.score == _row(str(space.canonical(r.arch)))["mean_acc"] for r in result.records)
    archs, y = table.to_arrays("mean_acc")
    cv = cross_validate(create_predictor("xgb", space, seed=0), archs[:60], y[:60], folds=3)
    assert cv.pooled["kendall_tau"] > 0.5  # the made-up accuracy is a simple function of the digits


def test_real_nas_bench_macro_table():
    if not REAL.is_file():
        pytest.skip(f"NAS-Bench-Macro table not found at {REAL} (set NAS_BENCH_MACRO)")
    table = TabularBenchmark.load(REAL, "macro")
    assert table.n_rows == 6561 and len(table) == 3969  # one record per distinct network
    space = table.space
    best = Arch.from_str(space, "22212220")
    assert table.objective("mean_acc")(best) == pytest.approx(93.12666, abs=1e-4)  # the benchmark's best
    assert table.objective()(Arch.from_str(space, "22212202")) == table.objective()(best)
    archs, y = table.to_arrays("mean_acc")
    assert str(archs[int(np.argmax(y))]) == "22212220"
    for a in archs[:200]:  # the table's costs are the analytic model's, in its convention
        assert cost(a).macs == table.cost("flops")(a) and cost(a).params == table.cost("params")(a)
    runs = table.noisy_objective("test_acc", seed=0)
    assert runs(best) in table.record(best)["test_acc"]
