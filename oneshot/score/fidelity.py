"""Ranking fidelity: does the trained supernet rank subnets the way independent standalone training does?

A tabular benchmark (e.g. NAS-Bench-Macro: every network of a space trained from scratch, several seeds each)
is the ground truth. `fidelity(checkpoint, table)`:

1. picks N subnets that the table covers, stratified over FLOPs (one per equal-count FLOPs stratum, plus the
   cheapest and the most expensive, and the space's smallest and largest subnets when the table has them), so
   the cheap, the median and the expensive are all judged;
2. scores them with the supernet through `oneshot.evaluate.evaluate` (BN recalibration, holdout split, cached in
   the checkpoint's `evaluations.jsonl`: a second call evaluates nothing);
3. looks their table accuracy up (`oneshot.score.tabular`, by the space's canonical form) and reports Kendall tau,
   Spearman, precision of the top 10%, and the regret of the supernet's top-1 and top-5 (table accuracy of the
   best of the table's N minus that of the supernet's pick), each with a seeded percentile-bootstrap 95% interval
   over the N subnets; and the ceiling the table itself allows: Kendall tau between its own seeds' runs.

`write_fidelity` writes fidelity.json, fidelity.md and fidelity.png (supernet estimate vs table accuracy,
coloured by FLOPs) atomically beside the checkpoint.
"""

from __future__ import annotations

import io
import itertools
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from predictors.metrics import kendall_tau, precision_at_k, spearman
from supernets import Arch, cost
from supernets.files import atomic_write_bytes

from predictors.intervals import DEFAULT_RESAMPLES, accuracy_interval, bootstrap_interval
from .tabular import TabularBenchmark

__all__ = [
    "table_runs", "stratified_by_flops", "table_subnets", "ranking_metrics", "seed_to_seed_tau",
    "ceiling_of_mean", "fidelity", "write_fidelity", "resolve_checkpoint", "FIDELITY_NAME",
]

FIDELITY_NAME = "fidelity"  # fidelity.json / .md / .png beside the checkpoint
METRICS = ("kendall_tau", "spearman", "precision_at_top", "regret_top1", "regret_top5")


# --------------------------------------------------------------------------- the ground truth
def table_runs(table: TabularBenchmark, runs_field: str = "test_acc") -> dict[str, tuple[float, ...]]:
    """Per-seed accuracies of every network whose row holds 2+ runs in `runs_field`, keyed by canonical string."""
    out = {}
    for arch in table.archs():
        runs = table.record(arch).get(runs_field)
        if isinstance(runs, list) and len(runs) >= 2:
            out[str(table.space.canonical(arch))] = tuple(runs)
    return out


