"""Which training and scoring settings make the macro supernet rank like standalone training? Measured.

Every setting trains `recipes/macro_cifar10.yaml` (CPU scale unless overridden) with one change and is judged by
`oneshot.score.fidelity.fidelity` on the SAME FLOPs-stratified subnets of NAS-Bench-Macro (seed 0), so the rows
differ only by the setting. Compute is counted in path-steps (one forward/backward of one subnet on one batch):

- `fair_E`:           FairNAS sampling (3 paths per step), E epochs: the recipe's default, 3 x E x steps/epoch;
- `fewshot_layer0`:   fair_3, then the 3 copies split on `layer0` fine-tuned 1 epoch each (`train.few_shot`);
                      its one-shot phase is `fair_3`, judged for free; equal compute: `fair_6`;
- `fewshot_layer0_lr0.1`: the same from the same fair_3 checkpoint, the few-shot phase at a tenth of the peak LR
                      (`train.few_shot.lr_scale: 0.1`);
- `uniform_9`:        one uniform random path per step, 9 epochs: the path-steps of fair_3;
- `sandwich_3`:       largest + smallest + 1 random path per step (`num_random=1`), 3 epochs: fair_3's path-steps;
- `fair_3, K=k`:      fair_3 scored with k calibration batches re-estimating BN statistics (the recipe's K=2 is
                      the plain `fair_3` row); `K=off` scores with the statistics training left in the supernet.

Each row: training wall time, path-steps, Kendall tau and top-1 regret (table accuracy points) with bootstrap 95%
intervals over the judged subnets. Rows are appended to `<out>/settings.jsonl` as they finish (a rerun skips
finished rows; trainings and evaluations are cached by the product itself).

Measured 2026-12-01 (recipes/macro_cifar10.yaml with train.epochs=3 as the base, CPU scale: 5,000 training images,
batch 128, 2 torch threads on 2 cores beside 2-3 other jobs, load average 3-5; ONE training seed per row; 100
FLOPs-stratified subnets, the same for every row; 1,000 bootstrap resamples; BN calibration with plain random
draws, before class-balanced draws became the default: a rerun now uses those). Training seconds: fair_3 is the
one-shot phase of the few-shot run (not timed apart; ~half of fair_6); the few-shot run's 2,316 s include ~10
minutes during which the process was stopped for other timings.

    | setting | training (s) | path-steps | Kendall tau [95% CI] | top-1 regret [95% CI] |
    |---|---:|---:|---|---|
    | fair_3 | 0 | 351 | 0.383 [0.254, 0.508] | 0.90 [0.00, 4.48] |
    | fewshot_layer0 | 2316 | 702 | 0.300 [0.161, 0.440] | 1.27 [0.12, 1.73] |
    | fair_3, K=1 | 0 |  | 0.322 [0.186, 0.458] | 0.90 [0.66, 5.42] |
    | fair_3, K=8 | 0 |  | 0.394 [0.257, 0.523] | 1.83 [0.00, 4.48] |
    | fair_3, K=off | 0 |  | 0.371 [0.255, 0.473] | 0.27 [0.03, 2.08] |
    | fair_6 | 1030 | 702 | 0.461 [0.349, 0.571] | 1.47 [0.27, 1.83] |
    | uniform_9 | 523 | 351 | 0.439 [0.315, 0.542] | 0.29 [0.05, 1.27] |
    | sandwich_3 | 441 | 351 | 0.396 [0.274, 0.512] | 0.00 [0.00, 0.59] |
    | fewshot_layer0_lr0.1 | 1068 | 702 | 0.336 [0.199, 0.467] | 0.66 [0.00, 2.12] |

    Kendall tau minus fair_3's, paired over the same 100 subnets (bootstrap 95% interval):
      fewshot_layer0     -0.083 [-0.222, +0.062]
      fair_3, K=1        -0.061 [-0.118, -0.004]
      fair_3, K=8        +0.010 [-0.045, +0.068]
      fair_6             +0.078 [-0.036, +0.200]
      uniform_9          +0.056 [-0.079, +0.191]
      sandwich_3         +0.013 [-0.145, +0.169]
      fewshot_layer0_lr0.1 -0.047 [-0.174, +0.083]

    Kendall tau minus fair_6's, paired over the same 100 subnets (bootstrap 95% interval):
      fair_3             -0.078 [-0.200, +0.036]
      fewshot_layer0     -0.161 [-0.311, -0.009]
      fair_3, K=1        -0.140 [-0.265, -0.018]
      fair_3, K=8        -0.068 [-0.199, +0.049]
      uniform_9          -0.022 [-0.159, +0.108]
      sandwich_3         -0.066 [-0.215, +0.070]
      fewshot_layer0_lr0.1 -0.125 [-0.249, -0.011]

    Within each copy's own subnets (layer0 = identity / k3 / k5: 39 / 35 / 26 of the 100), Kendall tau:
      fair_3 0.455 / 0.201 / 0.334; fewshot_layer0 0.267 / 0.282 / 0.224; fewshot_layer0_lr0.1 0.378 / 0.141 / 0.277;
      fair_6 0.351 / 0.429 / 0.388. The few-shot phase does not lift the ranking within a copy either, so the loss
      is not only the copies' accuracy offsets against each other. Mean holdout estimates per copy rose over
      fair_3's by +0.02 to +0.05 (few-shot) and +0.07 (fair_6).

Reading: training length helped most (fair_6); at equal path-steps uniform and sandwich sampling ranked as well as
fair (within noise); BN recalibration with K=1 is worse than K=2, K=8 no better, none at all about as good for
this fair-sampled supernet; few-shot lost to one-shot at equal compute (-0.16, interval excluding 0): at this
scale every weight is undertrained, the copies each get a third of the extra epochs (39 steps each), and the
few-shot phase restarts the learning-rate schedule from its peak on annealed weights; restarting from a tenth of
the peak (fewshot_layer0_lr0.1, the fewshot_layer0 run's fair_3 phase reused; its training seconds are the
few-shot phase alone, beside 2-3 other jobs) lost less (-0.125 against fair_6; +0.036 over the full-LR few-shot,
within noise) but still lost, and both few-shot rows rank below the fair_3 supernet they start from.

Run: python benchmarks/bench_fidelity_settings.py --data /path/to/cifar10 --table nas-bench-macro_cifar10.json \
         [--subnets 100] [--threads 2] [--only fewshot_layer0,bn] [--out /tmp/fidelity_settings]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import numpy as np  # noqa: E402
import torch  # noqa: E402

from oneshot.recipe import load_recipe, parse_overrides  # noqa: E402
from oneshot.score.fidelity import fidelity, ranking_metrics, table_subnets  # noqa: E402
from oneshot.score.tabular import TabularBenchmark  # noqa: E402
from oneshot.training.few_shot import oneshot_checkpoint_path  # noqa: E402
from oneshot.training.trainer import train  # noqa: E402
from supernets import Arch, get_space  # noqa: E402

TRAINED = {  # name -> (recipe overrides, path-steps per step x epochs, in units of steps per epoch)
    "fewshot_layer0": ({"train.few_shot": {"split": "layer0", "epochs": 1}}, 3 * 3 + 3 * 3),
    "fewshot_layer0_lr0.1": ({"train.few_shot": {"split": "layer0", "epochs": 1, "lr_scale": 0.1}}, 3 * 3 + 3 * 3),
    "fair_6": ({"train.epochs": 6}, 3 * 6),
    "uniform_9": ({"train.sampler": "uniform", "train.epochs": 9}, 1 * 9),
    "sandwich_3": ({"train.sampler": "sandwich", "train.sampler_args": {"num_random": 1}}, 3 * 3),
}
BN_K = (1, 8)


def _row(name: str, report: dict[str, Any], seconds: float | None, path_steps: int | None) -> dict[str, Any]:
    m = report["metrics"]
    return {"setting": name, "train_seconds": seconds, "path_steps": path_steps, "n": report["n"],
            **{k: m[k] for k in ("kendall_tau", "spearman", "regret_top1", "regret_top5")},
            "estimates": report.get("estimates") or {r["arch"]: r["holdout_acc"] for r in report["subnets"]}}


def paired_differences(rows: list[dict[str, Any]], table: TabularBenchmark, base: str = "fair_3",
                       resamples: int = 2000) -> None:
    """Kendall tau of each setting minus `base`'s on the same subnets, with a paired bootstrap 95% interval."""
    from predictors import kendall_tau
    from predictors.intervals import bootstrap_interval

    by = {r["setting"]: r for r in rows if r.get("estimates")}
    if base not in by:
        print(f"(no paired differences: {base} has no stored estimates)")
        return
    archs = sorted(by[base]["estimates"])
    truth = np.array([table.value(Arch.from_str(table.space, a), "mean_acc") for a in archs])
    ref = np.array([by[base]["estimates"][a] for a in archs])
    print(f"\nKendall tau minus {base}'s, paired over the same {len(archs)} subnets (bootstrap 95% interval):")
    for name, r in by.items():
        if name == base or sorted(r["estimates"]) != archs:
            continue
        est = np.array([r["estimates"][a] for a in archs])

        def diff(e: np.ndarray, b: np.ndarray, t: np.ndarray) -> float:
            return kendall_tau(t, e) - kendall_tau(t, b)

        lo, hi = bootstrap_interval(diff, est, ref, truth, n_resamples=resamples, seed=0)
        print(f"  {name:18s} {diff(est, ref, truth):+.3f} [{lo:+.3f}, {hi:+.3f}]")


