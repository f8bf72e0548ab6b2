"""The run report: a Markdown summary and PNG plots that show what the run found and how far to trust it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from supernets.files import atomic_write_text

from oneshot.study.results import pareto_mask

__all__ = ["write_report", "accuracy_figure", "predictor_figure", "history_figure", "budget_text",
           "shared_choice_lines", "short_number"]


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _interval(ci: Sequence[float] | None, digits: int = 3) -> str:
    """` [lo, hi]` of a stored interval, or nothing when the summary has none (older runs)."""
    if not ci or not all(np.isfinite(ci)):
        return ""
    return f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _wilson(acc: float | None, n: int | None) -> str:
    """` [lo, hi]`: the 95% Wilson interval of an accuracy measured on `n` images (nothing when n is unknown)."""
    from predictors.intervals import accuracy_interval

    return _interval(accuracy_interval(acc, int(n)), 4) if acc is not None and n else ""


def _new_figure(**kwargs: Any) -> Any:
    """A pyplot-free Figure: nothing global to close, safe in a long-lived process."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def accuracy_figure(summary: dict[str, Any]) -> Any:
    """Holdout accuracy vs MFLOPs: evaluated and searched subnets, their Pareto front, the FLOPs budgets and the
    subnet chosen for each; None without evaluations."""
    evals, chosen = summary.get("evaluations", []), summary.get("budgets", [])
    if not evals:
        return None
    fig = _new_figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    searched = summary.get("searched", [])
    x = np.array([r["flops"] for r in evals], float) / 1e6
    y = np.array([r["holdout_acc"] for r in evals], float)
    ax.scatter(x, y, s=10, alpha=0.45, color="tab:blue", label="random subnets (supernet, holdout)")
    if searched:
        xs = np.array([r["flops"] for r in searched], float) / 1e6
        ys = np.array([r["holdout_acc"] for r in searched], float)
        ax.scatter(xs, ys, s=10, alpha=0.45, marker="s", color="tab:green", label="subnets proposed by search")
        x, y = np.concatenate([x, xs]), np.concatenate([y, ys])
    m = pareto_mask(x, y)
    order = np.argsort(x[m])
    ax.plot(x[m][order], y[m][order], "-o", ms=3, color="tab:orange", label="Pareto front")
    # Only FLOPs limits are drawn: the x axis is FLOPs; one legend entry covers every budget line.
    limits = sorted({(r.get("limits") or {r["budget_key"]: r["budget"]}).get("flops", np.nan) for r in chosen})
    for j, limit in enumerate(v for v in limits if np.isfinite(v)):
        ax.axvline(limit / 1e6, ls=":", color="grey", lw=0.8, label="FLOPs budget" if j == 0 else None)
    if chosen:
        ax.scatter([r["flops"] / 1e6 for r in chosen], [r["supernet_acc"] for r in chosen], marker="*", s=160,
                   color="tab:red", zorder=5, label="chosen per budget")
    ax.set_xlabel("MFLOPs (2 x MACs)")
    ax.set_ylabel("holdout accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Accuracy vs cost")
    fig.tight_layout()
    return fig


