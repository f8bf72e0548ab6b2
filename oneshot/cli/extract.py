"""`oneshot extract CHECKPOINT`: extract subnets into standalone files (`oneshot.deploy.extract`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="supernet checkpoint written by `oneshot train`")
    p.add_argument("--arch", action="append", default=[], help="arch string to extract (repeatable)")
    p.add_argument("--archs", help="file with one arch string per line")
    p.add_argument("--search", help="search result JSON (from `oneshot search`): extract its per-budget bests")
    p.add_argument("--out", help="output folder (default: <checkpoint folder>/subnets)")
    p.add_argument("--calib-batches", type=int, default=None, help="K batches for BN recalibration")
    # The same names as oneshot.deploy.extract.FORMATS, spelled out so parsing imports no engine (a test checks).
    p.add_argument("--format", dest="fmt", choices=["pt", "safetensors", "onnx"], default="pt",
                   help="pt: torch file; safetensors: loads without unpickling; onnx: safetensors plus an .onnx model")


def run(args: argparse.Namespace) -> int:
    import torch

    from oneshot.deploy.extract import extract_subnets, read_manifest

    entries: list[dict[str, Any]] = [{"arch": a} for a in args.arch]
    if args.archs:
        f = Path(args.archs)
        if not f.is_file():
            raise FileNotFoundError(f"arch list {args.archs!r} does not exist")
        entries += [{"arch": ln.strip()} for ln in f.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if args.search:
        data = json.loads(Path(args.search).read_text())
        # search.json keeps the per-budget bests under "best" ({budget label: record}); chosen.json under "chosen".
        rows = [dict(r, name=r.get("name", label)) for label, r in (data.get("best") or {}).items()]
        for row in rows or data.get("chosen", []):
            entries.append({k: v for k, v in row.items() if k in ("arch", "name", "budget", "budget_key", "limits", "supernet_acc")})
    if not entries:
        raise ValueError("nothing to extract: give --arch, --archs or --search")
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "subnets"
    torch.set_grad_enabled(False)
    manifest = extract_subnets(args.checkpoint, entries, out, calib_batches=args.calib_batches, fmt=args.fmt)
    _, rows = read_manifest(manifest)
    for r in rows:
        print(f"{r['file']}: {r['arch']}  MFLOPs={r['flops'] / 1e6:.3f} params={r['params']:,}")
    print(f"manifest: {manifest}")
    return 0
