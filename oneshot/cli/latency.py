"""`oneshot latency TARGET`: time subnets on a device and fit the latency model (`oneshot.score.latency`)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="supernet checkpoint or registered space name")
    p.add_argument("--num-subnets", type=int, default=60,
                   help="subnets to time besides smallest and largest (a design covering every choice)")
    p.add_argument("--device", default="cpu",
                   help="where the subnets will run: cpu, cuda, cuda:1, ..., or onnxruntime (its CPU provider)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch threads while timing (default: all)")
    p.add_argument("--clock", choices=("wall", "thread"), default="wall",
                   help="thread: CPU time of the timing thread (needs --threads 1), robust on a shared machine")
    p.add_argument("--repeats", type=int, default=20, help="timed passes per subnet (the minimum is kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="latency table (JSONL); pass it to `oneshot search --latency`")


def run(args: argparse.Namespace) -> int:
    from oneshot.score.latency import LatencyModel

    model = LatencyModel.measure(args.target, num_subnets=args.num_subnets, seed=args.seed, device=args.device,
                                 batch_size=args.batch_size, repeats=args.repeats, table=args.out,
                                 threads=args.threads, clock=args.clock)
    lat = sorted(model.measured.values())
    print(f"timed {len(lat)} subnets on {model.describe_target()}: {lat[0]:.3f} to {lat[-1]:.3f} ms")
    print(model.summary())
    print(f"table: {args.out}")
    return 0
