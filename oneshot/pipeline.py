"""`oneshot run`: every phase of a recipe end to end, with a report of what was found and how far to trust it.

train the supernet (fair sampling) -> score random subnets with recalibrated BN -> fit and cross-validate
accuracy predictors -> search each budget -> extract the chosen subnets -> retrain them (and a few more) from
scratch -> report. Every phase stores its results in the run folder and is skipped or resumed when they are
already there, so an interrupted run picks up where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .recipe import Recipe, load_recipe

__all__ = ["run_pipeline", "add_arguments", "run"]

DEFAULT_RECIPE = "digits"


class _Phases:
    """Wall-clock seconds per phase, printed as the run goes."""

    def __init__(self, total: int) -> None:
        self.seconds: dict[str, float] = {}
        self.total, self.i = total, 0

    @contextlib.contextmanager
    def __call__(self, name: str, what: str) -> Iterator[None]:
        self.i += 1
        print(f"\n[{self.i}/{self.total}] {name}: {what}", flush=True)
        t0 = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - t0
        print(f"[{self.i}/{self.total}] {name} done in {self.seconds[name]:.1f} s", flush=True)


def _spread(records: list[dict[str, Any]], n: int, exclude: set[str]) -> list[dict[str, Any]]:
    """`n` records evenly spaced in holdout accuracy (so a rank correlation covers the whole range)."""
    pool = sorted((r for r in records if r["arch"] not in exclude), key=lambda r: r["holdout_acc"])
    if n <= 0 or not pool:
        return []
    idx = np.unique(np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int))
    return [pool[i] for i in idx]


def run_pipeline(recipe: Recipe, progress: bool = True) -> Path:
    """Run every phase of `recipe`; returns the path of the Markdown report in `<run_dir>/report`."""
    import torch

    from predictors import fit_predictors
    from supernets import Arch, cost

    from .checkpoint import code_version, load_supernet
    from .data import datamodule_from_info
    from .evaluate import evaluate
    from .export import export_subnets, read_manifest
    from .report import write_report
    from .retrain import rank_agreement, retrain_subnets
    from .search import search
    from .threads import configure_threads
    from .training import train

    threads = configure_threads(recipe.train.threads)
    run_dir = recipe.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2))
    phase = _Phases(7)
    ev, pr, se, rt = recipe.evaluate, recipe.predict, recipe.search, recipe.retrain

    with phase("train", f"supernet {recipe.supernet.name} on {recipe.data.name}, {recipe.train.sampler} sampling, "
                        f"{recipe.train.epochs} epochs"):
        ckpt = train(recipe, resume=True, progress=progress)

    supernet, info = load_supernet(ckpt)
    space = supernet.space
    dm = datamodule_from_info(info["data"])
    dm.setup()
    eval_kwargs = dict(calib_batches=ev.calib_batches, calib_batch_size=ev.calib_batch_size,
                       batch_size=ev.batch_size, seed=ev.seed, table=run_dir / "evaluations.jsonl")

    with phase("evaluate", f"{ev.num_subnets} random subnets + smallest and largest, BN recalibrated "
                           f"({ev.calib_batches} batches), holdout split"):
        with torch.no_grad():
            records = evaluate(supernet, [space.smallest(), space.largest()], ev.num_subnets, data=dm,
                               progress=progress, **eval_kwargs)
        accs = np.array([r["holdout_acc"] for r in records])
        print(f"holdout accuracy over {len(records)} subnets: min {accs.min():.4f}, median {np.median(accs):.4f}, "
              f"max {accs.max():.4f}")

    pred_metrics: dict[str, dict[str, float]] = {}
    oof: dict[str, dict[str, Any]] = {}
    with phase("predict", f"{', '.join(pr.models)} on {len(records)} subnets, {pr.folds}-fold cross-validation"):
        archs = [Arch.from_str(space, r["arch"]) for r in records]
        scores = np.array([r[pr.target] for r in records], float)
        fitted = fit_predictors(space, archs, scores, models=pr.models, folds=pr.folds, seed=recipe.seed)
        predictors = fitted["predictors"]
        for name, model in predictors.items():
            cv = fitted["cv"][name]
            metrics = {}
            for key, (mean, std) in cv.summary.items():
                metrics[key], metrics[f"{key}_std"] = mean, std
            pred_metrics[name] = metrics
            oof[name] = {"true": scores.tolist(), "mean": cv.oof_mean.tolist(), "std": cv.oof_std.tolist(),
                         "kendall_tau": cv.pooled.get("kendall_tau", float("nan"))}
            model.save(run_dir / "predictors" / f"{name}.predictor")
            print(f"  {name}: Kendall tau {metrics['kendall_tau']:.3f} ± {metrics['kendall_tau_std']:.3f}, "
                  f"Spearman {metrics['spearman']:.3f} ± {metrics['spearman_std']:.3f}")

    budgets = {k: [float(x) for x in v] for k, v in se.budgets.items()}
    with phase("search", f"{se.sampler} sampler, {se.n_trials} subnets, budgets {budgets}, objective {se.objective}"):
        # "supernet" scores through the same evaluation table as the evaluate phase (same calibration settings).
        target: Any = ckpt if se.objective == "supernet" else space
        if se.objective == "supernet":
            objective: Any = "supernet"
        elif se.objective in predictors:
            objective = predictors[se.objective]
        else:
            raise ValueError(f"search.objective {se.objective!r} must be 'supernet' or one of the fitted "
                             f"predictors {list(predictors)}")
        result = search(target, objective, evaluate_args={"data": dm, **eval_kwargs}, budgets=budgets,
                        sampler=se.sampler, n_trials=se.n_trials, strategy=se.strategy, sampler_args=se.sampler_args,
                        seed=recipe.seed, storage=se.storage, study_name=se.study_name or f"{recipe.name}-search",
                        run_dir=run_dir / "search")
        # With the supernet as objective, the subnets scored in the evaluate phase are measurements of the same
        # objective (same calibration, same holdout split): the best per budget is taken over both sets.
        candidates = [{"arch": str(r.arch), "score": r.score, **dict(r.costs)} for r in result.records]
        if se.objective == "supernet":
            candidates += [{"arch": r["arch"], "score": r["holdout_acc"], "macs": r["macs"], "flops": r["flops"],
                            "params": r["params"]} for r in records]
        chosen = []
        for key, limits in budgets.items():
            for limit in limits:
                fits = [c for c in candidates if c[key] <= limit]
                best = max(fits, key=lambda c: (c["score"], -c["flops"]))
                chosen.append({"name": f"{key}_{limit:.3g}", "arch": best["arch"], "budget_key": key, "budget": limit,
                               "search_score": best["score"]})
                print(f"  {key} <= {limit:.3g}: {best['arch']} (score {best['score']:.4f})")

    with phase("extract", f"{len(chosen)} chosen subnets into standalone files with recalibrated BN"):
        # The supernet estimate reported for a chosen subnet is always its recalibrated holdout accuracy (the
        # search objective may have been a predictor).
        with torch.no_grad():
            est = evaluate(supernet, [c["arch"] for c in chosen], data=dm, progress=False, **eval_kwargs)
        acc_of = {r["arch"]: r["holdout_acc"] for r in est}  # several budgets may choose the same subnet
        for c in chosen:
            c["supernet_acc"] = acc_of[c["arch"]]
        manifest = export_subnets(ckpt, chosen, run_dir / "subnets", calib_batches=ev.calib_batches,
                                  calib_batch_size=ev.calib_batch_size, seed=ev.seed)
        folder, entries = read_manifest(manifest)

    extra = _spread(records, rt.extra_subnets, {c["arch"] for c in chosen})
    with phase("retrain", f"{len(chosen)} chosen + {len(extra)} more subnets from scratch for {rt.epochs} epochs"):
        items = [{"arch": Arch.from_str(space, e["arch"]), "name": e["name"], "supernet_acc": e["supernet_acc"],
                  "budget": e.get("budget"), "budget_key": e.get("budget_key")} for e in entries]
        items += [{"arch": Arch.from_str(space, r["arch"]), "name": f"extra{i}", "supernet_acc": r["holdout_acc"]}
                  for i, r in enumerate(extra)]
        if not rt.from_scratch:
            from supernets import load_subnet

            for item, e in zip(items, entries):
                item["module"] = load_subnet(folder / e["file"])[0]
        retrained = retrain_subnets(items, info["data"], rt, seed=recipe.seed, table_path=run_dir / "retrain.jsonl",
                                    progress=progress)
        by_arch = {r["arch"]: r for r in retrained}
        rank = None
        unique = {r["arch"]: r for r in retrained}.values()
        if len(unique) >= 3:
            rank = rank_agreement([r["supernet_acc"] for r in unique], [r["standalone_test_acc"] for r in unique])
            rank["rows"] = [{"arch": r["arch"], "flops": cost(Arch.from_str(space, r["arch"])).flops,
                             "supernet_acc": r["supernet_acc"], "standalone_test_acc": r["standalone_test_acc"]}
                            for r in sorted(unique, key=lambda r: r["supernet_acc"])]
            print(f"  supernet vs standalone over {rank['n']} subnets: Kendall tau {rank['kendall_tau']:.3f}, "
                  f"Spearman {rank['spearman']:.3f}")

    with phase("report", "Markdown summary and plots"):
        rows = []
        for e in entries:
            r = by_arch[e["arch"]]
            rows.append({"budget_key": e["budget_key"], "budget": e["budget"], "arch": e["arch"],
                         "flops": e["flops"], "params": e["params"], "supernet_acc": e["supernet_acc"],
                         "standalone_test_acc": r["standalone_test_acc"], "file": str(folder / e["file"])})
        history = [{"study": r["study"], "value": r["score"]} for r in result.to_records()]
        summary = {
            "title": f"oneshot run: {recipe.name}",
            "what": (f"Supernet `{space.name}` ({space.size():,} subnets) trained on `{recipe.data.name}` "
                     f"({info['data'].get('split_sizes')}) with `{recipe.train.sampler}` sampling for "
                     f"{recipe.train.epochs} epochs; {len(records)} subnets scored on the holdout split after BN "
                     f"recalibration ({ev.calib_batches} x {ev.calib_batch_size} images); predictors "
                     f"{', '.join(pr.models)}; `{se.sampler}` search over {se.n_trials} subnets with objective "
                     f"`{se.objective}`; chosen subnets retrained from scratch for {rt.epochs} epochs and scored on "
                     f"the test split (never seen by search)."),
            "provenance": (f"seed {recipe.seed}, code {code_version()}, torch {torch.__version__}, "
                           f"{threads} CPU thread(s), checkpoint `{ckpt}`, recipe saved as `recipe.json`."),
            "phases": phase.seconds,
            "budgets": rows,
            "rank": rank,
            "predictors": pred_metrics,
            "predictor_oof": oof,
            "evaluations": [{"arch": r["arch"], "flops": r["flops"], "holdout_acc": r["holdout_acc"]}
                            for r in records],
            "searched": ([{"arch": r["arch"], "flops": r["flops"], "holdout_acc": r["score"]} for r in result.to_records()]
                         if se.objective == "supernet" else []),
            "search_history": history,
            "search": result.settings if hasattr(result, "settings") else None,
            "recipe": recipe.to_dict(),
        }
        report = write_report(run_dir / "report", summary)
    print(f"\nreport: {report}")
    return report


# --------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", nargs="?", default=DEFAULT_RECIPE,
                   help="recipe YAML or shipped recipe name (default: digits, the embedded default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.epochs=2 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs stay)")


def run(args: argparse.Namespace) -> int:
    from .training import parse_overrides

    recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
    run_pipeline(recipe, progress=not args.no_progress)
    return 0
