"""What `recipes/macro_cifar10.yaml` costs, and how well its supernet ranks NAS-Bench-Macro's networks.

Default (timing): train the recipe's supernet for a few steps and score a few subnets, then extrapolate the wall
time of the recipe's settings (train steps = epochs x floor(train images / batch); evaluation = num_subnets x the
measured seconds per subnet). `--full`: train the recipe to the end and run `oneshot.score.fidelity.fidelity`
against the table (Kendall tau, top-1 regret, with bootstrap intervals).

Run: python benchmarks/bench_fidelity.py --data /path/to/cifar10 --table /path/to/nas-bench-macro_cifar10.json
     [--set train.epochs=5 ...] [--time-steps 8 --time-subnets 4] [--full] [--threads 2] [--out /tmp/bench]

Measured (recipes/macro_cifar10.yaml as shipped then, with 3 epochs (now 6; see bench_fidelity_settings.py), seed 0,
the shared CIFAR-10 JPEG tree, 2 torch threads on 2 CPU cores shared with ~7 other jobs, load average 9-19 during
the runs):

| what                                   | timing mode (load ~9)     | full run (load 13-19)          |
|----------------------------------------|---------------------------|--------------------------------|
| fair training step (3 paths, batch 128) | 12.5 s (median of 8)      | 18.6 s (median of 117); 37 min |
| one subnet scored (2x128 calib, 500)    | 7.4 s (mean of 4)         | 13.0 s (median of 156)         |
| recipe extrapolated / measured          | 24 + 25 = 49 min          | 37 + ~45 = ~80 min             |

Fidelity of that full run against NAS-Bench-Macro (`mean_acc`), on 148 of the 200 FLOPs-stratified subnets (the
fully scored prefix of fidelity's seeded random scoring order, i.e. a uniform random part of the 200; the run was
stopped for time), 1,000 bootstrap resamples: Kendall tau 0.309 [0.207, 0.403], Spearman 0.445 [0.304, 0.566],
precision of the top 10% 0.13 [0.00, 0.40], regret of the supernet's top-1 1.28 points [0.57, 1.72] (it picked
11121021, 91.67%, vs 22222222, 92.95%), of its top-5 0.70 [0.00, 1.46]. The table's own seed-to-seed tau: 0.879
over its 3,969 networks, 0.885 over these 148. Supernet holdout accuracies spanned 16-35% after 3 epochs: a
supernet trained this little ranks coarsely. One training seed only; the full-scale (GPU) setting is not measured.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402

from oneshot.evaluate import evaluate  # noqa: E402
from oneshot.recipe import load_recipe  # noqa: E402
from oneshot.score.fidelity import fidelity  # noqa: E402
from oneshot.training import train  # noqa: E402


class StepTimer(Callback):
    """Wall time of every training step (batch start to batch end, the data loading of that batch included)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._last = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._last = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seconds.append(time.perf_counter() - self._last)


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = yaml.safe_load(value)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="CIFAR-10 ImageFolder tree (train/, test/)")
    p.add_argument("--table", required=True, help="nas-bench-macro_cifar10.json")
    p.add_argument("--recipe", default="recipes/macro_cifar10.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe overrides")
    p.add_argument("--time-steps", type=int, default=8, help="training steps timed (timing mode)")
    p.add_argument("--time-subnets", type=int, default=4, help="subnets scored for timing (timing mode)")
    p.add_argument("--full", action="store_true", help="train the recipe fully and measure fidelity")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="/tmp/bench_fidelity")
    args = p.parse_args()
    warnings.filterwarnings("ignore", message=".*(val_dataloader|LeafSpec|log_every_n_steps).*")

    overrides = {"data.path": args.data, "output_dir": args.out, "train.threads": args.threads, **_overrides(args.set)}
    if not args.full:
        overrides["train.max_steps"] = args.time_steps
        overrides["name"] = "macro_cifar10_timing"
    recipe = load_recipe(args.recipe, overrides)
    ev = recipe.evaluate
    timer = StepTimer()
    start = time.perf_counter()
    ckpt = train(recipe, callbacks=[timer], progress=False)
    train_s = time.perf_counter() - start
    steady = float(np.median(timer.seconds[1:] if len(timer.seconds) > 1 else timer.seconds))
    print(f"training: {len(timer.seconds)} steps in {train_s:.1f} s (setup included); median step {steady:.2f} s "
          f"(batch {recipe.data.batch_size}, {recipe.train.sampler} sampling, {args.threads} threads)", flush=True)

    if args.full:
        start = time.perf_counter()
        report = fidelity(ckpt, args.table, ev.num_subnets, progress=False)
        fid_s = time.perf_counter() - start
        m = report["metrics"]
        print(f"fidelity over {report['n']} subnets in {fid_s:.1f} s:")
        for name in ("kendall_tau", "spearman", "precision_at_top", "regret_top1", "regret_top5"):
            lo, hi = m[name]["ci"]
            print(f"  {name:17s} {m[name]['value']:.3f}  [{lo:.3f}, {hi:.3f}]")
        print(f"  ceiling (seed-to-seed tau of the table) {report['ceiling']['table']['mean']:.3f}")
        return

    start = time.perf_counter()
    records = evaluate(ckpt, num_subnets=args.time_subnets, calib_batches=ev.calib_batches,
                       calib_batch_size=ev.calib_batch_size, batch_size=ev.batch_size, seed=ev.seed, progress=False)
    eval_s = time.perf_counter() - start
    per = float(np.mean([r["calib_seconds"] + r["eval_seconds"] for r in records]))
    info_sizes = records[0]["holdout_size"]
    n_train = min(recipe.data.max_train_samples or 45_000, 45_000)
    steps = recipe.train.epochs * (n_train // recipe.data.batch_size)
    print(f"evaluation: {len(records)} subnets in {eval_s:.1f} s (setup included); {per:.2f} s per subnet "
          f"({ev.calib_batches} x {ev.calib_batch_size} calibration images, {info_sizes} holdout images)")
    print(f"extrapolated for the recipe: training {steps} steps x {steady:.2f} s = {steps * steady / 60:.1f} min; "
          f"evaluation {ev.num_subnets} x {per:.2f} s = {ev.num_subnets * per / 60:.1f} min; "
          f"total {(steps * steady + ev.num_subnets * per) / 60:.1f} min")


if __name__ == "__main__":
    main()
