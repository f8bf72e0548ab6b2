"""Append-only result tables (JSON lines) keyed per subnet, so nothing is evaluated twice and crashes lose nothing.

Line 1 is a header naming the space (and whatever the writer wants to pin, e.g. the checkpoint); every other line
is one record with at least `key` and `arch`. Each record is written with a single `write` + fsync under an
exclusive `flock` of the table, and a torn last line (a crash mid-write) is skipped on reading, with a note naming
its line, and cut before the next append, so a resumed run simply re-evaluates that one subnet.

A key is one subnet under one set of settings, so its result is one value: a key on two lines is kept when both
lines say the same (timings and provenance aside: `*_seconds`, `code_version`, `checkpoint_path`), and is an error
naming both lines when they differ (a predictor must not train on whichever came last).

A file is never written before its header has been read and found to be a result table of the same space: opening
anything else (a recipe, a JSON file, another space's table) is a one-line error and leaves the file untouched.

Several processes may share one table: `claim(key)` reserves a subnet before it is evaluated (a file per key in
`<table>.claims/`, made and checked under the table's lock), so each subnet is evaluated once. A claim whose process
is no longer alive on this host is taken over; a claim made on another host is trusted until its record arrives.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

from supernets import Arch, SearchSpace, space_from_dict, space_to_dict

try:
    import fcntl
except ImportError:  # Windows: one process per table (no cross-process locking there)
    fcntl = None  # type: ignore[assignment]

__all__ = ["ResultTable", "read_table", "read_scores", "pid_alive"]

TABLE_FORMAT = "oneshot-results"


class ResultTable:
    """A JSONL table of per-subnet records for one space; `get(key)` finds earlier results."""

    def __init__(self, path: str | os.PathLike, space: SearchSpace, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.space = space
        self._records: dict[str, dict[str, Any]] = {}
        self._offset = 0  # bytes of the file already read into _records
        self._lines = 1  # lines already read (for error messages)
        if self.path.is_dir():
            raise IsADirectoryError(21, "is a folder, not a result table", str(self.path))
        if self.path.exists() and self.path.stat().st_size > 0:
            self._open_existing()  # read-only: refuses a foreign file before anything is written
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked("a+b") as f:  # "a+" creates a missing file and never changes an existing one
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:  # still empty under the lock: we write the header (another process did not)
                self.meta = dict(meta or {})
                header = {"format": TABLE_FORMAT, "space": space_to_dict(space), "fingerprint": space.fingerprint,
                          "meta": self.meta}
                _write_line(f, header)
                self._offset = f.tell()
                return
        self._open_existing()

    def _open_existing(self) -> None:
        # Under the lock: a line another process is writing right now is not mistaken for a torn one.
        with self._locked("rb") as f:
            data = f.read()
        header, records, self._offset, self._lines = _parse(data, self.path)
        fp = header.get("fingerprint")
        if fp != self.space.fingerprint:
            raise ValueError(
                f"result table {str(self.path)!r} belongs to space {header.get('space', {}).get('name')!r} "
                f"({fp}), not {self.space.name!r} ({self.space.fingerprint}); use another file"
            )
        self.meta = header.get("meta", {})
        self._line_of: dict[str, int] = {}
        for lineno, r in records:
            _keep(self._records, self._line_of, r, lineno, self.path)

    @contextlib.contextmanager
    def _locked(self, mode: str = "ab") -> Iterator[IO[bytes]]:
        """The table file opened in `mode`, under an exclusive lock shared by every process using it."""
        with open(self.path, mode) as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield f
            finally:
                if fcntl is not None:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def refresh(self) -> None:
        """Read records that other processes appended since this table was opened or last refreshed."""
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written (or torn) is read once complete
        line_of = getattr(self, "_line_of", {})
        for line in data[:end].decode("utf-8").split("\n")[:-1]:
            self._lines += 1
            if line.strip():
                _keep(self._records, line_of, _record(line, self.path, self._lines), self._lines, self.path)
        self._line_of = line_of
        self._offset += end

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
        with self._locked("r+b") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):  # torn by a crash (writers hold the lock, so none is mid-write)
                f.truncate(data.rfind(b"\n") + 1)
            f.seek(0, os.SEEK_END)
            _write_line(f, record)
        self._records[record["key"]] = record

    def records(self) -> list[dict[str, Any]]:
        """All records, latest per key, in insertion order."""
        return list(self._records.values())

    def archs(self) -> Iterator[Arch]:
        """The subnets of all records, parsed in this table's space."""
        for r in self._records.values():
            yield Arch.from_str(self.space, r["arch"])

    # ----------------------------------------------------------------------- claims (several processes, one table)
    @property
    def claims_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".claims")

    def _claim_file(self, key: str) -> Path:
        return self.claims_dir / f"{key}.claim"

    def claim(self, key: str) -> bool:
        """Reserve `key` for this process; False when it has a record already or a live process holds it."""
        with self._locked("ab"):
            self.refresh()
            if key in self._records:
                return False
            file = self._claim_file(key)
            if file.exists() and self._holder_alive(file):
                return False
            self.claims_dir.mkdir(exist_ok=True)
            file.write_text(f"{socket.gethostname()} {os.getpid()}\n")
            return True

    def release(self, key: str) -> None:
        """Drop this process's claim on `key` (after its record is stored, or when giving up)."""
        with self._locked("ab"):
            self._claim_file(key).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.claims_dir.rmdir()  # only when no claim is left

    def held_elsewhere(self, key: str) -> bool:
        """Whether a live process other than this one holds a claim on `key`."""
        file = self._claim_file(key)
        return file.exists() and self._holder_alive(file) and not _is_me(file)

    @staticmethod
    def _holder_alive(file: Path) -> bool:
        try:
            host, pid = file.read_text().split()
        except (OSError, ValueError):
            return False  # vanished or unreadable: nobody to wait for
        return host != socket.gethostname() or pid_alive(int(pid))


