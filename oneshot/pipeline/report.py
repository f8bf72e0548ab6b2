"""The run report: a Markdown summary and PNG plots that show what the run found and how far to trust it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from supernets.files import atomic_write_text

from oneshot.study.results import pareto_mask

__all__ = ["write_report"]


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


def _plots(out: Path, summary: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    evals = summary.get("evaluations", [])
    chosen = summary.get("budgets", [])
    if evals:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        searched = summary.get("searched", [])
        x = np.array([r["flops"] for r in evals], float) / 1e6
        y = np.array([r["holdout_acc"] for r in evals], float)
        ax.scatter(x, y, s=10, alpha=0.45, label="random subnets (supernet, holdout)")
        if searched:
            xs = np.array([r["flops"] for r in searched], float) / 1e6
            ys = np.array([r["holdout_acc"] for r in searched], float)
            ax.scatter(xs, ys, s=10, alpha=0.45, marker="s", color="tab:green", label="subnets proposed by search")
            x, y = np.concatenate([x, xs]), np.concatenate([y, ys])
        m = pareto_mask(x, y)
        order = np.argsort(x[m])
        ax.plot(x[m][order], y[m][order], "-o", ms=3, color="tab:orange", label="Pareto front")
        for row in chosen:
            ax.scatter([row["flops"] / 1e6], [row["supernet_acc"]], marker="*", s=160, color="tab:red", zorder=5)
            ax.axvline(row["budget"] / 1e6 if row["budget_key"] == "flops" else np.nan, ls=":", color="grey", lw=0.8)
        ax.scatter([], [], marker="*", s=120, color="tab:red", label="chosen per budget")
        ax.set_xlabel("MFLOPs (2 x MACs)")
        ax.set_ylabel("holdout accuracy")
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title("Accuracy vs cost")
        fig.tight_layout()
        fig.savefig(out / "accuracy_vs_flops.png", dpi=110)
        plt.close(fig)
        made.append("accuracy_vs_flops.png")
    pred = summary.get("predictor_oof", {})
    if pred:
        fig, axes = plt.subplots(1, len(pred), figsize=(4.2 * len(pred), 4), squeeze=False)
        for ax, (name, data) in zip(axes[0], pred.items()):
            yt, yp, ys = (np.asarray(data[k], float) for k in ("true", "mean", "std"))
            ax.errorbar(yt, yp, yerr=ys, fmt="o", ms=3, alpha=0.6, elinewidth=0.6)
            lo, hi = float(min(yt.min(), yp.min())), float(max(yt.max(), yp.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set_xlabel("measured")
            ax.set_ylabel("predicted (out-of-fold, ±std)")
            ax.set_title(f"{name}: tau={data.get('kendall_tau', float('nan')):.3f}")
        fig.tight_layout()
        fig.savefig(out / "predictor_predicted_vs_measured.png", dpi=110)
        plt.close(fig)
        made.append("predictor_predicted_vs_measured.png")
    hist = summary.get("search_history", [])
    if hist:
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for label, values in _group(hist).items():
            v = np.asarray(values, float)
            ax.plot(np.arange(1, len(v) + 1), v, ".", ms=4, alpha=0.5)
            ax.plot(np.arange(1, len(v) + 1), np.fmax.accumulate(v), "-", label=f"{label} best so far")
        ax.set_xlabel("query (distinct subnet evaluated)")
        ax.set_ylabel("objective")
        ax.legend(fontsize=8)
        ax.set_title("Search history")
        fig.tight_layout()
        fig.savefig(out / "search_history.png", dpi=110)
        plt.close(fig)
        made.append("search_history.png")
    return made


def _group(hist: list[dict[str, Any]]) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = {}
    for h in hist:
        groups.setdefault(str(h.get("study", "search")), []).append(h["value"])
    return groups


def _budget_text(key: str, limit: float, latency_on: str = "") -> str:
    """`flops ≤ 2.5M`, `params ≤ 40k`-style for counts; latency keeps its unit (ms) and says where it was timed."""
    if key in ("flops", "macs", "params"):
        return f"{key} ≤ {limit / 1e6:.3g}M"
    if key == "latency":
        return f"latency ≤ {limit:.3g} ms" + (f" ({latency_on})" if latency_on else "")
    return f"{key} ≤ {limit:.3g}"


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
        lines += ["## Chosen subnet per budget", "",
                  "| budget | arch | MFLOPs | params | supernet holdout acc | standalone test acc |",
                  "|---|---|---:|---:|---:|---:|"]
        for r in rows:
            limits = r.get("limits") or {r["budget_key"]: r["budget"]}
            lines.append(
                f"| {' and '.join(_budget_text(k, v, summary.get('latency_target', '')) for k, v in limits.items())} | "
                f"`{r['arch']}` | {r['flops'] / 1e6:.3f} | "
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
    preds = summary.get("predictors", {})
    if preds:
        keys = ["kendall_tau", "spearman", "precision_at_k", "rmse"]
        lines += ["## Accuracy predictors (cross-validated)", "", "| model | " + " | ".join(keys) + " |",
                  "|---|" + "---:|" * len(keys)]
        for name, m in preds.items():
            cells = []
            for k in keys:
                v = m.get(k)
                std = m.get(f"{k}_std")
                cells.append(f"{_fmt(v, 3)} ± {_fmt(std, 3)}" if std is not None else _fmt(v, 3))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    for note in summary.get("notes", []):
        lines.append(f"- {note}")
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    serializable = {k: v for k, v in summary.items()}
    atomic_write_text(out / "summary.json", json.dumps(serializable, indent=2, default=str))
    return path
