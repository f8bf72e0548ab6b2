"""`oneshot run`: every phase of a recipe end to end, with a report of what was found and how far to trust it.

train the supernet (fair sampling) -> score random subnets with recalibrated BN -> fit and cross-validate
accuracy predictors -> search each budget -> extract the chosen subnets -> retrain them (and a few more) from
scratch -> report. Each phase is a function of the run folder: it reads what earlier phases wrote there and
writes its own results, so an interrupted run picks up where it stopped, and `oneshot PHASE RECIPE` runs one
phase alone from the same recipe.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from oneshot.recipe import Recipe

from . import PHASES
from .run_folder import Run, RunLock, phase_runs, phase_seconds, record_phase, subnet_manifest

__all__ = ["PHASES", "PHASE_FUNCTIONS", "run_pipeline", "min_predictor_rows"]


def min_predictor_rows(folds: int) -> int:
    """Fewest evaluated subnets a predictor is fitted and cross-validated on: 2 per fold, and never under 10."""
    return max(10, 2 * int(folds))


# --------------------------------------------------------------------------- phases
def phase_train(run: Run) -> str:
    """Train (or resume training) the supernet into the run folder."""
    from oneshot.training.trainer import train

    r = run.recipe
    print(f"supernet {r.supernet.name} on {r.data.name}, {r.train.sampler} sampling, {r.train.epochs} epochs")
    train(r, resume=True, progress=run.progress)
    return f"checkpoint {run.ckpt}"


def phase_evaluate(run: Run) -> str:
    """Score random subnets plus the smallest and largest with recalibrated BN (cached per subnet)."""
    import torch

    from oneshot.score.bn import has_bn
    from oneshot.score.evaluate import evaluate

    ev, supernet = run.recipe.evaluate, run.loaded[0]
    calib = f"BN recalibrated ({ev.calib_batches} batches)" if has_bn(supernet) else "no BN to recalibrate"
    print(f"{ev.num_subnets} random subnets + smallest and largest, {calib}, holdout split")
    with torch.no_grad():
        records = evaluate(supernet, [run.space.smallest(), run.space.largest()], ev.num_subnets, data=run.data,
                           progress=run.progress, **run.eval_kwargs)
    run.write("evaluate.json", {"records": [{k: r[k] for k in ("arch", "holdout_acc", "holdout_loss", "macs", "flops",
                                                                 "params")} for r in records]})
    accs = np.array([r["holdout_acc"] for r in records])
    return (f"holdout accuracy over {len(records)} subnets: min {accs.min():.4f}, median {np.median(accs):.4f}, "
            f"max {accs.max():.4f}")


def phase_predict(run: Run) -> str:
    """Fit and cross-validate the recipe's predictors on the evaluated subnets."""
    from predictors import fit_predictors
    from predictors.metrics import LowSpreadError
    from supernets import Arch

    pr, records, space = run.recipe.predict, run.evaluated(), run.space
    print(f"{', '.join(pr.models)} on {len(records)} subnets, {pr.folds}-fold cross-validation")
    archs = [Arch.from_str(space, r["arch"]) for r in records]
    scores = np.array([r[pr.target] if pr.target in r else np.nan for r in records], float)
    if np.isnan(scores).any():
        raise ValueError(f"predict.target {pr.target!r} is not a field of the evaluation records")
    need = min_predictor_rows(pr.folds)
    if len(records) < need:  # cross-validation over a handful of rows gives "nan ± nan", not a predictor
        run.write("predict.json", {"metrics": {}, "oof": {}, "skipped": f"{len(records)} subnets, need {need}"})
        return (f"skipped: {len(records)} evaluated subnets are too few to fit and cross-validate predictors "
                f"(need {need}; raise evaluate.num_subnets)")
    proxies = run.proxies
    if proxies is not None:  # scored once per subnet, kept in proxies.jsonl: a resumed run reads them back
        proxies(archs)
        print(f"zero-cost proxies {', '.join(proxies.names)}: {proxies.computed} subnets scored now "
              f"({proxies.seconds:.1f} s), {len(archs) - proxies.computed} read from proxies.jsonl")
    try:
        fitted = fit_predictors(space, archs, scores, models=pr.models, folds=pr.folds, seed=run.recipe.seed,
                                proxies=proxies)
    except LowSpreadError as exc:  # the supernet scored (nearly) all subnets alike: nothing to fit, say so
        run.write("predict.json", {"metrics": {}, "oof": {}, "skipped": str(exc)})
        return f"skipped: {exc}"
    metrics, oof, lines = {}, {}, []
    for name, model in fitted["predictors"].items():
        cv = fitted["cv"][name]
        m = {}
        for key, (mean, std) in cv.summary.items():
            m[key], m[f"{key}_std"] = mean, std
        metrics[name] = m
        oof[name] = {"true": scores.tolist(), "mean": cv.oof_mean.tolist(), "std": cv.oof_std.tolist(),
                     "kendall_tau": cv.pooled.get("kendall_tau", float("nan"))}
        model.save(run.dir / "predictors" / f"{name}.predictor")
        lines.append(f"{name}: Kendall tau {m['kendall_tau']:.3f} ± {m['kendall_tau_std']:.3f} over folds "
                     f"(pooled {oof[name]['kendall_tau']:.3f}), Spearman {m['spearman']:.3f} ± {m['spearman_std']:.3f}")
    run.write("predict.json", {"metrics": metrics, "oof": oof, "proxies": proxies.names if proxies else []})
    return "; ".join(lines)


