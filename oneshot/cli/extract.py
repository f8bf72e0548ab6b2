"""`oneshot extract CHECKPOINT`: extract subnets into standalone files (`oneshot.deploy.extract`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="supernet checkpoint written by `oneshot train`")
    p.add_argument("--arch", action="append", default=[], help="arch string to extract (repeatable)")
    p.add_argument("--archs", help="file with one arch string per line")
    p.add_argument("--search", help="search result JSON (search.json from `oneshot search`, or a run folder's "
                                    "chosen.json): extract its per-budget bests")
    p.add_argument("--out", help="output folder (default: <checkpoint folder>/subnets); an existing manifest there "
                                 "is added to")
    p.add_argument("--overwrite", action="store_true", help="replace subnets of the manifest that have the same name")
    p.add_argument("--calib-batches", type=int, default=None, help="K batches for BN recalibration")
    # The same names as oneshot.deploy.extract.FORMATS, spelled out so parsing imports no engine (a test checks).
    p.add_argument("--format", dest="fmt", choices=["pt", "safetensors", "onnx"], default="pt",
                   help="pt: torch file; safetensors: loads without unpickling; onnx: safetensors plus an .onnx model")


def run(args: argparse.Namespace) -> int:
    import torch

    from oneshot.deploy.extract import entries_from_search, extract_subnets, read_manifest

    entries: list[dict[str, Any]] = [{"arch": a} for a in args.arch]
    if args.archs:
        f = Path(args.archs)
        if not f.is_file():
            raise FileNotFoundError(f"arch list {args.archs!r} does not exist")
        entries += [{"arch": ln.strip()} for ln in f.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if args.search:
        entries += entries_from_search(args.search)
    if not entries:
        raise ValueError("nothing to extract: give --arch, --archs or --search")
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "subnets"
    print(f"writing to {out}")
    torch.set_grad_enabled(False)
    manifest = extract_subnets(args.checkpoint, entries, out, calib_batches=args.calib_batches, fmt=args.fmt,
                               overwrite=args.overwrite, log=lambda line: print(f"  {line}"))
    _, rows = read_manifest(manifest)
    for r in rows:
        print(f"{r['file']}: {r['arch']}  MFLOPs={r['flops'] / 1e6:.3f} params={r['params']:,}")
    print(f"manifest: {manifest}")
    return 0
