"""Append-only result tables (JSON lines) keyed per subnet, so nothing is evaluated twice and crashes lose nothing.

Line 1 is a header naming the space (and whatever the writer wants to pin, e.g. the checkpoint); every other line
is one record with at least `key` and `arch`. Each record is written with a single `write` + fsync, and a torn last
line (a crash mid-write) is ignored on reading, so a resumed run simply re-evaluates that one subnet.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from supernets import Arch, SearchSpace, space_from_dict, space_to_dict

__all__ = ["ResultTable", "read_table", "read_scores"]

TABLE_FORMAT = "oneshot-results"


class ResultTable:
    """A JSONL table of per-subnet records for one space; `get(key)` finds earlier results."""

    def __init__(self, path: str | os.PathLike, space: SearchSpace, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.space = space
        self._records: dict[str, dict[str, Any]] = {}
        if self.path.exists() and self.path.stat().st_size > 0:
            _drop_torn_tail(self.path)
            header, records = _read(self.path)
            fp = header.get("fingerprint")
            if fp != space.fingerprint:
                raise ValueError(
                    f"result table {str(self.path)!r} belongs to space {header.get('space', {}).get('name')!r} "
                    f"({fp}), not {space.name!r} ({space.fingerprint}); use another file"
                )
            self.meta = header.get("meta", {})
            for r in records:
                self._records[r["key"]] = r
        else:
            self.meta = dict(meta or {})
            header = {"format": TABLE_FORMAT, "space": space_to_dict(space), "fingerprint": space.fingerprint,
                      "meta": self.meta}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append(header)

    def _append(self, obj: dict[str, Any]) -> None:
        line = json.dumps(obj, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record for `key`, or None."""
        return self._records.get(key)

    def add(self, record: dict[str, Any]) -> None:
        """Store one record (needs `key` and `arch`); durable once this returns."""
        if "key" not in record or "arch" not in record:
            raise ValueError("a result record needs 'key' and 'arch' fields")
        self._append(record)
        self._records[record["key"]] = record

    def records(self) -> list[dict[str, Any]]:
        """All records, latest per key, in insertion order."""
        return list(self._records.values())

    def archs(self) -> Iterator[Arch]:
        """The subnets of all records, parsed in this table's space."""
        for r in self._records.values():
            yield Arch.from_str(self.space, r["arch"])


def _drop_torn_tail(path: Path) -> None:
    """Cut a final line left without its newline by a crash, so the next append starts on a fresh line."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        raise ValueError(f"{str(path)!r} is not a oneshot result table (unreadable header)") from None
    if not isinstance(header, dict) or header.get("format") != TABLE_FORMAT:
        raise ValueError(f"{str(path)!r} is not a oneshot result table (no '{TABLE_FORMAT}' header)")
    records = []
    body = [ln for ln in lines[1:] if ln.strip()]
    for i, line in enumerate(body):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(body) - 1:  # torn final line from a crash: drop it, the subnet is evaluated again
                break
            raise ValueError(f"{str(path)!r} has a corrupt record on line {i + 2}") from None
    return header, records


def read_table(path: str | os.PathLike) -> tuple[SearchSpace, list[dict[str, Any]]]:
    """Open a result table without knowing its space in advance: (space, records, latest per key)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"result table {str(path)!r} does not exist")
    header, records = _read(path)
    space = space_from_dict(header["space"])
    latest: dict[str, dict[str, Any]] = {}
    for r in records:
        latest[r["key"]] = r
    return space, list(latest.values())


def read_scores(path: str | Path, target: str = "holdout_acc") -> tuple[Any, list[str], np.ndarray]:
    """(space, arch strings, scores) of the records of a result table that have a numeric `target`."""
    space, records = read_table(path)
    if not records:
        raise ValueError(f"result table {str(path)!r} has no records")
    rows = [r for r in records if target in r]
    if not rows:
        numeric = sorted({k for r in records for k, v in r.items() if isinstance(v, (int, float)) and k != "key"})
        raise ValueError(f"no record of {str(path)!r} has the field {target!r}; numeric fields: {numeric}")
    try:
        scores = np.array([float(r[target]) for r in rows])
    except (TypeError, ValueError):
        raise ValueError(f"field {target!r} of {str(path)!r} is not numeric in every record") from None
    return space, [r["arch"] for r in rows], scores
