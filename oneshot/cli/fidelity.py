"""`oneshot fidelity RUN_OR_CHECKPOINT --table PATH`: the supernet's ranking against a tabular benchmark.

Prints Kendall tau, Spearman, precision of the top 10% and the top-1 / top-5 regret with bootstrap intervals and
the table's own seed-to-seed ceiling; writes fidelity.json, fidelity.md and fidelity.png beside the checkpoint.
Evaluations are cached in the checkpoint's evaluations.jsonl, so running it again costs nothing.
"""

from __future__ import annotations

import argparse
import time

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT",
                        help="supernet checkpoint written by `oneshot train`, or its run folder")
    parser.add_argument("--table", required=True, help="tabular benchmark of the checkpoint's space, JSON or CSV "
                        "(e.g. nas-bench-macro_cifar10.json: arch -> {mean_acc, test_acc: [per seed], ...})")
    parser.add_argument("--runs-field", default="test_acc", help="table field of per-seed accuracies, for the "
                        "ceiling (default test_acc)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--num-subnets", type=int, default=200,
                       help="subnets judged, stratified over FLOPs (default 200)")
    which.add_argument("--archs", default=None, metavar="FILE", help="judge these subnets instead (one arch "
                       "string per line, or a JSONL result table)")
    parser.add_argument("--metric", default="mean_acc", help="table field ranked against (default mean_acc)")
    parser.add_argument("--seed", type=int, default=0, help="subnets picked and bootstrap draws (default 0)")
    parser.add_argument("--top-fraction", type=float, default=0.1, help="the 'top' of precision (default 0.1)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    parser.add_argument("--calib-batches", type=int, default=None, help="default: the run recipe's")
    parser.add_argument("--calib-batch-size", type=int, default=None, help="default: the run recipe's")
    parser.add_argument("--batch-size", type=int, default=None, help="holdout images per forward pass")
    parser.add_argument("--data-path", default=None, help="where the checkpoint's dataset now lives")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--overwrite", action="store_true", help="replace a fidelity report made with other settings")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from supernets import space_from_dict

    from oneshot.training.checkpoint import read_checkpoint
    from oneshot.score.evaluate import read_archs
    from oneshot.threads import configure_threads
    from oneshot.score.fidelity import FIDELITY_NAME, fidelity, resolve_checkpoint

    configure_threads(args.threads)
    ckpt = resolve_checkpoint(args.checkpoint)
    archs = None
    if args.archs:
        archs = read_archs(args.archs, space_from_dict(read_checkpoint(ckpt)["oneshot"]["space"]))
    start = time.perf_counter()
    report = fidelity(ckpt, args.table, args.num_subnets, archs=archs, seed=args.seed, metric=args.metric, runs_field=args.runs_field,
                      top_fraction=args.top_fraction, resamples=args.resamples, confidence=args.confidence,
                      calib_batches=args.calib_batches, calib_batch_size=args.calib_batch_size,
                      batch_size=args.batch_size, data={"path": args.data_path} if args.data_path else None,
                      device=args.device, progress=not args.no_progress, overwrite=args.overwrite)
    m, ceiling = report["metrics"], report["ceiling"]
    conf = f"{report['confidence']:.0%}"
    print(f"{report['n']} subnets of {report['space']} vs {report['table']} ({report['metric']}), "
          f"{time.perf_counter() - start:.1f} s; {conf} bootstrap intervals over {report['resamples']} resamples:")
    for name, label in (("kendall_tau", "Kendall tau"), ("spearman", "Spearman"),
                        ("precision_at_top", f"precision@top{report['top_fraction']:.0%}"),
                        ("regret_top1", "regret top-1"), ("regret_top5", "regret top-5")):
        lo, hi = m[name]["ci"]
        print(f"  {label:18s} {m[name]['value']:8.3f}  [{lo:.3f}, {hi:.3f}]")
    if ceiling["table"]["pairs"]:
        print(f"  ceiling (table seed-to-seed tau) {ceiling['table']['mean']:.3f} over {ceiling['table']['n']} "
              f"networks, {ceiling['subnets']['mean']:.3f} over these subnets; against the mean of "
              f"{ceiling['table'].get('seeds', '?')} runs about {ceiling['table'].get('of_mean', float('nan')):.3f}")
    print(f"report: {ckpt.parent / (FIDELITY_NAME + '.md')}")
    return 0
