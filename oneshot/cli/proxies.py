"""`oneshot proxies`: score subnets with zero-cost proxies into a cached table (no training, no holdout).

    oneshot proxies TABLE --space macro --data imagefolder --data-path DIR [--mean ... --std ...] \\
        [--num-subnets N | --archs FILE] [--proxies synflow,jacov,nwot] [--batch-size 64] [--seed 0]
    oneshot proxies TABLE --checkpoint CKPT [--data-path DIR] ...   # on the supernet's weights (`@supernet`)

With `--space`, subnets are randomly initialized (seeded; columns `<proxy>@init`) and the space is adapted to
the data (classes, channels, image size) as `oneshot train` does; with `--checkpoint` they hold the supernet's
weights and the batch comes from the checkpoint's dataset. Records already in TABLE are not computed again.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

__all__ = ["add_arguments", "run", "DEFAULT_PROXIES"]

# Every proxy but grasp (4 s a network, and no rank signal on NAS-Bench-Macro): together they beat the predictor
# without proxies at 25-200 networks there (benchmarks/bench_proxies.py); one network costs ~5 s of a CPU thread.
DEFAULT_PROXIES = "synflow,jacov,nwot,snip,grad_norm,fisher,zen,meco,zico,params,flops"


def _floats(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="proxy table (JSONL) to read earlier values from and append to")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--space", default=None, help="registered space; subnets randomly initialized (@init)")
    src.add_argument("--checkpoint", default=None, help="supernet checkpoint; subnets inherit its weights (@supernet)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--num-subnets", type=int, default=None, help="score this many random subnets (default 100)")
    which.add_argument("--archs", default=None, metavar="FILE", help="file of arch strings (or a JSONL result table)")
    parser.add_argument("--proxies", default=DEFAULT_PROXIES, help=f"comma-separated (default {DEFAULT_PROXIES}); "
                        "`all` for every registered proxy")
    parser.add_argument("--data", default=None, help="dataset (digits, cifar10, imagefolder); with --checkpoint "
                        "default: the checkpoint's")
    parser.add_argument("--data-path", default=None, help="dataset folder (cifar10, imagefolder)")
    parser.add_argument("--image-size", type=int, default=None, help="pixels (default: the space's)")
    parser.add_argument("--mean", default=None, help="per-channel normalization mean, e.g. 0.4914,0.4822,0.4465")
    parser.add_argument("--std", default=None, help="per-channel normalization std, e.g. 0.2470,0.2435,0.2616")
    parser.add_argument("--batch-size", type=int, default=64, help="images in the one proxy batch (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="batch draw, subnet init, random subnets")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all available cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _datamodule(args: argparse.Namespace, info: dict[str, Any] | None, image_size: int) -> Any:
    from oneshot.data import create_datamodule, datamodule_from_info

    norm = {k: v for k, v in (("mean", _floats(args.mean)), ("std", _floats(args.std))) if v is not None}
    if info is not None and args.data is None:
        overrides = {"path": args.data_path} if args.data_path else {}
        return datamodule_from_info(info, **overrides, **norm)
    if args.data is None:
        raise ValueError("--data is required with --space (digits, cifar10 or imagefolder)")
    return create_datamodule(args.data, path=args.data_path, image_size=args.image_size or image_size, **norm)


def run(args: argparse.Namespace) -> int:
    import json

    from supernets import get_config

    from oneshot.score.evaluate import read_archs, sample_archs
    from oneshot.training.checkpoint import load_supernet
    from oneshot.threads import configure_threads
    from oneshot.score.proxies import list_proxies
    from oneshot.score.proxy_table import ProxyBatch, score_proxies

    configure_threads(args.threads)
    proxies = list_proxies() if args.proxies.strip() == "all" else [p.strip() for p in args.proxies.split(",") if p.strip()]
    weights = None
    if args.checkpoint:
        supernet, info = load_supernet(args.checkpoint)
        space, weights = supernet.space, supernet
        dm = _datamodule(args, info["data"], json.loads(space.config).get("image_size", 32))
    else:
        base = get_config(args.space)
        dm = _datamodule(args, None, getattr(base, "image_size", 32))
        from oneshot.recipe import Recipe
        from oneshot.training.trainer import supernet_config

        # fitted to the data as `oneshot train` fits it (a "module" space from an entry point included)
        space = supernet_config(Recipe.from_dict({"supernet": {"name": args.space}}), dm).search_space(args.space)
    batch = ProxyBatch.from_datamodule(dm, args.batch_size, args.seed)
    archs = read_archs(args.archs, space) if args.archs else []
    num = args.num_subnets if args.num_subnets is not None else (0 if archs else 100)
    archs += sample_archs(space, num, args.seed, exclude=archs) if num else []
    start = time.perf_counter()
    records = score_proxies(space, archs, proxies, batch, args.table, weights, args.seed, device=args.device,
                            progress=not args.no_progress)
    print(f"{len(records)} subnets of {space.name} in {time.perf_counter() - start:.1f} s "
          f"(batch {batch.digest}: {args.batch_size} images)")
    for column in records[0]["seconds"] if records else []:
        vals = np.array([np.nan if r.get(column) is None else r[column] for r in records], float)
        secs = [r["seconds"][column] for r in records if column in r["seconds"]]
        print(f"  {column:18s} median {np.nanmedian(vals):.4g}  undefined {int(np.isnan(vals).sum())}  "
              f"{np.mean(secs):.3f} s per subnet")
    print(f"results: {args.table}")
    return 0