def run_signals(run: Run) -> Any:
    """The signals a calibration sees: the supernet's holdout accuracy and loss (the evaluate phase's table),
    the analytic MACs and params, the recipe's zero-cost proxies (predict.proxies), and the predicted latency
    (`latency_ms`) when a search budget names latency."""
    from predictors import Signals, cost_signals
    from predictors.encodings import CostEncoding

    from oneshot.deploy.calibrate import SupernetSignals

    sources = [SupernetSignals(run.ckpt, supernet=run.loaded[0], data=run.data, **run.eval_kwargs)]
    if run.proxies is not None:
        sources.append(run.proxies)
    costs = cost_signals(run.space) if CostEncoding.supports(run.space) else {}
    if run.latency is not None:
        costs["latency_ms"] = run.latency
    clash = set(costs) & {n for src in sources for n in src.names}  # a proxy named like a cost wins
    return Signals({k: v for k, v in costs.items() if k not in clash}, sources=sources)


def phase_calibrate(run: Run) -> str:
    """Train `calibrate.subnets` evaluated subnets standalone and fit the calibrated estimate on them."""
    from supernets import Arch

    from oneshot.deploy.calibrate import RetrainTruths, calibrate

    ca, r = run.recipe.calibrate, run.recipe
    if ca.subnets == 0:
        return "skipped: calibrate.subnets is 0 (search uses its objective uncalibrated)"
    candidates = [Arch.from_str(run.space, x["arch"]) for x in run.evaluated()]
    print(f"{ca.subnets} of {len(candidates)} evaluated subnets, spread over MACs and supernet accuracy, trained "
          f"standalone for {r.retrain.epochs} epochs as truths")
    truths = RetrainTruths(run.loaded[1]["data"], r.retrain, seed=r.seed, table_path=run.dir / "retrain.jsonl",
                           progress=run.progress, data_overrides=run.data_overrides or None)
    regions = None
    if ca.active:  # the further truths are chosen near the top of each search budget
        from oneshot.study.budget import BudgetCheck, CostModel, parse_budgets

        costs = CostModel({"latency": run.latency} if run.latency is not None else None)
        regions = [BudgetCheck(b, costs) for b in parse_budgets(r.search.budgets or None, costs.keys)]
        print(f"then {ca.active} more, one per budget per round: the best the fused estimate predicts there" +
              (f" at mean + {ca.active_kappa:g} std" if ca.active_kappa else ""))
    cal = calibrate(run.space, ca.subnets, run_signals(run), truths, candidates=candidates, predictor=ca.predictor,
                    seed=r.seed, active=ca.active, regions=regions, kappa=ca.active_kappa)
    cal.save(run.dir / "calibration", overwrite=True)  # the phase's own output, as predict.json is
    f, rest = cal.report["fused"], cal.report.get("fused_without_supernet")
    fused = "n/a" if f["tau"] is None else f"{f['tau']:.3f}"
    without = "" if not rest or rest["tau"] is None else f" (without the supernet's signals {rest['tau']:.3f})"
    return (f"calibrated on {cal.report['n']} standalone truths: fused estimate Kendall tau {fused} out of "
            f"fold{without}; {cal.report['cost']['text']}")


