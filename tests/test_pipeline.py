"""The end-to-end `oneshot run` on a tiny recipe, plus extraction to files and standalone retraining."""

import json

import numpy as np
import pytest
import torch

from oneshot.cli import main
from oneshot.deploy.extract import extract_subnets, read_manifest
from oneshot.recipe import load_recipe
from oneshot.deploy.retrain import rank_agreement
from supernets import Arch, cost, load_subnet

TINY = {
    "supernet.name": "mbv3_test",
    "data.image_size": 8,
    "train.epochs": 1,
    "train.max_steps": 6,
    "train.threads": 1,
    "evaluate.num_subnets": 8,
    "evaluate.calib_batches": 2,
    "predict.folds": 2,
    "search.n_trials": 6,
    "search.budgets": {"flops": [0.5e6, 1.0e6]},
    "retrain.epochs": 1,
    "retrain.extra_subnets": 2,
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    args = ["run", "digits", "--no-progress", "--set", f"output_dir={out}"]
    for k, v in TINY.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    assert main(args) == 0
    return out / "digits"


def test_run_writes_report_with_per_budget_table(run_dir):
    report = (run_dir / "report" / "report.md").read_text()
    for heading in ("Compute per phase", "Chosen subnet per budget", "Accuracy predictors", "Kendall tau"):
        assert heading in report
    for png in ("accuracy_vs_flops.png", "predictor_predicted_vs_measured.png", "search_history.png"):
        assert (run_dir / "report" / png).stat().st_size > 1000
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    assert set(summary["phases"]) == {"train", "evaluate", "predict", "calibrate", "search", "extract", "retrain"}
    rows = summary["budgets"]
    assert [r["budget"] for r in rows] == [0.5e6, 1.0e6]
    for r in rows:
        assert r["flops"] <= r["budget"]  # the chosen subnet respects its budget
        assert 0.0 <= r["standalone_test_acc"] <= 1.0 and 0.0 <= r["supernet_acc"] <= 1.0
    assert summary["rank"]["n"] >= 3


def test_extracted_files_match_manifest_and_budgets(run_dir):
    folder, entries = read_manifest(run_dir / "subnets")
    assert len(entries) == 2
    for e in entries:
        module, arch, meta = load_subnet(folder / e["file"])
        assert str(arch) == e["arch"] and cost(arch).flops == e["flops"] <= e["budget"]
        assert meta["data"]["name"] == "digits"


def test_rerun_resumes_without_redoing_work(run_dir):
    before = (run_dir / "evaluations.jsonl").read_text().count("\n")
    retrained = (run_dir / "retrain.jsonl").read_text().count("\n")
    args = ["run", "digits", "--no-progress", "--set", f"output_dir={run_dir.parent}"]
    for k, v in TINY.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    assert main(args) == 0
    assert (run_dir / "evaluations.jsonl").read_text().count("\n") == before  # nothing evaluated twice
    assert (run_dir / "retrain.jsonl").read_text().count("\n") == retrained  # nothing retrained twice


def test_export_recalibrates_bn_so_files_equal_the_supernet_path(run_dir, tmp_path):
    from oneshot.score.bn import CalibrationSet, recalibrate_bn
    from oneshot.training.checkpoint import load_supernet
    from oneshot.data import datamodule_from_info

    ckpt = run_dir / "supernet.ckpt"
    supernet, info = load_supernet(ckpt)
    arch = supernet.space.largest()
    manifest = extract_subnets(ckpt, [{"arch": str(arch), "name": "big", "supernet_acc": 0.5}], tmp_path,
                              calib_batches=2, calib_batch_size=32)
    folder, entries = read_manifest(manifest)
    module, arch2, meta = load_subnet(folder / entries[0]["file"])
    assert arch2 == arch and meta["supernet_acc"] == 0.5
    dm = datamodule_from_info(info["data"])
    recalibrate_bn(supernet, CalibrationSet.from_datamodule(dm, 2, 32, 0), arch)
    x = torch.randn(4, supernet.config.in_chans, 8, 8)
    with torch.no_grad():
        assert (module(x) - supernet(x, arch)).abs().max() < 1e-5


def test_retrain_cli_on_two_subnets_says_rank_correlation_is_na(run_dir, capsys):
    # the run's manifest has 2 budgets (1 or 2 distinct subnets): too few for a rank correlation, which must say so
    folder, entries = read_manifest(run_dir / "subnets")
    distinct = {e["file"] for e in entries}
    assert len(entries) == 2 and len(distinct) == len({e["arch"] for e in entries})  # one file per distinct subnet
    assert main(["retrain", str(run_dir / "subnets"), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "standalone test acc" in out and "n/a: fewer than 3 distinct subnets" in out and "tau" not in out
    written = out.split("writing to ")[1].split("\n")[0]
    data = json.loads(open(written).read())
    assert len(data["subnets"]) == len(distinct) and data["rank"] is None  # a shared file is retrained once
    assert all(0 <= s["standalone_test_acc"] <= 1 for s in data["subnets"])


def test_rank_agreement_values():
    assert rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])["kendall_tau"] == pytest.approx(1.0)
    assert rank_agreement([1, 2, 3, 4], [40, 30, 20, 10])["kendall_tau"] == pytest.approx(-1.0)


def test_missing_recipe_and_bad_override_give_clear_errors(capsys):
    assert main(["run", "no_such_recipe"]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown key"):
        load_recipe("digits", {"train.epoch": 1})


def _recipe_file(path, output_dir, **extra):
    """The TINY digits recipe as a YAML file (phase commands take a recipe file)."""
    import yaml

    from oneshot.recipe import RECIPES_DIR

    data = yaml.safe_load((RECIPES_DIR / "digits.yaml").read_text())
    for key, value in {**TINY, "output_dir": str(output_dir), **extra}.items():
        *parents, leaf = key.split(".")
        node = data
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_each_phase_runs_alone_from_the_recipe_and_matches_the_full_run(run_dir, tmp_path, capsys):
    """`oneshot train|evaluate|predict|calibrate|search|extract|retrain RECIPE` one by one == `oneshot run`, phase for
    phase (calibrate is off here: it reports that it skipped)."""
    recipe = _recipe_file(tmp_path / "tiny.yaml", tmp_path / "out", **{"retrain.from_scratch": False})
    assert main(["extract", recipe]) == 2  # out of order: names the phase to run first
    assert "run `oneshot search RECIPE`" in capsys.readouterr().err
    for phase in ("train", "evaluate", "predict", "calibrate", "search", "extract", "retrain"):
        assert main([phase, recipe, "--no-progress"]) == 0, phase
    alone = tmp_path / "out" / "digits"
    # Same seeds, same phases: the same subnets scored and the same subnet chosen per budget.
    assert json.loads((alone / "evaluate.json").read_text()) == json.loads((run_dir / "evaluate.json").read_text())
    assert (json.loads((alone / "search" / "chosen.json").read_text())
            == json.loads((run_dir / "search" / "chosen.json").read_text()))
    # retrain.from_scratch=false: every subnet, the extra ones included, fine-tuned from inherited weights.
    retrained = json.loads((alone / "retrain.json").read_text())["records"]
    chosen = json.loads((alone / "search" / "chosen.json").read_text())["chosen"]
    distinct = len({c["arch"] for c in chosen}) + TINY["retrain.extra_subnets"]  # a subnet two budgets chose: once
    assert len(retrained) == distinct == len({r["arch"] for r in retrained})
    assert not any(r["from_scratch"] for r in retrained) and all(r["start_weights"] for r in retrained)
    assert main(["run", recipe, "--phases", "report", "--no-progress"]) == 0
    summary = json.loads((alone / "report" / "summary.json").read_text())
    assert set(summary["phases"]) == {"train", "evaluate", "predict", "calibrate", "search", "extract", "retrain"}
    assert "fine-tuned from inherited weights" in summary["what"]


def test_phase_with_recipe_refuses_flags_and_points_to_set(capsys):
    with pytest.raises(SystemExit):
        main(["search", "recipes/digits.yaml", "--n-trials", "5"])
    assert "--set search.n_trials=30" in capsys.readouterr().err


def test_unknown_phase_is_a_clear_error(capsys):
    assert main(["run", "digits", "--phases", "train,serch"]) == 2
    assert "unknown phase(s) ['serch']" in capsys.readouterr().err


def test_search_phase_with_a_latency_budget(run_dir, tmp_path, capsys):
    """A recipe budget on latency: the search phase times subnets, fits the latency model, and respects it."""
    import shutil

    from oneshot.score.latency import LatencyModel

    shutil.copytree(run_dir, tmp_path / "digits")
    # One thread on its own CPU clock: another process sharing the cores neither slows the timings nor changes the
    # thread count between this measurement and the phase's, so the phase reuses exactly these timings.
    lat = {"num_subnets": 10, "repeats": 5, "threads": 1, "clock": "thread"}
    # Time subnets with the settings the phase will use (it reuses the table) to pick a budget that binds.
    model = LatencyModel.measure(run_dir / "supernet.ckpt", table=tmp_path / "digits" / "latency.jsonl", **lat)
    limit = float(np.median(list(model.measured.values())))
    recipe = _recipe_file(tmp_path / "lat.yaml", tmp_path,
                          **{"search.budgets": {"latency": [limit]}, "search.latency": lat})
    assert main(["search", recipe, "--no-progress"]) == 0
    assert "latency model on 12 timed subnets" in capsys.readouterr().out
    (chosen,) = json.loads((tmp_path / "digits" / "search" / "chosen.json").read_text())["chosen"]
    assert chosen["budget_key"] == "latency" and chosen["cost"] <= limit
    assert chosen["cost"] == pytest.approx(model(Arch.from_str(model.space, chosen["arch"])))


def test_limits_on_two_costs_pair_up_into_one_budget(run_dir, tmp_path):
    """`{flops: [a, b], params: p}` is two budgets, each with both limits: the chosen subnets respect both."""
    import shutil

    from oneshot.pipeline.report import short_number
    from oneshot.training.checkpoint import load_supernet

    shutil.copytree(run_dir, tmp_path / "digits")
    params = sorted(r["params"] for r in json.loads((run_dir / "evaluate.json").read_text())["records"])
    limit = params[len(params) // 3]
    recipe = _recipe_file(tmp_path / "two.yaml", tmp_path,
                          **{"search.budgets": {"flops": [0.5e6, 1.0e6], "params": limit}})
    assert main(["search", recipe, "--no-progress"]) == 0
    chosen = json.loads((tmp_path / "digits" / "search" / "chosen.json").read_text())["chosen"]
    assert [c["limits"] for c in chosen] == [{"flops": 0.5e6, "params": limit}, {"flops": 1.0e6, "params": limit}]
    space = load_supernet(run_dir / "supernet.ckpt")[0].space
    for c in chosen:
        arch = Arch.from_str(space, c["arch"])
        assert cost(arch).flops <= c["limits"]["flops"] and cost(arch).params <= limit
    assert main(["extract", recipe]) == 0 and main(["retrain", recipe, "--no-progress"]) == 0
    assert main(["run", recipe, "--phases", "report", "--no-progress"]) == 0
    report = (tmp_path / "digits" / "report" / "report.md").read_text()
    assert f"flops ≤ 5e5 and params ≤ {short_number(limit)}" in report  # as its search-history plot spells it


def test_vit_recipe_runs_end_to_end_and_exports_onnx(tmp_path):
    """The ViT family through every phase (no BN anywhere), then `oneshot extract --format onnx`."""
    import onnxruntime as ort

    args = ["run", "vit_digits", "--no-progress", "--set", f"output_dir={tmp_path}"]
    tiny = {**TINY, "supernet.name": "vit_test", "search.budgets": {"flops": [6e3, 3e4]}, "evaluate.calib_batches": 1}
    for k, v in tiny.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    assert main(args) == 0
    run = tmp_path / "vit_digits"
    report = (run / "report" / "report.md").read_text()
    assert "nothing was recalibrated" in report and "after BN recalibration" not in report
    ckpt = run / "supernet.ckpt"
    from oneshot.training.checkpoint import load_supernet

    supernet = load_supernet(ckpt)[0].eval()
    arch = supernet.space.largest()
    assert main(["extract", str(ckpt), "--arch", str(arch), "--format", "onnx", "--out", str(tmp_path / "x")]) == 0
    folder, entries = read_manifest(tmp_path / "x")
    assert entries[0]["file"].endswith(".safetensors") and entries[0]["onnx"].endswith(".onnx")
    module, arch2, _ = load_subnet(folder / entries[0]["file"])
    x = torch.randn(3, 1, 8, 8)
    session = ort.InferenceSession(str(folder / entries[0]["onnx"]), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = supernet(x, arch).numpy()
        assert arch2 == arch and np.abs(module(x).numpy() - want).max() < 1e-5
    assert np.abs(session.run(None, {"input": x.numpy()})[0] - want).max() < 1e-4


def _run_space(run_dir):
    from oneshot.training.checkpoint import load_supernet

    return load_supernet(run_dir / "supernet.ckpt")[0].space


def test_predict_phase_with_proxies_fits_zc_predictors_and_search_uses_them(run_dir, tmp_path, capsys):
    """`predict.proxies`: proxies scored once into proxies.jsonl, predictors get `zc` features, and a search whose
    objective is such a predictor encodes new subnets with the same proxies."""
    import shutil

    from predictors import load_predictor

    shutil.copytree(run_dir, tmp_path / "digits")
    recipe = _recipe_file(tmp_path / "zc.yaml", tmp_path, **{"predict.proxies": ["params", "synflow"],
                                                             "predict.proxy_batch_size": 8,
                                                             "search.objective": "gp"})
    assert main(["predict", recipe, "--no-progress"]) == 0
    out = capsys.readouterr().out
    evaluated = json.loads((tmp_path / "digits" / "evaluate.json").read_text())["records"]
    assert f"{len(evaluated)} subnets scored now" in out
    rows = [json.loads(line) for line in (tmp_path / "digits" / "proxies.jsonl").read_text().splitlines()[1:]]
    assert sorted(r["arch"] for r in rows) == sorted(r["arch"] for r in evaluated)
    assert all(r["params"] == cost(Arch.from_str(_run_space(run_dir), r["arch"])).params for r in rows)
    assert json.loads((tmp_path / "digits" / "predict.json").read_text())["proxies"] == ["params", "synflow@init"]
    with pytest.raises(ValueError, match="zc"):  # the file needs the proxies to encode a subnet
        pred = load_predictor(tmp_path / "digits" / "predictors" / "gp.predictor")
        pred.predict([Arch.from_str(pred.space, rows[0]["arch"])])
    assert main(["search", recipe, "--no-progress"]) == 0
    chosen = json.loads((tmp_path / "digits" / "search" / "chosen.json").read_text())["chosen"]
    assert all(c["cost"] <= c["budget"] for c in chosen)
    assert main(["predict", recipe, "--no-progress"]) == 0  # a re-run reads every proxy back, computes none
    assert "0 subnets scored now" in capsys.readouterr().out
