"""What a run prints when piped to a file, and the report's plots: legends that match what they label."""

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from oneshot.console import PlainProgress, progress_bar, quiet_lightning
from oneshot.pipeline.report import accuracy_figure, history_figure, predictor_figure

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- plain progress lines
def test_piped_progress_prints_a_few_plain_lines_ending_at_the_total(capsys):
    items = list(progress_bar(range(25), desc="evaluate", unit="subnet"))  # capsys: stdout is not a terminal
    out = capsys.readouterr().out
    assert items == list(range(25))
    lines = out.splitlines()
    assert "\r" not in out and 1 <= len(lines) <= 11  # a line per tenth at most, not one per item
    assert lines[-1] == "evaluate: 25/25 subnet"
    assert all(line.startswith("evaluate: ") for line in lines)


def test_plain_progress_follows_assigned_counts_like_the_search_loop(capsys):
    with progress_bar(total=4, desc="search", unit="subnet") as bar:
        assert isinstance(bar, PlainProgress)
        for n in (1, 1, 3, 4):  # the search loop assigns `n` (it counts every worker's subnets) and refreshes
            bar.n = n
            bar.set_postfix(best="0.5", refresh=False)
            bar.refresh()
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["search: 1/4 subnet (best=0.5)", "search: 3/4 subnet (best=0.5)", "search: 4/4 subnet (best=0.5)"]


def test_disabled_progress_prints_nothing(capsys):
    assert sum(progress_bar(range(5), desc="x", enabled=False)) == 10
    assert capsys.readouterr().out == ""


def test_quiet_lightning_restores_levels_and_keeps_warnings():
    from lightning.pytorch.utilities.rank_zero import rank_zero_warn

    lg = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    lg.setLevel(logging.DEBUG)
    with quiet_lightning():
        assert not lg.isEnabledFor(logging.INFO) and lg.isEnabledFor(logging.WARNING)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rank_zero_warn("a real problem")
        assert [str(w.message) for w in caught] == ["a real problem"]
    assert lg.level == logging.DEBUG
    lg.setLevel(logging.NOTSET)


# --------------------------------------------------------------------------- a whole run, piped
TINY = {"supernet.name": "mbv3_test", "data.image_size": 8, "train.epochs": 2, "train.max_steps": 4,
        "train.threads": 1, "evaluate.num_subnets": 6, "evaluate.calib_batches": 1, "predict.folds": 2,
        "search.n_trials": 4, "search.budgets": {"flops": [1.0e6]}, "retrain.epochs": 1,
        "retrain.extra_subnets": 2}


@pytest.fixture(scope="module")
def piped_run(tmp_path_factory):
    """`oneshot run` with progress on and stdout/stderr piped, as when a run is logged to a file."""
    out = tmp_path_factory.mktemp("piped")
    args = [sys.executable, "-m", "oneshot", "run", "digits", "--set", f"output_dir={out}"]
    for k, v in TINY.items():
        args += ["--set", f"{k}={json.dumps(v)}"]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, proc.stderr, out / "digits"


def test_piped_run_has_plain_lines_and_no_lightning_banners(piped_run):
    stdout, stderr, _ = piped_run
    both = stdout + stderr
    assert "\r" not in both
    for noise in ("GPU available", "TPU available", "Tip:", "| Name", "Trainable params"):
        assert noise not in both, noise
    assert "evaluate: 8/8 subnet" in stdout  # 6 random + smallest + largest, as a plain line
    assert "train supernet: epoch 1/2, step 4" in stdout  # Lightning's bar replaced by a line per epoch (max_steps=4)


def test_piped_run_names_each_retrained_subnet(piped_run):
    stdout, _, run_dir = piped_run
    records = json.loads((run_dir / "retrain.json").read_text())["records"]
    lines = [line for line in stdout.splitlines() if line.startswith("retrain ") and "epochs" in line]
    assert len(lines) == len(records) >= 3
    for i, (line, r) in enumerate(zip(lines, records), 1):
        assert line.startswith(f"retrain {i}/{len(records)} {r['name']} {r['arch']}:")


# --------------------------------------------------------------------------- report plots
def _history(studies=("flops_1e6", "flops_2e6"), n=6):
    rng = np.random.default_rng(0)
    return [{"study": s, "value": float(v)} for s in studies for v in rng.random(n)]


def test_search_history_legend_colours_match_the_dots_and_lines():
    fig = history_figure({"search_history": _history()})
    ax = fig.axes[0]
    drawn = {line.get_label(): to_rgba(line.get_color()) for line in ax.get_lines()}
    legend = {text.get_text(): to_rgba(handle.get_color())
              for text, handle in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles)}
    assert legend == drawn and len(drawn) == 4
    for study in ("flops_1e6", "flops_2e6"):  # a study's dots and its best-so-far line share one colour
        assert drawn[f"{study}: each query"] == drawn[f"{study}: best so far"]
    assert drawn["flops_1e6: each query"] != drawn["flops_2e6: each query"]


def test_predictor_titles_name_pooled_and_fold_mean_tau():
    summary = {"predictor_oof": {"xgb": {"true": [0.1, 0.2, 0.3], "mean": [0.1, 0.3, 0.2], "std": [0, 0, 0],
                                         "kendall_tau": 0.3333}},
               "predictors": {"xgb": {"kendall_tau": 0.25, "kendall_tau_std": 0.05}}}
    title = predictor_figure(summary).axes[0].get_title()
    assert "pooled 0.333" in title and "mean over folds 0.250 ± 0.050" in title


def test_budget_lines_have_one_legend_entry():
    evals = [{"flops": f, "holdout_acc": a} for f, a in ((1e6, 0.5), (2e6, 0.6), (3e6, 0.7))]
    rows = [{"budget_key": "flops", "budget": b, "flops": f, "supernet_acc": a}
            for b, f, a in ((1.5e6, 1e6, 0.5), (2.5e6, 2e6, 0.6))]
    ax = accuracy_figure({"evaluations": evals, "budgets": rows}).axes[0]
    vertical = [line for line in ax.get_lines() if len(set(line.get_xdata())) == 1]
    assert sorted(line.get_xdata()[0] for line in vertical) == [1.5, 2.5]  # MFLOPs
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels.count("FLOPs budget") == 1 and "chosen per budget" in labels
