"""Tabular benchmarks from the CLI: `oneshot search SPACE --table PATH`, `oneshot predict fit --table PATH`, and the
one-line errors for bad tables and metrics. Tiny synthetic tables of `macro` keys are written in tmp_path; tests on
the real NAS-Bench-Macro file skip when it is absent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna
import pytest

from oneshot import search
from oneshot.cli.main import main
from oneshot.score.tabular import TabularBenchmark
from supernets import Arch, cost, get_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

REAL = Path(os.environ.get("NAS_BENCH_MACRO", "/work/shared/data/nas-bench-macro/nas-bench-macro_cifar10.json"))


def _acc(space, key: str) -> float:
    """Made-up accuracy, distinct per network and equal for equivalent keys (it reads the canonical form)."""
    return 50.0 + 40.0 * int(str(space.canonical(Arch.from_str(space, key))), 3) / 3 ** 8


@pytest.fixture(scope="module")
def space():
    return get_space("macro")


@pytest.fixture(scope="module")
def full_table(tmp_path_factory, space):
    """Every key of `macro`, with NAS-Bench-Macro's columns: flops = MACs and params from the cost model."""
    rows = {}
    for arch in space:
        c = cost(arch)
        acc = _acc(space, str(arch))
        rows[str(arch)] = {"mean_acc": acc, "test_acc": [acc - 1.0, acc + 1.0], "params": c.params, "flops": c.macs}
    path = tmp_path_factory.mktemp("tables") / "macro.json"
    path.write_text(json.dumps(rows, indent=1))
    return path


def _error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "\n" not in err and "Traceback" not in err
    return err


# --------------------------------------------------------------------------- bad tables and metrics
BAD = [
    # (file text or None for a missing file, extra args, expected fragments of the error line)
    ('{"00000000": {"mean_acc": 1.0}, "11111111": {"mean_acc": 2.0}}', ["--metric", "top1"],
     ["no metric 'top1'", "['mean_acc']"]),
    ('{"00000000": {"mean_acc": 1.0},\n "11111111": {"mean_acc": 2.0},\n "2221x220": {"mean_acc": 3.0}}', [],
     ["entry 3 (line 3)", "'2221x220'", "space 'macro'"]),
    ('{"00000000": {"mean_acc": 1.0},\n "0|nor_conv_3x3~0|": {"mean_acc": 2.0}}', [],
     ["entry 2 (line 2)", "'0|nor_conv_3x3~0|'"]),
    ("arch,mean_acc\n00000000,1.0\n012,2.0\n", [], ["line 3", "'012'"]),
    ('{"00000000": {"mean_acc": 1.0}}', ["--noisy-runs", "test_acc"], ["'test_acc'", "metrics: ['mean_acc']"]),
    (None, [], ["does not exist"]),
    ('{"00000000": {"mean_acc": 1.0}}', ["--objective", "synthetic:additive"], ["either --table or --objective"]),
]


@pytest.mark.parametrize("text, extra, fragments", BAD)
def test_bad_table_is_one_line(tmp_path, capsys, text, extra, fragments):
    path = tmp_path / "table.json"
    if text is not None:
        path.write_text(text)
    err = _error(capsys, ["search", "macro", "--table", str(path), "--n-trials", "2", "--no-progress",
                          "--storage", "memory", *extra])
    assert err.startswith("oneshot search: error: ")
    for f in fragments:
        assert f in err


def test_noisy_runs_need_a_table(capsys):
    assert "--noisy-runs needs --table" in _error(capsys, ["search", "macro", "--noisy-runs", "test_acc"])


# --------------------------------------------------------------------------- search on a table
def test_search_on_table_reports_table_values(full_table, space, tmp_path, capsys):
    limit = 6e7  # oneshot flops (2 x MACs) = table flops <= 3e7
    rc = main(["search", "macro", "--table", str(full_table), "--n-trials", "12", "--sampler", "random", "--seed",
               "3", "--budget", f"flops={limit:g}", "--no-progress", "--run-dir", str(tmp_path / "{study}")])
    out = capsys.readouterr().out
    assert rc == 0
    saved = json.loads(next(tmp_path.glob("*/search.json")).read_text())
    records = saved["records"]
    assert len(records) == 12
    for r in records:
        assert r["score"] == pytest.approx(_acc(space, r["arch"]))
        assert r["flops"] <= limit and r["table_flops"] == r["macs"] and r["table_params"] == r["params"]
    best = max(records, key=lambda r: r["score"])
    assert f"best found flops<=6e+07: {best['arch']} mean_acc={best['score']:.4f}" in out
    # The oracle within the budget, computed here from the formula and the cost model.
    fits = [str(a) for a in space if 2 * cost(a).macs <= limit]
    top = max(fits, key=lambda k: _acc(space, k))
    assert f"the table's best there: {top} mean_acc={_acc(space, top):.4f}" in out
    assert saved["settings"]["objective_identity"].endswith(
        f"[table sha256={TabularBenchmark.load(full_table, space).digest} metric=mean_acc]")


