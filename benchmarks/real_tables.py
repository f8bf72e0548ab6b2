"""Real tabular benchmarks, fully scored, for the search and predictor benchmarks (NAS-Bench-Macro today).

`load_table(path, column)` reads NAS-Bench-Macro's JSON through `oneshot.score.tabular.TabularBenchmark` (6,561
strings of the `macro` space, 3,969 distinct networks, each trained three times on CIFAR-10; see SOURCE.md next
to the file) and returns a `RealTable`: every arch's score in accuracy points (%) and the space's `canonical`,
which sends equivalent strings (`22212220` and `22212202`) to one network. `column="mean"` is the mean of the
three runs (the benchmark's own target); `"run0"`, `"run1"`, `"run2"` are single training runs, a noisy
objective (seed-to-seed Kendall tau 0.88) used as a second real check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from oneshot.score.tabular import TabularBenchmark
from supernets import get_space
from supernets.space import Arch, SearchSpace

__all__ = ["RealTable", "load_table", "distinct_networks", "COLUMNS"]

COLUMNS = ("mean", "run0", "run1", "run2")


@dataclass
class RealTable:
    """A fully evaluated space: `scores[arch]` for every string of the space, `canonical(arch)` its network."""

    name: str
    space: SearchSpace
    scores: dict[Arch, float]

    @property
    def canonical(self) -> Callable[[Arch], Arch]:
        return self.space.canonical

    @property
    def archs(self) -> list[Arch]:
        return list(self.scores)

    def best(self) -> float:
        return max(self.scores.values())

    def optima(self) -> set[Arch]:
        """Canonical forms of the best networks (ties included)."""
        top = self.best()
        return {self.canonical(a) for a, s in self.scores.items() if s == top}


def load_table(path: str | Path, column: str = "mean") -> RealTable:
    """NAS-Bench-Macro's JSON as a `RealTable`; ValueError for an unknown column or a file of another space."""
    if column not in COLUMNS:
        raise ValueError(f"unknown column {column!r}; choose from {list(COLUMNS)}")
    try:
        bench = TabularBenchmark.load(path, get_space("macro"))
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    space = bench.space
    if len(bench) != len({space.canonical(a) for a in space}):
        raise ValueError(f"{str(path)!r} does not score every network of the macro space ({len(bench)} rows)")
    if column == "mean":
        score = bench.objective("mean_acc")
    else:
        run = int(column[-1])
        score = lambda arch: float(bench.record(arch)["test_acc"][run])  # noqa: E731
    return RealTable(f"nas-bench-macro[{column}]", space, {a: score(a) for a in space})


def distinct_networks(table: RealTable, seed: int, n: int | None = None) -> list[Arch]:
    """`n` (default all) archs of distinct networks in a random order, for predictor learning curves."""
    rng = np.random.default_rng(seed)
    by_network: dict[Arch, Arch] = {}
    archs = table.archs
    for i in rng.permutation(len(archs)):
        by_network.setdefault(table.canonical(archs[i]), archs[i])
    out = list(by_network.values())
    return out if n is None else out[:n]
