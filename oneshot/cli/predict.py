"""`oneshot predict`: fit accuracy predictors on an evaluation table and report how well they rank held-out subnets.

    oneshot predict fit EVALUATIONS.jsonl --model xgb|gp|auto [--target holdout_acc] [--folds 5] [--out PATH]
    oneshot predict curve EVALUATIONS.jsonl [--models xgb,gp,auto] [--sizes 20,50,100] [--repeats 3]

`fit` cross-validates the model, prints Kendall tau, Spearman, precision@k, RMSE and the std's calibration (mean
+- std over folds), fits it on every subnet and saves it (default: `<table>.<model>.predictor` beside the table;
load it with `predictors.load_predictor`). `curve` prints the learning curve over training-set sizes.

    oneshot predict fit --table BENCHMARK.json --space macro [--metric mean_acc] [--n-train N] [--model auto]

`fit --table` fits on a tabular benchmark instead (one row per network, `TabularBenchmark.to_arrays`): on a random
N of its networks when `--n-train` is given, reporting the held-out metrics on the rest too; the predictor is saved
only with `--out` (a benchmark's folder is often read-only).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

__all__ = ["add_arguments", "run"]

DEFAULT_SIZES = (10, 20, 50, 100, 200, 500, 1000, 2000)

_LABELS = {"kendall_tau": "Kendall tau", "spearman": "Spearman", "precision_at_k": "precision@k", "rmse": "RMSE",
           "std_error_spearman": "Spearman(|err|, std)", "coverage": "coverage mean+-2std"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="predict_command", metavar="ACTION", required=True)
    fit = sub.add_parser("fit", help="cross-validate, fit and save one predictor",
                         description="Cross-validate a predictor on an evaluation table, fit it on all rows, save it.")
    _common(fit)
    fit.add_argument("--model", default="auto", help="a registered predictor: xgb, gp, auto, ... (default: auto)")
    fit.add_argument("--folds", type=int, default=5, help="cross-validation folds (0: none)")
    fit.add_argument("--out", default=None, help="predictor file (default: <table>.<model>.predictor beside it)")
    _benchmark_options(fit)
    curve = sub.add_parser("curve", help="learning curve over training-set sizes",
                           description="Metrics on held-out subnets after training on random subsets of each size.")
    _common(curve)
    curve.add_argument("--models", default="xgb,gp,auto", help="comma-separated predictors (default: xgb,gp,auto)")
    curve.add_argument("--sizes", default=None,
                       help="comma-separated training-set sizes (default: those of 10,20,50,100,200,500,1000,2000 "
                            "that leave a fifth of the table for testing)")
    curve.add_argument("--repeats", type=int, default=3, help="random splits per size (default: 3)")
    curve.add_argument("--test-size", type=int, default=None,
                       help="held-out subnets per repeat (default: all not needed for the largest size)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", nargs="?", help="evaluation table (JSONL) written by `oneshot evaluate`")
    p.add_argument("--target", default="holdout_acc", help="record field to predict (default: holdout_acc)")
    p.add_argument("--encoding", default=None, help="feature encoding, e.g. onehot+ordinal (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="seeds folds, splits and the predictors")
    p.add_argument("--k", type=float, default=0.1, help="top-k for precision@k: a count, or a fraction below 1")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")


def _benchmark_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("benchmark table", "fit on a tabular benchmark (e.g. NAS-Bench-Macro) instead of an "
                                                "evaluation table")
    g.add_argument("--table", dest="bench_table", default=None, metavar="PATH", help="JSON or CSV benchmark table")
    g.add_argument("--space", default=None, help="the table's registered space, e.g. macro")
    g.add_argument("--metric", default="mean_acc", help="table column to predict (default: %(default)s)")
    g.add_argument("--n-train", type=int, default=None,
                   help="fit on this many random networks (by --seed) and test on the rest (default: all)")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "bench_table", None) is not None:
        return _fit_table(args)
    if args.table is None:
        raise ValueError("give an evaluation table (JSONL from `oneshot evaluate`) or --table with --space")
    from oneshot.table import read_scores

    from oneshot.pipeline.phases import min_predictor_rows

    space, archs, scores = read_scores(args.table, args.target)
    need = min_predictor_rows(args.folds if args.predict_command == "fit" else 0)
    if len(scores) < need:
        raise ValueError(f"{str(args.table)!r} has {len(scores)} rows with {args.target!r}: too few to fit and "
                         f"cross-validate a predictor (need at least {need})")
    k = int(args.k) if args.k >= 1 else args.k
    kwargs = {"encoding": args.encoding} if args.encoding else {}
    if args.predict_command == "fit":
        return _fit(args, space, archs, scores, k, kwargs)
    return _curve(args, space, archs, scores, k, kwargs)


def _fit(args, space, archs, scores, k, kwargs) -> int:
    from predictors import create_predictor, cross_validate

    model = create_predictor(args.model, space, seed=args.seed, **kwargs)
    start = time.perf_counter()
    cv = None
    if args.folds:
        cv = cross_validate(model, archs, scores, folds=min(args.folds, len(scores)), seed=args.seed, k=k)
    model.fit(archs, scores)
    seconds = time.perf_counter() - start
    out = Path(args.out) if args.out else Path(args.table).with_name(f"{Path(args.table).stem}.{args.model}.predictor")
    model.save(out)
    if args.json:
        print(json.dumps({"model": args.model, "encoding": model.encoding.name, "subnets": len(scores),
                          "target": args.target, "cv": cv.as_dict() if cv else None, "path": str(out),
                          "seconds": seconds}, indent=2))
        return 0
    print(f"{model!r} on {len(scores)} subnets of {space.name}, target {args.target!r}")
    if cv is not None:
        print(f"{args.folds}-fold cross-validation (mean +- std over folds; k = {k}):")
        for key, (mean, std) in cv.summary.items():
            print(f"  {_LABELS.get(key, key):22s} {mean:8.4f} +- {std:.4f}")
    extra = f"; auto weight on xgb {model.weight_:.1f}" if hasattr(model, "weight_") else ""
    print(f"saved to {out} ({seconds:.1f} s{extra})")
    return 0


def _curve(args, space, archs, scores, k, kwargs) -> int:
    from predictors import create_predictor, learning_curve

    if args.sizes is None:  # from the table: every default size that leaves at least a fifth for testing
        sizes = [s for s in DEFAULT_SIZES if s <= 0.8 * len(scores)]
    else:
        try:
            sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from None
        too_big = [s for s in sizes if s > len(scores) - 2]
        if too_big:
            raise ValueError(f"--sizes {too_big} leave fewer than 2 of the table's {len(scores)} rows for testing")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    results = {}
    for name in models:
        model = create_predictor(name, space, seed=args.seed, **kwargs)
        results[name] = learning_curve(model, archs, scores, sizes, repeats=args.repeats, seed=args.seed,
                                       test_size=args.test_size, k=k)
    if args.json:
        print(json.dumps({m: {str(s): {key: list(v) for key, v in row.items()} for s, row in curve.items()}
                          for m, curve in results.items()}, indent=2))
        return 0
    print(f"learning curve on {len(scores)} subnets of {space.name}, target {args.target!r}, "
          f"{args.repeats} repeats (mean +- std)")
    print(f"{'model':6s} {'train':>5s}  {'Kendall tau':>15s}  {'Spearman':>15s}  {'precision@k':>15s}  {'RMSE':>8s}")
    for name, curve in results.items():
        for size, row in curve.items():
            cells = [f"{row[m][0]:7.3f} +- {row[m][1]:.3f}" for m in ("kendall_tau", "spearman", "precision_at_k")]
            print(f"{name:6s} {size:5d}  {'  '.join(cells)}  {row['rmse'][0]:8.4f}")
    return 0


def _fit_table(args) -> int:
    """`fit --table`: cross-validated metrics on the training networks, held-out metrics on the others."""
    import numpy as np

    from oneshot.score.tabular import TabularBenchmark
    from predictors import create_predictor, cross_validate, score_predictions

    if args.table is not None:
        raise ValueError(f"give an evaluation table ({args.table!r}) or --table, not both")
    if args.space is None:
        raise ValueError("--table needs --space, the registered space of the table's keys (e.g. --space macro)")
    table = TabularBenchmark.load(args.bench_table, args.space)
    if args.metric not in table.metrics:
        raise ValueError(f"{args.bench_table} has no metric {args.metric!r}; metrics: {table.metrics}")
    archs, y = table.to_arrays(args.metric)
    n = len(y) if args.n_train is None else args.n_train
    if not 2 <= n <= len(y):
        raise ValueError(f"--n-train must be between 2 and the table's {len(y)} networks, got {n}")
    order = np.random.default_rng(args.seed).permutation(len(y))
    train, test = order[:n], order[n:]
    k = int(args.k) if args.k >= 1 else args.k
    model = create_predictor(args.model, table.space, seed=args.seed,
                             **({"encoding": args.encoding} if args.encoding else {}))
    start = time.perf_counter()
    cv = None
    if args.folds:
        cv = cross_validate(model, [archs[i] for i in train], y[train], folds=min(args.folds, n), seed=args.seed, k=k)
    model.fit([archs[i] for i in train], y[train])
    held = score_predictions(y[test], *model.predict([archs[i] for i in test]), k=k) if len(test) >= 2 else None
    seconds = time.perf_counter() - start
    if args.out:
        model.save(args.out)
    if args.json:
        print(json.dumps({"model": args.model, "table": str(args.bench_table), "metric": args.metric,
                          "networks": len(y), "train": n, "seed": args.seed, "cv": cv.as_dict() if cv else None,
                          "held_out": held, "path": args.out, "seconds": seconds}, indent=2))
        return 0
    print(f"{model!r} on {n} of the {len(y)} networks of {args.bench_table} ({table.space.name}), "
          f"target {args.metric!r}, seed {args.seed}")
    if cv is not None:
        print(f"{min(args.folds, n)}-fold cross-validation on the {n} (mean +- std over folds; k = {k}):")
        for key, (mean, std) in cv.summary.items():
            print(f"  {_LABELS.get(key, key):22s} {mean:8.4f} +- {std:.4f}")
    if held is not None:
        print(f"held out: the other {len(test)} networks (k = {k}):")
        for key, value in held.items():
            print(f"  {_LABELS.get(key, key):22s} {value:8.4f}")
    print(f"{'saved to ' + args.out if args.out else 'not saved (give --out)'} ({seconds:.1f} s)")
    return 0
