"""Training and evaluation cost, measured side by side in one run on the digits default (mbv3_tiny, 16 px).

(a) supernet single-path train step / extracted standalone train step, same arch and batch   (target <= 1.15)
(b) one `fair` step of m paths / m single-path steps of the same paths, both through Lightning (target <= 1.05)
(c) share of per-subnet evaluation time spent in BN recalibration at the default K, and its holdout accuracy
    against K = infinity (statistics of the whole training split in one batch)     (target <= 15%, <= 0.2 points)
(d) subnets evaluated per minute at the default settings
plus the accuracy-vs-K curve from which the default K was chosen.

Run: python benchmarks/bench_training.py [--checkpoint checkpoints/digits/supernet.ckpt] [--threads 2]
(trains the digits recipe first when the checkpoint is missing). `--checkpoint` may be any recipe's supernet;
`--only c --no-curve` then times (c) alone (the K curve's K=inf pass over a CIFAR-size train split takes
longer than 30 minutes on one CPU thread). `--ref-k N` replaces K=inf by N calibration batches (streamed, so a
CIFAR-size split fits in memory; N * 128 >= the train split covers all of it), and with `--no-curve` (c) still
compares its accuracy against that reference; `--max-eval-samples all` scores on the whole holdout split.

(c) depends on the holdout size: on digits (287 holdout images) recalibration is 65-67% of evaluation time, which
misses the target. On CIFAR-10 (the recipe's 5,000-image holdout at 32 px, mbv3_tiny trained 6 epochs on 10,000
images from the shared JPEG tree, 10 subnets, 1 thread) it was 10.1%: 789 ms recalibration + 7,005 ms scoring per
subnet. K=inf accuracy was not measured there.

On CIFAR-10 with the macro supernet of recipes/macro_cifar10.yaml (CPU scale: trained 3 epochs on 5,000 training
images; holdout accuracies are ~31%, a weakly trained supernet), the whole 5,000-image holdout split, 6 subnets
(seed 0), 1 thread, machine load 4-5 on 2 cores; reference K=40 x 128 = 5,120 draws over the run's whole 5,000-image
training split (streamed in batches of 128: one 5,000-image batch would need several GB of activations):
    --only c --no-curve --ref-k 40 --max-eval-samples all --subnets 6   (two runs)
    K=4 x 128 (default): recalibration 1,809 / 1,967 ms + scoring 14,873 / 15,084 ms per subnet: 10.8% / 11.5%
    (target <= 10%: missed); mean holdout accuracy 30.92% vs 31.00% at the reference: -0.08 points (target within
    0.2: met); per-subnet |difference| mean 0.14, max 0.34 points.
    --only c --ref-k 40 --seeds 1 (K curve, 1 calibration seed):
    K       1      2      4      8    ref (40)
    acc  30.50  30.63  30.92  31.08  31.00 %      mean |acc - acc(ref)| 0.51 / 0.36 / 0.14 / 0.20 / 0 points
    Recalibration costs ~1.27x scoring per image (train-mode batch norm computes the batch statistics), so the
    share is about 1.27 * K * 128 / 5,000; at K=4 it is above 10%.
    --only c --no-curve --ref-k 40 --calib-batches 3 ...: K=3 x 128: recalibration 1,407 ms + scoring 15,540 ms:
    8.3% (met); mean accuracy 30.93% vs 31.00%: -0.06 points (met), per-subnet |difference| mean 0.18, max 0.56.
    6 subnets of a weak supernet: these differences are small against the spread between calibration sets (per
    subnet 0.51 / 0.36 / 0.14 points from the reference at K = 1 / 2 / 4 in the K curve); more subnets and seeds
    would be needed to rank K=3 against K=4. (All of the above: plain random calibration draws, now `--random`.)

Class-balanced calibration draws (the default since 2026-12-01; `--random` gives the plain draws). Measured with
more subnets and seeds on the 6-epoch macro supernet of the recipe (benchmarks/bench_fidelity_settings.py fair_6),
--only c --ks K --seeds 3 --ref-k 40 --max-eval-samples all --subnets 12 --calib-batches K, 1 thread, 1-2 other
jobs on the machine; reference 37.14% mean holdout accuracy:
    draw      K  images  mean acc (diff)    mean |acc - ref|  tau vs ref   (c) share, seed 0   (c) acc diff
    random    2   256    36.83% (-0.31)     0.36 pts          0.768
    random    3   384    36.90% (-0.24)     0.31 pts          0.768        8.0%               -0.21 points
    random    4   512    36.94% (-0.20)     0.27 pts          0.752
    balanced  3   384    37.03% (-0.11)     0.22 pts          0.856        7.9%               +0.00 points
    balanced  4   512    37.02% (-0.12)     0.20 pts          0.855        10.7%              -0.09 points
Random draws score systematically low and less so as K grows: a subnet scored with noisy statistics loses
accuracy on average, and part of that noise is how many images of each class a draw holds. Balanced draws
remove that part: K=3 balanced is as close to the reference as K=4 balanced and closer than K=4 random, at 7.9%
of the evaluation time (1,326 ms recalibration + 15,362 ms scoring per subnet). Target (<= 10% at within 0.2
points of the whole training split): met at the default K=3.
Digits supernet (checkpoints/digits, retrained 2026-12-01), --only c --ks 1,2,3,4,8 --seeds 3, 40 subnets,
mean |acc - acc(K=inf)| / tau vs K=inf:
    K          1            2            3            4            8
    random     0.85 / 0.690 0.60 / 0.765 0.35 / 0.860 0.33 / 0.852 0.16 / 0.913
    balanced   0.32 / 0.834 0.27 / 0.877 0.23 / 0.896 0.20 / 0.897 0.06 / 0.971
    mean acc diff at K=3: random -0.20, balanced -0.01 points.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from oneshot.console import quiet_lightning  # noqa: E402
from oneshot.score.bn import DEFAULT_CALIB_BATCH_SIZE, DEFAULT_CALIB_BATCHES, CalibrationSet, recalibrate_bn  # noqa: E402
from oneshot.training.checkpoint import load_supernet  # noqa: E402
from oneshot.data import datamodule_from_info  # noqa: E402
from oneshot.score.evaluate import HoldoutSet, evaluate, sample_archs  # noqa: E402
from oneshot.recipe import load_recipe  # noqa: E402
from oneshot.training.path_samplers import FairSampler, PathSampler  # noqa: E402
from oneshot.training.module import SupernetModule  # noqa: E402
from oneshot.training.trainer import checkpoint_path, train  # noqa: E402
from supernets import create_supernet, extract  # noqa: E402

warnings.filterwarnings("ignore", message=".*(val_dataloader|LeafSpec|log_every_n_steps).*")


# With one torch thread all compute runs on the calling thread, so its CPU time measures the work without the time
# the process waits while other processes use the cores; with more threads wall time is used.
CLOCK = time.perf_counter
BALANCED: bool | None = None  # calibration draws: the product's default (class-balanced); --random: plain random


def clock() -> float:
    return CLOCK()


def _median_time(fn, reps: int) -> float:
    fn()  # warm-up (allocator, oneDNN primitive caches)
    times = []
    for _ in range(reps):
        t = clock()
        fn()
        times.append(clock() - t)
    return float(np.median(times))


def bench_a(x: torch.Tensor, y: torch.Tensor, reps: int) -> None:
    torch.manual_seed(0)
    supernet = create_supernet("mbv3_tiny", in_chans=1).to(memory_format=torch.channels_last)
    arch = sample_archs(supernet.space, 1, seed=11)[0]
    sub = extract(supernet, arch).train().to(memory_format=torch.channels_last)
    supernet.train()
    x = x.contiguous(memory_format=torch.channels_last)
    opt_super = torch.optim.SGD(supernet.parameters(), lr=1e-3, momentum=0.9)
    opt_sub = torch.optim.SGD(sub.parameters(), lr=1e-3, momentum=0.9)

    def step_super() -> None:
        opt_super.zero_grad(set_to_none=True)
        F.cross_entropy(supernet(x, arch), y).backward()
        opt_super.step()

    def step_sub() -> None:
        opt_sub.zero_grad(set_to_none=True)
        F.cross_entropy(sub(x), y).backward()
        opt_sub.step()

    t_super, t_sub = [], []
    for _ in range(3):  # interleaved rounds, so load from other processes hits both alike
        t_super.append(_median_time(step_super, reps))
        t_sub.append(_median_time(step_sub, reps))
    ts, tb = min(t_super), min(t_sub)
    print(f"(a) arch {arch}, batch {tuple(x.shape)}")
    print(f"    supernet path step {ts * 1e3:.1f} ms, standalone step {tb * 1e3:.1f} ms: ratio {ts / tb:.3f} "
          f"(target <= 1.15)")


class _Unrolled(PathSampler):
    """The fair sampler's paths one per step: step k*m + j trains path j of fair step k."""

    name = "unrolled-fair"

    def __init__(self, fair: FairSampler) -> None:
        super().__init__(fair.space, fair.seed)
        self.fair = fair

    def paths(self, step: int) -> list:
        k, j = divmod(step, self.fair.m)
        return [self.fair.paths(k)[j]]


