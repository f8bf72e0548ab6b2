"""Extract chosen subnets from a trained supernet into standalone files, with a manifest.

Each subnet's BN statistics are recalibrated for it first (a supernet's running statistics belong to no single
path), then `supernets.extract` copies exactly the weights it uses. The manifest lists, per file, the arch string,
its cost, the budget it was chosen for and the supernet's holdout estimate, so retraining can report the gap.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Sequence

from supernets import Arch, cost, extract, save_subnet
from supernets.files import atomic_write_bytes

from .manifest import MANIFEST_NAME, entries_from_search, inside_folder, read_manifest

__all__ = ["extract_subnets", "entries_from_search", "read_manifest", "inside_folder", "MANIFEST_NAME", "FORMATS"]

FORMATS = {"pt": ".pt", "safetensors": ".safetensors", "onnx": ".safetensors"}  # weights file suffix per format


def _format_of(entry: dict[str, Any]) -> str:
    """The `--format` a manifest entry was extracted with: onnx names its model, the suffix tells the rest."""
    if entry.get("onnx"):
        return "onnx"
    return "safetensors" if str(entry["file"]).endswith(".safetensors") else "pt"


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
    overwrite: bool = False,
    keep_others: bool = True,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Write one standalone file per distinct subnet of `entries` (`{"arch": str, "name"?: str, ...extra}`) and
    list every entry in `manifest.json`.

    Extra keys of an entry (budget, supernet_acc, ...) are copied into the file's metadata and the manifest.
    Entries with the same arch (two budgets choosing one subnet) share one file. An existing manifest in `out_dir`
    is added to: an entry already there (same name, arch, checkpoint and calibration) is kept as is (with another
    calibration it is refused unless `overwrite`, which re-extracts it), an unnamed entry gets the
    next free `subnetNN` name, a name that would be replaced is refused unless `overwrite`, and a file the
    manifest does not list is never replaced (the new one gets a `-N` suffix). `keep_others=False` drops entries
    of the old manifest not given here (a run folder's pipeline).
    Calibration defaults to the settings of `oneshot.score.bn`; `data_overrides` can point at moved data (`path=`).
    `loaded` (`load_supernet(checkpoint)`'s result) and `data` (its DataModule) spare a caller that holds them a
    second load. `fmt`: "pt" (torch file), "safetensors", or "onnx" (safetensors weights plus `<name>.onnx`, named
    in the manifest's `onnx` key). `log` receives one line per decision (added, kept, shared). Returns the manifest
    path.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown subnet file format {fmt!r}; allowed: {list(FORMATS)}")
    from oneshot.score.bn import DEFAULT_CALIB_BATCH_SIZE, DEFAULT_CALIB_BATCHES, CalibrationSet, recalibrate_bn
    from oneshot.score.evaluate import datamodule_for
    from oneshot.training.checkpoint import load_supernet

    say = log or (lambda _line: None)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(20, "is a file, not a folder for subnets", str(out))
    old = read_manifest(out)[1] if (out / MANIFEST_NAME).exists() else []
    supernet, info = loaded if loaded is not None else load_supernet(checkpoint)
    space, ckpt_id = supernet.space, info["checkpoint_id"]
    archs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "arch" not in entry:
            raise ValueError(f"subnet entry {i} has no 'arch': {entry!r}")
        archs.append(Arch.from_str(space, str(entry["arch"])))  # all parsed before anything is written
    if not archs:
        raise ValueError("nothing to extract: no subnets given")

    # The calibration decides the file's BN statistics: an entry extracted with other settings is another result.
    # Its settings are known before any image is drawn; the images are drawn only if a file is to be written.
    dm = data if data is not None else datamodule_for(info["data"], data_overrides)
    dm.setup()
    k = DEFAULT_CALIB_BATCHES if calib_batches is None else calib_batches  # 0 is an error, not the default
    b = DEFAULT_CALIB_BATCH_SIZE if calib_batch_size is None else calib_batch_size
    balanced = CalibrationSet.can_balance(dm.train_set)
    settings = CalibrationSet.settings_of(k, b, seed, balanced)
    by_name = {e["name"]: e for e in old}
    kept = dict(by_name) if keep_others else {}
    same = {(e["arch"], e.get("checkpoint_id")): e["file"] for e in old  # files to share, not write again
            if e.get("calibration") == settings}
    used_files = {e["file"] for e in old}
    todo: list[tuple[dict[str, Any], Arch, str]] = []  # (manifest entry without costs, arch, file) to write
    adopted: dict[str, dict[str, Any]] = {}  # file -> costs and provenance, of files an interrupted run left
    plan: list[dict[str, Any]] = []
    for entry, arch in zip(entries, archs):
        name = entry.get("name") or _free_name({*by_name, *(e["name"] for e in plan)}, str(arch), by_name, ckpt_id)
        prev = by_name.get(name)
        if prev is not None and prev["arch"] == str(arch) and prev.get("checkpoint_id") == ckpt_id:
            if prev.get("calibration") == settings and (not overwrite or _format_of(prev) == fmt):
                was = _format_of(prev)
                other = "" if was == fmt else f" as {was}; give --overwrite to write it as {fmt}"
                say(f"{name}: already extracted ({prev['file']}){other}")
                plan.append(prev)
                continue
            if not overwrite:
                raise ValueError(f"{str(out / MANIFEST_NAME)!r} already has subnet {name!r} calibrated with "
                                 f"{prev.get('calibration')}, not {settings}; give --overwrite to re-extract it, "
                                 "or another --out")
        if prev is not None and not overwrite:
            raise ValueError(f"{str(out / MANIFEST_NAME)!r} already has a subnet named {name!r} ({prev['arch']}); "
                             "give another name, another --out, or --overwrite")
        extra = {k: v for k, v in entry.items() if k not in ("arch", "name", "file", "onnx")}  # files are ours
        shared = same.get((str(arch), ckpt_id)) or next((f for e, a, f in todo if a == arch), None)
        if shared is not None and any(e["file"] == shared and _format_of(e) != fmt for e in old):
            shared = None  # a file in another format: this format gets its own file
        if shared is not None:
            say(f"{name}: same subnet as {shared}, sharing the file")
            plan.append({"name": name, "file": shared, "arch": str(arch), **extra})
            continue
        others = [e["file"] for n, e in by_name.items() if n != name] + [e["file"] for e in plan]
        if prev is not None and prev["file"] not in others and _format_of(prev) == fmt:
            file = prev["file"]  # --overwrite of this entry: its own file, shared with no other entry
            same = {k: f for k, f in same.items() if f != file}
        else:  # never replace a file another entry uses or one the manifest does not know: take a free name
            file = f"{_slug(name)}{FORMATS[fmt]}"
            orphan = None
            if file not in used_files and (out / file).exists():
                # An extraction interrupted after writing this file and before its manifest: when it holds exactly
                # this subnet (same arch, checkpoint weights and calibration) it is ours, adopted, never a `-1` copy.
                orphan = _orphan_of(out / file, arch, ckpt_id, settings, fmt)
                if orphan is None:
                    file = _free_file(out, _slug(name), used_files, FORMATS[fmt])
                elif not orphan:  # this subnet, but its .onnx was not written yet: written again, in place
                    orphan = None
            elif file in used_files:
                file = _free_file(out, _slug(name), used_files, FORMATS[fmt])
            if orphan is not None:
                used_files.add(file)
                plan.append({"name": name, "file": file, "arch": str(arch), **extra})
                adopted[file] = orphan
                say(f"{name}: adopted {out / file}, written by an interrupted extraction")
                continue
        used_files.add(file)
        plan.append({"name": name, "file": file, "arch": str(arch), **extra})
        todo.append((plan[-1], arch, file))

    written: dict[str, dict[str, Any]] = dict(adopted)
    if todo:
        calib = CalibrationSet.from_datamodule(dm, k, b, seed, next(supernet.parameters()).device, balanced)
        out.mkdir(parents=True, exist_ok=True)
        for entry, arch, file in todo:
            recalibrate_bn(supernet, calib, arch)
            sub = extract(supernet, arch)
            c = cost(arch)
            meta = {**{k: v for k, v in entry.items() if k not in ("arch", "name", "file")},
                    "macs": c.macs, "flops": c.flops, "params": c.params, "data": info["data"],
                    "supernet_checkpoint": str(checkpoint), "checkpoint_id": ckpt_id,
                    "calibration": settings}
            save_subnet(sub, arch, out / file, meta=meta)
            if fmt == "onnx":
                from supernets.onnx import export_onnx

                cfg = supernet.config  # a user's module (ModuleConfig) may take non-square inputs: its input_shape
                shape = tuple(getattr(cfg, "input_shape", None) or (cfg.in_chans, cfg.image_size, cfg.image_size))
                meta["onnx"] = export_onnx(sub, (out / file).with_suffix(".onnx"), shape, arch, overwrite=True).name
            written[file] = {k: v for k, v in meta.items() if k not in entry and k != "data"}
            say(f"{entry['name']}: wrote {out / file}" + (f" and {out / meta['onnx']}" if "onnx" in meta else ""))
    for entry in plan:  # costs and provenance of the file each entry points at
        base = written.get(entry["file"]) or next(
            {k: e[k] for k in ("macs", "flops", "params", "supernet_checkpoint", "checkpoint_id", "calibration",
                               "onnx") if k in e} for e in [*old, *plan] if e["file"] == entry["file"] and "flops" in e)
        kept[entry["name"]] = {**entry, **base}
    path = out / MANIFEST_NAME
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps({"space": space.name, "subnets": list(kept.values())}, indent=2).encode())
    return path


_PROVENANCE = ("macs", "flops", "params", "supernet_checkpoint", "checkpoint_id", "calibration")


def _orphan_of(path: Path, arch: Arch, ckpt_id: str, settings: Any, fmt: str) -> dict[str, Any] | None:
    """The costs and provenance of subnet file `path` when it holds `arch` extracted from these weights with this
    calibration; {} when it does but the .onnx that goes with it is missing (it is written again); None for any
    other file, which is never replaced."""
    from supernets import load_subnet

    try:
        _, file_arch, meta = load_subnet(path)
    except Exception:  # not a subnet file, or not one this code reads: someone else's, leave it
        return None
    if (str(file_arch) != str(arch) or meta.get("checkpoint_id") != ckpt_id
            or json.loads(json.dumps(meta.get("calibration"))) != json.loads(json.dumps(settings))):
        return None
    base = {k: meta[k] for k in _PROVENANCE if k in meta}
    if fmt == "onnx":
        if not path.with_suffix(".onnx").is_file():
            return {}
        base["onnx"] = path.with_suffix(".onnx").name
    return base if all(k in base for k in ("macs", "flops", "params")) else None  # the manifest lists costs


def _free_name(taken: set[str], arch: str, old: dict[str, dict[str, Any]], ckpt_id: str) -> str:
    """The name of `arch` if the manifest has it already (from this checkpoint), else the first free `subnetNN`."""
    for name, e in old.items():
        if e["arch"] == arch and e.get("checkpoint_id") == ckpt_id:
            return name
    i = 0
    while f"subnet{i:02d}" in taken:
        i += 1
    return f"subnet{i:02d}"


def _free_file(out: Path, stem: str, used: set[str], suffix: str = ".pt") -> str:
    """`stem-N<suffix>` for the first N that names neither a manifest file nor a file on disk."""
    i = 1
    while f"{stem}-{i}{suffix}" in used or (out / f"{stem}-{i}{suffix}").exists():
        i += 1
    return f"{stem}-{i}{suffix}"
