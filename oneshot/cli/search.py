"""`oneshot search TARGET`: budgeted Optuna search over a space (`oneshot.study.search.search`)."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from oneshot.study.defaults import DEFAULT_PARETO_SAMPLER, DEFAULT_SAMPLER, DEFAULT_STRATEGY, SAMPLER_NAMES, STRATEGIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="supernet checkpoint (objective 'supernet') or a registered space name")
    parser.add_argument("--objective", default=None,
                        help="supernet (default for a checkpoint) | predictor:PATH | synthetic:additive|pairwise")
    parser.add_argument("--budget", action="append", default=[], metavar="COST=LIMIT[,LIMIT...]",
                        help="e.g. flops=50e6,100e6 (repeat for more costs: params=1e6)")
    parser.add_argument("--sampler", default=None,
                        help=f"one of {list(SAMPLER_NAMES)}; default {DEFAULT_SAMPLER} "
                             f"({DEFAULT_PARETO_SAMPLER} for pareto)")
    parser.add_argument("--n-trials", type=int, default=100, help="distinct subnets the study evaluates in total: a re-run finishes a killed search, "
                             "and a study that already holds more reports its first N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=STRATEGIES)
    parser.add_argument("--storage", default=None, help="Optuna storage URL; default SQLite in the run folder")
    parser.add_argument("--study-name", default=None,
                        help="default <space>-<objective>-<budgets>-seed<seed>; an existing study is resumed (it must "
                             "have been made with the same objective, budgets, strategy, sampler and seed)")
    parser.add_argument("--new-study", action="store_true",
                        help="start a new study under a free name (<name>-2, ...) instead of resuming; deletes nothing")
    parser.add_argument("--run-dir", default="runs/{study}",
                        help="folder for study.db and search.json; {study} is the study name (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--data-path", default=None,
                        help="objective supernet: where the checkpoint's dataset lives now, if it moved (the split "
                             "digest is still checked)")
    parser.add_argument("--latency", default=None, metavar="TABLE",
                        help="latency table from `oneshot latency`: lets --budget name latency=MS")
    table = parser.add_argument_group(
        "benchmark table", "search a space whose networks a tabular benchmark measured (e.g. NAS-Bench-Macro for "
        "`macro`): the objective is the table's value; its params/flops columns become costs table_params/"
        "table_flops (oneshot's flops are 2 x MACs; NAS-Bench-Macro's flops column counts MACs)")
    table.add_argument("--table", default=None, metavar="PATH", help="JSON or CSV table of the target space")
    table.add_argument("--metric", default="mean_acc", help="table column to maximize (default: %(default)s)")
    table.add_argument("--noisy-runs", default=None, metavar="COLUMN[,COLUMN...]",
                       help="score each network by one of its training runs (picked by --seed) instead of --metric: "
                            "a column of per-run lists (test_acc) or several scalar columns")


def run(args: argparse.Namespace) -> int:
    from oneshot.study.budget import parse_budget_text
    from oneshot.study.search import search

    t0 = time.perf_counter()
    objective = args.objective
    costs, table = {}, None
    if args.table is not None:
        if objective is not None:
            raise ValueError("give either --table or --objective, not both")
        table, objective, costs = _table_objective(args)
    elif args.noisy_runs is not None:
        raise ValueError("--noisy-runs needs --table")
    if objective is None and not Path(args.target).is_file():
        raise ValueError(f"{args.target!r} is not a checkpoint file: a space needs --objective predictor:PATH, "
                         "--table PATH or --objective synthetic:additive|pairwise")
    if args.latency:
        from oneshot.score.latency import LatencyModel

        costs["latency"] = LatencyModel.from_table(args.latency)
        print(costs["latency"].summary())
    result = search(args.target, objective=objective, budgets=parse_budget_text(args.budget) or None,
                    costs=costs or None, progress=not args.no_progress, sampler=args.sampler, n_trials=args.n_trials,
                    seed=args.seed, storage=args.storage, study_name=args.study_name, strategy=args.strategy,
                    run_dir=args.run_dir, new_study=args.new_study, verbose=True,
                    evaluate_args={"data": {"path": args.data_path}} if args.data_path else None)
    print(result.summary())
    front = result.pareto()
    print(f"pareto front (score vs flops): {len(front)} subnets")
    for r in front:
        print(f"  {r}")
    if table is not None:
        _print_table_check(table, result, args.metric, costs)
    print(f"done in {time.perf_counter() - t0:.1f} s; study {result.settings['study_name']!r}, "
          f"sampler={result.settings['sampler']} seed={args.seed} storage={result.settings['storage']}")
    if result.path is not None:  # what `oneshot extract CKPT --search FILE` reads
        print(f"search result: {result.path}")
        if Path(args.target).is_file():
            print(f"extract its best subnet per budget: oneshot extract {shlex.quote(args.target)} --search "
                  f"{shlex.quote(str(result.path))}")
    return 0


def _table_objective(args: argparse.Namespace):
    """(table, objective, table costs) for `--table`: the objective carries the table's digest and the metric as its
    identity, so a saved study is never resumed on another table or metric."""
    from oneshot.score.tabular import TabularBenchmark

    if Path(args.target).is_file():
        raise ValueError(f"--table needs a space name as the target, not the file {args.target!r}")
    table = TabularBenchmark.load(args.table, args.target)
    if args.noisy_runs is not None:
        runs = [c.strip() for c in args.noisy_runs.split(",") if c.strip()]
        objective = table.noisy_objective(runs[0] if len(runs) == 1 else runs, seed=args.seed)
    else:
        if args.metric not in table.metrics:
            raise ValueError(f"{args.table} has no metric {args.metric!r}; metrics: {table.metrics}")
        objective = table.objective(args.metric)
    print(f"table {args.table}: {len(table)} networks of {table.space.name!r} ({table.n_rows} rows), "
          f"metrics {table.metrics}, sha256 {table.digest}")
    return table, objective, table.costs([m for m in ("params", "flops") if m in table.metrics])


def _print_table_check(table, result, metric: str, costs) -> None:
    """The best found per budget with its table row, beside the table's own best within that budget (the oracle)."""
    from oneshot.study.budget import CostModel

    from oneshot.study.loop import ATTR

    # Equivalent spellings of one network are one evaluation: say how many proposals the cache served.
    evaluated = {str(r.arch) for r in result.records}
    served = [t.user_attrs[ATTR]["arch"] for s in result.studies or () for t in s.get_trials(deepcopy=False)
              if t.user_attrs.get(ATTR, {}).get("status") == "duplicate"]
    print(f"{len(result.records)} subnets evaluated = {len({table.space.canonical(r.arch) for r in result.records})}"
          f" distinct networks; {len(served)} proposals served from the cache, "
          f"{sum(a not in evaluated for a in served)} of them another spelling of an evaluated network")
    if metric not in table.metrics:
        return
    model = CostModel(costs)
    archs, values = table.to_arrays(metric)
    for name, best in result.best_per_budget().items():
        budget = next((b for b in result.budgets if str(b) == name), None)
        fits = [i for i, a in enumerate(archs) if budget is None or budget.admits(model(a))]
        if best is None or not fits:
            continue
        found = table.value(best.arch, metric)
        top = max(fits, key=lambda i: values[i])
        rank = 1 + sum(values[i] > found for i in fits)
        print(f"best found {name}: {best.arch} {metric}={found:.4f}, rank {rank} of {len(fits)} table networks "
              f"within it; the table's best there: {archs[top]} {metric}={values[top]:.4f}")