class _StepTimer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        self._t = clock()

    def on_train_batch_end(self, *args) -> None:
        self.times.append(clock() - self._t)


def bench_b(dm, steps: int, rounds: int = 3) -> None:
    def fit(sampler_of, n_steps: int) -> list[float]:
        torch.manual_seed(0)
        supernet = create_supernet("mbv3_tiny", in_chans=1)
        timer = _StepTimer()
        module = SupernetModule(supernet, sampler_of(supernet.space), optimizer={"name": "SGD", "lr": 0.05,
                                "momentum": 0.9}, grad_clip=5.0, channels_last=True)
        with quiet_lightning():  # the banners would repeat for every one of the fits
            L.Trainer(accelerator="cpu", max_steps=n_steps, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, callbacks=[timer],
                      num_sanity_val_steps=0).fit(module, datamodule=dm)
        return timer.times[1:]  # the first step pays one-off setup

    m = FairSampler(create_supernet("mbv3_tiny", in_chans=1).space).m
    fair_total, single_total = [], []
    for _ in range(rounds):  # interleaved rounds; the faster round of each counts (other processes share the CPU)
        fair_times = fit(lambda space: FairSampler(space, seed=0), steps + 1)
        single = fit(lambda space: _Unrolled(FairSampler(space, seed=0)), m * (steps + 1))
        # same paths: fair step k trains fair.paths(k) at once; unrolled steps k*m .. k*m+m-1 one by one
        fair_total.append(float(np.sum(fair_times[: steps - 1])))
        single_total.append(float(np.sum(single[m - 1: m * steps - 1])))
    f, s1 = min(fair_total), min(single_total)
    print(f"(b) {steps - 1} fair steps of m={m} paths: {f / (steps - 1) * 1e3:.0f} ms/step; the same paths as "
          f"{m * (steps - 1)} single-path steps: {s1 / (steps - 1) * 1e3:.0f} ms per {m}")
    print(f"    ratio {f / s1:.3f} (target <= 1.05)")


