"""`oneshot search TARGET`: budgeted Optuna search over a space (`oneshot.study.search.search`)."""

from __future__ import annotations

import argparse
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
    parser.add_argument("--latency", default=None, metavar="TABLE",
                        help="latency table from `oneshot latency`: lets --budget name latency=MS")


def run(args: argparse.Namespace) -> int:
    from oneshot.study.budget import parse_budget_text
    from oneshot.study.search import search

    t0 = time.perf_counter()
    objective = args.objective
    if objective is None and not Path(args.target).is_file():
        raise ValueError(f"{args.target!r} is not a checkpoint file: a space needs --objective predictor:PATH or "
                         "synthetic:additive|pairwise")
    costs = {}
    if args.latency:
        from oneshot.score.latency import LatencyModel

        costs["latency"] = LatencyModel.from_table(args.latency)
        print(costs["latency"].summary())
    result = search(args.target, objective=objective, budgets=parse_budget_text(args.budget) or None,
                    costs=costs or None, progress=not args.no_progress, sampler=args.sampler, n_trials=args.n_trials,
                    seed=args.seed, storage=args.storage, study_name=args.study_name, strategy=args.strategy,
                    run_dir=args.run_dir, new_study=args.new_study, verbose=True)
    print(result.summary())
    front = result.pareto()
    print(f"pareto front (score vs flops): {len(front)} subnets")
    for r in front:
        print(f"  {r}")
    print(f"done in {time.perf_counter() - t0:.1f} s; study {result.settings['study_name']!r}, "
          f"sampler={result.settings['sampler']} seed={args.seed} storage={result.settings['storage']}")
    return 0