def seed_to_seed_tau(runs: Mapping[str, Sequence[float]], keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Kendall tau between the table's own training runs, seed i vs seed j over the same networks.

    This is the ceiling of any ranking judged against one run of the table: standalone training disagrees with
    itself this much. Returns {"mean": mean over seed pairs, "pairs": {"i-j": tau}, "n": networks used,
    "of_mean": `ceiling_of_mean(mean, seeds)`, "seeds": runs per network}.
    """
    keys = [k for k in (runs if keys is None else keys) if k in runs]
    width = min((len(runs[k]) for k in keys), default=0)
    if len(keys) < 3 or width < 2:
        return {"mean": float("nan"), "pairs": {}, "n": len(keys), "of_mean": float("nan"), "seeds": width}
    table = np.array([runs[k][:width] for k in keys], dtype=float)  # (networks, seeds)
    pairs = {f"{i}-{j}": kendall_tau(table[:, i], table[:, j]) for i, j in itertools.combinations(range(width), 2)}
    mean = float(np.nanmean(list(pairs.values())))
    return {"mean": mean, "pairs": pairs, "n": len(keys), "of_mean": ceiling_of_mean(mean, width), "seeds": width}


def ceiling_of_mean(seed_tau: float, seeds: int) -> float:
    """Estimated Kendall tau of a perfect ranking (by expected accuracy) against the mean of `seeds` runs.

    A table's mean over runs is less noisy than one run, so a ranking judged against it can beat the
    seed-to-seed tau. In normal scores with equal noise per run, two runs correlate at r = sin(pi tau / 2)
    (Greiner's relation), the mean of k runs has reliability k r / (1 + (k - 1) r) (Spearman-Brown), and the
    truth correlates with it at the square root of that; back to tau by the same relation. On NAS-Bench-Macro
    (seed-to-seed 0.881, 3 runs) this gives 0.951.
    """
    if not np.isfinite(seed_tau) or seeds < 1 or seed_tau <= 0:
        return float("nan")
    r = np.sin(np.pi / 2 * min(seed_tau, 1.0))
    reliability = seeds * r / (1 + (seeds - 1) * r)
    return float(2 / np.pi * np.arcsin(np.sqrt(reliability)))


# --------------------------------------------------------------------------- which subnets
def stratified_by_flops(archs: Iterable[Arch], n: int, seed: int = 0, include: Sequence[Arch] = ()) -> list[Arch]:
    """`n` of `archs` spread over FLOPs, sorted by FLOPs: the cheapest, the most expensive, `include` (when among
    `archs`), and one random subnet from each of the remaining equal-count FLOPs strata. All when n >= len."""
    if n < 3:
        raise ValueError(f"a ranking needs at least 3 subnets, got num_subnets={n}")
    pool = sorted(set(archs), key=lambda a: (cost(a).flops, str(a)))
    if n >= len(pool):
        return pool
    members = set(pool)
    fixed = list(dict.fromkeys([pool[0], pool[-1], *(a for a in include if a in members)]))[:n]
    taken = set(fixed)
    rest = [a for a in pool if a not in taken]
    rng = np.random.default_rng([seed, 0xF1DE])
    picks = [rest[int(rng.choice(s))] for s in np.array_split(np.arange(len(rest)), n - len(fixed)) if len(s)]
    return sorted(fixed + picks, key=lambda a: (cost(a).flops, str(a)))


def table_subnets(truth: TabularBenchmark, n: int, seed: int = 0) -> list[Arch]:
    """The `n` subnets `fidelity` judges by default: one canonical spelling per network of the table (equal
    networks are neither picked twice nor scored twice), stratified over FLOPs with the smallest and largest."""
    space = truth.space
    networks = dict.fromkeys(space.canonical(a) for a in truth.archs())
    return stratified_by_flops(networks, n, seed, include=(space.smallest(), space.largest()))


# --------------------------------------------------------------------------- the statistics
def _top_k(fraction: float, n: int) -> int:
    return min(max(int(round(fraction * n)), 1), n)


def _regret(estimate: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Best table accuracy among all minus the best among the supernet's top-k (ties: first in input order)."""
    top = np.argsort(-estimate, kind="stable")[:k]
    return float(truth.max() - truth[top].max())


def _statistics(top_fraction: float) -> dict[str, Any]:
    return {
        "kendall_tau": lambda e, t: kendall_tau(t, e),
        "spearman": lambda e, t: spearman(t, e),
        "precision_at_top": lambda e, t: precision_at_k(t, e, _top_k(top_fraction, len(t))),
        "regret_top1": lambda e, t: _regret(e, t, 1),
        "regret_top5": lambda e, t: _regret(e, t, min(5, len(t))),
    }


def ranking_metrics(estimate: Sequence[float], truth: Sequence[float], top_fraction: float = 0.1,
                    resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95, seed: int = 0
                    ) -> dict[str, dict[str, Any]]:
    """Each metric of `METRICS` as {"value", "ci": [lo, hi]} (bootstrap over the subnets, seeded).

    estimate: the supernet's score per subnet; truth: the table's accuracy of the same subnets (regrets are in
    its units). precision_at_top: share of the table's top `top_fraction` found in the supernet's top as many.
    """
    e, t = np.asarray(estimate, float), np.asarray(truth, float)
    if e.shape != t.shape or e.ndim != 1 or e.size < 3:
        raise ValueError(f"need paired 1-D scores of at least 3 subnets, got shapes {e.shape} and {t.shape}")
    if not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    out = {}
    for name, fn in _statistics(top_fraction).items():
        lo, hi = bootstrap_interval(fn, e, t, n_resamples=resamples, confidence=confidence, seed=seed)
        out[name] = {"value": float(fn(e, t)), "ci": [lo, hi]}
    return out


# --------------------------------------------------------------------------- fidelity(checkpoint, table)
def resolve_checkpoint(run_or_checkpoint: str | os.PathLike) -> Path:
    """A checkpoint path as given, or the `supernet.ckpt` of a run folder."""
    from oneshot.training.trainer import CHECKPOINT_NAME

    path = Path(run_or_checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no supernet checkpoint at {str(path)!r} (give a checkpoint or a run folder "
                                "holding supernet.ckpt)")
    return path


def _eval_settings(info: dict[str, Any], overrides: dict[str, Any]) -> dict[str, int]:
    """Calibration settings of the run that trained the checkpoint (so its cached evaluations are reused)."""
    from oneshot.recipe import EvaluateSection

    section = EvaluateSection(**{k: v for k, v in (info.get("recipe") or {}).get("evaluate", {}).items()
                                 if k in EvaluateSection.__dataclass_fields__})
    base = {"calib_batches": section.calib_batches, "calib_batch_size": section.calib_batch_size,
            "batch_size": section.batch_size, "seed": section.seed}
    return {**base, **{k: int(v) for k, v in overrides.items() if v is not None}}


def fidelity(
    run_or_checkpoint: str | os.PathLike,
    table: str | os.PathLike | TabularBenchmark,
    num_subnets: int = 200,
    *,
    archs: Iterable[Arch | str] | None = None,
    seed: int = 0,
    metric: str = "mean_acc",
    runs_field: str = "test_acc",
    top_fraction: float = 0.1,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    calib_batches: int | None = None,
    calib_batch_size: int | None = None,
    batch_size: int | None = None,
    data: dict[str, Any] | None = None,
    device: str | None = None,
    progress: bool = True,
    write: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Rank agreement of a trained supernet with a tabular benchmark; returns the report (see `write_fidelity`).

    run_or_checkpoint: a checkpoint written by `oneshot train`, or its run folder.
    table:         the ground truth: a tabular benchmark of the checkpoint's space (a JSON/CSV file read by
                   `TabularBenchmark.load`, or one already loaded); its `runs_field` lists give the ceiling.
    num_subnets:   N subnets judged, stratified over FLOPs (`stratified_by_flops`); `archs` judges these instead.
    seed:          fixes the subnets picked and the bootstrap draws (not the calibration: that is the run's).
    metric:        table field ranked against; top_fraction: the "top" of precision_at_top (0.1: top 10%).
    resamples, confidence: of the bootstrap intervals.
    calib_batches, calib_batch_size, batch_size: evaluation settings; None takes the run recipe's (so the
                   run's cached evaluations are reused); data: overrides of the checkpoint's data (e.g. `path`).
    write:         write fidelity.json/.md/.png beside the checkpoint (an existing report made with other
                   settings is kept unless `overwrite`).
    """
    from oneshot.training.checkpoint import read_checkpoint
    from oneshot.score.evaluate import evaluate
    from supernets import space_from_dict

    ckpt = resolve_checkpoint(run_or_checkpoint)
    info = read_checkpoint(ckpt)["oneshot"]
    space = space_from_dict(info["space"])
    truth = table if isinstance(table, TabularBenchmark) else TabularBenchmark.load(table, space)
    if truth.space.fingerprint != space.fingerprint:
        raise ValueError(f"the table is for space {truth.space.name!r}, the checkpoint for {space.name!r}")
    truth.objective(metric)  # every row has the metric, or a one-line error naming a row without it
    if archs is not None:
        chosen = list(dict.fromkeys(a if isinstance(a, Arch) else Arch.from_str(space, a) for a in archs))
        if len(chosen) < 3:
            raise ValueError(f"a ranking needs at least 3 distinct subnets, got {len(chosen)}")
    else:
        chosen = table_subnets(truth, num_subnets, seed)
    missing = [str(a) for a in chosen if a not in truth]  # checked before anything is evaluated
    if missing:
        raise ValueError(f"{len(missing)} of {len(chosen)} subnets are not in the table {truth.source!r} "
                         f"(e.g. {missing[:3]})")
    true_acc = np.array([truth.value(a, metric) for a in chosen])
    runs = table_runs(truth, runs_field)
    settings = _eval_settings(info, {"calib_batches": calib_batches, "calib_batch_size": calib_batch_size,
                                     "batch_size": batch_size})
    # Scored in a seeded random order: an interrupted call leaves a FLOPs-representative part in the cache.
    order = np.random.default_rng([seed, 0x0DE5]).permutation(len(chosen))
    scored = evaluate(ckpt, [chosen[i] for i in order], data=data, device=device, progress=progress, **settings)
    records = [scored[j] for j in np.argsort(order)]
    estimate = np.array([r["holdout_acc"] for r in records], float)
    report = {
        "checkpoint": str(ckpt), "checkpoint_id": records[0]["checkpoint"], "space": space.name,
        "table": truth.source, "metric": metric, "n": len(chosen), "selection": "given" if archs is not None
        else "stratified_by_flops", "seed": seed, "top_fraction": top_fraction, "resamples": resamples,
        "confidence": confidence, "evaluation": settings, "epoch": info.get("epoch"),
        "global_step": info.get("global_step"), "code_version": records[0]["code_version"],
        "metrics": ranking_metrics(estimate, true_acc, top_fraction, resamples, confidence, seed),
        # the same subnets ranked by the supernet's holdout loss (lower first): a continuous score, which ranked
        # NAS-Bench-Macro at 0.56 where the accuracy of the same supernet ranked it at 0.41 (docs/measured-figures)
        "metrics_by_loss": ranking_metrics(-np.array([r["holdout_loss"] for r in records], float), true_acc,
                                           top_fraction, resamples, confidence, seed),
        "ceiling": {"table": seed_to_seed_tau(runs),
                    "subnets": seed_to_seed_tau(runs, [str(space.canonical(a)) for a in chosen])},
        "subnets": [_row(r, t, confidence) for r, t in zip(records, true_acc)],
    }
    if write:
        write_fidelity(ckpt.parent, report, overwrite=overwrite)
    return report


def _row(record: dict[str, Any], true_acc: float, confidence: float) -> dict[str, Any]:
    lo, hi = accuracy_interval(record["holdout_acc"], record["holdout_size"], confidence)
    return {"arch": record["arch"], "flops": record["flops"], "params": record["params"],
            "holdout_acc": record["holdout_acc"], "holdout_ci": [lo, hi], "holdout_size": record["holdout_size"],
            "holdout_loss": record["holdout_loss"], "table_acc": float(true_acc)}


# --------------------------------------------------------------------------- the report files
_LABELS = {"kendall_tau": "Kendall tau", "spearman": "Spearman rho", "precision_at_top": "precision of the top {p}",
           "regret_top1": "regret of the supernet's top-1", "regret_top5": "regret of the best of its top-5"}


def _settings(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("checkpoint_id", "table", "metric", "n", "selection", "seed", "top_fraction", "resamples", "confidence",
            "evaluation")
    return {k: report.get(k) for k in keep}


def write_fidelity(out_dir: str | os.PathLike, report: dict[str, Any], overwrite: bool = False) -> Path:
    """fidelity.json, fidelity.md and fidelity.png in `out_dir`, each written atomically; returns the .md path.

    A fidelity.json made with other settings (another table, N, seed, checkpoint...) is not replaced unless
    `overwrite`; the same settings rewrite the same numbers (the evaluations are cached).
    """
    out = Path(out_dir)
    json_path = out / f"{FIDELITY_NAME}.json"
    if json_path.is_file() and not overwrite:
        try:
            old = json.loads(json_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            old = None
        if old is None or _settings(old) != json.loads(json.dumps(_settings(report))):
            raise ValueError(f"{str(json_path)!r} holds a fidelity report made with other settings; pass "
                             "overwrite=True (--overwrite) to replace it")
    atomic_write_bytes(out / f"{FIDELITY_NAME}.png", _plot(report))
    atomic_write_bytes(out / f"{FIDELITY_NAME}.md", _markdown(report).encode())
    atomic_write_bytes(json_path, json.dumps(report, indent=2).encode())
    return out / f"{FIDELITY_NAME}.md"


def _ci(m: dict[str, Any], digits: int = 3) -> str:
    lo, hi = m["ci"]
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]" if np.isfinite(lo) and np.isfinite(hi) else "–"


def _markdown(report: dict[str, Any]) -> str:
    pct = f"{report['top_fraction']:.0%}"
    conf = f"{report['confidence']:.0%}"
    m, ceiling = report["metrics"], report["ceiling"]
    lines = [
        f"# Ranking fidelity of `{report['space']}` against `{Path(report['table']).name}`", "",
        f"{report['n']} subnets ({report['selection'].replace('_', ' ')}, seed {report['seed']}) scored by the "
        f"supernet (holdout accuracy after BN recalibration: {report['evaluation']['calib_batches']} x "
        f"{report['evaluation']['calib_batch_size']} images; checkpoint `{report['checkpoint']}`, epoch "
        f"{report['epoch']}, step {report['global_step']}) and compared with the table's `{report['metric']}` "
        f"(independent standalone training). Intervals: {conf} percentile bootstrap over the subnets, "
        f"{report['resamples']} resamples.", "",
        f"| metric | value | {conf} interval |", "|---|---:|---:|",
    ]
    for name in METRICS:
        digits = 2 if name.startswith("regret") else 3
        label = _LABELS[name].format(p=pct) + (f" ({report['metric']} points)" if name.startswith("regret") else "")
        lines.append(f"| {label} | {m[name]['value']:.{digits}f} | {_ci(m[name], digits)} |")
    loss = report.get("metrics_by_loss")
    if loss:
        lines += ["", f"Ranked by the supernet's holdout loss instead (lower first), the same subnets give Kendall "
                      f"tau {loss['kendall_tau']['value']:.3f} {_ci(loss['kendall_tau'])} and a top-1 regret of "
                      f"{loss['regret_top1']['value']:.2f} points: search maximizes the accuracy, the calibrated "
                      "estimate (`calibrate`) uses both."]
    tab, sub = ceiling["table"], ceiling["subnets"]
    lines += ["", "## Ceiling", ""]
    if tab["pairs"]:
        lines.append(f"The table's own training runs agree with each other at Kendall tau {tab['mean']:.3f} "
                     f"(mean over seed pairs, {tab['n']} networks) and {sub['mean']:.3f} over these {sub['n']} "
                     "subnets: a ranking judged against one training run cannot be expected to do better. "
                     f"Judged against the mean of {tab.get('seeds', '?')} runs (as `mean_acc` is), even a perfect "
                     f"ranking by expected accuracy would reach only about {tab.get('of_mean', float('nan')):.3f} "
                     "(estimated from the seed-to-seed tau: `oneshot.score.fidelity.ceiling_of_mean`).")
    else:
        lines.append("The table has no per-seed runs: no ceiling computed.")
    best = max(report["subnets"], key=lambda r: r["table_acc"])
    pick = report["subnets"][int(np.argmax([r["holdout_acc"] for r in report["subnets"]]))]
    lines += ["", "## Picks", "", "| | arch | MFLOPs | supernet holdout acc | table acc |", "|---|---|---:|---:|---:|"]
    for label, r in (("table's best of the N", best), ("supernet's top-1", pick)):
        lo, hi = r["holdout_ci"]
        lines.append(f"| {label} | `{r['arch']}` | {r['flops'] / 1e6:.2f} | {r['holdout_acc']:.4f} "
                     f"[{lo:.4f}, {hi:.4f}] | {r['table_acc']:.2f} |")
    lines += ["", f"Supernet accuracies carry their {conf} Wilson interval over {pick['holdout_size']} holdout "
              "images.", "", f"![supernet vs table]({FIDELITY_NAME}.png)", ""]
    return "\n".join(lines)


def _plot(report: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["subnets"]
    x = np.array([r["holdout_acc"] for r in rows])
    y = np.array([r["table_acc"] for r in rows])
    f = np.array([r["flops"] for r in rows]) / 1e6
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    points = ax.scatter(x, y, c=f, cmap="viridis", s=14, alpha=0.85)
    fig.colorbar(points, ax=ax, label="MFLOPs")
    pick = int(np.argmax(x))
    ax.scatter([x[pick]], [y[pick]], marker="*", s=180, color="tab:red", label="supernet's top-1", zorder=5)
    best = int(np.argmax(y))
    ax.scatter([x[best]], [y[best]], marker="o", s=90, facecolors="none", edgecolors="black",
               label="table's best of the N", zorder=5)
    tau = report["metrics"]["kendall_tau"]
    ax.set_title(f"Kendall tau {tau['value']:.3f} {_ci(tau)} over {len(rows)} subnets")
    ax.set_xlabel("supernet estimate (holdout accuracy, recalibrated BN)")
    ax.set_ylabel(f"table {report['metric']}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