def phase_search(run: Run) -> str:
    """Search every budget, then choose the best subnet per budget."""
    from supernets import Arch

    from oneshot.study.budget import COST_KEYS, parse_budgets
    from oneshot.study.results import best_within
    from oneshot.study.search import search

    se, r = run.recipe.search, run.recipe
    # A list of limits per cost; a single limit applies to every budget ({flops: [a, b], params: p}): parse_budgets
    # reads either form, here for the choice per budget and inside search for the studies.
    budgets = dict(se.budgets)
    if not budgets:
        raise ValueError("the recipe's search.budgets is empty: give at least one, e.g. flops: [5.0e+6]")
    print(f"{run.sampler} sampler, {se.n_trials} subnets, budgets {budgets}, objective {se.objective}")
    if se.objective == "supernet":  # scored through the evaluate phase's table (same calibration settings)
        target, objective = run.path(run.ckpt.name, "train"), "supernet"
    elif se.objective == "calibrated":  # the calibrate phase's predictor, its file digest in the study identity
        from oneshot.deploy.calibrate import calibrated_objective

        run.path("calibration/calibration.predictor", "calibrate")
        target = run.space
        objective = calibrated_objective(run.dir / "calibration", run_signals(run), r.calibrate.acquisition,
                                         r.calibrate.kappa)
    elif se.objective in r.predict.models:  # by file, so the study records the predictor file's digest
        target = run.space
        objective = f"predictor:{run.path(f'predictors/{se.objective}.predictor', 'predict')}"
    else:
        raise ValueError(f"search.objective {se.objective!r} must be 'supernet' or one of predict.models "
                         f"{r.predict.models}")
    costs = {}
    if "latency" in budgets:  # timed once on the recipe's target device, kept in latency.jsonl
        costs["latency"] = run.latency
        print(f"  {costs['latency'].summary()}")
    result = search(target, objective, evaluate_args={"data": run.data, **run.eval_kwargs}, budgets=budgets,
                    costs=costs,
                    sampler=run.sampler, n_trials=se.n_trials, strategy=se.strategy, sampler_args=se.sampler_args,
                    seed=r.seed, storage=se.storage, study_name=se.study_name,
                    run_dir=run.dir / "search", progress=run.progress, verbose=True,
                    proxies=run.proxies if se.objective not in ("supernet", "calibrated") else None)
    # With the supernet as objective, the evaluate phase's subnets are measurements of the same objective (same
    # calibration, same holdout split); with the calibrated one, the subnets trained as its truths: the best per
    # budget is taken over both sets.
    candidates = [{"arch": str(x.arch), "score": x.score, **dict(x.costs)} for x in result.records]
    if se.objective == "supernet":
        candidates += [{"arch": x["arch"], "score": x["holdout_acc"], "macs": x["macs"], "flops": x["flops"],
                        "params": x["params"],
                        **{k: fn(Arch.from_str(run.space, x["arch"])) for k, fn in costs.items()}}
                       for x in run.evaluated()]
    elif se.objective == "calibrated":  # the calibration's trained subnets: their truth is the objective's value
        from oneshot.study.budget import CostModel

        known = CostModel(costs)
        candidates += [{"arch": a, "score": v, **known(Arch.from_str(run.space, a))}
                       for a, v in objective.measured.items()]
    chosen, lines = [], []
    for b in parse_budgets(budgets, keys=(*COST_KEYS, *costs)):  # limits on several costs pair up, as in search
        best = best_within(candidates, b, lambda c: c["score"], lambda c: c)
        if best is None:
            raise ValueError(f"no searched or evaluated subnet fits budget {b}")
        (key, limit), limits = b.limits[0], b.as_dict()
        chosen.append({"name": "_".join(f"{k}_{v:.3g}" for k, v in b.limits), "arch": best["arch"],
                       "budget_key": key, "budget": limit, "limits": limits, "search_score": best["score"],
                       "cost": best[key], "costs": {k: best[k] for k in limits}})
        lines.append(f"{b}: {best['arch']} (score {best['score']:.4f})")
    run.write("search/chosen.json", {"chosen": chosen})
    return "\n  ".join([f"best per budget ({_distinct(chosen)}):"] + lines)


