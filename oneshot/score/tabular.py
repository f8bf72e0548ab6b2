"""Tabular benchmarks (e.g. NAS-Bench-Macro) as first-class objectives, costs and predictor training data.

A tabular benchmark maps each network of a space to what was measured when it was trained from scratch: accuracy
per seed, their mean, parameters, FLOPs. Loaded here it serves

- `objective("mean_acc")`: an `arch -> float` for `search(space, objective=...)`, ground truth for that space
  (its `identity` names the table's digest and the metric, so a saved study is never resumed on another table);
- `noisy_objective("test_acc")`: one seed's result per network, as a user training it once would observe;
- `costs()`: the table's own cost columns, for `search(..., costs=...)`;
- `to_arrays("mean_acc")`: (archs, scores) for `predictors.fit_predictors` / `cross_validate`.

```python
from oneshot.score.tabular import TabularBenchmark
table = TabularBenchmark.load("nas-bench-macro_cifar10.json", "macro")
result = search(table.space, objective=table.objective("mean_acc"), n_trials=50, seed=0)
archs, y = table.to_arrays("mean_acc")
```

Rows are keyed by the space's canonical form (`space.canonical`), so keys naming the same network share a record
and a query in any spelling finds it. When a table holds several rows for one network (trained separately), the row
whose key is the canonical spelling is served, else the first in the file. Files are JSON (`{key: {metric:
value or [values per seed]}}` or a list of objects with an `arch` field) or CSV (an `arch` column and metric
columns); both are read as data only, never executed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from supernets.space import Arch, SearchSpace

__all__ = ["TabularBenchmark"]

Value = float | list[float] | None


class TabularBenchmark:
    """Measured results per network of one space, looked up through the space's canonical form."""

    def __init__(self, space: SearchSpace, rows: Iterable[tuple], source: str = "<memory>") -> None:
        """`rows`: (arch string, {metric: number or list of numbers}[, location]) in file order; `source` and the
        location (e.g. "line 12") name a bad row in errors."""
        self.space = space
        self.source = source
        self._records: dict[Arch, dict[str, Value]] = {}
        self._spelled: dict[Arch, str] = {}  # the key each served record was read under
        self.n_rows = 0
        self._digest: str | None = None
        seen: dict[Arch, Any] = {}
        for i, row in enumerate(rows, start=1):
            key, record, where = (*row, f"row {i}")[:3]
            self.n_rows += 1
            arch = _parse_key(space, key, source, where)
            if arch in seen:
                raise ValueError(f"{source} {where}: key {key!r} appears twice (first at {seen[arch]})")
            seen[arch] = where
            values = _values(record, key, source, where)
            canon = space.canonical(arch)
            if canon not in self._records or arch == canon:
                self._records[canon] = values
                self._spelled[canon] = str(arch)
        if not self._records:
            raise ValueError(f"{source} holds no rows")

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike, space: SearchSpace | str, arch_column: str = "arch") -> TabularBenchmark:
        """Read a JSON or CSV table (by content, not by suffix) for `space` (a SearchSpace or a registered name)."""
        if isinstance(space, str):
            from supernets.registry import get_space

            space = get_space(space)
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"benchmark table {str(path)!r} does not exist")
        text = path.read_text(encoding="utf-8-sig")
        first = text.lstrip()[:1]
        rows = _json_rows(text, arch_column, str(path)) if first in ("{", "[") else _csv_rows(text, arch_column,
                                                                                             str(path))
        return cls(space, rows, source=str(path))

    # ------------------------------------------------------------------ lookup
    def __len__(self) -> int:
        """Number of distinct networks (rows naming the same network count once)."""
        return len(self._records)

    def __contains__(self, arch: Arch) -> bool:
        return self._canonical(arch) in self._records

    @property
    def metrics(self) -> list[str]:
        """Metric names present in at least one row, sorted."""
        return sorted({m for r in self._records.values() for m in r})

    @property
    def digest(self) -> str:
        """sha256 (16 hex digits) of what the table serves, whatever the file format: a saved study's objective
        identity, so a study is never resumed on another table."""
        if self._digest is None:
            text = json.dumps(sorted(self.to_records(), key=lambda r: r["arch"]), sort_keys=True)
            self._digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._digest

    def archs(self) -> list[Arch]:
        """One arch per network in the table: the key it was read under, in file order."""
        return [Arch.from_str(self.space, self._spelled[c]) for c in self._records]

    def record(self, arch: Arch) -> dict[str, Value]:
        """Everything measured for `arch`'s network (a copy); ValueError when the table lacks it."""
        canon = self._canonical(arch)
        try:
            return dict(self._records[canon])
        except KeyError:
            same = "" if canon == arch else f" (same network as {str(canon)!r})"
            raise ValueError(f"no row for subnet {str(arch)!r}{same} in {self.source} "
                             f"({len(self)} networks)") from None

    def value(self, arch: Arch, metric: str) -> float:
        """One scalar metric of `arch`; a per-seed list is averaged."""
        v = self.record(arch).get(metric)
        if v is None:
            raise ValueError(f"the row for {str(arch)!r} in {self.source} has no {metric!r}; "
                             f"metrics: {self.metrics}")
        return float(np.mean(v)) if isinstance(v, list) else v

    # ------------------------------------------------------------------ as objectives and costs
    def objective(self, metric: str = "mean_acc") -> Callable[[Arch], float]:
        """`arch -> metric` for `search(space, objective=...)`; checked now on every row, named after the metric."""
        self._check_metric(metric)

        def lookup(arch: Arch) -> float:
            return self.value(arch, metric)

        lookup.__name__ = f"table_{metric}"
        lookup.identity = f"table sha256={self.digest} metric={metric}"  # type: ignore[attr-defined]
        return lookup

    def noisy_objective(self, runs: str | Sequence[str] = "test_acc", seed: int = 0) -> Callable[[Arch], float]:
        """One training run per network, as a user training it once would see: a seeded pick among its runs.

        `runs` is a metric holding a list per row (the JSON form) or several scalar columns (CSV, e.g.
        `["acc_seed0", "acc_seed1"]`). The pick is a fixed function of (`seed`, network), so results do not depend
        on query order and equal networks get the same run.
        """
        columns = [runs] if isinstance(runs, str) else list(runs)
        if not columns:
            raise ValueError("noisy_objective needs at least one column of runs")
        for c in columns:
            self._check_metric(c)

        def one_run(arch: Arch) -> float:
            canon = self._canonical(arch)
            rec = self.record(canon)
            values = rec[columns[0]] if len(columns) == 1 else [rec[c] for c in columns]
            values = values if isinstance(values, list) else [values]
            h = hashlib.sha1(f"{seed}:{canon}".encode()).digest()
            return float(values[int.from_bytes(h[:8], "little") % len(values)])

        one_run.__name__ = f"table_{'_'.join(columns)}_run{seed}"
        one_run.identity = f"table sha256={self.digest} runs={columns} seed={seed}"  # type: ignore[attr-defined]
        return one_run

    def cost(self, metric: str) -> Callable[[Arch], float]:
        """The table's own cost column (e.g. `params`, `flops`) as `arch -> float`."""
        self._check_metric(metric)
        return lambda arch: self.value(arch, metric)

    def costs(self, metrics: Sequence[str] = ("params", "flops"), prefix: str = "table_") -> dict[str, Callable]:
        """`{prefix + metric: arch -> float}` for `search(..., costs=...)`, whose own `macs`/`flops`/`params` are
        reserved for the analytic model (for `macro` those equal the table: `macs` is its `flops`)."""
        return {prefix + m: self.cost(m) for m in metrics}

    # ------------------------------------------------------------------ as training data
    def to_arrays(self, metric: str = "mean_acc") -> tuple[list[Arch], np.ndarray]:
        """(archs, scores), one per network, for `fit_predictors(space, archs, scores)` or `cross_validate`."""
        self._check_metric(metric)
        archs = self.archs()
        return archs, np.array([self.value(a, metric) for a in archs], dtype=float)

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-able dict per network: `{"arch": key, **metrics}`."""
        return [{"arch": self._spelled[c], **r} for c, r in self._records.items()]

    # ------------------------------------------------------------------ internals
    def _canonical(self, arch: Arch) -> Arch:
        if not isinstance(arch, Arch):
            raise TypeError(f"expected an Arch of space {self.space.name!r}, got {type(arch).__name__}")
        if arch.space.fingerprint != self.space.fingerprint:
            raise ValueError(f"subnet {str(arch)!r} is from space {arch.space.name!r}, but {self.source} is a "
                             f"table of space {self.space.name!r}")
        return self.space.canonical(arch)

    def _check_metric(self, metric: str) -> None:
        for canon, rec in self._records.items():
            v = rec.get(metric)
            if v is None or (isinstance(v, list) and not v):
                raise ValueError(f"{self.source}: the row for {self._spelled[canon]!r} has no {metric!r}; "
                                 f"metrics: {self.metrics}")


def _parse_key(space: SearchSpace, key: Any, source: str, where: Any) -> Arch:
    if not isinstance(key, str):
        raise ValueError(f"{source} {where}: arch key must be a string, got {key!r}")
    try:
        return Arch.from_str(space, key)
    except ValueError as exc:
        raise ValueError(f"{source} {where}: key {key!r} is not a subnet of space {space.name!r}: {exc}") from None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _values(record: Any, key: str, source: str, where: Any) -> dict[str, Value]:
    """Metrics of one row: numbers or lists of numbers (CSV text is parsed); empty CSV cells are absent."""
    if not isinstance(record, Mapping):
        raise ValueError(f"{source} {where}: the row for {key!r} must be an object of metrics, "
                         f"got {type(record).__name__}")
    out: dict[str, Value] = {}
    for name, v in record.items():
        if v is None or v == "":
            continue
        if isinstance(v, str):
            v = v.strip()
            try:
                v = float(v)
            except ValueError:
                pass  # reported below as not a number
        items = v if isinstance(v, list) else [v]
        if not all(_is_number(x) for x in items):
            raise ValueError(f"{source} {where}: {name!r} of {key!r} must be a finite number or a list of them, "
                             f"got {v!r}")
        out[name] = [float(x) for x in items] if isinstance(v, list) else v
    return out


class _JsonPlace:
    """Where entry `index` (key `key`) sits in a JSON text; the line is searched for only when an error prints it."""

    def __init__(self, text: str, key: Any, index: int) -> None:
        self.text, self.key, self.index = text, key, index

    def __str__(self) -> str:
        pos = self.text.find(json.dumps(self.key)) if isinstance(self.key, str) else -1
        return f"entry {self.index}" + (f" (line {self.text.count(chr(10), 0, pos) + 1})" if pos >= 0 else "")


def _json_rows(text: str, arch_column: str, source: str) -> list[tuple[Any, Any, Any]]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"{source} {_JsonPlace(text, k, len(out) + 1)}: key {k!r} appears twice")
            out[k] = v
        return out

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    rows = []
    if isinstance(data, Mapping):
        for i, (key, rec) in enumerate(data.items(), start=1):
            rows.append((key, rec, _JsonPlace(text, key, i)))
    elif isinstance(data, list):
        for i, rec in enumerate(data, start=1):
            if not isinstance(rec, Mapping) or arch_column not in rec:
                raise ValueError(f"{source} entry {i}: expected an object with an {arch_column!r} field")
            key = rec[arch_column]
            rows.append((key, {k: v for k, v in rec.items() if k != arch_column}, _JsonPlace(text, key, i)))
    else:
        raise ValueError(f"{source}: expected a JSON object {{arch: {{metric: value}}}} or a list of rows")
    return rows


def _csv_rows(text: str, arch_column: str, source: str) -> list[tuple[Any, Any, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or arch_column not in reader.fieldnames:
        raise ValueError(f"{source}: a CSV table needs an {arch_column!r} column; header is {reader.fieldnames}")
    rows = []
    for rec in reader:
        if None in rec or None in rec.values():
            raise ValueError(f"{source} line {reader.line_num}: expected {len(reader.fieldnames)} fields "
                             f"{reader.fieldnames}")
        key = rec.pop(arch_column).strip()
        rows.append((key, rec, f"line {reader.line_num}"))
    return rows
