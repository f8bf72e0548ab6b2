"""Extraction time per subnet, before and after the one-pass copy, side by side in one process on one thread.

before: build the random subnet, `supernet.state_dict()`, cut and clone every tensor, `load_state_dict` (the
        extraction this project had until issue 14, kept here as the reference);
after:  `supernets.extract`: build the random subnet, copy each slice straight into its tensors in one pass.
Both give identical tensors (tests/test_deploy.py). Each figure is the median over the same 30 random subnets
(seed 0) of the best of 3 interleaved rounds, in milliseconds of thread CPU time (one torch thread), so load from
other processes on the machine does not count.

Measured (2 shared CPU cores, load average ~10, torch 2.14.1, 30 subnets, best of 3 rounds):

| space (classes 10)      | before ms | after ms | speed-up | building the random subnet alone |
|-------------------------|----------:|---------:|---------:|---------------------------------:|
| mbv3_tiny, 32 px        |   RESULT  |          |          |                                  |

Extraction is bounded below by constructing the subnet's modules (torch `nn.Module` construction and
random initialization of each layer), which is most of the "after" time; building on the meta device to skip the
initialization was measured slower for these small networks (meta tensors' initializers run in Python), see the
report of issue 14.

Run: python benchmarks/bench_extract.py [--subnets 30]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import numpy as np  # noqa: E402
import torch  # noqa: E402

from supernets import create_supernet, extract  # noqa: E402
from supernets.base import crop_to  # noqa: E402

SPACES = [("mbv3_tiny", {"image_size": 32}), ("nb201_small", {"image_size": 32}), ("vit_tiny", {"image_size": 32})]


def extract_before(supernet, arch) -> torch.nn.Module:
    """The previous extraction: state dicts and `load_state_dict` (reference for the timing only)."""
    sub = supernet.config.build_subnet(arch)
    source = supernet.state_dict()
    state = {name: supernet.cut(name, source[supernet.weight_source(name, arch)], t.shape).clone()
             for name, t in sub.state_dict().items()}
    sub.load_state_dict(state)
    ref = next(supernet.parameters())
    return sub.to(device=ref.device, dtype=ref.dtype).eval()


def per_subnet_ms(fn, archs) -> float:
    """Median over `archs` of thread CPU milliseconds of `fn(arch)`."""
    times = []
    for arch in archs:
        t0 = time.thread_time()
        fn(arch)
        times.append(time.thread_time() - t0)
    return 1000.0 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subnets", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'space':<22s} {'before ms':>10s} {'after ms':>9s} {'speed-up':>9s} {'build ms':>9s}")
    for name, overrides in SPACES:
        net = create_supernet(name, num_classes=10, **overrides).eval()
        rng = np.random.default_rng(0)
        archs = [net.space.sample(rng) for _ in range(args.subnets)]
        for a in archs[:3]:  # warm-up (allocator, first-call caches)
            extract(net, a), extract_before(net, a)
        before, after, build = [], [], []
        for _ in range(3):  # interleaved rounds; the best of each counts
            before.append(per_subnet_ms(lambda a: extract_before(net, a), archs))
            after.append(per_subnet_ms(lambda a: extract(net, a), archs))
            build.append(per_subnet_ms(net.config.build_subnet, archs))
        b, a, c = min(before), min(after), min(build)
        label = f"{name}, {overrides.get('image_size')} px"
        print(f"{label:<22s} {b:>10.2f} {a:>9.2f} {b / a:>8.2f}x {c:>9.2f}")


if __name__ == "__main__":
    main()
