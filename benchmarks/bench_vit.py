"""Training step time of the ViT supernet path against the extracted timm network, same arch and batch, one thread.

For each arch (the smallest, the largest and random ones of the space) one SGD step (forward, cross-entropy,
backward, update) runs through `supernet(x, arch)` and through `extract(supernet, arch)`, in interleaved rounds;
each figure is the best of 3 rounds of the median of `--reps` steps, in thread CPU milliseconds (one torch
thread, so time other processes take from the shared cores does not count). The ratio is the price of weight
sharing per step: slicing the largest weights (copies for the fused q/k/v and the sliced matrices) and their
larger gradients.

Measured (2 shared CPU cores at load average ~15, torch 2.14.1, batch 32, median of 15 steps, best of 3 rounds,
the smallest, the largest and 3 random archs, seed 0), supernet ms / extracted ms:

| vit_tiny at          | smallest | largest | 3 random           | median ratio |
|----------------------|---------:|--------:|--------------------|-------------:|
| 32 px, 3 channels    |    1.101 |   0.992 | 1.054, 1.060, 1.052 |        1.054 |
| 16 px, 1 channel     |    1.099 |   1.011 | 1.005, 1.134, 1.148 |        1.099 |

(32 px: 9.4 / 8.5 ms for the smallest arch, 49.1 / 49.5 ms for the largest.) The supernet path costs 0-15% more
per step than the standalone timm network; the largest arch, which slices nothing, runs at par.

Run: PYTHONPATH=. python benchmarks/bench_vit.py [--space vit_tiny] [--image-size 32] [--in-chans 3] [--batch 32]
     [--archs 4] [--reps 20]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from supernets import create_supernet, extract  # noqa: E402


def median_step_ms(step, reps: int) -> float:
    step()  # warm-up (allocator, oneDNN primitive caches)
    times = []
    for _ in range(reps):
        t0 = time.thread_time()
        step()
        times.append(time.thread_time() - t0)
    return 1000.0 * float(np.median(times))


def sgd_step(forward, params, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x), y).backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="vit_tiny")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--in-chans", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--archs", type=int, default=4, help="random archs besides the smallest and the largest")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    supernet = create_supernet(args.space, image_size=args.image_size, in_chans=args.in_chans, num_classes=10).train()
    space = supernet.space
    rng = np.random.default_rng(0)
    archs = [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(args.archs))]
    x = torch.randn(args.batch, args.in_chans, args.image_size, args.image_size)
    y = torch.randint(0, 10, (args.batch,))
    print(f"{args.space} at {args.image_size} px, batch {args.batch}, 1 thread")
    print(f"{'supernet ms':>12s} {'extracted ms':>13s} {'ratio':>6s}  arch")
    ratios = []
    for arch in archs:
        sub = extract(supernet, arch).train()
        step_super = sgd_step(lambda t: supernet(t, arch), supernet.parameters(), x, y)
        step_sub = sgd_step(sub, sub.parameters(), x, y)
        t_super, t_sub = [], []
        for _ in range(3):  # interleaved rounds
            t_super.append(median_step_ms(step_super, args.reps))
            t_sub.append(median_step_ms(step_sub, args.reps))
        ts, tb = min(t_super), min(t_sub)
        ratios.append(ts / tb)
        print(f"{ts:>12.2f} {tb:>13.2f} {ts / tb:>6.3f}  {arch}")
    print(f"median ratio {np.median(ratios):.3f} over {len(archs)} archs "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
