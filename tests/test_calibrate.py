"""Calibration with standalone truths (oneshot.deploy.calibrate): design, truths, fused predictor, report."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from oneshot.deploy.calibrate import Calibration, calibrate, calibrated_objective, candidate_pool, design_subnets
from oneshot.score.tabular import TabularBenchmark
from predictors import Signals, kendall_tau, load_predictor
from supernets import Arch, get_space, space_from_dict
from supernets.cost import cost

SPACE = "nb201_test"


def _h(text: str) -> float:
    """A fixed standard-normal draw per string."""
    return float(np.random.default_rng(int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")).normal())


def _world(n: int = 160, seed: int = 0):
    """(space, candidates, truth table, signals): the truth is a hidden per-network value; `good` tracks it
    (correlation ~0.9), `noise` does not, `supernet_acc` is noise named like the supernet's signal."""
    space = get_space(SPACE)
    rng = np.random.default_rng(seed)
    cands = list(dict.fromkeys(space.canonical(space.sample(rng)) for _ in range(3 * n)))[:n]
    truth = {str(a): 70 + 5 * _h(f"t{a}") for a in cands}
    table = TabularBenchmark(space, [(k, {"acc": v}) for k, v in truth.items()])
    good = {k: (v - 70) / 5 + 0.45 * _h(f"g{k}") for k, v in truth.items()}
    signals = Signals({"good": good, "noise": lambda a: _h(f"n{a}"), "supernet_acc": lambda a: _h(f"s{a}")})
    return space, cands, table, truth, signals


def test_calibrate_from_a_table_reports_each_signal_and_a_fused_estimate_that_ranks_held_out_subnets():
    space, cands, table, truth, signals = _world()
    cal = calibrate(space, 20, signals, table, candidates=cands, metric="acc", seed=1, resamples=200)
    r = cal.report
    assert r["n"] == 20 and len(cal.archs) == 20 and set(cal.archs) <= set(cands)
    assert set(r["signals"]) == {"good", "noise", "supernet_acc"}
    assert r["signals"]["good"]["tau"] > 0.5 and abs(r["signals"]["noise"]["tau"]) < r["signals"]["good"]["tau"]
    lo, hi = r["signals"]["good"]["ci"]
    assert lo <= r["signals"]["good"]["tau"] <= hi
    assert r["fused"]["tau"] > 0.4 and r["fused"]["folds"] == 5
    assert r["fused_without_supernet"]["tau"] is not None  # there is a supernet signal: its worth is shown
    assert math.isclose(sum(r["weights"].values()), 1.0)
    held = [a for a in cands if a not in set(cal.archs)]
    mean, std = cal.predictor.predict(held)
    assert kendall_tau([truth[str(a)] for a in held], mean) > 0.5 and np.all(std > 0)
    f, ucb = cal.objective(), cal.objective("ucb", kappa=2.0)
    assert f(held[0]) == pytest.approx(mean[0]) and ucb(held[0]) == pytest.approx(mean[0] + 2 * std[0])
    assert f.identity != ucb.identity and cal.digest in f.identity
    # a trained subnet's value is its measured truth, under either acquisition; the others are predicted
    predicted = cal.predictor.predict(cal.archs[:1])[0][0]
    assert f(cal.archs[0]) == ucb(cal.archs[0]) == cal.truths[0] != pytest.approx(predicted)
    est = cal.estimate([cal.archs[1], held[0]], kappa=2.0)
    assert est[0] == cal.truths[1] and est[1] == pytest.approx(mean[0] + 2 * std[0])
    assert f.measured == {str(a): t for a, t in zip(cal.archs, cal.truths)}
    assert "| good |" in cal.markdown() and "out of fold" in cal.markdown()


