"""What the elastic blocks cost against hand-written code, side by side in one process on one torch thread.

1. Training path step: forward + backward of one random path of the NAS-Bench-Macro supernet, block-built
   (`supernets.macro`) against the former hand-written family (tests/reference_macro.py), same weights, same
   paths, interleaved (ABBA) so drift on a shared machine hits both alike. Ratio of medians; target <= 1.05.
2. Extraction of an mbv3_tiny-sized network written with the blocks (below: the mbv3_tiny layout, elastic width,
   depth, kernel and expansion, squeeze-excite): median over random subnets; target <= 10 ms. The hand-written
   mbv3_tiny's extraction (another network of the same size) is printed beside it for scale.
3. `cost()` of one subnet, uncached (the supernet's / config's own method, not the memoized `supernets.cost`):
   the block mbv3_tiny-sized net and block macro, with the hand-written formulas beside them; target <= 20 us.

Times are thread CPU time (`time.thread_time`), so other processes on the machine do not count; one torch thread.

Measured (first of two runs of the defaults, 2 shared CPU cores at load average ~12, torch 2.14.1):

| what                                            | blocks    | hand-written        | target           |
|-------------------------------------------------|----------:|--------------------:|-----------------:|
| macro path step, batch 64, 32 px (median of 30) | 1034.8 ms | 1020.1 ms           | ratio <= 1.05    |
| extraction, mbv3_tiny-sized (median of 30)      | 3.31 ms   | 8.18 ms (mbv3_tiny) | <= 10 ms         |
| cost(), mbv3_tiny-sized, uncached               | 7.8 us    | 18.8 us (mbv3_tiny) | <= 20 us         |
| cost(), macro, uncached                         | 4.5 us    | 6.3 us              | <= 20 us         |

Step ratio 1.014 (ratio of the medians; the median of the 30 per-path ratios is 0.991); a second run of the
defaults gave 0.999 (0.984), extraction 3.28 ms, cost 7.3 / 4.3 us. The blocks' whole
overhead is a LayerChoice dispatch and a context lookup per layer and an `nn.Identity` call where the hand-written
code skipped the layer, small against a step's convolutions. A quick run before (4 paths, batch 16) gave 1.047.
Extraction is faster than the hand-written families' path because plain layers are built without running their
weight initialization; cost is faster because each block's cost is tabulated once over its Values' choices.

Run: PYTHONPATH=. python benchmarks/bench_blocks.py [--steps 30] [--batch 64] [--subnets 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import reference_macro  # noqa: E402

from supernets import (  # noqa: E402
    BlockSupernet,
    Derived,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepth,
    ElasticLinear,
    Value,
    create_supernet,
    extract,
    get_config,
)


# --------------------------------------------------------------------------- an mbv3_tiny-sized block net
def _div(v: float, divisor: int = 4) -> int:
    """Round to a multiple of `divisor`, never below 90% of `v` (MobileNet's make_divisible)."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


class MBBlock(nn.Module):
    """Inverted residual with elastic kernel and expansion, optional squeeze-excite, residual when shapes keep."""

    def __init__(self, cin: Value | int, cout: Value, stride: int, se: bool, act: type[nn.Module]) -> None:
        super().__init__()
        expand = Value((2, 3, 4))
        hid = Derived(lambda c, e: _div(c * e), *(v for v in (cin, expand) if isinstance(v, Value))) \
            if isinstance(cin, Value) else Derived(lambda e: _div(cin * e), expand)
        self.expand = nn.Sequential(ElasticConv2d(cin, hid, 1), ElasticBatchNorm2d(hid), act())
        self.dw = nn.Sequential(ElasticConv2d(hid, hid, (3, 5, 7), stride, groups="depthwise"),
                                ElasticBatchNorm2d(hid), act())
        if se:
            mid = Derived(lambda h: _div(h / 4), hid)
            self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), ElasticConv2d(hid, mid, 1, bias=True), nn.ReLU(),
                                    ElasticConv2d(mid, hid, 1, bias=True), nn.Hardsigmoid())
        self.project = nn.Sequential(ElasticConv2d(hid, cout, 1), ElasticBatchNorm2d(cout))
        self.residual = stride == 1 and cin is cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, H, W) -> (B, cout, H / stride, W / stride)
        y = self.dw(self.expand(x))
        if hasattr(self, "se"):
            y = y * self.se(y)
        y = self.project(y)
        return x + y if self.residual else y


class TinyMBV3(nn.Module):
    """The mbv3_tiny layout on the blocks: stem 16, stages (16, s1), (32, s2, SE), (48, s2, SE, hswish), depths 1-3,
    widths x0.5/0.75/1.0 per stage, head 128, 10 classes, 16 px inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(ElasticConv2d(3, 16, 3), ElasticBatchNorm2d(16), nn.ReLU())
        stages, cin = [], 16
        for width, stride, se, act in ((16, 1, False, nn.ReLU), (32, 2, True, nn.ReLU), (48, 2, True, nn.Hardswish)):
            w = Value(tuple(sorted({_div(width * m) for m in (0.5, 0.75, 1.0)})))
            blocks = [MBBlock(cin, w, stride, se, act)] + [MBBlock(w, w, 1, se, act) for _ in range(2)]
            stages.append(ElasticDepth(blocks, (1, 2, 3)))
            cin = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(ElasticConv2d(cin, 128, 1), ElasticBatchNorm2d(128), nn.Hardswish())
        self.classifier = ElasticLinear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 16, 16) -> (B, 10)
        return self.classifier(self.head(self.stages(self.stem(x))).mean((2, 3)))


# --------------------------------------------------------------------------- timing helpers
def cpu_us(fn, repeat: int) -> float:
    """Median thread-CPU microseconds of `fn()` over `repeat` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return 1e6 * statistics.median(times)