def reference_set(dm, ref_k: int | None, batch_size: int) -> CalibrationSet:
    """K=inf: the whole train split as one batch; or `ref_k` batches of `batch_size` (exact cumulative average)."""
    if ref_k is None:
        return CalibrationSet(dm.train_set, 1, len(dm.train_set))
    return CalibrationSet(dm.train_set, ref_k, batch_size)


def k_curve(supernet, dm, archs, ks: list[int], batch_size: int, seeds: int,
            ref_k: int | None = None) -> dict[object, np.ndarray]:
    """Holdout accuracy per (K, calibration seed, subnet), and calibration seconds per subnet, as `evaluate` runs."""
    fmt = torch.channels_last
    supernet.to(memory_format=fmt)
    holdout = HoldoutSet(dm, 128, memory_format=fmt)
    out: dict[object, np.ndarray] = {}
    for k in ks + ["inf"]:
        accs, calib_s = [], 0.0
        for seed in range(1 if k == "inf" else seeds):
            cset = (reference_set(dm, ref_k, batch_size) if k == "inf"
                    else CalibrationSet(dm.train_set, k, batch_size, seed=seed, balanced=BALANCED)).to("cpu", fmt)
            row = []
            for arch in archs:
                t = clock()
                recalibrate_bn(supernet, cset, arch)
                calib_s += clock() - t
                row.append(holdout.score(supernet, arch)[0])
            accs.append(row)
        out[k] = np.array(accs)  # (seeds, subnets)
        out[(k, "s")] = np.array(calib_s / len(archs) / len(accs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="digits supernet (default: the digits recipe's checkpoint)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (on a shared machine 1 times reliably)")
    ap.add_argument("--subnets", type=int, default=40, help="subnets for (c), (d) and the K curve")
    ap.add_argument("--reps", type=int, default=10, help="timed repetitions per round in (a)")
    ap.add_argument("--steps", type=int, default=12, help="fair steps timed in (b)")
    ap.add_argument("--only", default="abcd", help="parts to run: a, b, c (with the K curve) and/or d")
    ap.add_argument("--seeds", type=int, default=3, help="calibration subsets per K in the K curve")
    ap.add_argument("--ks", default="1,2,4,8", help="K values of the K curve, comma-separated")
    ap.add_argument("--random", action="store_true",
                    help="plain random calibration draws instead of the default class-balanced ones")
    ap.add_argument("--no-curve", action="store_true",
                    help="skip the K curve and K=inf (slow on CIFAR-size splits): (c) then reports time shares only, "
                         "and with --ref-k its accuracy against that reference")
    ap.add_argument("--ref-k", type=int, default=None,
                    help="reference K (batches of the calibration size) instead of K=inf as one batch of the split")
    ap.add_argument("--calib-batches", type=int, default=DEFAULT_CALIB_BATCHES,
                    help="K timed in (c) and (d) (default: the product's default K)")
    ap.add_argument("--max-eval-samples", default=None,
                    help="holdout images to score on ('all' for the whole holdout split; default: the checkpoint's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    global CLOCK, BALANCED
    BALANCED = False if args.random else None
    CLOCK = time.thread_time if args.threads == 1 else time.perf_counter
    print(f"torch {torch.__version__}, {args.threads} thread(s), OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
          f"timing {'CPU time of the main thread' if args.threads == 1 else 'wall time'}")

    recipe = load_recipe("digits", {"train.threads": args.threads})
    ckpt = args.checkpoint or str(checkpoint_path(recipe))
    if not os.path.isfile(ckpt):
        print(f"training the digits recipe first ({ckpt} is missing) ...")
        ckpt = str(train(recipe, progress=False))
    supernet, info = load_supernet(ckpt)
    holdout = {} if args.max_eval_samples is None else {
        "max_eval_samples": None if args.max_eval_samples == "all" else int(args.max_eval_samples)}
    dm = datamodule_from_info(info["data"], **holdout)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))

    if "a" in args.only:
        bench_a(x, y, args.reps)
    if "b" in args.only:
        bench_b(datamodule_from_info(info["data"], augment=True), args.steps)
    if not set("cd") & set(args.only):
        return

    archs = sample_archs(supernet.space, args.subnets, seed=0)
    if "c" in args.only:
        inf = None if args.no_curve else print_k_curve(supernet, dm, archs, args)
        if inf is None and args.ref_k is not None:
            inf = reference_accuracy(supernet, dm, archs, args.ref_k)
        bench_c(supernet, dm, archs, inf, args.calib_batches)
    if "d" in args.only:
        bench_d(supernet, dm, archs, args.threads, args.calib_batches)