def test_noisy_runs_score_one_run_per_network(full_table, space, tmp_path, capsys):
    rc = main(["search", "macro", "--table", str(full_table), "--noisy-runs", "test_acc", "--n-trials", "8",
               "--sampler", "random", "--no-progress", "--run-dir", str(tmp_path / "{study}")])
    assert rc == 0
    for r in json.loads(next(tmp_path.glob("*/search.json")).read_text())["records"]:
        assert min(abs(r["score"] - (_acc(space, r["arch"]) + d)) for d in (-1.0, 1.0)) < 1e-9


def test_study_identity_tells_tables_and_metrics_apart(full_table, space, tmp_path):
    table = TabularBenchmark.load(full_table, space)
    rows = json.loads(full_table.read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps({k: {**v, "mean_acc": -v["mean_acc"]} for k, v in rows.items()}))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    kw = dict(n_trials=3, sampler="random", storage=storage, study_name="macro-table")
    search(space, objective=table.objective("mean_acc"), **kw)
    search(space, objective=TabularBenchmark.load(full_table, space).objective("mean_acc"), **kw)  # same: resumes
    for objective in (TabularBenchmark.load(other, space).objective("mean_acc"), table.objective("params"),
                      table.noisy_objective("test_acc", seed=0)):
        with pytest.raises(ValueError, match="was made with objective"):
            search(space, objective=objective, **kw)


def test_equivalent_spellings_are_one_evaluation(full_table, space):
    """Under a budget that admits more keys than networks, each network is evaluated once and the search stops."""
    by_macs = sorted(space, key=lambda a: cost(a).macs)
    limit = cost(by_macs[40]).macs
    keys = [a for a in by_macs if cost(a).macs <= limit]
    networks = {space.canonical(a) for a in keys}
    assert len(networks) < len(keys)  # the budget admits several spellings of some network
    lookup = TabularBenchmark.load(full_table, space).objective("mean_acc")
    calls: list[Arch] = []

    def counted(arch: Arch) -> float:
        calls.append(arch)
        return lookup(arch)

    result = search(space, objective=counted, budgets={"macs": limit}, n_trials=len(keys), sampler="random", seed=0)
    assert sorted(map(str, {space.canonical(a) for a in calls})) == sorted(map(str, networks))
    assert len(calls) == len(networks) == len(result)


# --------------------------------------------------------------------------- the real NAS-Bench-Macro file
@pytest.mark.skipif(not REAL.is_file(), reason="NAS-Bench-Macro table not present (set NAS_BENCH_MACRO)")
def test_real_table_from_the_cli(capsys, tmp_path):
    err = _error(capsys, ["search", "macro", "--table", str(REAL), "--metric", "top1", "--storage", "memory"])
    assert "'mean_acc'" in err and "'test_acc'" in err
    rc = main(["search", "macro", "--table", str(REAL), "--n-trials", "5", "--sampler", "random", "--no-progress",
               "--budget", "params=1e6", "--run-dir", str(tmp_path / "{study}")])
    assert rc == 0
    rows = json.loads(REAL.read_text())
    for r in json.loads(next(tmp_path.glob("*/search.json")).read_text())["records"]:
        assert r["params"] <= 1e6 and r["table_params"] == r["params"] == rows[r["arch"]]["params"]
        assert r["score"] == pytest.approx(rows[r["arch"]]["mean_acc"])


# --------------------------------------------------------------------------- predictors fitted on a table
def test_predict_fit_on_table(full_table, space, capsys, tmp_path):
    import numpy as np
    from predictors import create_predictor, kendall_tau, load_predictor

    out = tmp_path / "m.predictor"
    rc = main(["predict", "fit", "--table", str(full_table), "--space", "macro", "--n-train", "150", "--model", "xgb",
               "--folds", "3", "--seed", "1", "--json", "--out", str(out)])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["networks"] == len({space.canonical(a) for a in space}) and report["train"] == 150
    # The same split and model, computed again here: the held-out tau must match, and be high on this smooth table.
    table = TabularBenchmark.load(full_table, space)
    archs, y = table.to_arrays("mean_acc")
    order = np.random.default_rng(1).permutation(len(y))
    model = create_predictor("xgb", space, seed=1).fit([archs[i] for i in order[:150]], y[order[:150]])
    test = [archs[i] for i in order[150:]]
    tau = kendall_tau(y[order[150:]], model.predict(test)[0])
    assert report["held_out"]["kendall_tau"] == pytest.approx(tau) and tau > 0.5
    assert len(report["cv"]["folds"]) == 3
    np.testing.assert_allclose(load_predictor(out).predict(test)[0], model.predict(test)[0], rtol=1e-6)


@pytest.mark.parametrize("argv, fragment", [
    (["predict", "fit", "--model", "xgb"], "give an evaluation table"),
    (["predict", "fit", "--table", "{table}"], "--table needs --space"),
    (["predict", "fit", "--table", "{table}", "--space", "macro", "--metric", "top1"], "no metric 'top1'"),
    (["predict", "fit", "--table", "{table}", "--space", "macro", "--n-train", "1"], "--n-train must be between 2"),
])
def test_predict_fit_table_errors(full_table, capsys, argv, fragment):
    err = _error(capsys, [a.replace("{table}", str(full_table)) for a in argv])
    assert err.startswith("oneshot predict: error: ") and fragment in err