def test_active_choice_adds_truths_near_the_top_of_each_region():
    """`active=6` after a design of 10: six more truths, one per region per round, each the highest mean + kappa
    std of the fused estimate inside its region: they sit near the top of their region, where the design's sit
    anywhere."""
    space, cands, table, truth, signals = _world()
    macs = {a: cost(a).macs for a in cands}
    cut = float(np.median(list(macs.values())))
    regions = [lambda a: macs[a] <= cut, lambda a: True]  # a tight budget and no budget
    cal = calibrate(space, 10, signals, table, candidates=cands, metric="acc", seed=1, resamples=50, active=6,
                    regions=regions, cross_validate_fit=False)
    design, extra = cal.archs[:10], cal.archs[10:]
    assert cal.report["n"] == 16 and len(set(cal.archs)) == 16 and "6 more chosen actively" in cal.report["design"]
    # rounds of two: the tight budget picks first in round 1, second in round 2, first in round 3
    assert all(macs[extra[i]] <= cut for i in (0, 3, 4))
    rank = {k: i / len(truth) for i, k in enumerate(sorted(truth, key=truth.get))}  # 0 worst .. 1 best
    assert np.mean([rank[str(a)] for a in extra]) > 0.75 > np.mean([rank[str(a)] for a in design])
    again = calibrate(space, 10, signals, table, candidates=cands, metric="acc", seed=1, resamples=50, active=6,
                      regions=regions, cross_validate_fit=False)
    assert again.archs == cal.archs  # seeded: the same truths in the same order
    with pytest.raises(ValueError, match="active choice picks from a candidate pool"):
        calibrate(space, 10, signals, table, archs=cands[:10], metric="acc", active=2)


def test_the_design_holds_the_cheapest_and_the_dearest_and_spreads_over_cost_and_score():
    space, cands, *_ = _world()
    costs = np.array([cost(a).macs for a in cands], float)
    score = np.array([_h(f"s{a}") for a in cands])
    for seed in range(3):
        idx = design_subnets(cands, 12, costs, score, seed)
        assert len(set(idx)) == 12
        assert costs[idx].min() == costs.min() and costs[idx].max() == costs.max()
        q = (np.argsort(np.argsort(score[idx[2:]])) + 0.5) / 10  # the stratified picks' score ranks among themselves
        assert np.all(np.abs(np.sort(q) - (np.arange(10) + 0.5) / 10) < 1e-9)  # one per score decile of the picks
        ranks = np.argsort(np.argsort(score)) / len(score)
        assert ranks[idx].min() < 0.2 and ranks[idx].max() > 0.8  # they reach both ends of the score's range
    assert design_subnets(cands, 12, costs, score, 0) == design_subnets(cands, 12, costs, score, 0)
    assert design_subnets(cands, 12, costs, score, 0) != design_subnets(cands, 12, costs, score, 1)


def test_candidate_pool_counts_feasible_networks_once():
    space = get_space("macro_test")
    limit = np.median([cost(space.sample(np.random.default_rng(i))).macs for i in range(50)])
    pool, complete = candidate_pool(space, 100, lambda a: cost(a).macs <= limit)
    assert complete == (space.size() <= 20_000)
    assert len(pool) == len({space.canonical(a) for a in pool}) and all(cost(a).macs <= limit for a in pool)