def phase_extract(run: Run) -> str:
    """Extract each chosen subnet into a standalone file with recalibrated BN, plus a manifest."""
    import torch

    from oneshot.score.bn import has_bn
    from oneshot.deploy.extract import extract_subnets
    from oneshot.score.evaluate import evaluate

    chosen = run.read("search/chosen.json", "search")["chosen"]
    ev = run.recipe.evaluate
    bn = " with recalibrated BN" if has_bn(run.loaded[0]) else ""
    print(f"{_distinct(chosen)} into standalone files{bn}")
    # The supernet estimate reported for a chosen subnet is always its recalibrated holdout accuracy (the search
    # objective may have been a predictor).
    with torch.no_grad():
        est = evaluate(run.loaded[0], [c["arch"] for c in chosen], data=run.data, progress=False, **run.eval_kwargs)
    acc_of = {x["arch"]: x["holdout_acc"] for x in est}  # several budgets may choose the same subnet
    entries = [{**c, "supernet_acc": acc_of[c["arch"]]} for c in chosen]
    manifest = extract_subnets(run.ckpt, entries, run.dir / "subnets", calib_batches=ev.calib_batches,
                              calib_batch_size=ev.calib_batch_size, seed=ev.seed, loaded=run.loaded, data=run.data,
                              overwrite=True, keep_others=False)  # the run folder's subnets follow chosen.json
    return f"manifest {manifest}"


def _distinct(chosen: list[dict[str, Any]]) -> str:
    """`3 budgets chose 2 distinct subnets`: budgets that chose one subnet share it (extracted, retrained once)."""
    n, k = len(chosen), len({c["arch"] for c in chosen})
    return f"{n} budget{'s' if n != 1 else ''} chose {k} distinct subnet{'s' if k != 1 else ''}"


def _spread(records: list[dict[str, Any]], n: int, exclude: set[str]) -> list[dict[str, Any]]:
    """`n` records evenly spaced in holdout accuracy (so a rank correlation covers the whole range)."""
    pool = sorted((r for r in records if r["arch"] not in exclude), key=lambda r: r["holdout_acc"])
    if n <= 0 or not pool:
        return []
    idx = np.unique(np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int))
    return [pool[i] for i in idx]


def phase_retrain(run: Run) -> str:
    """Retrain the chosen subnets (and a spread of evaluated ones) standalone; rank agreement with the supernet."""
    from supernets import Arch, cost, load_subnet

    from oneshot.deploy.extract import inside_folder
    from oneshot.deploy.retrain import rank_agreement, retrain_subnets

    rt, space = run.recipe.retrain, run.space
    folder, entries = subnet_manifest(run)
    extra = _spread(run.evaluated(), rt.extra_subnets, {e["arch"] for e in entries})
    how = "from scratch" if rt.from_scratch else "fine-tuned from inherited weights"
    print(f"{_distinct(entries)} + {len(extra)} more subnets over the accuracy range: "
          f"{len({e['arch'] for e in entries}) + len(extra)} retrained {how} for {rt.epochs} epochs")
    items = [{"arch": Arch.from_str(space, e["arch"]), "name": e["name"], "supernet_acc": e["supernet_acc"],
              "budget": e.get("budget"), "budget_key": e.get("budget_key")} for e in entries]
    items += [{"arch": Arch.from_str(space, x["arch"]), "name": f"extra{i}", "supernet_acc": x["holdout_acc"]}
              for i, x in enumerate(extra)]
    if not rt.from_scratch:
        for item, e in zip(items, entries):
            item["module"] = load_subnet(inside_folder(folder, e["file"], f"{str(folder)!r} entry {e['name']!r}"))[0]
        for item in items[len(entries):]:
            item["module"] = _inherited(run, item["arch"])
    unique_items: dict[str, dict[str, Any]] = {}
    for x in items:  # budgets that chose one subnet: trained once
        unique_items.setdefault(str(x["arch"]), x)
    items = list(unique_items.values())
    retrained = retrain_subnets(items, run.loaded[1]["data"], rt, seed=run.recipe.seed,
                                table_path=run.dir / "retrain.jsonl", progress=run.progress,
                                data_overrides=run.data_overrides or None)
    unique = list({x["arch"]: x for x in retrained}.values())
    rank = None
    if len(unique) >= 3:
        rank = rank_agreement([x["supernet_acc"] for x in unique], [x["standalone_test_acc"] for x in unique])
        holdout_n = run.loaded[1]["data"]["split_sizes"]["holdout"]  # images behind each supernet_acc
        rank["rows"] = [{"arch": x["arch"], "flops": cost(Arch.from_str(space, x["arch"])).flops,
                         "supernet_acc": x["supernet_acc"], "standalone_test_acc": x["standalone_test_acc"],
                         "supernet_n": holdout_n, "standalone_n": x.get("standalone_test_size")}
                        for x in sorted(unique, key=lambda x: x["supernet_acc"])]
    run.write("retrain.json", {"records": [{k: v for k, v in x.items() if k != "module"} for x in retrained],
                               "rank": rank})
    if rank is None:
        return f"{len(unique)} subnets retrained; rank correlation n/a: fewer than 3 distinct subnets"
    lo, hi = rank["kendall_tau_ci"]
    undecided = (f"; the interval includes 0: {rank['n']} subnets cannot tell (retrain.extra_subnets adds more)"
                 if lo <= 0 <= hi else "")
    return (f"supernet vs standalone over {rank['n']} subnets: Kendall tau {rank['kendall_tau']:.3f} "
            f"[{lo:.3f}, {hi:.3f}], Spearman {rank['spearman']:.3f}{undecided}")


