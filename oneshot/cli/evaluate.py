"""`oneshot evaluate CHECKPOINT`: score subnets on the holdout split after BN recalibration."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from oneshot.recipe import EvaluateSection

    d = EvaluateSection()
    parser.add_argument("checkpoint", help="supernet checkpoint written by `oneshot train`")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--num-subnets", type=int, default=None,
                       help=f"score this many random subnets (default {d.num_subnets} when --archs is not given)")
    which.add_argument("--archs", default=None, metavar="FILE",
                       help="file of arch strings, one per line (or a JSONL result table)")
    parser.add_argument("--calib-batches", type=int, default=d.calib_batches, help="K batches for BN recalibration")
    parser.add_argument("--calib-batch-size", type=int, default=d.calib_batch_size)
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="holdout images per forward pass")
    parser.add_argument("--seed", type=int, default=d.seed, help="calibration subset and random subnets")
    parser.add_argument("--table", default=None, help="result table (default: evaluations.jsonl beside the checkpoint)")
    parser.add_argument("--data-path", default=None, help="where the checkpoint's dataset now lives (cifar10, imagefolder)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all available cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from oneshot.score.evaluate import TABLE_NAME, evaluate, read_archs
    from oneshot.threads import configure_threads
    from oneshot.training.checkpoint import load_supernet

    configure_threads(args.threads)
    if not Path(args.checkpoint).exists():  # before "writing to": nothing is written for a missing input
        raise FileNotFoundError(f"supernet checkpoint {args.checkpoint!r} does not exist")
    archs = None
    if args.archs:
        supernet, info = load_supernet(args.checkpoint)
        archs = read_archs(args.archs, supernet.space)
        if not archs:  # an empty list must not turn into "100 random subnets"
            raise ValueError(f"arch file {args.archs!r} lists no subnets")
    if args.num_subnets is not None and args.num_subnets < 1:
        raise ValueError(f"--num-subnets must be at least 1, got {args.num_subnets}")
    num = args.num_subnets if args.num_subnets is not None else (None if archs else 100)
    table = Path(args.table) if args.table else Path(args.checkpoint).parent / TABLE_NAME
    print(f"writing to {table}")
    start = time.perf_counter()
    records = evaluate(args.checkpoint, archs, num, data={"path": args.data_path} if args.data_path else None,
                       calib_batches=args.calib_batches, calib_batch_size=args.calib_batch_size,
                       batch_size=args.batch_size, seed=args.seed, table=table, device=args.device,
                       progress=not args.no_progress)
    accs = np.array([r["holdout_acc"] for r in records])
    best = records[int(accs.argmax())]
    print(f"{len(records)} subnets ({records.evaluated} evaluated now, {len(records) - records.evaluated} found in the "
          f"table) in {time.perf_counter() - start:.1f} s; holdout accuracy mean {accs.mean():.4f}, "
          f"min {accs.min():.4f}, max {accs.max():.4f} ({best['arch']}, {best['macs'] / 1e6:.2f} MMACs)")
    print(f"results: {table}")
    return 0