def print_k_curve(supernet, dm, archs, args) -> np.ndarray:
    """The accuracy-vs-K table; returns the K=inf accuracies per subnet."""
    ks = [int(k) for k in args.ks.split(",")]
    curve = k_curve(supernet, dm, archs, ks, DEFAULT_CALIB_BATCH_SIZE, args.seeds, args.ref_k)
    inf = curve["inf"][0]
    print(f"\nK curve: {args.subnets} subnets x {args.seeds} calibration seeds, batches of {DEFAULT_CALIB_BATCH_SIZE}, "
          f"holdout of {len(dm.holdout_set)} images; K=inf: {_ref_words(dm, args.ref_k)}")
    print("    K  images  mean acc  mean |acc - acc(inf)|  rank corr.  calib ms/subnet")
    from scipy.stats import kendalltau

    for k in ks + ["inf"]:
        acc = curve[k]
        n_img = (len(dm.train_set) if args.ref_k is None else args.ref_k * DEFAULT_CALIB_BATCH_SIZE) if k == "inf" \
            else k * DEFAULT_CALIB_BATCH_SIZE
        tau = np.mean([kendalltau(row, inf).statistic for row in acc])
        print(f"  {k!s:>3}  {n_img:6d}  {100 * acc.mean():7.2f}%  {100 * np.abs(acc - inf).mean():12.2f} pts  "
              f"{tau:10.3f}  {1e3 * float(curve[(k, 's')]):10.0f}")

    return inf


