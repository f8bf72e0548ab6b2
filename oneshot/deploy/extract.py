"""Extract chosen subnets from a trained supernet into standalone files, with a manifest.

Each subnet's BN statistics are recalibrated for it first (a supernet's running statistics belong to no single
path), then `supernets.extract` copies exactly the weights it uses. The manifest lists, per file, the arch string,
its cost, the budget it was chosen for and the supernet's holdout estimate, so retraining can report the gap.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

from supernets import Arch, cost, extract, save_subnet
from supernets.files import atomic_write_bytes

__all__ = ["extract_subnets", "read_manifest", "MANIFEST_NAME", "FORMATS"]

MANIFEST_NAME = "manifest.json"
FORMATS = {"pt": ".pt", "safetensors": ".safetensors", "onnx": ".safetensors"}  # weights file suffix per format


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60]


def extract_subnets(
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
    Calibration defaults to the settings of `oneshot.score.bn`; `data_overrides` can point at moved data (`path=`).
    `loaded` (`load_supernet(checkpoint)`'s result) and `data` (its DataModule) spare a caller that holds them a
    second load. `fmt`: "pt" (torch file), "safetensors", or "onnx" (safetensors weights plus `<name>.onnx`, named
    in the manifest's `onnx` key). Returns the manifest path.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown subnet file format {fmt!r}; allowed: {list(FORMATS)}")
    from oneshot.data import datamodule_from_info
    from oneshot.score.bn import DEFAULT_CALIB_BATCH_SIZE, DEFAULT_CALIB_BATCHES, CalibrationSet, recalibrate_bn
    from oneshot.train.checkpoint import load_supernet

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
