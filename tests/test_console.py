"""What a run prints when piped to a file, and the report's plots: legends that match what they label."""

import json
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from oneshot.console import PlainProgress, progress_bar, quiet_lightning
from oneshot.pipeline.report import accuracy_figure, history_figure, predictor_figure
from supernets import cost

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
        # Both budgets admit every mbv3_test subnet at 8 px: they choose one subnet, as the digits run's three did.
        "search.n_trials": 4, "search.budgets": {"flops": [1.0e6, 2.0e6]}, "retrain.epochs": 1,
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


def test_piped_run_counts_subnets_not_budgets(piped_run):
    """Two budgets that choose one subnet: search, extract and retrain all count one subnet, and the retrain lines
    count what the retrain phase announced."""
    stdout, _, run_dir = piped_run
    assert "best per budget (2 budgets chose 1 distinct subnet):" in stdout
    assert "2 budgets chose 1 distinct subnet into standalone files" in stdout
    announced = re.search(r"2 budgets chose 1 distinct subnet \+ (\d+) more subnets over the accuracy range: "
                          r"(\d+) retrained", stdout)
    assert announced and int(announced.group(2)) == 1 + int(announced.group(1))
    lines = [line for line in stdout.splitlines() if line.startswith("retrain ") and "epochs" in line]
    assert len(lines) == int(announced.group(2)) and lines[-1].startswith(f"retrain {len(lines)}/{len(lines)} ")
    report = (run_dir / "report" / "report.md").read_text()
    assert "2 budgets, 1 distinct subnet: one subnet serves budgets flops ≤ 1e6, flops ≤ 2e6 (`" in report
    table = report.split("## Chosen subnet per budget")[1].split("##")[0]
    assert len([row for row in table.splitlines() if row.startswith("| flops")]) == 1  # one row per subnet


def test_piped_run_ends_with_the_next_commands_and_each_runs(piped_run, tmp_path):
    """The report path, then the three commands a user types next (read the report, extract for another budget,
    search from Python), each run here exactly as printed."""
    stdout, _, run_dir = piped_run
    tail = stdout[stdout.rindex("\nreport: "):].splitlines()
    assert tail[1] == f"report: {run_dir / 'report' / 'report.md'}" and tail[2] == "next:"
    commands = [line.strip() for line in tail[3:] if line.strip() and not line.strip().startswith("#")]
    assert [c.split()[0] for c in commands] == ["less", "oneshot", "python"]
    assert "--budget flops=1.5e6" in commands[1] and "oneshot extract" in commands[1]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    outputs = []
    for command in commands:
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        outputs.append(proc.stdout)
    assert outputs[0].startswith("# oneshot run: digits")
    assert "manifest: " in outputs[1] and (run_dir / "search-flops1.5e6" / "subnets" / "manifest.json").is_file()
    assert "flops=" in outputs[2]  # the best subnet's record
    assert list(tmp_path.iterdir()) == []  # nothing written where the commands ran


def test_piped_run_history_is_labelled_by_budget(piped_run):
    _, _, run_dir = piped_run
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    assert {h["budget"] for h in summary["search_history"]} == {"flops ≤ 1e6", "flops ≤ 2e6"}
    assert summary["objective_label"] == "holdout accuracy (supernet)"


def test_search_progress_best_is_per_budget(capsys):
    """`best=` on a budget's progress line is over the subnets evaluated for that budget, never the previous
    budget's best carried in through the warm start."""
    from oneshot.study.search import search

    def small_is_good(arch):  # the tight budget finds better subnets than the loose one's own draws
        return -cost(arch).flops / 1e5

    result = search("nb201_test", small_is_good, budgets={"flops": [1.2e5, 4e5]}, n_trials=8, seed=0,
                    sampler="random", progress=True)
    shown = {}
    for line in capsys.readouterr().out.splitlines():
        m = re.match(r"search (\S+): \d+/\d+ subnet \(best=(\S+)\)", line)
        if m:
            shown[m.group(1)] = float(m.group(2))  # the last line of each budget
    own = {}
    for r in result.records:
        own.setdefault(str(result.budget_of(r.study)), []).append(r.score)
    assert set(shown) == set(own) and len(own) == 2
    tight, loose = (str(b) for b in result.budgets)
    assert max(own[loose]) < max(own[tight])  # else this test could not tell a carried-over best
    for budget, scores in own.items():
        assert shown[budget] == pytest.approx(max(scores), abs=1e-3)