def _is_me(file: Path) -> bool:
    try:
        return file.read_text().split() == [socket.gethostname(), str(os.getpid())]
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _write_line(f: IO[bytes], obj: dict[str, Any]) -> None:
    f.write((json.dumps(obj, sort_keys=True) + "\n").encode("utf-8"))  # one write: a record is whole or torn
    f.flush()
    os.fsync(f.fileno())


def _record(line: str, path: Path, lineno: int) -> dict[str, Any]:
    try:
        r = json.loads(line)
    except json.JSONDecodeError:
        raise ValueError(f"{str(path)!r} has a corrupt record on line {lineno}") from None
    if not isinstance(r, dict) or "key" not in r or "arch" not in r:
        raise ValueError(f"{str(path)!r} line {lineno}: a record needs 'key' and 'arch' fields")
    return r


# Fields that differ between two evaluations of one subnet without the result differing.
_VOLATILE = ("code_version", "checkpoint_path", "seconds")


def _result_of(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _VOLATILE and not k.endswith("_seconds")}


def _keep(records: dict[str, dict[str, Any]], line_of: dict[str, int], r: dict[str, Any], lineno: int,
          path: Path) -> None:
    """Add record `r` (read on `lineno`) to `records`, the later line winning; a key seen before with another value
    of a field both lines hold is an error naming both lines. (A later line may add fields: a proxy table adds
    the columns of proxies asked for later to a subnet's record.)"""
    key = r["key"]
    old = records.get(key)
    a, b = (_result_of(old), _result_of(r)) if old is not None else ({}, {})
    diff = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
    if diff:
        shown = "; ".join(f"{k} {a[k]!r} vs {b[k]!r}" for k in diff[:3])
        raise ValueError(f"{str(path)!r} lines {line_of.get(key, '?')} and {lineno} both hold subnet {r.get('arch')!r} "
                         f"(key {key}) with different results ({shown}); delete the wrong line")
    if old is None:
        line_of[key] = lineno
    records[key] = r


def _parse(data: bytes, path: Path) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]], int, int]:
    """(header, (line number, record) pairs, bytes of whole lines, lines read) of a table's bytes; refuses anything
    not a table, and says on stderr when a torn last line (a crash mid-write) is skipped."""
    first = data.split(b"\n", 1)[0]
    try:
        header = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != TABLE_FORMAT:
        raise ValueError(f"{str(path)!r} is not a oneshot result table (no '{TABLE_FORMAT}' header on line 1); "
                         "give another file")
    end = data.rfind(b"\n") + 1  # a final line without its newline is torn by a crash: not read, cut on next add
    lines = data[:end].decode("utf-8", errors="replace").split("\n")[:-1]
    records = [(i, _record(line, path, i)) for i, line in enumerate(lines[1:], start=2) if line.strip()]
    if data[end:].strip():
        print(f"note: {str(path)!r} line {len(lines) + 1} is torn (a write cut short by a crash): skipped; that "
              "subnet counts as not evaluated", file=sys.stderr, flush=True)
    return header, records, end, len(lines)


def read_table(path: str | os.PathLike) -> tuple[SearchSpace, list[dict[str, Any]]]:
    """Open a result table without knowing its space in advance: (space, records, latest per key)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a result table", str(path))
    if not path.is_file():
        raise FileNotFoundError(f"result table {str(path)!r} does not exist")
    with open(path, "rb") as f:  # under the table's lock: a line being written now is not taken for a torn one
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        data = f.read()
    header, records, _, _ = _parse(data, path)
    space = space_from_dict(header["space"])
    latest: dict[str, dict[str, Any]] = {}
    line_of: dict[str, int] = {}
    for lineno, r in records:
        _keep(latest, line_of, r, lineno, path)
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
