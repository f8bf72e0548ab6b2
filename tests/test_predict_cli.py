"""`oneshot predict fit|curve` on a real evaluation table written with `ResultTable`."""

import json
import math

import numpy as np

from oneshot.cli import main
from oneshot.table import ResultTable
from predictors import load_predictor, make_objective
from supernets import get_space


def _table(path, n=50, nan_at=None):
    space = get_space("mbv3_test")
    f = make_objective(space, "additive", 0.01, seed=0)
    rng = np.random.default_rng(0)
    table = ResultTable(path, space, meta={"checkpoint": "synthetic"})
    seen = set()
    while len(table) < n:
        a = space.sample(rng)
        if a in seen:
            continue
        seen.add(a)
        acc = float("nan") if len(table) == nan_at else f(a)
        table.add({"key": str(a), "arch": str(a), "holdout_acc": acc, "holdout_loss": 1 - acc, "macs": 1})
    return path


def test_predict_fit_prints_metrics_and_saves_a_loadable_predictor(tmp_path, capsys):
    path = _table(tmp_path / "evaluations.jsonl")
    assert main(["predict", "fit", str(path), "--model", "gp", "--folds", "3"]) == 0
    out = capsys.readouterr().out
    for label in ("Kendall tau", "Spearman", "precision@k", "RMSE", "coverage"):
        assert label in out
    model = load_predictor(tmp_path / "evaluations.gp.predictor")
    assert model.n_train_ == 50 and model.name == "gp"

    assert main(["predict", "fit", str(path), "--model", "xgb", "--folds", "3", "--json",
                 "--out", str(tmp_path / "x.predictor"), "--target", "holdout_loss"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "xgb" and report["target"] == "holdout_loss" and len(report["cv"]["folds"]) == 3
    assert report["cv"]["summary"]["kendall_tau"][0] > 0.3
    assert load_predictor(tmp_path / "x.predictor").name == "xgb"


def test_predict_curve_prints_each_size(tmp_path, capsys):
    path = _table(tmp_path / "evaluations.jsonl")
    assert main(["predict", "curve", str(path), "--models", "gp", "--sizes", "10,20", "--repeats", "2", "--json"]) == 0
    curve = json.loads(capsys.readouterr().out)
    assert set(curve["gp"]) == {"10", "20"} and not math.isnan(curve["gp"]["20"]["spearman"][0])


def test_predict_fit_bad_input_is_one_clear_line(tmp_path, capsys):
    path = _table(tmp_path / "evaluations.jsonl", n=20)
    assert main(["predict", "fit", str(path), "--target", "top1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("oneshot predict: error:") and "Traceback" not in err
    assert "has the field 'top1'; numeric fields: ['holdout_acc', 'holdout_loss', 'macs']" in err
    assert main(["predict", "fit", str(tmp_path / "missing.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    nan_path = _table(tmp_path / "nan.jsonl", n=20, nan_at=4)
    assert main(["predict", "fit", str(nan_path), "--model", "gp"]) == 2
    assert "1 of 20 scores are NaN or infinite (first at positions [4])" in capsys.readouterr().err


def test_predict_curve_default_sizes_come_from_the_table(tmp_path, capsys):
    # 30 rows: of the default sizes 10, 20, 50, ... those leaving a fifth (6 rows) for testing are 10 and 20
    path = _table(tmp_path / "evaluations.jsonl", n=30)
    assert main(["predict", "curve", str(path), "--models", "gp", "--repeats", "1", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["gp"]) == {"10", "20"}


def test_too_few_rows_are_named_as_such(tmp_path, capsys):
    path = _table(tmp_path / "evaluations.jsonl", n=9)
    assert main(["predict", "fit", str(path), "--folds", "3"]) == 2
    err = capsys.readouterr().err
    assert "9 rows" in err and "too few" in err and "need at least 10" in err and "equal" not in err
    assert not list(tmp_path.glob("*.predictor"))
    path = _table(tmp_path / "more.jsonl", n=12)
    assert main(["predict", "fit", str(path), "--folds", "7"]) == 2  # 2 per fold
    assert "need at least 14" in capsys.readouterr().err


def test_pipeline_predict_phase_skips_with_a_note_below_the_minimum(tmp_path):
    from types import SimpleNamespace

    from oneshot.pipeline.phases import phase_predict

    space = get_space("mbv3_test")
    written = {}
    records = [{"arch": str(a), "holdout_acc": 0.5 + 0.01 * i}
               for i, a in enumerate([space.smallest(), space.largest(), space.sample(np.random.default_rng(1))])]
    run = SimpleNamespace(recipe=SimpleNamespace(predict=SimpleNamespace(models=["gp"], folds=5,
                                                                         target="holdout_acc"), seed=0),
                          evaluated=lambda: records, space=space, dir=tmp_path,
                          write=lambda name, obj: written.setdefault(name, obj))
    note = phase_predict(run)
    assert note.startswith("skipped: 3 evaluated subnets are too few") and "need 10" in note
    assert written["predict.json"]["metrics"] == {} and not (tmp_path / "predictors").exists()
