"""A folder of extracted subnets is read through its manifest: the file names it stores are checked to stay inside
the folder. Standard library only, so a command refuses a bad manifest before it imports torch (a fraction of a
second instead of seconds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["read_manifest", "inside_folder", "entries_from_search", "MANIFEST_NAME"]

MANIFEST_NAME = "manifest.json"


def inside_folder(folder: str | Path, name: Any, what: str) -> Path:
    """`folder / name` for a file name read from a stored file (a manifest, a run folder, a search result), refused
    in one line unless it is a relative path that stays inside `folder` once `..` and symlinks are resolved: a
    crafted or stale entry must never make a command read or replace a file elsewhere. `what` names the source."""
    from oneshot.messages import clip

    folder = Path(folder)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValueError(f"{what}: file {clip(repr(name))} is not a file name")
    p = Path(name)
    target = folder / p
    if p.is_absolute() or ".." in p.parts:
        raise ValueError(f"{what}: file {clip(repr(name))} lies outside the folder {str(folder)!r}; refused "
                         "(stored file names must stay inside their folder)")
    try:
        target.resolve().relative_to(folder.resolve())
    except ValueError:  # a symlink (the file, or a folder on the way) that leads out
        raise ValueError(f"{what}: file {clip(repr(name))} is a link to {clip(repr(str(target.resolve())))}, "
                         f"which lies outside the folder {str(folder)!r}; refused (stored file names must stay "
                         "inside their folder)") from None
    return target


def read_manifest(path: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """(folder, entries) of a manifest, given the manifest file or the folder holding it."""
    from oneshot.messages import clip

    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    if not p.is_file():
        raise FileNotFoundError(f"no subnet manifest at {str(p)!r} (expected a folder written by `oneshot extract`)")
    try:
        data = json.loads(p.read_text())
        entries = list(data["subnets"])
        for e in entries:
            if not isinstance(e, dict):
                raise TypeError(f"an entry is a {type(e).__name__}, not a mapping")
            missing = [k for k in ("name", "file", "arch") if k not in e]
            if missing:
                raise KeyError(f"an entry lacks {missing}")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{str(p)!r} is not a oneshot subnet manifest: {exc}") from None
    for e in entries:  # every file it names is read, and replaced by --overwrite: each must lie in this folder
        where = f"{str(p)!r} entry {clip(repr(e.get('name')))}"
        inside_folder(p.parent, e["file"], where)
        if "onnx" in e:
            inside_folder(p.parent, e["onnx"], where)
    return p.parent, entries


def entries_from_search(path: str | Path) -> list[dict[str, Any]]:
    """The subnets to extract named by a search result (`search.json`: best per budget) or a run folder's
    `chosen.json`; a missing or unreadable file, or one of neither kind, is a one-line error."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(21, "is a folder, not a search result", str(p))
    if not p.is_file():
        raise FileNotFoundError(f"search result {str(p)!r} does not exist")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(p)!r} is not JSON ({exc})") from None
    keys = ("arch", "name", "budget", "budget_key", "limits", "supernet_acc", "search_score")
    if isinstance(data, dict) and isinstance(data.get("chosen"), list):  # a run folder's search/chosen.json
        return [{k: v for k, v in c.items() if k in keys} for c in data["chosen"] if isinstance(c, dict)]
    if not isinstance(data, dict) or not isinstance(data.get("best"), dict):
        raise ValueError(f"{str(p)!r} is neither a search result (search.json) nor a run folder's chosen.json")
    out = []
    for limits, rec in zip(data.get("budgets") or [], data["best"].values()):
        if rec is None:
            continue  # nothing fitted this budget
        (key, limit), *_ = limits.items()
        out.append({"arch": rec["arch"], "name": "_".join(f"{k}_{v:.3g}" for k, v in limits.items()),
                    "budget_key": key, "budget": limit, "limits": limits, "search_score": rec["score"]})
    if not out and data.get("records"):  # a search without budgets: its best subnet overall
        best = max(data["records"], key=lambda r: r["score"])
        out.append({"arch": best["arch"], "name": "best", "search_score": best["score"]})
    if not out:
        raise ValueError(f"search result {str(p)!r} has no subnet to extract (no budget was met)")
    return out
