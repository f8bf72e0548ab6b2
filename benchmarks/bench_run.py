"""Where `oneshot run` spends its time: wall and CPU seconds of each phase of the embedded default (digits).

The run goes into a temporary folder (nothing is reused); each phase is timed around its function, in wall-clock
seconds and in CPU seconds of the process (all its threads). On a machine shared with other jobs the wall time
measures the queue for a core as much as the work, so the CPU time is the figure to compare between runs; on an
idle machine the run's wall time is what a user waits. Target (issue 21): the whole run within 3 minutes on 2
cores.

Measured on the 2-core machine, 2 torch threads (the recipe's default), one run each, seconds:

                with few other jobs (load 1-2)     shared, load 10-12
    phase           wall     cpu                     wall     cpu
    train           64.7    49.7                    138.4    50.8
    evaluate        28.1    27.6                     88.0    30.0
    predict          7.6     7.6                     39.7     8.4
    calibrate        0.0     0.0                        -       -   (off in the default recipe)
    search          17.2    16.8                    108.2    19.0
    extract          0.4     0.4                      2.1     0.5
    retrain         41.0    48.3                    136.9    68.0
    report           0.6     0.6                      3.2     0.7
    total          164.6   154.6                    536.1   180.6

The quiet run (2026-12-07 17:45 UTC, main at ffca04d) is within the 3-minute target with a few seconds of start-up
on top (the imports, about 7 s); the issue measured 3:02 the round before. Under load the wall time is the queue
for a core and means little; the CPU seconds barely move.

What the CPU goes to (measured separately, one thread): retraining the 4 subnets for 8 epochs 41.8 s (the quiet
run's two threads took 41.0 s of wall for it: on networks this small a second intra-op thread buys almost nothing,
so running two subnets at once, one thread each, is where the next minute of this run is);
supernet training 8 epochs of 3 FairNAS paths ~40 s; evaluation 0.32 s a subnet (BN recalibration 60%, holdout
40%); the search's SQLite study about 7 s (Optuna's ORM commits every parameter of every trial: with every subnet
already evaluated, the search takes 10.7 s of CPU in SQLite and 3.6 s in memory).

Knobs measured and kept: retraining for 6 epochs instead of 8 (one thread, same seed) costs the chosen subnet 1.1
points of test accuracy (5 epochs: 0.8, and the weakest extra subnet 3 points); evaluating 50 subnets instead of
100 drops the predictors' cross-validated Kendall tau from about 0.63 to 0.50 (3 seeds); the search finds each
budget's best at query 29-37 of its 45. None of them is free, so the default keeps them; the measured cuts are the
imports (every process) and the latency-budget screening.

Run from the repository root (minutes):
    python benchmarks/bench_run.py [--threads N] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any, Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def timed(name: str, fn: Callable[[Any], str], into: dict[str, dict[str, float]]) -> Callable[[Any], str]:
    """`fn` that records its wall and CPU seconds under `name` in `into`."""

    def run(r: Any) -> str:
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(r)
        finally:
            into[name] = {"wall": time.perf_counter() - w, "cpu": time.process_time() - c}

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the recipe's)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="recipe overrides, as `oneshot run --set`")
    args = ap.parse_args()
    from oneshot.pipeline import phases
    from oneshot.recipe import load_recipe, parse_overrides

    times: dict[str, dict[str, float]] = {}
    for name, fn in list(phases.PHASE_FUNCTIONS.items()):
        phases.PHASE_FUNCTIONS[name] = timed(name, fn, times)
    with tempfile.TemporaryDirectory(prefix="bench_run_") as out:
        extra = [f"train.threads={args.threads}"] if args.threads else []
        recipe = load_recipe("digits", parse_overrides([f"output_dir={out}", *extra, *args.overrides]))
        w, c = time.perf_counter(), time.process_time()
        phases.run_pipeline(recipe, progress=False)
        total = {"wall": time.perf_counter() - w, "cpu": time.process_time() - c}
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; seconds per phase")
    print(f"{'phase':<10}{'wall':>8}{'cpu':>8}")
    for name, t in [*times.items(), ("total", total)]:
        print(f"{name:<10}{t['wall']:8.1f}{t['cpu']:8.1f}")
    print(f"target: total wall <= 180 s on an idle 2-core machine: {'ok' if total['wall'] <= 180 else 'over'}")
    print(json.dumps({k: {kk: round(vv, 2) for kk, vv in v.items()} for k, v in times.items()}))


if __name__ == "__main__":
    main()
