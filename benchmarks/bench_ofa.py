"""Training and scoring speed side by side with Once-for-All's own code (`pip install --no-deps ofa`).

Both supernets are the MobileNetV3 space of OFA: kernels 3/5/7, expansions 3/4/6, depths 2/3/4 over five stages
(widths 24/40/80/112/160, strides 2/2/2/1/2, SE in stages 2/4/5), 10 classes, 32 px inputs, batch 32, one thread.
The same N random subnets are run on both (our arch mapped to OFA's `set_active_subnet(ks=, e=, d=)`; the script
checks that both extracted networks have the same blocks, kernels and hidden widths). Timed, each an A/B
alternation of single calls so that background load hits both sides alike, medians over the repeats:

(a) train step (forward, backward, SGD step) through the supernet with the subnet active, over the same step on
    the extracted standalone network: for us (`supernet(x, arch)` / `extract(supernet, arch)`) and for OFA
    (`set_active_subnet` / `get_active_subnet(preserve_weight=True)`)               (target: ours <= 1.05)
    "ours, same ops": the same supernet step over our extracted network run with the ops the supernet path uses
    (below), i.e. the overhead of the path itself: slicing, full-size gradients and optimizer updates.
(b) BN recalibration over 10 batches of 32 for one subnet: our `recalibrate_bn(supernet, batches, arch)` against
    OFA's `set_running_statistics` on its supernet with the subnet active (what OFA's validation runs) and on
    its extracted subnet (what its tutorial runs)          (target: ours at least 2x faster than OFA's)

Why our supernet path beats our own extracted network at 32 px: the maps of the last stages are 2x2 and 1x1, and
a tap more than H - 1 from the kernel centre only ever meets zero padding, so the path crops each depthwise
kernel to the taps that reach the map (a 7x7 kernel is 3x3 on a 2x2 map, 1x1 on a 1x1 map), and it runs the
squeeze-excite 1x1 convolutions on their 1x1 map as matrix products (oneDNN's convolution setup dominates there).
Outputs and gradients are unchanged (tests/test_supernets.py). The extracted network keeps plain convolutions,
so its MAC count (`count_cost` = the analytic `cost`) and its ONNX graph stay the conventional ones.

Where the two networks differ (our space cannot express these; all are outside the searched blocks):
- OFA has a fixed first block (3x3 depthwise + 1x1, 16 -> 16 channels, residual) after the stem; ours does not.
- OFA's head is 1x1 conv 160 -> 960 + BN + h-swish, pool, 1x1 conv 960 -> 1280 (no BN) + h-swish, linear; ours is
  1x1 conv 160 -> `head_width` + BN + h-swish, pool, linear (we use head_width=960, OFA's last BN layer, so both
  recalibrate BN layers of the same widths; OFA's extra 960 -> 1280 layer costs it 1.2 M MACs per image).
- OFA's smaller kernels are the centre crop passed through learned 25x25 / 9x9 transform matrices
  (KERNEL_TRANSFORM_MODE=1, its default, kept); ours are the plain centre crop.
- Activations: ours in channels-last (NHWC) memory format, the product's default for training and evaluation
  (`--layout nchw` runs ours in NCHW); OFA's code has no such option and runs NCHW.
- Dropout 0 on both (OFA's default is 0.1). SGD with momentum 0.9, lr 1e-3, for all four networks.
Because of the first two, "forward" (eval-mode forward of each extracted subnet over the same 10 batches) is
printed for both: the compute a recalibration pass cannot avoid.

Timing: CPU time of the main thread (`time.thread_time`), one torch thread, OMP_WAIT_POLICY=PASSIVE. With one
thread all compute runs on the calling thread, so this excludes time spent waiting while other processes hold
the cores; ratios come from interleaved calls. Absolute figures from a shared 2-core machine are inflated (the
machine ran other jobs' trainings: load average 4-5 on 2 cores during these runs).

Measured (torch 2.14.1 CPU, one thread; subnets from seed 0; all four networks freshly initialized):

  run                                   NHWC (default): 8 subnets x 15 reps     NCHW: 4 subnets x 10 reps
  (a) step, supernet / extracted: ratio of the summed per-subnet medians (median ratio within A/B pairs)
      ours (product as shipped)          0.801  (median pair ratio 0.764)         0.727  (0.706)
      ours, same ops (path overhead)     1.062  (1.062)                           1.091  (1.062)
      OFA                                1.086  (1.039)                           1.018  (1.041)
      supernet step, ms: ours / OFA      158 / 432                                240 / 394
  (b) recalibration, 10 x 32, ms
      ours recalibrate_bn                372                                      537
      OFA set_running_statistics         1,571 (supernet), 1,450 (extracted)      1,582, 1,509
      OFA / ours                         4.22x (3.90x)                            2.95x (2.81x)
      eval forward of extracted, ms      ours 346, OFA 1,179                      ours 1,065, OFA 1,142

Before this change (the supernet path ran the full kernel and the SE convolutions like the extracted net), with
the same script's first version, NHWC, 8 subnets x 15 reps: step ratio ours 1.092 vs OFA 1.084 (per-subnet
0.98-1.31: noisy); 2 subnets x 3 reps: recalibration ours 240 ms vs OFA 1,054 ms (4.4x) in NHWC, ours 968 ms vs
OFA 1,214 ms (1.25x) in NCHW. Targets: ratio <= 1.05 is met by the path as shipped (0.73-0.80) because it computes
less than the plain extracted network; the path's own overhead, like for like, is 1.06-1.09, above 1.05: what
remains is inherent to weight sharing (the slices' backward fills full-size zero gradients, and SGD updates the
full shared tensors; torch.profiler on 4 subnets: ~5 ms of slice / copy / zero-fill ops and ~3.5 ms more SGD
update per ~175 ms step). Recalibration is 4.2x faster than OFA's in our default layout and 2.95x in OFA's own
layout (target >= 2x: met in both; in NHWC the change did not move the ratio, within noise; in NCHW it lifted it
from 1.25x). Absolute milliseconds differ between runs with the machine's load; compare ratios.

Re-measured 2026-12-01 on a quieter machine (load average 0.8-1.1: no other job, or one single-threaded job on
the other core), NHWC, 8 subnets x 15 reps, (a) only, ratio of summed medians (median pair ratio):
    run                                          ours          ours, same ops    OFA
    before slicing only the cut dims (1 run)     0.805 (0.793)  1.075 (1.096)     1.030 (1.051)
    after (`_cut` in supernets/mbv3.py), run 1   0.792 (0.794)  1.046 (1.050)     1.036 (1.053)
    after, run 2                                 0.797 (0.795)  1.070 (1.068)     1.052 (1.020)
    after, run 3 (a later session, load 1.0)     0.799 (0.805)  1.095 (1.097)     1.045 (1.019)
    A/B in one process, 6 subnets x 10 reps: new path / old path 0.983 (idle); 0.998 under load 2 and 1.062
    under load 4-5 (noise of that size is why the figures above are from quiet runs)
A dim a subnet takes whole now gets no slice (the slice's backward fills a zero gradient of the full tensor and
copies into it), and squeeze-excite's weights are viewed as matrices before slicing (one slice node per cut dim
instead of four). The path's own overhead is 1.05-1.10 on quiet runs: at the 1.05 target in one run of three, so
not reliably met like for like; as the issue defines the ratio (our extracted network as shipped) it is 0.79-0.80.

Run: PYTHONPATH=. python benchmarks/bench_ofa.py [--subnets 8] [--reps 15] [--layout nhwc|nchw] [--only ab]
The share of evaluation time spent in BN recalibration on CIFAR-size data is measured by bench_training.py (c):
  PYTHONPATH=. python benchmarks/bench_training.py --checkpoint CKPT --only c --no-curve --ref-k 40 \
      --max-eval-samples all --subnets 6
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from oneshot.score.bn import recalibrate_bn  # noqa: E402
from oneshot.score.evaluate import sample_archs  # noqa: E402
from supernets import Arch, create_supernet, extract  # noqa: E402
from supernets.mbv3 import _depthwise  # noqa: E402  (the supernet path's depthwise conv, for the like-for-like row)

BATCH, PIXELS, CLASSES, CALIB_BATCHES = 32, 32, 10, 10
clock = time.thread_time  # CPU time of this thread: see the docstring


def _import_ofa():
    """OFA's supernet and its BN recalibration, or None when the package is not installed."""
    try:
        from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3
        from ofa.imagenet_classification.elastic_nn.utils import set_running_statistics
    except ImportError as e:
        return None, str(e)
    return (OFAMobileNetV3, set_running_statistics), ""


