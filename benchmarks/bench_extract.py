"""Extraction time per subnet, before and after the one-pass copy, side by side in one process on one thread.

before: build the random subnet, `supernet.state_dict()`, cut and clone every tensor, `load_state_dict` (the
        extraction this project had until issue 14, kept here as the reference);
after:  `supernets.extract`: build the random subnet, copy each slice straight into its tensors in one pass.
Both give identical tensors (tests/test_deploy.py). Each figure is the median over the same 30 random subnets
(seed 0) of the best of 3 interleaved rounds, in milliseconds of thread CPU time (one torch thread), so load from
other processes on the machine does not count.

Measured (2 shared CPU cores at load average ~12, torch 2.14.1, timm 1.0.31, 30 subnets, best of 3 rounds):

| space (10 classes)  | before ms | after ms | speed-up | building the random subnet alone ms |
|---------------------|----------:|---------:|---------:|------------------------------------:|
| mbv3_tiny, 32 px    |     12.66 |     8.87 |    1.43x |                                5.81 |
| nb201_small, 32 px  |      7.62 |     5.49 |    1.39x |                                3.58 |
| vit_tiny, 32 px     |      6.55 |     5.23 |    1.25x |                                3.16 |

These are CPU milliseconds of the extracting thread. Wall-clock time on the loaded machine was 2-4x higher
(mbv3_tiny at 32 px: 28-42 ms before, the "~35 ms" of issue 14, against 19-28 ms after, `time.perf_counter`).

Building the subnet's modules (`nn.Module` construction and each layer's random initialization) is two thirds
of the "after" time. Building on the meta device instead, to skip the initialization, was tried and measured
slower for these small networks (best of 3 x 20 subnets, wall clock: mbv3_tiny build 23 ms on meta against 16 ms
on CPU; the meta tensors' initializers run through Python decompositions); it paid off only for the 224 px mbv3
(64 against 96 ms), so extraction builds on the CPU.

Run: PYTHONPATH=. python benchmarks/bench_extract.py [--subnets 30]
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
