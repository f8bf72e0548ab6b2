"""Extract chosen subnets from a trained supernet into standalone files, with a manifest.

Each subnet's BN statistics are recalibrated for it first (a supernet's running statistics belong to no single
path), then `supernets.extract` copies exactly the weights it uses. The manifest lists, per file, the arch string,
its cost, the budget it was chosen for and the supernet's holdout estimate, so retraining can report the gap.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Sequence

import torch

from supernets import Arch, cost, extract, save_subnet
from supernets.extract import atomic_write_bytes

__all__ = ["export_subnets", "read_manifest", "MANIFEST_NAME", "FORMATS", "add_arguments", "run"]

MANIFEST_NAME = "manifest.json"
FORMATS = {"pt": ".pt", "safetensors": ".safetensors", "onnx": ".safetensors"}  # weights file suffix per format


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60]


def export_subnets(
    checkpoint: str | Path,
    entries: Sequence[dict[str, Any]],
    out_dir: str | Path,
    calib_batches: int | None = None,
    calib_batch_size: int | None = None,
    seed: int = 0,
    data_overrides: dict[str, Any] | None = None,
    loaded: tuple[Any, dict[str, Any]] | None = None,
    data: Any = None,
    fmt: str = "pt",
) -> Path:
    """Write one standalone file per entry (`{"arch": str, "name"?: str, ...extra}`) and `manifest.json`.

    Extra keys of an entry (budget, supernet_acc, ...) are copied into the file's metadata and the manifest.
    Calibration defaults to the settings of `oneshot.bn`; `data_overrides` can point at moved data (`path=`).
    `loaded` (`load_supernet(checkpoint)`'s result) and `data` (its DataModule) spare a caller that holds them a
    second load. `fmt`: "pt" (torch file), "safetensors", or "onnx" (safetensors weights plus `<name>.onnx`, named
    in the manifest's `onnx` key). Returns the manifest path.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown subnet file format {fmt!r}; allowed: {list(FORMATS)}")
    from .bn import DEFAULT_CALIB_BATCH_SIZE, DEFAULT_CALIB_BATCHES, CalibrationSet, recalibrate_bn
    from .checkpoint import load_supernet
    from .data import datamodule_from_info

    supernet, info = loaded if loaded is not None else load_supernet(checkpoint)
    dm = data if data is not None else datamodule_from_info(info["data"], **(data_overrides or {}))
    calib = CalibrationSet.from_datamodule(
        dm, calib_batches or DEFAULT_CALIB_BATCHES, calib_batch_size or DEFAULT_CALIB_BATCH_SIZE, seed,
        device=next(supernet.parameters()).device,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for i, entry in enumerate(entries):
        arch = Arch.from_str(supernet.space, entry["arch"])
        recalibrate_bn(supernet, calib, arch)
        sub = extract(supernet, arch)
        c = cost(arch)
        name = entry.get("name") or f"subnet{i:02d}"
        file = out / f"{_slug(name)}{FORMATS[fmt]}"
        meta = {**{k: v for k, v in entry.items() if k not in ("arch", "name")},
                "macs": c.macs, "flops": c.flops, "params": c.params, "data": info["data"],
                "supernet_checkpoint": str(checkpoint), "checkpoint_id": info["checkpoint_id"],
                "calibration": calib.settings()}
        save_subnet(sub, arch, file, meta=meta)
        extra = {}
        if fmt == "onnx":
            from supernets.onnx import export_onnx

            c_in, size = supernet.config.in_chans, supernet.config.image_size
            extra["onnx"] = export_onnx(sub, file.with_suffix(".onnx"), (c_in, size, size), arch, overwrite=True).name
        manifest.append({"name": name, "file": file.name, "arch": str(arch), **extra,
                         **{k: v for k, v in meta.items() if k != "data"}})
    path = out / MANIFEST_NAME
    atomic_write_bytes(path, json.dumps({"space": supernet.space.name, "subnets": manifest}, indent=2).encode())
    return path


def read_manifest(path: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """(folder, entries) of a manifest, given the manifest file or the folder holding it."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    if not p.is_file():
        raise FileNotFoundError(f"no subnet manifest at {str(p)!r} (expected a folder written by `oneshot extract`)")
    try:
        data = json.loads(p.read_text())
        return p.parent, list(data["subnets"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{str(p)!r} is not a oneshot subnet manifest: {exc}") from None


# --------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="supernet checkpoint written by `oneshot train`")
    p.add_argument("--arch", action="append", default=[], help="arch string to extract (repeatable)")
    p.add_argument("--archs", help="file with one arch string per line")
    p.add_argument("--search", help="search result JSON (from `oneshot search`): extract its per-budget bests")
    p.add_argument("--out", help="output folder (default: <checkpoint folder>/subnets)")
    p.add_argument("--calib-batches", type=int, default=None, help="K batches for BN recalibration")
    p.add_argument("--format", dest="fmt", choices=list(FORMATS), default="pt",
                   help="pt: torch file; safetensors: loads without unpickling; onnx: safetensors plus an .onnx model")


def run(args: argparse.Namespace) -> int:
    entries: list[dict[str, Any]] = [{"arch": a} for a in args.arch]
    if args.archs:
        f = Path(args.archs)
        if not f.is_file():
            raise FileNotFoundError(f"arch list {args.archs!r} does not exist")
        entries += [{"arch": ln.strip()} for ln in f.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if args.search:
        data = json.loads(Path(args.search).read_text())
        for row in data.get("budgets", []):
            entries.append({k: v for k, v in row.items() if k in ("arch", "name", "budget", "budget_key", "limits", "supernet_acc")})
    if not entries:
        raise ValueError("nothing to extract: give --arch, --archs or --search")
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "subnets"
    torch.set_grad_enabled(False)
    manifest = export_subnets(args.checkpoint, entries, out, calib_batches=args.calib_batches, fmt=args.fmt)
    _, rows = read_manifest(manifest)
    for r in rows:
        print(f"{r['file']}: {r['arch']}  MFLOPs={r['flops'] / 1e6:.3f} params={r['params']:,}")
    print(f"manifest: {manifest}")
    return 0