def predictor_figure(summary: dict[str, Any]) -> Any:
    """Out-of-fold predicted vs measured per predictor, titled with both Kendall taus (pooled over all out-of-fold
    predictions, and the mean over folds that the table shows); None without predictors."""
    pred, metrics = summary.get("predictor_oof", {}), summary.get("predictors", {})
    if not pred:
        return None
    fig = _new_figure(figsize=(4.2 * len(pred), 4.3))
    axes = fig.subplots(1, len(pred), squeeze=False)
    for ax, (name, data) in zip(axes[0], pred.items()):
        yt, yp, ys = (np.asarray(data[k], float) for k in ("true", "mean", "std"))
        ax.errorbar(yt, yp, yerr=ys, fmt="o", ms=3, alpha=0.6, elinewidth=0.6)
        lo, hi = float(min(yt.min(), yp.min())), float(max(yt.max(), yp.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel("measured")
        ax.set_ylabel("predicted (out-of-fold, ±std)")
        ax.set_title(f"{name}: {_tau_label(data.get('kendall_tau'), metrics.get(name, {}))}", fontsize=9)
    fig.tight_layout()
    return fig


def _tau_label(pooled: float | None, m: dict[str, Any]) -> str:
    """`Kendall tau` then `pooled 0.512, mean over folds 0.487 ± 0.050`: the two differ, so both are named."""
    mean = _fmt(m.get("kendall_tau"), 3) + (f" ± {_fmt(m.get('kendall_tau_std'), 3)}" if "kendall_tau_std" in m
                                            else "")
    return f"Kendall tau\npooled {_fmt(pooled, 3)}, mean over folds {mean}"


def history_figure(summary: dict[str, Any]) -> Any:
    """Objective per query and best so far, one colour per budget for both, labelled by the budget (`flops ≤
    4.5e6`); the legend sits right of the axes, so it covers no data. None without a search history."""
    hist = summary.get("search_history", [])
    if not hist:
        return None
    from matplotlib.lines import Line2D

    fig = _new_figure(figsize=(7.6, 4), layout="constrained")  # constrained: the outside legend is not cut off
    ax = fig.subplots()
    for i, (label, values) in enumerate(_group(hist).items()):
        v, q = np.asarray(values, float), np.arange(1, len(values) + 1)
        colour = f"C{i % 10}"  # set, not left to the cycle: each plot call would otherwise take the next colour
        ax.plot(q, v, ".", ms=4, alpha=0.5, color=colour, label=f"_{label}: each query")  # `_`: not in the legend
        ax.plot(q, np.fmax.accumulate(v), "-", color=colour, label=label)
    # One entry per budget (its colour) plus two grey keys for what the dots and the lines are.
    keys = [Line2D([], [], marker=".", ls="", color="grey", label="each query"),
            Line2D([], [], ls="-", color="grey", label="best so far")]
    handles = [line for line in ax.get_lines() if not line.get_label().startswith("_")] + keys
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.set_xlabel("query (distinct subnet evaluated for this budget)")
    ax.set_ylabel(summary.get("objective_label") or "objective")
    ax.set_title("Search history per budget")
    return fig


_FIGURES = {"accuracy_vs_flops.png": accuracy_figure, "predictor_predicted_vs_measured.png": predictor_figure,
            "search_history.png": history_figure}


def _plots(out: Path, summary: dict[str, Any]) -> list[str]:
    made = []
    for name, make in _FIGURES.items():
        fig = make(summary)
        if fig is not None:
            fig.savefig(out / name, dpi=110)
            made.append(name)
    return made


def _group(hist: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Values per budget label (`budget`, else the study name: histories saved before budgets were recorded)."""
    groups: dict[str, list[float]] = {}
    for h in hist:
        groups.setdefault(str(h.get("budget") or h.get("study", "search")), []).append(h["value"])
    return groups


def short_number(v: float) -> str:
    """`4.5e6`, `2.5e5`, `20`, `0.5`: three significant digits, an exponent without `+` or leading zeros."""
    text = f"{v:.3g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    return text


def budget_text(limits: dict[str, float], latency_on: str = "") -> str:
    """`flops ≤ 4.5e6`, `flops ≤ 4.5e6 and params ≤ 4e4`; latency keeps its unit (ms) and says where it was timed.

    The one spelling of a budget in the report's table, its plots and the console, so they can be matched by eye."""
    parts = []
    for key, limit in limits.items():
        if key == "latency":
            parts.append(f"latency ≤ {short_number(limit)} ms" + (f" ({latency_on})" if latency_on else ""))
        else:
            parts.append(f"{key} ≤ {short_number(limit)}")
    return " and ".join(parts)


def _chosen_rows(rows: list[dict[str, Any]], latency_on: str) -> list[tuple[list[str], dict[str, Any]]]:
    """(budget texts, row) per distinct subnet, in the order the budgets first chose it."""
    by_arch: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for r in rows:
        text = budget_text(r.get("limits") or {r["budget_key"]: r["budget"]}, latency_on)
        by_arch.setdefault(r["arch"], ([], r))[0].append(text)
    return list(by_arch.values())


def shared_choice_lines(rows: list[dict[str, Any]], latency_on: str = "") -> list[str]:
    """`one subnet serves budgets A, B, C` for each subnet that several budgets chose (nothing when none did)."""
    return [f"one subnet serves budgets {', '.join(texts)} (`{r['arch']}`)"
            for texts, r in _chosen_rows(rows, latency_on) if len(texts) > 1]


def write_report(out_dir: str | Path, summary: dict[str, Any]) -> Path:
    """Write `report.md`, `summary.json` and plots into `out_dir`; returns the Markdown path.

    `summary` keys (all optional but `title`): recipe, phases {name: seconds}, phase_runs {name: [{seconds,
    resumed}]}, budgets [rows], predictors {name:
    metrics}, predictor_oof, rank {kendall_tau, spearman, n}, evaluations and searched [{arch, flops,
    holdout_acc}], search_history [{study, value}], notes [str], latency_target (where latency budgets were
    timed, e.g. "cpu, batch 1, 1 thread").
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(out, summary)
    lines = [f"# {summary.get('title', 'oneshot run')}", ""]
    for key in ("what", "provenance"):
        if summary.get(key):
            lines += [summary[key], ""]
    phases, phase_runs = summary.get("phases", {}), summary.get("phase_runs", {})
    if phases:  # seconds over every run of a phase; resumed or repeated runs are also listed on their own
        lines += ["## Compute per phase", "", "| phase | seconds (all runs) | resumed runs |", "|---|---:|---|"]
        for k, v in phases.items():
            later = [f"{r['seconds']:.1f} s" for r in phase_runs.get(k, []) if r.get("resumed")]
            lines.append(f"| {k} | {v:.1f} | {f'{len(later)}: ' + ', '.join(later) if later else '-'} |")
        lines += [f"| **total** | **{sum(phases.values()):.1f}** | |", ""]
    rows = summary.get("budgets", [])
    if rows:
        on = summary.get("latency_target", "")
        grouped = _chosen_rows(rows, on)
        lines += ["## Chosen subnet per budget", "",
                  f"{len(rows)} budget{'s' if len(rows) != 1 else ''}, {len(grouped)} distinct "
                  f"subnet{'s' if len(grouped) != 1 else ''}"
                  + (": " + "; ".join(shared_choice_lines(rows, on)) + ". The best subnet found within "
                     "each of those budgets is the same network, so it is extracted and retrained once."
                     if len(grouped) < len(rows) else "."), "",
                  "| budget | arch | MFLOPs | params | supernet holdout acc | standalone test acc |",
                  "|---|---|---:|---:|---:|---:|"]
        for texts, r in grouped:
            lines.append(
                f"| {'<br>'.join(texts)} | `{r['arch']}` | {r['flops'] / 1e6:.3f} | "
                f"{r['params']:,} | {_fmt(r.get('supernet_acc'))} | {_fmt(r.get('standalone_test_acc'))} |"
            )
        lines.append("")
    rank = summary.get("rank")
    if rank:
        lines += ["## Does the supernet rank subnets like standalone training does?", "",
                  f"Over {rank['n']} subnets retrained from scratch: Kendall tau = {_fmt(rank.get('kendall_tau'), 3)}"
                  f"{_interval(rank.get('kendall_tau_ci'))} (p = {_fmt(rank.get('kendall_p'), 3)}), Spearman = "
                  f"{_fmt(rank.get('spearman'), 3)}{_interval(rank.get('spearman_ci'))}. "
                  "This is the proxy-to-real gap of one-shot NAS: a low tau means the supernet's ordering should "
                  "not be trusted for fine distinctions.", ""]
        ci = rank.get("kendall_tau_ci")
        if ci and all(np.isfinite(ci)) and ci[0] <= 0 <= ci[1]:  # the common case at a handful of subnets: say so
            seconds = summary.get("phases", {}).get("retrain")
            each = f", about {seconds / rank['n']:.0f} s each in this run" if seconds and rank.get("n") else ""
            lines += [f"**The interval includes 0: {rank['n']} subnets cannot tell whether the supernet ranks "
                      "subnets the way standalone training does.** Retrain more of them for a narrower interval "
                      f"(`retrain.extra_subnets`{each}); when their standalone accuracies differ by less than the "
                      "test split can resolve (the Wilson intervals below), more subnets narrow it slowly.", ""]
        if rank.get("kendall_tau_ci"):
            lines += ["Intervals: 95% bootstrap over these subnets for the correlations, 95% Wilson intervals over "
                      "the scored images for each accuracy; on a handful of subnets and small splits they are wide "
                      "for a reason.", ""]
        if rank.get("rows"):
            lines += ["| arch | MFLOPs | supernet holdout acc | standalone test acc |", "|---|---:|---:|---:|"]
            lines += [f"| `{r['arch']}` | {r['flops'] / 1e6:.3f} | {_fmt(r['supernet_acc'])}"
                      f"{_wilson(r['supernet_acc'], r.get('supernet_n'))} | {_fmt(r['standalone_test_acc'])}"
                      f"{_wilson(r['standalone_test_acc'], r.get('standalone_n'))} |" for r in rank["rows"]]
            lines.append("")
    preds, oof = summary.get("predictors", {}), summary.get("predictor_oof", {})
    if preds:
        keys = ["kendall_tau", "spearman", "precision_at_k", "rmse"]
        lines += ["## Accuracy predictors (cross-validated)", "",
                  "Columns marked \"mean over folds\" give mean ± std over the cross-validation folds; the pooled "
                  "Kendall tau ranks all out-of-fold predictions at once (the plot titles show both), so the two "
                  "can differ.",
                  "", "| model | kendall_tau (pooled) | " + " | ".join(f"{k} (mean over folds)" for k in keys) + " |",
                  "|---|" + "---:|" * (len(keys) + 1)]
        for name, m in preds.items():
            cells = [_fmt(oof.get(name, {}).get("kendall_tau"), 3)]
            for k in keys:
                v = m.get(k)
                std = m.get(f"{k}_std")
                cells.append(f"{_fmt(v, 3)} ± {_fmt(std, 3)}" if std is not None else _fmt(v, 3))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if summary.get("calibration_md"):  # the calibrate phase's per-signal table, one heading level down
        body = summary["calibration_md"].split("\n", 1)
        lines += [f"## {body[0].lstrip('# ')}", "", body[1].replace("\n# ", "\n## ").strip(), ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    for note in summary.get("notes", []):
        lines.append(f"- {note}")
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    serializable = {k: v for k, v in summary.items()}
    atomic_write_text(out / "summary.json", json.dumps(serializable, indent=2, default=str))
    return path
