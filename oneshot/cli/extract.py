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
    p.add_argument("--data-path", default=None,
                   help="where the checkpoint's dataset lives now, if it moved (the split digest is still checked)")
    # The same names as oneshot.deploy.extract.FORMATS, spelled out so parsing imports no engine (a test checks).
    p.add_argument("--format", dest="fmt", choices=["pt", "safetensors", "onnx"], default="pt",
                   help="pt: torch file; safetensors: loads without unpickling; onnx: safetensors plus an .onnx model")


def run(args: argparse.Namespace) -> int:
    # The engine (torch, Lightning: seconds) is imported only once the input has passed the checks that need none,
    # so a command refused for a missing file or a bad manifest answers at once.
    from oneshot.deploy.manifest import entries_from_search, read_manifest

    entries: list[dict[str, Any]] = [{"arch": a} for a in args.arch]
    loaded = None
    if args.archs:
        f = Path(args.archs)
        if not f.is_file():
            raise FileNotFoundError(f"arch list {args.archs!r} does not exist")
        from oneshot.score.evaluate import read_archs
        from oneshot.training.checkpoint import load_supernet

        loaded = load_supernet(args.checkpoint)  # the space, so a bad line is named by its number (as evaluate does)
        entries += [{"arch": str(a)} for a in read_archs(f, loaded[0].space)]
    if args.search:
        entries += entries_from_search(args.search)
    if not entries:
        raise ValueError("nothing to extract: give --arch, --archs or --search")
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "subnets"
    if not Path(args.checkpoint).exists():  # before "writing to": nothing is written for a missing input
        raise FileNotFoundError(f"supernet checkpoint {args.checkpoint!r} does not exist")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(20, "is a file, not a folder for subnets", str(out))
    if (out / "manifest.json").is_file():
        read_manifest(out)  # one that names files outside its folder is refused before anything is scored
    import torch

    from supernets import Arch

    from oneshot.deploy.extract import extract_subnets
    from oneshot.training.checkpoint import load_supernet

    loaded = loaded or load_supernet(args.checkpoint)
    for e in entries:  # every arch checked before anything is scored or written
        Arch.from_str(loaded[0].space, str(e["arch"]))
    print(f"writing to {out}")  # after every input check: a refused command never says it writes
    with torch.no_grad():  # scoped: a global switch would leak into whatever runs next in this process
        _add_supernet_acc(args, entries)
        manifest = extract_subnets(args.checkpoint, entries, out, calib_batches=args.calib_batches, fmt=args.fmt,
                                   overwrite=args.overwrite, loaded=loaded, log=lambda line: print(f"  {line}"),
                                   data_overrides={"path": args.data_path} if args.data_path else None)
    _, rows = read_manifest(manifest)
    for r in rows:
        files = r["file"] + (f" + {r['onnx']}" if r.get("onnx") else "")
        print(f"{files}: {r['arch']}  MFLOPs={r['flops'] / 1e6:.3f} params={r['params']:,}"
              + (f" supernet acc={r['supernet_acc']:.4f}" if isinstance(r.get("supernet_acc"), float) else ""))
    print(f"manifest: {manifest}")
    return 0


def _add_supernet_acc(args: argparse.Namespace, entries: list[dict[str, Any]]) -> None:
    """Give every entry without one its supernet holdout accuracy (recalibrated BN, the extraction's calibration
    batches), so `oneshot retrain` on the folder can set it against standalone accuracy. Scored through the
    evaluation table beside the checkpoint: subnets a search or `oneshot evaluate` scored are not scored again."""
    from oneshot.score.bn import DEFAULT_CALIB_BATCHES
    from oneshot.score.evaluate import evaluate

    todo = [e for e in entries if not isinstance(e.get("supernet_acc"), (int, float))]
    if not todo:
        return
    k = DEFAULT_CALIB_BATCHES if args.calib_batches is None else args.calib_batches
    if k < 1:
        return  # extract_subnets names the bad value in one line
    moved = {"path": args.data_path} if getattr(args, "data_path", None) else None
    archs = list(dict.fromkeys(str(e["arch"]) for e in todo))  # budgets that chose one subnet: scored once
    records = evaluate(args.checkpoint, archs, data=moved, calib_batches=k, progress=False)
    acc = {a: r["holdout_acc"] for a, r in zip(archs, records)}
    for e in todo:
        e["supernet_acc"] = acc[str(e["arch"])]
