"""Foundation figures: space sizes, extraction error over random subnets, cost fast-path throughput.

Run: OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_foundation.py [--subnets 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from supernets import cost, count_cost, create_supernet, extract, get_config, get_space, list_supernets  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--subnets", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    print("space sizes (distinct subnets):")
    for name in list_supernets():
        print(f"  {name:12s} {get_space(name).size():,}")

    print(f"\nextraction max |extract(net, a)(x) - net(x, a)| over {args.subnets} random subnets (eval mode, batch 8):")
    for name in ["mbv3_tiny", "nb201_small", "mbv3_test", "nb201_test"]:
        torch.manual_seed(0)
        net = create_supernet(name).eval()
        for m in net.modules():  # non-trivial BN statistics, so their slicing is exercised too
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        rng = np.random.default_rng(0)
        x = torch.randn(8, 3, net.config.image_size, net.config.image_size)
        worst = 0.0
        with torch.no_grad():
            for _ in range(args.subnets):
                a = net.space.sample(rng)
                worst = max(worst, (extract(net, a)(x) - net(x, a)).abs().max().item())
        print(f"  {name:12s} {worst:.3e}")

    print("\ncost per subnet: fast path (cold = first sight, warm = memoized) vs torch flop counter:")
    for name in ["mbv3", "mbv3_tiny", "nb201"]:
        space, cfg = get_space(name), get_config(name)
        rng = np.random.default_rng(1)
        archs = [space.sample(rng) for _ in range(2000)]
        cost.cache_clear()
        t = time.perf_counter()
        for a in archs:
            cost(a)
        cold = len(archs) / (time.perf_counter() - t)
        t = time.perf_counter()
        for a in archs:
            cost(a)
        warm = len(archs) / (time.perf_counter() - t)
        n = 5 if name == "mbv3" else 20
        t = time.perf_counter()
        for a in archs[:n]:
            count_cost(cfg.build_subnet(a), (cfg.in_chans, cfg.image_size, cfg.image_size))
        counted = n / (time.perf_counter() - t)
        print(f"  {name:10s} cold {cold:10,.0f}/s  warm {warm:10,.0f}/s  flop counter {counted:8.1f}/s"
              f"  (fast/counted = {cold / counted:,.0f}x)")


if __name__ == "__main__":
    main()