def _ref_words(dm, ref_k: int | None) -> str:
    if ref_k is None:
        return f"the whole train split ({len(dm.train_set)} images) as one batch"
    return (f"K={ref_k} batches of {DEFAULT_CALIB_BATCH_SIZE} ({ref_k * DEFAULT_CALIB_BATCH_SIZE} draws over the "
            f"{len(dm.train_set)}-image train split)")


def reference_accuracy(supernet, dm, archs, ref_k: int) -> np.ndarray:
    """Holdout accuracy per subnet with statistics from the reference calibration (`reference_set`)."""
    fmt = torch.channels_last
    supernet.to(memory_format=fmt)
    holdout = HoldoutSet(dm, 128, memory_format=fmt)
    cset = reference_set(dm, ref_k, DEFAULT_CALIB_BATCH_SIZE).to("cpu", fmt)
    accs = []
    for arch in archs:
        recalibrate_bn(supernet, cset, arch)
        accs.append(holdout.score(supernet, arch)[0])
    print(f"\nreference: {_ref_words(dm, ref_k)}, mean holdout accuracy {100 * np.mean(accs):.2f}%")
    return np.array(accs)


def bench_c(supernet, dm, archs, inf, k: int = DEFAULT_CALIB_BATCHES) -> None:
    """(c) the share as `evaluate` spends it, timed per phase on the same subnets and cached data."""
    supernet.to(memory_format=torch.channels_last)
    holdout = HoldoutSet(dm, 128, memory_format=torch.channels_last)
    cset = CalibrationSet(dm.train_set, k, DEFAULT_CALIB_BATCH_SIZE, balanced=BALANCED).to("cpu", torch.channels_last)
    t_calib = t_score = 0.0
    accs = []
    for arch in archs:
        t0 = clock()
        recalibrate_bn(supernet, cset, arch)
        t1 = clock()
        accs.append(holdout.score(supernet, arch)[0])
        t_score += clock() - t1
        t_calib += t1 - t0
    acc = np.array(accs)
    print(f"\n(c) K={k} x {DEFAULT_CALIB_BATCH_SIZE}: BN recalibration "
          f"{1e3 * t_calib / len(archs):.0f} ms + holdout scoring {1e3 * t_score / len(archs):.0f} ms per subnet: "
          f"recalibration is {100 * t_calib / (t_calib + t_score):.1f}% (target <= 10% on CIFAR-size data)")
    if inf is not None:
        print(f"    mean holdout accuracy {100 * acc.mean():.2f}% vs {100 * inf.mean():.2f}% at the reference: "
              f"{100 * (acc.mean() - inf.mean()):+.2f} points (target within 0.2); per subnet |difference| "
              f"mean {100 * np.abs(acc - inf).mean():.2f}, max {100 * np.abs(acc - inf).max():.2f} points")
    print(f"    holdout {len(dm.holdout_set)} images, calibration {k * DEFAULT_CALIB_BATCH_SIZE} "
          f"images, {len(archs)} subnets, mean holdout accuracy {100 * acc.mean():.2f}%")


def bench_d(supernet, dm, archs, threads: int, k: int = DEFAULT_CALIB_BATCHES) -> None:
    """(d) the public function end to end, as wall time (what a user waits)."""
    t = time.perf_counter()
    c0 = clock()
    records = evaluate(supernet, archs, data=dm, calib_batches=k,
                       calib_batch_size=DEFAULT_CALIB_BATCH_SIZE, progress=False)
    wall, cpu = time.perf_counter() - t, clock() - c0
    print(f"(d) evaluate(): {len(records) / wall * 60:.0f} subnets per minute of wall time "
          f"({len(records) / cpu * 60:.0f} per minute of {'CPU' if CLOCK is not time.perf_counter else 'wall'} time), "
          f"holdout {records[0]['holdout_size']} images, {threads} thread(s)")

if __name__ == "__main__":
    main()