def _inherited(run: Run, arch: Any) -> Any:
    """A standalone module of `arch` with inherited weights and recalibrated BN (for fine-tuning)."""
    from supernets import extract

    from oneshot.score.bn import recalibrate_bn

    recalibrate_bn(run.loaded[0], run.calibration, arch)
    return extract(run.loaded[0], arch)


def phase_report(run: Run) -> str:
    """report.md and plots from what the other phases wrote."""
    import torch

    from oneshot.score.bn import has_bn
    from oneshot.study.results import SearchResult
    from oneshot.threads import configure_threads
    from oneshot.version import code_version

    from .report import write_report

    r = run.recipe
    ev, pr, se, rt = r.evaluate, r.predict, r.search, r.retrain
    info = run.loaded[1]
    records = run.evaluated()
    pred = run.read("predict.json", "predict")
    result = SearchResult.load(run.path("search/search.json", "search"))
    folder, entries = subnet_manifest(run)
    retrained = run.read("retrain.json", "retrain")
    by_arch = {x["arch"]: x for x in retrained["records"]}
    rows = [{"budget_key": e["budget_key"], "budget": e["budget"], "limits": e.get("limits"), "arch": e["arch"],
             "flops": e["flops"],
             "params": e["params"], "supernet_acc": e["supernet_acc"],
             "standalone_test_acc": by_arch[e["arch"]]["standalone_test_acc"], "file": str(folder / e["file"])}
            for e in entries]
    how = "from scratch" if rt.from_scratch else "fine-tuned from inherited weights"
    calib = (f"after BN recalibration ({ev.calib_batches} x {ev.calib_batch_size} images)"
             if has_bn(run.loaded[0]) else "(the supernet has no batch norm, so nothing was recalibrated)")
    summary = {
        "title": f"oneshot run: {r.name}",
        "what": (f"Supernet `{run.space.name}` ({run.space.size():,} subnets) trained on `{r.data.name}` "
                 f"({info['data'].get('split_sizes')}) with `{r.train.sampler}` sampling for {r.train.epochs} "
                 f"epochs; {len(records)} subnets scored on the holdout split {calib}; "
                 f"predictors {', '.join(pr.models)}; "
                 f"`{run.sampler}` search over {se.n_trials} subnets with objective `{se.objective}`; chosen subnets "
                 f"retrained {how} for {rt.epochs} epochs and scored on the test split (never seen by search)."),
        "provenance": (f"seed {r.seed}, code {code_version()}, torch {torch.__version__}, "
                       f"{configure_threads(r.train.threads)} CPU thread(s), checkpoint `{run.ckpt}`, recipe saved "
                       "as `recipe.json`."),
        "phases": {k: v for k, v in phase_seconds(run.dir).items() if k != "report"},
        "phase_runs": {k: v for k, v in phase_runs(run.dir).items() if k != "report"},
        "budgets": rows,
        "rank": retrained["rank"],
        "predictors": pred["metrics"],
        "predictor_oof": pred["oof"],
        "evaluations": [{"arch": x["arch"], "flops": x["flops"], "holdout_acc": x["holdout_acc"]} for x in records],
        "searched": ([{"arch": x["arch"], "flops": x["flops"], "holdout_acc": x["score"]}
                      for x in result.to_records()] if se.objective == "supernet" else []),
        "search_history": [{"study": x.study, "value": x.score, "budget": _budget_label(result, x.study)}
                           for x in result.records],
        "objective_label": ("holdout accuracy (supernet)" if se.objective == "supernet"
                            else "calibrated estimate of standalone holdout accuracy" if se.objective == "calibrated"
                            else f"predicted {pr.target.replace('_', ' ')} ({se.objective})"),
        "search": result.settings,
        "recipe": r.to_dict(),
    }
    if (run.dir / "calibration" / "calibration.md").is_file() and r.calibrate.subnets > 0:
        summary["calibration_md"] = (run.dir / "calibration" / "calibration.md").read_text()
    if (run.dir / "latency.jsonl").is_file():  # latency budgets are ms on the device and batch they were timed at
        from oneshot.score.latency import describe_target
        from oneshot.table import read_table

        timed = read_table(run.dir / "latency.jsonl")[1]
        summary["latency_target"] = describe_target(timed[0]) if timed else ""
    return f"report: {write_report(run.dir / 'report', summary)}"