# --------------------------------------------------------------------------- report plots
def _history(budgets=("flops ≤ 1e6", "flops ≤ 2e6"), n=6):
    rng = np.random.default_rng(0)
    return [{"study": f"s[{b}]", "budget": b, "value": float(v)} for b in budgets for v in rng.random(n)]


def test_search_history_is_labelled_by_budget_with_the_legend_outside_the_data():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = history_figure({"search_history": _history(), "objective_label": "holdout accuracy (supernet)"})
    ax = fig.axes[0]
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["flops ≤ 1e6", "flops ≤ 2e6", "each query", "best so far"]
    assert ax.get_ylabel() == "holdout accuracy (supernet)"
    colour = {text.get_text(): to_rgba(h.get_color()) for text, h in zip(legend.get_texts(), legend.legend_handles)}
    for budget in ("flops ≤ 1e6", "flops ≤ 2e6"):  # a budget's dots and best-so-far line share its legend colour
        drawn = {to_rgba(line.get_color()) for line in ax.get_lines() if budget in line.get_label()}
        assert drawn == {colour[budget]}
    assert colour["flops ≤ 1e6"] != colour["flops ≤ 2e6"]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box, axes_box = legend.get_window_extent(canvas.get_renderer()), ax.get_window_extent(canvas.get_renderer())
    assert not box.overlaps(axes_box)  # beside the data, not over it
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1  # and not cut off


def test_a_history_saved_before_budgets_were_recorded_is_labelled_by_study():
    fig = history_figure({"search_history": [{"study": "old", "value": 0.5}, {"study": "old", "value": 0.6}]})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["old", "each query", "best so far"]
    assert fig.axes[0].get_ylabel() == "objective"


def test_report_says_one_subnet_serves_several_budgets(tmp_path):
    from oneshot.pipeline.report import write_report

    row = {"budget_key": "flops", "arch": "a", "flops": 2.0e6, "params": 100, "supernet_acc": 0.9,
           "standalone_test_acc": 0.91}
    rows = [{**row, "budget": b} for b in (2.5e6, 4.5e6, 7e6)] + [{**row, "budget": 9e6, "arch": "b", "flops": 8e6}]
    md = write_report(tmp_path, {"title": "t", "budgets": rows}).read_text()
    assert ("4 budgets, 2 distinct subnets: one subnet serves budgets flops ≤ 2.5e6, flops ≤ 4.5e6, flops ≤ 7e6 "
            "(`a`). The best subnet found within each of those budgets is the same network") in md
    assert "| flops ≤ 2.5e6<br>flops ≤ 4.5e6<br>flops ≤ 7e6 | `a` |" in md and "| flops ≤ 9e6 | `b` |" in md
    single = write_report(tmp_path / "one", {"title": "t", "budgets": rows[:1]}).read_text()
    assert "1 budget, 1 distinct subnet." in single and "serves" not in single


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


def test_report_says_plainly_when_the_rank_interval_includes_zero(tmp_path):
    from oneshot.pipeline.report import write_report

    rank = {"n": 4, "kendall_tau": 0.548, "kendall_tau_ci": [-1.0, 1.0], "spearman": 0.632, "kendall_p": 0.28}
    md = write_report(tmp_path, {"title": "t", "rank": rank, "phases": {"retrain": 42.5}}).read_text()
    assert "**The interval includes 0: 4 subnets cannot tell whether the supernet ranks subnets" in md
    assert "(`retrain.extra_subnets`, about 11 s each in this run)" in md
    sure = write_report(tmp_path / "b", {"title": "t", "rank": {**rank, "kendall_tau_ci": [0.2, 0.8]}}).read_text()
    assert "includes 0" not in sure and "Kendall tau = 0.548 [0.200, 0.800]" in sure