def step_times(supernets: dict[str, nn.Module], archs: list, batch: int, size: int) -> dict[str, list[float]]:
    """Thread-CPU seconds of forward + backward per path, each arch run by every net in ABBA order."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch, 3, size, size, generator=g), torch.randint(0, 10, (batch,), generator=g)
    out: dict[str, list[float]] = {k: [] for k in supernets}
    names = list(supernets)
    for i, arch in enumerate(archs):
        for name in (names if i % 2 == 0 else names[::-1]):
            net = supernets[name]
            net.zero_grad(set_to_none=True)
            t0 = time.thread_time()
            nn.functional.cross_entropy(net(x, arch), y).backward()
            out[name].append(time.thread_time() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="timed paths per supernet (after 3 warm-up paths)")
    ap.add_argument("--batch", type=int, default=64, help="images per step (32 px)")
    ap.add_argument("--subnets", type=int, default=30, help="random subnets for extraction and cost")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)

    # 1. training path step on NAS-Bench-Macro (32 px)
    torch.manual_seed(0)
    blocks = create_supernet("macro").train()
    ref = reference_macro.MacroConfig(**get_config("macro").to_dict()).build_supernet("macro").train()
    blocks.load_state_dict(ref.state_dict())
    archs = [blocks.space.sample(rng) for _ in range(args.steps + 3)]
    times = step_times({"blocks": blocks, "hand-written": ref}, archs, args.batch, 32)
    med = {k: statistics.median(v[3:]) for k, v in times.items()}
    pair = statistics.median(b / h for b, h in zip(times["blocks"][3:], times["hand-written"][3:]))
    print(f"macro path step, batch {args.batch} at 32 px, median of {args.steps} paths (thread CPU):")
    print(f"  blocks {1e3 * med['blocks']:.1f} ms, hand-written {1e3 * med['hand-written']:.1f} ms, "
          f"ratio {med['blocks'] / med['hand-written']:.3f} (median of per-path ratios {pair:.3f}; target <= 1.05)")

    # 2. extraction of an mbv3_tiny-sized block net, the hand-written mbv3_tiny beside it
    torch.manual_seed(0)
    tiny = BlockSupernet(TinyMBV3(), "tiny_mbv3_blocks", (3, 16, 16)).eval()
    hand = create_supernet("mbv3_tiny").eval()
    sub_archs = [tiny.space.sample(rng) for _ in range(args.subnets)]
    hand_archs = [hand.space.sample(rng) for _ in range(args.subnets)]
    for a in sub_archs[:3]:  # warm-up
        extract(tiny, a)
        extract(hand, hand_archs[0])
    ext = statistics.median(cpu_us(lambda a=a: extract(tiny, a), 3) for a in sub_archs) / 1e3
    ext_hand = statistics.median(cpu_us(lambda a=a: extract(hand, a), 3) for a in hand_archs) / 1e3
    n_params = sum(p.numel() for p in extract(tiny, tiny.space.largest()).parameters())
    n_hand = sum(p.numel() for p in extract(hand, hand.space.largest()).parameters())
    print(f"extraction, median of {args.subnets} subnets (thread CPU):")
    print(f"  mbv3_tiny-sized block net ({len(tiny.space.decisions)} decisions, largest {n_params:,} params): "
          f"{ext:.2f} ms (target <= 10 ms); hand-written mbv3_tiny ({n_hand:,} params): {ext_hand:.2f} ms")

    # 3. cost of one subnet, uncached
    macro_cfg = get_config("macro")
    ref_cfg = reference_macro.MacroConfig(**macro_cfg.to_dict())
    macro_archs = [blocks.space.sample(rng) for _ in range(args.subnets)]
    rows = [
        ("mbv3_tiny-sized block net", lambda a: tiny.cost(a), sub_archs),
        ("hand-written mbv3_tiny formula", lambda a: hand.config.cost(a), hand_archs),
        ("macro from the blocks (MacroConfig.cost)", lambda a: macro_cfg.cost(a), macro_archs),
        ("macro hand-written formula", lambda a: ref_cfg.cost(a), macro_archs),
    ]
    print(f"cost() of one subnet, uncached, median of {args.subnets} subnets x 200 calls (thread CPU):")
    for label, fn, arch_list in rows:
        fn(arch_list[0])  # builds the cached meta supernet where there is one
        us = statistics.median(cpu_us(lambda a=a: fn(a), 200) for a in arch_list)
        print(f"  {label}: {us:.1f} us" + ("  (target <= 20 us)" if "block" in label else ""))


if __name__ == "__main__":
    main()