def _budget_label(result: Any, study: str) -> str:
    """How the report names a study's budget (`flops ≤ 4.5e6`): the legend of its search history."""
    from .report import budget_text

    b = result.budget_of(study)
    return budget_text(b.as_dict()) if b is not None else "Pareto front (all budgets)"


PHASE_FUNCTIONS: dict[str, Callable[[Run], str]] = {
    "train": phase_train, "evaluate": phase_evaluate, "predict": phase_predict, "calibrate": phase_calibrate,
    "search": phase_search,
    "extract": phase_extract, "retrain": phase_retrain, "report": phase_report,
}


@contextlib.contextmanager
def _timed(run: Run, name: str, i: int, total: int) -> Iterator[None]:
    """Print the phase's start and end, and add its wall-clock seconds to `phases.json` for the report (a run of a
    phase that ran here before, e.g. the train phase continuing a checkpoint, is recorded as a resume)."""
    print(f"\n[{i}/{total}] {name}", flush=True)
    t0 = time.perf_counter()
    yield
    seconds = time.perf_counter() - t0
    record_phase(run.dir, name, seconds)
    print(f"[{i}/{total}] {name} done in {seconds:.1f} s", flush=True)


def run_pipeline(recipe: Recipe, progress: bool = True, phases: Sequence[str] = PHASES,
                 data_path: str | None = None) -> Path:
    """Run `phases` of `recipe` in order (default: all); returns the run folder.

    The run folder is locked for the whole call (`RunLock`): a second pipeline, or `oneshot train`, on the same
    folder is refused while this one runs. `data_path`: where the checkpoint's data lives now if it moved (the
    train phase and every later one read it there; the split digest is still checked).
    """
    from oneshot.threads import configure_threads

    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise ValueError(f"unknown phase(s) {unknown}; allowed: {list(PHASES)}")
    if data_path:
        recipe.data.path = data_path
    configure_threads(recipe.train.threads)
    run = Run(recipe, progress, data_path=data_path)
    with RunLock(run.dir, f"oneshot run ({','.join(p for p in PHASES if p in phases)})"):
        run.write("recipe.json", recipe.to_dict())  # to_dict masks a storage password
        todo = [p for p in PHASES if p in phases]
        for i, name in enumerate(todo, 1):
            with _timed(run, name, i, len(todo)):
                print(f"  {PHASE_FUNCTIONS[name](run)}", flush=True)
    return run.dir