def our_supernet(channels_last: bool):
    """Our mbv3 family configured as OFA's MobileNetV3 space at 32 px (see the docstring for what differs)."""
    net = create_supernet("mbv3", num_classes=CLASSES, image_size=PIXELS, head_width=960,
                          kernels=(3, 5, 7), expands=(3, 4, 6), depths=(2, 3, 4))
    return net.to(memory_format=torch.channels_last) if channels_last else net


def ofa_setting(supernet, arch: Arch) -> dict[str, list[int]]:
    """Our subnet as OFA's `set_active_subnet` arguments: ks and e for all 20 blocks, d per stage."""
    ks, e, d = [], [], []
    for _, blocks in supernet.config.layout(arch):
        d.append(len(blocks))
        padded = blocks + [blocks[-1]] * (4 - len(blocks))  # blocks cut by depth: any value, OFA ignores them
        ks += [int(k) for k, _ in padded]
        e += [int(x) for _, x in padded]
    return {"ks": ks, "e": e, "d": d}


def _same_blocks(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    """Both extracted networks must have the same searched blocks: (kernel, hidden width, out width) per block."""
    a = [(b.conv_dw.kernel_size[0], b.conv_dw.out_channels, b.conv_pwl.out_channels)
         for stage in ours.stages for b in stage]
    b = [(blk.conv.depth_conv.conv.kernel_size[0], blk.conv.depth_conv.conv.out_channels,
          blk.conv.point_linear.conv.out_channels) for blk in theirs.blocks[1:]]
    if a != b:
        raise AssertionError(f"subnet mapping is wrong: ours {a} vs OFA {b}")


class _SameOps(torch.nn.Module):
    """An extracted block's depthwise conv run as the supernet path runs it (kernel cropped to the map), so that
    supernet / extracted compares the path's own overhead, like for like (benchmark only: the product's extracted
    network keeps plain convolutions, so its MAC count and ONNX graph are the conventional ones)."""

    def __init__(self, conv: torch.nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _depthwise(x, self.conv.weight, self.conv.kernel_size[0], self.conv.stride[0])


def _like_supernet(sub: torch.nn.Module) -> torch.nn.Module:
    """A copy of our extracted net whose depthwise convs and squeeze-excite compute as the supernet path does."""
    sub = copy.deepcopy(sub)
    for stage in sub.stages:
        for block in stage:
            block.conv_dw = _SameOps(block.conv_dw)
            if block.se is not None:
                block.se = _LinearSE(block.se)
    return sub


class _LinearSE(torch.nn.Module):
    """timm's SEModule on a 1x1 map computed with matrix products, as the supernet path computes it."""

    def __init__(self, se: torch.nn.Module) -> None:
        super().__init__()
        self.se = se

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fc1, fc2 = self.se.fc1, self.se.fc2
        s = self.se.act(F.linear(x.mean((2, 3)), fc1.weight[:, :, 0, 0], fc1.bias))  # (B, rd)
        return x * self.se.gate(F.linear(s, fc2.weight[:, :, 0, 0], fc2.bias))[:, :, None, None]


def _step_fn(model, x, y, arch=None):
    """One SGD training step (momentum 0.9) of `model` on (x, y); the optimizer holds all its parameters."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(x, arch) if arch is not None else model(x)
        F.cross_entropy(out, y).backward()
        opt.step()

    return step


def _alternate(fns, reps: int) -> np.ndarray:
    """Seconds of each call, (reps, len(fns)): the functions called in turn `reps` times after one warm-up round."""
    for fn in fns:
        fn()
    times = np.zeros((reps, len(fns)))
    for r in range(reps):
        for i, fn in enumerate(fns):
            c = clock()
            fn()
            times[r, i] = clock() - c
    return times


def bench_train(ours, ofa, archs, x, y, x_ours, reps: int) -> None:
    """(a) supernet-path step / extracted step, both sides, the same subnets."""
    rows = []
    for arch in archs:
        ofa.set_active_subnet(**ofa_setting(ours, arch))
        ofa_sub = ofa.get_active_subnet(preserve_weight=True).train()
        our_sub = extract(ours, arch)
        if x_ours.is_contiguous(memory_format=torch.channels_last):
            our_sub = our_sub.to(memory_format=torch.channels_last)
        _same_blocks(our_sub, ofa_sub)
        same_ops = _like_supernet(our_sub)
        with torch.no_grad():  # the like-for-like copy computes the same function
            assert torch.allclose(same_ops.eval()(x_ours), our_sub.eval()(x_ours), atol=1e-5)
        ours.train(), ofa.train(), our_sub.train(), same_ops.train()
        fns = [_step_fn(ours, x_ours, y, arch), _step_fn(our_sub, x_ours, y),
               _step_fn(ofa, x, y), _step_fn(ofa_sub, x, y), _step_fn(same_ops, x_ours, y)]
        rows.append(_alternate(fns, reps))
    raw = np.array(rows)  # (subnets, reps, 5): ours super, ours extracted, OFA super, OFA extracted, ours like-for-like
    t = np.median(raw, axis=1)  # (subnets, 4)
    # a step and the next one see nearly the same background load: the ratio within each pair is the robust figure
    pair = {"ours": np.median(raw[:, :, 0] / raw[:, :, 1], axis=1), "OFA": np.median(raw[:, :, 2] / raw[:, :, 3], axis=1),
            "ours, same ops": np.median(raw[:, :, 0] / raw[:, :, 4], axis=1)}
    print(f"\n(a) train step, batch {BATCH} at {PIXELS} px, {len(archs)} subnets x {reps} alternations")
    print("                    supernet   extracted  ratio of summed medians  median pair ratio per subnet: min/median/max")
    for name, s, e in (("ours", t[:, 0], t[:, 1]), ("OFA", t[:, 2], t[:, 3]), ("ours, same ops", t[:, 0], t[:, 4])):
        r = pair[name]
        print(f"    {name:14s} {1e3 * s.mean():8.1f} ms {1e3 * e.mean():8.1f} ms {s.sum() / e.sum():12.3f}"
              f"            {r.min():.3f} / {np.median(r):.3f} / {r.max():.3f}")
    print(f"    ratio: ours {t[:, 0].sum() / t[:, 1].sum():.3f} (pairs {np.median(pair['ours']):.3f}) vs OFA "
          f"{t[:, 2].sum() / t[:, 3].sum():.3f} (pairs {np.median(pair['OFA']):.3f}) (target: ours <= 1.05); the path's "
          f"own overhead (extracted net run with the same ops): {t[:, 0].sum() / t[:, 4].sum():.3f}")


def bench_recal(ours, ofa, set_running_statistics, archs, reps: int, channels_last: bool) -> None:
    """(b) BN recalibration over 10 batches of 32 for one subnet at a time, ours vs OFA's, interleaved."""
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(BATCH, 3, PIXELS, PIXELS, generator=g) for _ in range(CALIB_BATCHES)]
    loader = [(xb, torch.zeros(BATCH, dtype=torch.long)) for xb in xs]  # OFA's loop unpacks (images, labels)
    ours_batches = [xb.contiguous(memory_format=torch.channels_last) if channels_last else xb for xb in xs]
    rows = []
    for arch in archs:
        ofa.set_active_subnet(**ofa_setting(ours, arch))
        ofa_sub = ofa.get_active_subnet(preserve_weight=True)
        our_sub = extract(ours, arch)
        if channels_last:
            our_sub = our_sub.to(memory_format=torch.channels_last)

        @torch.no_grad()
        def fwd_ours() -> None:
            for xb in ours_batches:
                our_sub.eval()(xb)

        @torch.no_grad()
        def fwd_ofa() -> None:
            for xb in xs:
                ofa_sub.eval()(xb)

        fns = [lambda: recalibrate_bn(ours, ours_batches, arch),
               lambda: set_running_statistics(ofa, loader),
               lambda: set_running_statistics(ofa_sub, loader),
               fwd_ours, fwd_ofa]
        rows.append(np.median(_alternate(fns, reps), axis=0))
    t = 1e3 * np.array(rows)  # (subnets, 5) ms
    print(f"\n(b) BN recalibration, {CALIB_BATCHES} batches of {BATCH} at {PIXELS} px, {len(archs)} subnets x {reps} "
          f"alternations: mean over subnets of the per-subnet medians, ms")
    print(f"    ours, recalibrate_bn(supernet, batches, arch)     {t[:, 0].mean():8.1f}")
    print(f"    OFA, set_running_statistics(supernet)             {t[:, 1].mean():8.1f}   "
          f"OFA / ours {t[:, 1].mean() / t[:, 0].mean():.2f}x (target >= 2x)")
    print(f"    OFA, set_running_statistics(extracted subnet)     {t[:, 2].mean():8.1f}   "
          f"OFA / ours {t[:, 2].mean() / t[:, 0].mean():.2f}x")
    print(f"    eval-mode forward of the extracted subnet, {CALIB_BATCHES} batches: ours {t[:, 3].mean():.1f}, "
          f"OFA {t[:, 4].mean():.1f}; recalibration / forward: ours {t[:, 0].mean() / t[:, 3].mean():.2f}, "
          f"OFA supernet {t[:, 1].mean() / t[:, 4].mean():.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subnets", type=int, default=8, help="random subnets, the same for both sides")
    ap.add_argument("--reps", type=int, default=15, help="timed alternations per subnet")
    ap.add_argument("--layout", choices=["nhwc", "nchw"], default="nhwc", help="our activations' memory format")
    ap.add_argument("--only", default="ab", help="parts to run: a (train step) and/or b (recalibration)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    found, why = _import_ofa()
    if found is None:
        print(f"bench_ofa needs Once-for-All's code: pip install --no-deps ofa ({why})")
        sys.exit(0)
    OFAMobileNetV3, set_running_statistics = found
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    channels_last = args.layout == "nhwc"
    ours = our_supernet(channels_last)
    ofa = OFAMobileNetV3(n_classes=CLASSES, dropout_rate=0.0, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6],
                         depth_list=[2, 3, 4])
    archs = sample_archs(ours.space, args.subnets, seed=args.seed)
    print(f"torch {torch.__version__}, 1 thread, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, timing CPU time "
          f"of the main thread; ours in {args.layout.upper()}, OFA in NCHW; load average {os.getloadavg()[0]:.2f}")
    print(f"parameters: ours {sum(p.numel() for p in ours.parameters()) / 1e6:.2f} M, "
          f"OFA {sum(p.numel() for p in ofa.parameters()) / 1e6:.2f} M; subnets (seed {args.seed}): "
          + ", ".join(str(a) for a in archs[:2]) + (", ..." if len(archs) > 2 else ""))

    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(BATCH, 3, PIXELS, PIXELS, generator=g)
    y = torch.randint(0, CLASSES, (BATCH,), generator=g)
    x_ours = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    if "a" in args.only:
        bench_train(ours, ofa, archs, x, y, x_ours, args.reps)
    if "b" in args.only:
        bench_recal(ours, ofa, set_running_statistics, archs, args.reps, channels_last)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
