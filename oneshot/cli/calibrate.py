"""`oneshot calibrate CHECKPOINT --table TABLE`: calibrate a supernet's estimate on networks whose standalone
accuracy a table already holds (`oneshot calibrate RECIPE` instead trains them: the calibrate phase of a run)."""

from __future__ import annotations

import argparse

DEFAULT_POOL = 200  # candidate networks whose signals are computed (the design picks the N among them)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a supernet checkpoint written by `oneshot train` (or its run folder)")
    p.add_argument("--table", required=True,
                   help="the truths: a table of standalone-trained networks of the checkpoint's space (JSON or CSV, "
                        "as `oneshot fidelity` reads, e.g. a tabular benchmark)")
    p.add_argument("--subnets", type=int, default=25, help="N, the networks calibrated on (default 25)")
    p.add_argument("--active", type=int, default=0,
                   help="then this many more, one at a time: the best the fused estimate predicts among those not "
                        "yet calibrated on (default 0)")
    p.add_argument("--metric", default="mean_acc", help="the table's accuracy column (default mean_acc)")
    p.add_argument("--pool", type=int, default=DEFAULT_POOL,
                   help=f"table networks whose signals are computed, the N picked among them (default {DEFAULT_POOL})")
    p.add_argument("--seed", type=int, default=0, help="fixes the pool, the design, the folds and the bootstrap")
    p.add_argument("--data-path", help="where the dataset lives now, if it moved since the supernet was trained")
    p.add_argument("--out", help="folder for calibration.json, .md and .predictor (default: a `calibration` folder "
                                 "beside the checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="replace another calibration in --out")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from oneshot.deploy.calibrate import SupernetSignals, calibrate
    from oneshot.score.fidelity import resolve_checkpoint
    from oneshot.score.tabular import TabularBenchmark
    from oneshot.threads import configure_threads
    from oneshot.training.checkpoint import read_checkpoint
    from predictors import Signals, cost_signals
    from predictors.encodings import CostEncoding
    from supernets import space_from_dict

    if args.pool < args.subnets:
        raise ValueError(f"--pool ({args.pool}) must be at least --subnets ({args.subnets})")
    configure_threads()
    ckpt = resolve_checkpoint(args.checkpoint)
    space = space_from_dict(read_checkpoint(ckpt)["oneshot"]["space"])
    table = TabularBenchmark.load(args.table, space)
    networks = list(dict.fromkeys(space.canonical(a) for a in table.archs()))
    rng = np.random.default_rng([args.seed, 0xC0])
    ends = [a for a in (space.canonical(space.smallest()), space.canonical(space.largest())) if a in set(networks)]
    rest = [networks[i] for i in rng.permutation(len(networks))]
    pool = list(dict.fromkeys([*ends, *rest]))[:args.pool]
    data = {"path": args.data_path} if args.data_path else None
    signals = Signals(cost_signals(space) if CostEncoding.supports(space) else {},
                      sources=[SupernetSignals(ckpt, data=data)])
    cal = calibrate(space, args.subnets, signals, table, candidates=pool, metric=args.metric, seed=args.seed,
                    active=args.active)
    out = Path(args.out) if args.out else ckpt.parent / "calibration"
    md = cal.save(out, overwrite=args.overwrite)
    print(cal.markdown())
    print(f"wrote {md} (and calibration.json, calibration.predictor)")
    return 0