def within_copies(rows: list[dict[str, Any]], table: TabularBenchmark, split: str = "layer0") -> None:
    """Kendall tau and mean estimate within each choice of `split` (a few-shot copy's own subnets), per setting."""
    from predictors import kendall_tau

    print(f"\nWithin each choice of {split} (a few-shot copy's subnets): Kendall tau, mean estimate")
    for r in rows:
        if not r.get("estimates"):
            continue
        archs = [Arch.from_str(table.space, a) for a in sorted(r["estimates"])]
        est = np.array([r["estimates"][str(a)] for a in archs])
        truth = np.array([table.value(a, "mean_acc") for a in archs])
        choice = np.array([str(a[split]) for a in archs])
        cells = [f"{c}: n={int((choice == c).sum())} tau {kendall_tau(truth[choice == c], est[choice == c]):.3f} "
                 f"est {est[choice == c].mean():.3f}" for c in sorted(set(choice))]
        print(f"  {r['setting']:22s} " + " | ".join(cells))


def _no_recalibration(ckpt: Path, table: TabularBenchmark, n: int, batch_size: int) -> dict[str, Any]:
    """fidelity's statistics with BN statistics as training left them (no recalibration), same subnets."""
    from oneshot.data import datamodule_from_info
    from oneshot.score.evaluate import HoldoutSet
    from oneshot.training.checkpoint import load_supernet

    supernet, info = load_supernet(ckpt)
    chosen = table_subnets(table, n, 0)  # the subnets fidelity() judges, so the rows pair up
    holdout = HoldoutSet(datamodule_from_info(info["data"]), batch_size)
    estimate = np.array([holdout.score(supernet, a)[0] for a in chosen])
    truth = np.array([table.value(a, "mean_acc") for a in chosen])
    return {"n": len(chosen), "metrics": ranking_metrics(estimate, truth),
            "estimates": {str(a): float(e) for a, e in zip(chosen, estimate)}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="CIFAR-10 ImageFolder tree (train/, test/)")
    p.add_argument("--table", required=True, help="nas-bench-macro_cifar10.json")
    p.add_argument("--recipe", default="recipes/macro_cifar10.yaml")
    p.add_argument("--subnets", type=int, default=100, help="FLOPs-stratified subnets judged per setting")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="", help="comma-separated settings (fewshot_layer0, fair_6, uniform_9, "
                                              "sandwich_3, fewshot_layer0_lr0.1, bn); default: all, in that "
                                              "order with bn third")
    p.add_argument("--summary", action="store_true", help="print the finished rows and paired differences only")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe overrides (all rows)")
    p.add_argument("--out", default="/tmp/fidelity_settings")
    args = p.parse_args()
    warnings.filterwarnings("ignore", message=".*(val_dataloader|LeafSpec|log_every_n_steps).*")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "settings.jsonl"
    done = {json.loads(line)["setting"] for line in log.read_text().splitlines()} if log.exists() else set()
    base = {"data.path": args.data, "output_dir": str(out), "train.threads": args.threads, "train.epochs": 3,
            **parse_overrides(args.set)}  # the rows are named for a 3-epoch base, whatever the recipe ships
    space = get_space(load_recipe(args.recipe, base).supernet.name)
    table = TabularBenchmark.load(args.table, space)
    fewshot = load_recipe(args.recipe, {**base, "name": "fewshot_layer0", **TRAINED["fewshot_layer0"][0]})
    if args.summary:
        rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        for r in rows:  # rows written before estimates were stored: re-read them from the evaluation caches
            name = r["setting"]
            if r.get("estimates") or name == "fair_3, K=off":
                continue
            k = int(name.split("K=")[1]) if "K=" in name else None
            ckpt = oneshot_checkpoint_path(fewshot) if name.startswith("fair_3") else out / name / "supernet.ckpt"
            rep = fidelity(ckpt, table, r["n"], calib_batches=k, progress=False, write=False)
            r["estimates"] = {x["arch"]: x["holdout_acc"] for x in rep["subnets"]}
        print("| setting | training (s) | path-steps | Kendall tau [95% CI] | top-1 regret [95% CI] |")
        print("|---|---:|---:|---|---|")
        for r in rows:
            t, g = r["kendall_tau"], r["regret_top1"]
            print(f"| {r['setting']} | {r['train_seconds'] or 0:.0f} | {r['path_steps'] or ''} | "
                  f"{t['value']:.3f} [{t['ci'][0]:.3f}, {t['ci'][1]:.3f}] | "
                  f"{g['value']:.2f} [{g['ci'][0]:.2f}, {g['ci'][1]:.2f}] |")
        paired_differences(rows, table)
        paired_differences(rows, table, base="fair_6")  # few-shot against one-shot at equal compute
        within_copies(rows, table)
        return
    order = ["fewshot_layer0", "fair_6", "bn", "uniform_9", "sandwich_3", "fewshot_layer0_lr0.1"]
    wanted = [s for s in order if not args.only or s in args.only.split(",")]

    def record(row: dict[str, Any]) -> None:
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        tau, reg = row["kendall_tau"], row["regret_top1"]
        print(f"{row['setting']:18s} train {row['train_seconds'] or 0:7.0f} s  path-steps {row['path_steps']}  "
              f"tau {tau['value']:.3f} [{tau['ci'][0]:.3f}, {tau['ci'][1]:.3f}]  "
              f"regret@1 {reg['value']:.2f} [{reg['ci'][0]:.2f}, {reg['ci'][1]:.2f}]", flush=True)

    for name in wanted:
        if name == "bn":
            ckpt = oneshot_checkpoint_path(fewshot)
            for k in BN_K:
                if f"fair_3, K={k}" not in done:
                    record(_row(f"fair_3, K={k}", fidelity(ckpt, table, args.subnets, calib_batches=k,
                                                            progress=False, write=False), None, None))
            if "fair_3, K=off" not in done:
                recipe = load_recipe(args.recipe, base)
                record(_row("fair_3, K=off", _no_recalibration(ckpt, table, args.subnets,
                                                               recipe.evaluate.batch_size), None, None))
            continue
        if name in done:
            continue
        overrides, units = TRAINED[name]
        recipe = load_recipe(args.recipe, {**base, "name": name, **overrides})
        steps_per_epoch = min(recipe.data.max_train_samples or 45_000, 45_000) // recipe.data.batch_size
        shared, own = oneshot_checkpoint_path(fewshot), oneshot_checkpoint_path(recipe)
        if name.startswith("fewshot_") and shared.is_file() and not own.exists():  # the same fair_3 phase: reuse it
            own.parent.mkdir(parents=True, exist_ok=True)
            os.link(shared, own)
        start = time.perf_counter()
        ckpt = train(recipe, progress=False)
        seconds = time.perf_counter() - start
        if name == "fewshot_layer0" and "fair_3" not in done:
            phase = time.perf_counter()
            report = fidelity(oneshot_checkpoint_path(fewshot), table, args.subnets, progress=False, write=False)
            print(f"(fair_3 judged in {time.perf_counter() - phase:.0f} s)", flush=True)
            record(_row("fair_3", report, None, 3 * 3 * steps_per_epoch))
        record(_row(name, fidelity(ckpt, table, args.subnets, progress=False, write=False), seconds,
                    units * steps_per_epoch))


if __name__ == "__main__":
    main()
