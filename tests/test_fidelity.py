"""Ranking fidelity against a tabular ground truth: statistics, subnet selection, fidelity() end to end, CLI, errors."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from oneshot.cli import main
from oneshot.score.evaluate import TABLE_NAME, evaluate
from oneshot.recipe import Recipe
from oneshot.score.fidelity import fidelity, ranking_metrics, seed_to_seed_tau, stratified_by_flops, table_runs
from oneshot.score.tabular import TabularBenchmark
from predictors.intervals import accuracy_interval, bootstrap_interval, wilson_interval
from oneshot.training.trainer import train
from oneshot.training.checkpoint import read_checkpoint
from supernets import Arch, cost, get_space, space_from_dict

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*(val_dataloader|LeafSpec).*")

EVAL = dict(calib_batches=2, calib_batch_size=16)


# --------------------------------------------------------------------------- statistics
def test_wilson_interval_matches_hand_values() -> None:
    # 8 of 10 at 95%: p=0.8, z=1.959964 -> centre 0.716743, half-width 0.226577 (worked by hand from the formula)
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.716743 - 0.226577, abs=1e-5) and hi == pytest.approx(0.716743 + 0.226577, abs=1e-5)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0  # stays inside [0, 1]
    assert accuracy_interval(0.8, 10) == wilson_interval(8, 10)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    narrow, wide = wilson_interval(900, 1000), wilson_interval(9, 10)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    for bad in [(11, 10), (-1, 10)]:
        with pytest.raises(ValueError, match="successes"):
            wilson_interval(*bad)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(5, 10, confidence=95)


def test_bootstrap_interval_is_seeded_and_covers_the_estimate(rng: np.random.Generator) -> None:
    x = rng.normal(size=60)
    y = x + rng.normal(scale=0.7, size=60)
    tau = lambda a, b: stats.kendalltau(a, b)[0]  # noqa: E731
    first = bootstrap_interval(tau, x, y, n_resamples=300, seed=3)
    assert first == bootstrap_interval(tau, x, y, n_resamples=300, seed=3)
    assert first != bootstrap_interval(tau, x, y, n_resamples=300, seed=4)
    assert first[0] < tau(x, y) < first[1]
    # resampling keeps pairs together: a perfectly paired statistic stays exact in every resample
    assert bootstrap_interval(lambda a, b: float(np.all(a == b)), x, x.copy(), n_resamples=50) == (1.0, 1.0)
    # the mean's interval agrees with the normal theory one (mean +- 1.96 sd / sqrt(n)) to within a few percent
    lo, hi = bootstrap_interval(np.mean, x, n_resamples=2000, seed=0)
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    with pytest.raises(ValueError, match="equal lengths"):
        bootstrap_interval(tau, x, y[:-1])


def test_ranking_metrics_against_scipy(rng: np.random.Generator) -> None:
    truth = rng.uniform(60, 95, size=50)
    est = truth / 100 + rng.normal(scale=0.05, size=50)
    m = ranking_metrics(est, truth, top_fraction=0.1, resamples=200, seed=1)
    assert m["kendall_tau"]["value"] == pytest.approx(stats.kendalltau(est, truth)[0])
    assert m["spearman"]["value"] == pytest.approx(stats.spearmanr(est, truth)[0])
    top_t, top_e = set(np.argsort(-truth)[:5]), set(np.argsort(-est)[:5])
    assert m["precision_at_top"]["value"] == len(top_t & top_e) / 5
    assert m["regret_top1"]["value"] == pytest.approx(truth.max() - truth[np.argmax(est)])
    assert m["regret_top5"]["value"] == pytest.approx(truth.max() - truth[np.argsort(-est)[:5]].max())
    assert m["regret_top5"]["value"] <= m["regret_top1"]["value"]
    for v in m.values():
        assert v["ci"][0] <= v["value"] <= v["ci"][1] or v["value"] in v["ci"]
    perfect = ranking_metrics(truth, truth, resamples=50)
    assert perfect["kendall_tau"]["value"] == 1.0 and perfect["regret_top1"]["value"] == 0.0


def test_stratified_selection_spans_flops() -> None:
    space = get_space("mbv3_test")
    archs = list(space)
    picked = stratified_by_flops(archs, 12, seed=0, include=(space.smallest(), space.largest()))
    flops = sorted(cost(a).flops for a in archs)
    got = [cost(a).flops for a in picked]
    assert len(set(picked)) == 12 and got == sorted(got)
    assert got[0] == flops[0] and got[-1] == flops[-1]
    assert space.smallest() in picked and space.largest() in picked
    median = np.median(flops)
    assert min(abs(f - median) for f in got) < (flops[-1] - flops[0]) / 10  # the middle is there too
    assert picked == stratified_by_flops(archs, 12, seed=0, include=(space.smallest(), space.largest()))
    assert set(stratified_by_flops(archs[:5], 12)) == set(archs[:5])
    with pytest.raises(ValueError, match="at least 3"):
        stratified_by_flops(archs, 2)


# --------------------------------------------------------------------------- end to end on digits
def _true_acc(arch) -> float:
    """An independent, known ground truth: accuracy grows with log FLOPs, plus a fixed per-arch wobble."""
    wobble = (sum(map(ord, str(arch))) % 7) / 7.0
    return 60.0 + 5.0 * math.log(cost(arch).flops) + wobble


def _runs(arch) -> list[float]:
    base = _true_acc(arch)
    offsets = [(sum(map(ord, str(arch))) * (s + 3)) % 11 / 4.0 for s in range(3)]
    return [base + o for o in offsets]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fid")
    recipe = Recipe.from_dict({
        "name": "tiny", "output_dir": str(out), "supernet": {"name": "mbv3_test"},
        "data": {"name": "digits", "image_size": 8, "batch_size": 32, "max_train_samples": 96, "max_eval_samples": 50},
        "train": {"epochs": 1, "threads": 1, "accelerator": "cpu"}, "evaluate": EVAL,
    })
    return train(recipe, progress=False)


@pytest.fixture(scope="module")
def space(ckpt: Path):
    """The checkpoint's space (mbv3_test with the data's channels and image size)."""
    return space_from_dict(read_checkpoint(ckpt)["oneshot"]["space"])


@pytest.fixture(scope="module")
def table(ckpt: Path, space) -> Path:
    archs = stratified_by_flops(list(space), 40, seed=5)  # the table covers only part of the space
    path = ckpt.parent / "truth.json"
    path.write_text(json.dumps({str(a): {"mean_acc": _true_acc(a), "test_acc": _runs(a)} for a in archs}))
    return path


def test_fidelity_end_to_end(ckpt: Path, table: Path, space) -> None:
    report = fidelity(ckpt.parent, table, 12, resamples=200, progress=False)
    rows = report["subnets"]
    assert report["n"] == len(rows) == 12 and report["evaluation"]["calib_batches"] == 2  # the recipe's settings
    archs = [Arch.from_str(space, r["arch"]) for r in rows]
    truth = np.array([_true_acc(a) for a in archs])
    assert [r["table_acc"] for r in rows] == pytest.approx(truth.tolist())
    # the supernet estimates are the evaluation machinery's, for the same settings
    again = evaluate(ckpt, archs, progress=False, **EVAL)
    est = np.array([r["holdout_acc"] for r in again])
    assert [r["holdout_acc"] for r in rows] == est.tolist()
    m = report["metrics"]
    assert m["kendall_tau"]["value"] == pytest.approx(stats.kendalltau(est, truth)[0])
    assert m["spearman"]["value"] == pytest.approx(stats.spearmanr(est, truth)[0])
    assert m["regret_top1"]["value"] == pytest.approx(truth.max() - truth[np.argsort(-est, kind="stable")[0]])
    for v in m.values():
        assert v["ci"][0] <= v["value"] <= v["ci"][1]
    loss = np.array([r["holdout_loss"] for r in again])  # the loss's ranking is measured beside the accuracy's
    assert [r["holdout_loss"] for r in rows] == loss.tolist()
    assert report["metrics_by_loss"]["kendall_tau"]["value"] == pytest.approx(stats.kendalltau(-loss, truth)[0])
    for r in rows:
        assert r["holdout_ci"][0] <= r["holdout_acc"] <= r["holdout_ci"][1] and r["holdout_size"] == 50
    # the ceiling: Kendall tau between the table's seeds, averaged over seed pairs, over all its networks
    data = json.loads(table.read_text())
    runs = np.array([v["test_acc"] for v in data.values()])
    expect = np.mean([stats.kendalltau(runs[:, i], runs[:, j])[0] for i, j in itertools.combinations(range(3), 2)])
    assert report["ceiling"]["table"]["mean"] == pytest.approx(expect) and report["ceiling"]["table"]["n"] == 40
    for name in ("fidelity.json", "fidelity.md", "fidelity.png"):
        assert (ckpt.parent / name).stat().st_size > 0
    tau_loss = f"{report['metrics_by_loss']['kendall_tau']['value']:.3f}"
    assert f"holdout loss instead (lower first), the same subnets give Kendall tau {tau_loss}" in (
        ckpt.parent / "fidelity.md").read_text()
    assert json.loads((ckpt.parent / "fidelity.json").read_text())["metrics"] == json.loads(json.dumps(m))
    # a second call evaluates nothing: the evaluation table is unchanged, the numbers identical
    evals = (ckpt.parent / TABLE_NAME).read_bytes()
    assert fidelity(ckpt, table, 12, resamples=200, progress=False) == report
    assert (ckpt.parent / TABLE_NAME).read_bytes() == evals
    # another setting does not silently replace the report
    with pytest.raises(ValueError, match="other settings"):
        fidelity(ckpt, table, 10, resamples=200, progress=False)


def test_cli(ckpt: Path, table: Path, capsys) -> None:
    assert main(["fidelity", str(ckpt), "--table", str(table), "--num-subnets", "12", "--resamples", "200",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Kendall tau" in out and "ceiling" in out and "fidelity.md" in out


def _bad(path: Path, content: str) -> Path:
    path.write_text(content)
    return path


def test_bad_tables_give_one_line_errors(ckpt: Path, table: Path, space, tmp_path: Path, capsys) -> None:
    nb = get_space("nb201_test")
    foreign = _bad(tmp_path / "foreign.json", json.dumps({str(nb.smallest()): {"mean_acc": 50.0}}))
    no_metric = _bad(tmp_path / "nometric.json", json.dumps({str(space.smallest()): {"acc": 50.0}}))
    cases = [
        (tmp_path / "absent.json", "does not exist"),
        (_bad(tmp_path / "text.json", "{not json"), "is not valid JSON"),
        (_bad(tmp_path / "list.json", "[1, 2]"), "expected an object with an 'arch' field"),
        (foreign, "is not a subnet of space 'mbv3_test'"),
        (no_metric, "has no 'mean_acc'"),
    ]
    for path, message in cases:
        capsys.readouterr()
        assert main(["fidelity", str(ckpt), "--table", str(path), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    # subnets the table lacks: named, before anything is evaluated
    missing = [a for a in space if str(a) not in json.loads(table.read_text())][:3]
    with pytest.raises(ValueError, match="3 of 3 subnets are not in the table"):
        fidelity(ckpt, table, archs=missing, progress=False, write=False)
    with pytest.raises(FileNotFoundError, match="no supernet checkpoint"):
        fidelity(tmp_path, table, progress=False)
    assert len(table_runs(TabularBenchmark.load(table, space))) == 40  # the good table, with its per-seed runs


# --------------------------------------------------------------------------- the `oneshot run` report
def test_run_report_shows_intervals(tmp_path: Path) -> None:
    from oneshot.pipeline.report import write_report
    from oneshot.deploy.retrain import rank_agreement

    est, real = [0.61, 0.70, 0.64, 0.75, 0.80], [0.55, 0.66, 0.52, 0.71, 0.69]
    rank = rank_agreement(est, real, seed=0)
    assert rank == rank_agreement(est, real, seed=0)  # seeded
    lo, hi = rank["kendall_tau_ci"]
    assert lo <= rank["kendall_tau"] <= hi and -1 <= lo and hi <= 1
    rank["rows"] = [{"arch": f"a{i}", "flops": 1e6, "supernet_acc": e, "standalone_test_acc": r, "supernet_n": 200,
                     "standalone_n": 100} for i, (e, r) in enumerate(zip(est, real))]
    text = write_report(tmp_path, {"title": "t", "rank": rank}).read_text()
    assert f"[{lo:.3f}, {hi:.3f}]" in text
    wlo, whi = accuracy_interval(0.55, 100)
    assert f"0.5500 [{wlo:.4f}, {whi:.4f}]" in text and "Wilson" in text
    old = {k: v for k, v in rank.items() if not k.endswith("_ci")}  # a run folder from before the intervals
    old["rows"] = [{k: v for k, v in r.items() if not k.endswith("_n")} for r in rank["rows"]]
    assert "[" not in write_report(tmp_path / "old", {"title": "t", "rank": old}).read_text().split("`a0`")[1]


# --------------------------------------------------------------------------- tables of the macro space
def test_table_runs_one_per_network(tmp_path: Path) -> None:
    space = get_space("macro_test")
    a, b = "22212220", "22212202"  # an identity inside the last stage commutes with its neighbour: one network
    assert space.canonical(Arch.from_str(space, b)) == Arch.from_str(space, a)
    path = _bad(tmp_path / "t.json", json.dumps({b: {"mean_acc": 90.0, "test_acc": [89.0, 91.0]},
                                                 a: {"mean_acc": 92.0, "test_acc": [91.0, 93.0]},
                                                 "00000000": {"mean_acc": 45.0}}))
    truth = TabularBenchmark.load(path, space)  # the canonical spelling's row is served for the network
    assert table_runs(truth) == {a: (91.0, 93.0)}
    networks = {str(space.canonical(x)) for x in truth.archs()}
    assert networks == {"00000000", a}


def test_ceiling_of_the_mean_of_runs_matches_a_simulated_table() -> None:
    """A table of 3 noisy runs per network, truth known: the estimate from seed-to-seed tau alone matches the
    tau of the true ranking against the mean of the runs, and exceeds the seed-to-seed tau."""
    from oneshot.score.fidelity import ceiling_of_mean

    rng = np.random.default_rng(0)
    truth = rng.normal(size=20000)
    for noise, seeds in ((0.15, 3), (0.5, 2), (0.5, 5)):
        runs = truth[:, None] + noise * rng.normal(size=(len(truth), seeds))
        got = seed_to_seed_tau({str(i): list(r) for i, r in enumerate(runs)})
        simulated = stats.kendalltau(truth, runs.mean(1))[0]
        assert got["seeds"] == seeds and got["of_mean"] == pytest.approx(simulated, abs=0.01)
        assert got["of_mean"] > got["mean"]
    assert ceiling_of_mean(1.0, 3) == pytest.approx(1.0) and np.isnan(ceiling_of_mean(float("nan"), 3))


NBM = Path("/work/shared/data/nas-bench-macro/nas-bench-macro_cifar10.json")


@pytest.mark.skipif(not NBM.is_file(), reason="NAS-Bench-Macro table not present")
def test_nas_bench_macro_ceiling() -> None:
    space = get_space("macro")
    runs = table_runs(TabularBenchmark.load(NBM, space))
    data = json.loads(NBM.read_text())
    canon = {k for k in data if str(space.canonical(Arch.from_str(space, k))) == k}
    assert set(runs) == canon and len(canon) < len(data)
    table = np.array([data[k]["test_acc"] for k in sorted(canon)])
    expect = np.mean([stats.kendalltau(table[:, i], table[:, j])[0] for i, j in itertools.combinations(range(3), 2)])
    assert seed_to_seed_tau(runs)["mean"] == pytest.approx(expect)
    networks = [Arch.from_str(space, k) for k in canon]
    picked = stratified_by_flops(networks, 200, include=(space.smallest(), space.largest()))
    assert len(picked) == 200 and {space.smallest(), space.largest()} <= set(picked)