def _one_line(excinfo, *words):
    msg = str(excinfo.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_more_subnets_than_feasible_is_a_one_line_error():
    space, cands, table, _, signals = _world(30)
    with pytest.raises(ValueError) as err:
        calibrate(space, 31, signals, table, candidates=cands, metric="acc")
    _one_line(err, "31", "only 30", "calibrate.subnets")
    with pytest.raises(ValueError) as err:
        calibrate(space, 2, signals, table, candidates=cands, metric="acc")
    _one_line(err, "at least 3")


def test_truths_of_another_space_nan_or_constant_are_refused_or_dropped_as_stated():
    space, cands, table, truth, signals = _world(60)
    other = get_space("macro_test")
    foreign = TabularBenchmark(other, [(str(other.smallest()), {"acc": 1.0})])
    with pytest.raises(ValueError) as err:
        calibrate(space, 5, signals, foreign, candidates=cands, metric="acc")
    _one_line(err, "is for space", other.name)
    with pytest.raises(ValueError) as err:
        calibrate(space, 8, signals, lambda a: 0.5, candidates=cands)
    _one_line(err, "all 8 truths equal 0.5")
    with pytest.raises(ValueError) as err:
        calibrate(space, 8, signals, lambda a: float("nan"), candidates=cands)
    _one_line(err, "NaN", "fewer than 3")
    some_nan = lambda a: float("nan") if _h(f"x{a}") > 0.8 else truth[str(a)]  # noqa: E731
    cal = calibrate(space, 20, signals, some_nan, candidates=cands, resamples=100)
    assert cal.report["n"] < 20 and "NaN truth left out" in cal.report["notes"][0]
    assert "NaN truth left out" in cal.markdown()  # the stated fallback reaches the report
    assert np.all(np.isfinite(cal.truths))


def test_a_constant_signal_has_no_tau_and_says_why():
    space, cands, table, truth, _ = _world(80)
    signals = Signals({"flat": lambda a: 3.0, "missing": {}, "good": {k: v for k, v in truth.items()}})
    cal = calibrate(space, 10, signals, table, candidates=cands, metric="acc", resamples=100)
    flat, missing = cal.report["signals"]["flat"], cal.report["signals"]["missing"]
    assert flat["tau"] is None and "constant" in flat["note"]
    assert missing["tau"] is None and "defined on only 0" in missing["note"]
    assert cal.report["signals"]["good"]["tau"] == pytest.approx(1.0)
    assert "nan" not in json.dumps(cal.report).lower()  # never a silent NaN


def test_given_subnets_are_calibrated_as_they_are_and_saved_without_pickle(tmp_path):
    space, cands, table, truth, signals = _world(80)
    cal = calibrate(space, 3, signals, table, archs=cands[:12], metric="acc", resamples=100)
    assert cal.archs == cands[:12] and "12 given" in cal.report["design"]
    md = cal.save(tmp_path / "cal")
    saved = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert saved["digest"] == cal.digest and len(saved["subnets"]) == 12 and md.read_text().startswith("# Calib")
    again = load_predictor(tmp_path / "cal" / "calibration.predictor", signals=signals)
    assert np.allclose(again.predict(cands[20:30])[0], cal.predictor.predict(cands[20:30])[0])
    cal.save(tmp_path / "cal")  # the same calibration again: fine
    other = calibrate(space, 3, signals, table, archs=cands[12:24], metric="acc", resamples=100)
    with pytest.raises(ValueError) as err:
        other.save(tmp_path / "cal")
    _one_line(err, "another calibration", "overwrite=True")
    other.save(tmp_path / "cal", overwrite=True)
    f = calibrated_objective(tmp_path / "cal", signals)  # from the files: the trained subnets' truths, else predicted
    assert f(cands[12]) == other.truths[0]
    assert f(cands[40]) == pytest.approx(other.predictor.predict([cands[40]])[0][0])
    assert set(f.measured) == {str(a) for a in cands[12:24]}
    saved = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    saved["subnets"][0]["truth"] += 1.0  # other truths: another objective, so another study identity
    (tmp_path / "cal" / "calibration.json").write_text(json.dumps(saved))
    g = calibrated_objective(tmp_path / "cal", signals)
    assert g(cands[12]) == other.truths[0] + 1.0 and g.identity != f.identity
    (tmp_path / "cal" / "calibration.json").write_text("{")
    with pytest.raises(ValueError) as err:
        calibrated_objective(tmp_path / "cal", signals)
    _one_line(err, "calibration.json", "not a readable calibration")


def test_a_useless_supernet_signal_is_weighed_out_of_the_fused_estimate():
    """Paired over seeds: the fused estimate with a noise `supernet_acc` column ranks held-out subnets no worse
    than the same stack without it (within two standard errors)."""
    space, cands, table, truth, signals = _world(160)
    diffs = []
    for seed in range(4):
        cal = calibrate(space, 25, signals, table, candidates=cands, metric="acc", seed=seed, resamples=50)
        no_sn = calibrate(space, 25, Signals({"good": signals.columns["good"], "noise": signals.columns["noise"]}),
                          table, archs=cal.archs, metric="acc", seed=seed, resamples=50)
        held = [a for a in cands if a not in set(cal.archs)]
        t = [truth[str(a)] for a in held]
        diffs.append(kendall_tau(t, cal.predictor.predict(held)[0]) - kendall_tau(t, no_sn.predictor.predict(held)[0]))
    diffs = np.array(diffs)
    assert diffs.mean() >= -max(2 * diffs.std(ddof=1) / math.sqrt(len(diffs)), 0.02), diffs


def test_a_supernet_signal_that_is_the_truth_dominates_the_fused_estimate():
    """`supernet_acc` equal to the truth up to small noise: the stack's member that is that signal alone carries
    most of the weight, the encoding alone little, and the fused estimate ranks held-out subnets almost exactly."""
    space, cands, table, truth, signals = _world(160)
    exact = Signals({"good": signals.columns["good"], "noise": signals.columns["noise"],
                     "supernet_acc": {k: v + 0.05 * _h(f"x{k}") for k, v in truth.items()}})
    for seed in range(2):
        cal = calibrate(space, 20, exact, table, candidates=cands, metric="acc", seed=seed, resamples=50)
        w = cal.report["weights"]
        assert w["signals:supernet_acc"] > 0.5 and w["onehot+ordinal"] < 0.3, w
        assert max(cal.report["signals"], key=lambda k: cal.report["signals"][k]["tau"]) == "supernet_acc"
        held = [a for a in cands if a not in set(cal.archs)]
        assert kendall_tau([truth[str(a)] for a in held], cal.predictor.predict(held)[0]) > 0.9


def test_supernet_signals_and_standalone_truths_from_a_checkpoint(tiny_checkpoint, tmp_path):
    """On the tiny digits run: the supernet's accuracy and loss plus MACs as signals (the design spreads over the
    supernet's accuracy); standalone truths trained for one epoch with the retrain settings, then served from the
    retrain table by a second source instead of trained again."""
    import shutil

    from oneshot.deploy.calibrate import RetrainTruths, SupernetSignals
    from oneshot.recipe import RetrainSection
    from oneshot.training.checkpoint import read_checkpoint
    from predictors import cost_signals

    ckpt = tmp_path / "supernet.ckpt"
    shutil.copy(tiny_checkpoint, ckpt)  # the evaluation table is written beside it
    info = read_checkpoint(ckpt)["oneshot"]
    space = space_from_dict(info["space"])
    signals = Signals({"macs": cost_signals(space)["macs"]},
                      sources=[SupernetSignals(ckpt, calib_batches=1, calib_batch_size=16)])
    truth = lambda a: -math.log(cost(a).macs) + 0.1 * _h(str(a))  # noqa: E731  (a stand-in: training is below)
    cal = calibrate(space, 4, signals, truth, pool_size=8, seed=0, resamples=50)
    assert list(cal.report["signals"]) == ["supernet_acc", "supernet_loss", "macs"]
    assert "supernet_acc" in cal.report["design"] and (tmp_path / "evaluations.jsonl").is_file()
    assert cal.report["signals"]["macs"]["tau"] < -0.3  # the truth falls with cost, and the sign is kept

    section = RetrainSection(epochs=1, optimizer={"name": "SGD", "lr": 0.05}, scheduler=None)
    archs = cal.archs[:2]
    truths = RetrainTruths(info["data"], section, table_path=tmp_path / "retrain.jsonl", accelerator="cpu")
    y = truths(archs)
    assert truths.trained == 2 and truths.seconds > 0 and y.shape == (2,) and np.all((0 <= y) & (y <= 1))
    assert all("standalone_test_acc" in r for r in truths.records)  # the test split is recorded, not the truth
    again = RetrainTruths(info["data"], section, table_path=tmp_path / "retrain.jsonl", accelerator="cpu")
    assert np.array_equal(again(archs), y) and again.trained == 0
    assert "epochs=1" in again.identity


def test_oneshot_run_calibrates_searches_the_calibrated_estimate_and_reports_each_signal(tmp_path, capsys,
                                                                                         monkeypatch):
    """`calibrate.subnets: 3`, `calibrate.active: 1` and `search.objective: calibrated` on the tiny digits run with
    a latency budget: three evaluated subnets by the design and one chosen inside the budget trained standalone
    (into the run's retrain table), latency among the signals, the report
    carries the per-signal table; `oneshot
    calibrate RECIPE` re-runs the phase from the table without training again."""
    from oneshot.cli import main

    settings = {"supernet.name": "mbv3_test", "data.image_size": 8, "train.epochs": 1, "train.max_steps": 6,
                "train.threads": 1, "evaluate.num_subnets": 8, "evaluate.calib_batches": 2, "predict.folds": 2,
                "search.n_trials": 4, "search.budgets": {"flops": [1.0e6], "latency": [1.0e3]},
                "search.latency": {"num_subnets": 4, "repeats": 2, "warmup": 1}, "retrain.epochs": 1,
                "retrain.extra_subnets": 0, "calibrate.subnets": 3, "calibrate.active": 1,
                "search.objective": "calibrated"}
    args = ["run", "digits", "--no-progress", "--set", f"output_dir={tmp_path}"]
    for k, v in settings.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    assert main(args) == 0
    run = tmp_path / "digits"
    saved = json.loads((run / "calibration" / "calibration.json").read_text())
    assert len(saved["subnets"]) == 4 and {"supernet_acc", "supernet_loss", "macs", "params", "latency_ms"} <= set(
        saved["subnets"][0])  # a latency budget adds the latency model's prediction as a signal
    assert len((run / "latency.jsonl").read_text().splitlines()) == 1 + 6  # timed once: calibrate and search share
    report = (run / "report" / "report.md").read_text()
    noise = saved["report"]["truth_noise"]  # each truth's own sampling noise, from the holdout's size
    assert noise["holdout_images"] > 0 and 0 < noise["half_width"] < 0.5 and "Truth noise: each truth" in report
    assert "Calibration on 4 standalone truths" in report and "1 more chosen actively" in report
    assert "| supernet_acc |" in report
    assert "calibrated estimate" in json.loads((run / "report" / "summary.json").read_text())["objective_label"]
    from oneshot.study.budget import CostModel
    from oneshot.training.checkpoint import read_checkpoint

    space = space_from_dict(read_checkpoint(run / "supernet.ckpt")["oneshot"]["space"])
    fits = [x["truth"] for x in saved["subnets"] if CostModel()(Arch.from_str(space, x["arch"]))["flops"] <= 1.0e6]
    chosen = json.loads((run / "search" / "chosen.json").read_text())["chosen"]
    assert fits and chosen[0]["search_score"] >= max(fits)  # the trained subnets compete with their truths
    import oneshot.deploy.calibrate as cal_module

    real = cal_module.calibrated_objective

    def penalized(*args, **kwargs):  # every subnet not trained scores far below the trained ones
        f = real(*args, **kwargs)

        def g(arch):
            return f(arch) - (0.0 if str(arch.space.canonical(arch)) in f.measured else 100.0)

        g.identity, g.measured = f.identity + " penalized", f.measured
        return g

    monkeypatch.setattr(cal_module, "calibrated_objective", penalized)
    sets = [x for k, v in settings.items() for x in ("--set", f"{k}={json.dumps(v)}")]
    assert main(["search", "digits", "--no-progress", "--set", f"output_dir={tmp_path}", "--set",
                 "search.study_name=penalized", *sets]) == 0
    chosen = json.loads((run / "search" / "chosen.json").read_text())["chosen"]
    assert chosen[0]["arch"] in {x["arch"] for x in saved["subnets"]} and chosen[0]["search_score"] == max(fits)
    trained = len((run / "retrain.jsonl").read_text().splitlines())
    capsys.readouterr()
    assert main(["calibrate", "digits", "--no-progress", "--set", f"output_dir={tmp_path}",
                 *[x for k, v in settings.items() for x in ("--set", f"{k}={json.dumps(v)}")]]) == 0
    assert "already retrained" in capsys.readouterr().out
    assert len((run / "retrain.jsonl").read_text().splitlines()) == trained  # nothing trained twice


def test_calibrate_command_reads_truths_from_a_table_of_trained_networks(tiny_checkpoint, tmp_path, capsys):
    """`oneshot calibrate CHECKPOINT --table T`: truths from a user's table of the checkpoint's space; a table of
    another space is one line."""
    import shutil

    from oneshot.cli import main
    from oneshot.training.checkpoint import read_checkpoint

    ckpt = tmp_path / "ck" / "supernet.ckpt"
    ckpt.parent.mkdir()
    shutil.copy(tiny_checkpoint, ckpt)
    space = space_from_dict(read_checkpoint(ckpt)["oneshot"]["space"])
    rng = np.random.default_rng(0)
    nets = list(dict.fromkeys(space.canonical(space.sample(rng)) for _ in range(60)))[:12]
    table = tmp_path / "trained.json"
    table.write_text(json.dumps({str(a): {"acc": 90 - 10 * _h(f"t{a}")} for a in nets}))
    assert main(["calibrate", str(ckpt), "--table", str(table), "--metric", "acc", "--subnets", "4", "--active", "2",
                 "--pool", "8", "--out", str(tmp_path / "cal")]) == 0
    out = capsys.readouterr().out
    assert "Calibration on 6 standalone truths" in out and "2 more chosen actively" in out
    assert "| supernet_acc |" in out and "| macs |" in out and (tmp_path / "cal" / "calibration.predictor").is_file()
    other = get_space(SPACE)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({str(other.smallest()): {"acc": 1.0}}))
    assert main(["calibrate", str(ckpt), "--table", str(foreign), "--metric", "acc", "--subnets", "3"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(foreign) in err[0]
