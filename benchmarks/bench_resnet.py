"""The ResNet family's targets (issue 24), measured side by side in one run.

1. Fair sampling on the ResNet spaces: per step, how evenly the `fair` path sampler spreads each decision's
   choices over its paths (count spread = most - fewest activations of one decision's choices in one step; the
   target is 0 on unconditional decisions and <= 1 on conditional ones, the blocks beyond a stage's minimum depth).
   Shown for the default sampler and for `exact=True` (paths per step = lcm of the choice counts), over many steps.
2. `supernets.check` on every shipped family's test variant and on the ResNet family: seconds per family and in
   total (target: under 30 s in total on 2 cores), with the CPU time of this process and of the fresh process the
   fingerprint check starts, so load from other processes on a shared machine can be told apart.
3. The largest resnet50 subnet against torchvision's resnet50: analytic cost and the counter's, at 224 px.

Measured (one run, 2 shared CPU cores at load average 12-13.5, 2 torch threads, torch 2.14.1, 200 sampler steps):

| space        | choice counts | sampler | paths/step | worst spread, unconditional | worst spread, conditional |
|--------------|---------------|---------|-----------:|----------------------------:|--------------------------:|
| resnet_test  | 2 and 3       | default |          3 |                           1 |                         1 |
| resnet_test  | 2 and 3       | exact   |          6 |                           0 |                         0 |
| resnet_cifar | 3             | either  |          3 |                           0 |                         1 |
| resnet50     | 3             | either  |          3 |                           0 |                         1 |

`check` (build + all 8 checks, n_random=8), CPU seconds of this process + the fingerprint's fresh process:
mbv3_test 3.5 + 2.6 (its first extraction imports timm), nb201_test 0.7 + 2.6, macro_test 0.6 + 2.8, vit_test
0.5 + 2.6, resnet_test 0.4 + 2.9: 19.3 s CPU in total, 13.5 s of it the five fresh processes (importing torch);
65 s wall on the loaded machine. A second run at load average 2.3 (one other process busy), 50 steps: the
same spreads; `check` on the five families 24.4 s wall, 16.0 s CPU (mbv3_test 9.8 s wall, nb201_test 4.9,
macro_test 2.7, vit_test 4.2, resnet_test 2.9): within the 30 s target. resnet_cifar (ResNet-50 at 32 px) alone: 8.8 + 2.7 s CPU, 43 s wall, so the
test suite checks resnet_test only. The largest resnet50 subnet costs 4,089,185,256 MACs and 25,557,032 params,
equal to `count_cost(torchvision.models.resnet50(), (3, 224, 224))`.

Run: PYTHONPATH=. python benchmarks/bench_resnet.py [--steps 200] [--threads 2] [--cifar] [--skip-torchvision]
(--cifar adds `check` on resnet_cifar, ResNet-50 sized for 32 px: informative, not part of the 30 s target.)
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import torch  # noqa: E402

from oneshot.training.path_samplers import FairSampler, activation_counts  # noqa: E402
import supernets  # noqa: E402
from supernets import check, count_cost, create_supernet, get_space  # noqa: E402

RESNETS = ["resnet_test", "resnet_cifar", "resnet50"]
CHECKED = ["mbv3_test", "nb201_test", "macro_test", "vit_test", "resnet_test"]  # the variants tests/ check


def fair_spreads(name: str, exact: bool, steps: int) -> dict[str, float]:
    """Worst per-step count spreads over `steps` steps, paths per step and how often a step missed a choice."""
    space = get_space(name)
    sampler = FairSampler(space, seed=0, exact=exact)
    uncond = [d for d in space.decisions if d.when is None]
    cond = [d for d in space.decisions if d.when is not None]
    worst_u = worst_c = missed = 0
    for step in range(steps):
        counts = activation_counts(space, sampler.paths(step))
        spread = {d.name: max(counts[d.name].values()) - min(counts[d.name].values()) for d in space.decisions}
        worst_u = max([worst_u] + [spread[d.name] for d in uncond])
        worst_c = max([worst_c] + [spread[d.name] for d in cond])
        missed += any(min(counts[d.name].values()) == 0 for d in uncond)
    return {"paths": sampler.paths_per_step, "uncond": len(uncond), "cond": len(cond), "worst_u": worst_u,
            "worst_c": worst_c, "missed": missed, "counts": sorted({len(d.choices) for d in space.decisions})}


def timed_check(name: str) -> tuple[bool, float, float, float, dict[str, float]]:
    """(ok, wall s, own CPU s, child CPU s, wall s per check line) of `check(create_supernet(name))`."""
    module = importlib.import_module("supernets.check")  # `supernets.check` the attribute is the function
    lines: dict[str, float] = {}
    original = dict(module._CHECKS)

    def timed(key, fn):
        def run(*args):
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                lines[key] = time.perf_counter() - start
        return run

    module._CHECKS.update({k: timed(k, fn) for k, fn in original.items()})
    try:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu, wall = time.process_time(), time.perf_counter()
        report = check(create_supernet(name))  # the build counts: it is part of checking a family
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        child = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    finally:
        module._CHECKS.update(original)
    if not report.ok:
        print(report)
    return report.ok, wall, cpu, child, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="sampler steps per space")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target is for 2 cores)")
    parser.add_argument("--cifar", action="store_true", help="also check resnet_cifar (ResNet-50 at 32 px)")
    parser.add_argument("--skip-torchvision", action="store_true", help="leave out the torchvision comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}\n")

    print(f"1. fair sampling, worst count spread in any of {args.steps} steps (target: 0 unconditional, <= 1 "
          f"conditional)")
    print(f"| space        | choice counts | sampler    | paths/step | uncond. decisions | worst spread | cond. "
          f"decisions | worst spread | steps missing a choice |")
    print("|--------------|---------------|------------|-----------:|------------------:|-------------:|------"
          "-----------:|-------------:|-----------------------:|")
    for name in RESNETS:
        for exact in (False, True):
            r = fair_spreads(name, exact, args.steps)
            print(f"| {name:<12} | {str(r['counts']):<13} | {'exact' if exact else 'default':<10} | {r['paths']:>10} | "
                  f"{r['uncond']:>17} | {r['worst_u']:>12} | {r['cond']:>16} | {r['worst_c']:>12} | "
                  f"{r['missed']:>22} |")

    print("\n2. supernets.check (build + every check, n_random=8), seconds")
    print("| family        | ok | wall s | CPU s here | CPU s fresh process | CPU s both | slowest lines (wall s)")
    print("|---------------|----|-------:|-----------:|--------------------:|-----------:|----------------------")
    total_wall = total_cpu = 0.0
    for name in CHECKED + (["resnet_cifar"] if args.cifar else []):
        ok, wall, cpu, child, lines = timed_check(name)
        if name in CHECKED:
            total_wall, total_cpu = total_wall + wall, total_cpu + cpu + child
        top = ", ".join(f"{k} {v:.1f}" for k, v in sorted(lines.items(), key=lambda kv: -kv[1])[:3])
        print(f"| {name:<13} | {'y' if ok else 'N'}  | {wall:6.1f} | {cpu:10.1f} | {child:19.1f} | {cpu + child:10.1f} | "
              f"{top}")
    # On a shared machine wall time includes waiting for other processes; CPU time does not. The fresh process
    # runs after this one's checks, never beside them, so on 2 idle cores the wall time is at most about the CPU
    # time (less where torch's two threads both work).
    print(f"total over {', '.join(CHECKED)}: {total_wall:.1f} s wall, {total_cpu:.1f} s CPU (target < 30 s on 2 "
          f"cores; load average now {os.getloadavg()[0]:.1f})")

    if not args.skip_torchvision:
        import torchvision

        print("\n3. largest resnet50 subnet against torchvision.models.resnet50 at 224 px")
        analytic = supernets.cost(get_space("resnet50").largest())
        start = time.perf_counter()
        counted = count_cost(torchvision.models.resnet50().eval(), (3, 224, 224))
        print(f"analytic {analytic.macs:,} MACs / {analytic.params:,} params; torchvision counted "
              f"{counted.macs:,} / {counted.params:,} ({time.perf_counter() - start:.1f} s to build and count); "
              f"equal: {analytic == counted}")


if __name__ == "__main__":
    main()
