"""Real tabular benchmarks for the search and predictor benchmarks: NAS-Bench-Macro read into our own types.

`load_table(path, column)` reads NAS-Bench-Macro's JSON (6,561 networks of an 8-layer MobileNetV2-style space,
each trained three times on CIFAR-10; see the SOURCE.md next to the file) and returns a `RealTable`: the space,
every arch's score (in accuracy points, %) and a `canonical` map that sends equivalent networks to one
representative. `column="mean"` is the mean of the three runs (the benchmark's own target); `"run0"`, `"run1"`,
`"run2"` are single training runs, a noisy objective (seed-to-seed Kendall tau 0.88) used as a second check.

Equivalence: an identity layer after a stage's first layer commutes with the other non-first layers of its
stage (stages are layers [0, 1], [2, 3, 4], [5, 6, 7]; a first layer has stride 2, so its identity is a
downsampling conv and is not a no-op). `22212220` and `22212202` are one network; 3,969 of the 6,561 strings
are distinct networks. The space's own `canonical` is used when the registered `macro` space provides one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from supernets.space import Arch, Decision, SearchSpace

__all__ = ["RealTable", "load_table", "macro_space", "COLUMNS", "STAGES"]

COLUMNS = ("mean", "run0", "run1", "run2")
STAGES = ((0, 1), (2, 3, 4), (5, 6, 7))  # NAS-Bench-Macro's layers per stage; the first of each has stride 2


def macro_space() -> SearchSpace:
    """The registered `macro` space when this tree has it, else an equivalent plain 8-decision space."""
    try:
        from supernets import get_space

        return get_space("macro")
    except (ValueError, KeyError, ImportError):
        return SearchSpace("macro", tuple(Decision(f"l{i}", (0, 1, 2)) for i in range(8)))


def _digits(arch: Arch) -> str:
    return "".join(str(v) for _, v in arch.values)


def _macro_canonical_key(digits: str) -> str:
    """Identities among a stage's non-first layers moved to the end: one string per distinct network."""
    out = []
    for stage in STAGES:
        first, rest = digits[stage[0]], [digits[i] for i in stage[1:]]
        kept = [c for c in rest if c != "0"]
        out.append(first + "".join(kept) + "0" * (len(rest) - len(kept)))
    return "".join(out)


@dataclass
class RealTable:
    """A fully evaluated space: `scores[arch]` in %, `canonical(arch)` the representative of its network."""

    name: str
    space: SearchSpace
    scores: dict[Arch, float]
    canonical: Callable[[Arch], Arch]

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
    """NAS-Bench-Macro's JSON as a `RealTable` (see module docstring); raises ValueError on another file."""
    if column not in COLUMNS:
        raise ValueError(f"unknown column {column!r}; choose from {list(COLUMNS)}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"table {str(path)!r} does not exist")
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict) or not all(isinstance(k, str) and len(k) == 8 and set(k) <= set("012")
                                            for k in raw):
        raise ValueError(f"{str(path)!r} is not NAS-Bench-Macro's JSON (8-digit keys over 0/1/2)")
    space = macro_space()
    by_digits: dict[str, Arch] = {}
    scores: dict[Arch, float] = {}
    for key, rec in raw.items():
        arch = space.make({d.name: int(c) for d, c in zip(space.decisions, key)})
        by_digits[key] = arch
        scores[arch] = float(rec["mean_acc"] if column == "mean" else rec["test_acc"][int(column[-1])])
    own = getattr(space, "canonical", None)
    if callable(own):
        canonical = own
    else:
        def canonical(arch: Arch) -> Arch:
            return by_digits[_macro_canonical_key(_digits(arch))]
    return RealTable(f"nas-bench-macro[{column}]", space, scores, canonical)


def distinct_networks(table: RealTable, seed: int, n: int) -> list[Arch]:
    """`n` random archs of distinct networks (one canonical form each), for predictor learning curves."""
    rng = np.random.default_rng(seed)
    seen: set[Arch] = set()
    out: list[Arch] = []
    archs = table.archs
    for i in rng.permutation(len(archs)):
        c = table.canonical(archs[i])
        if c not in seen:
            seen.add(c)
            out.append(archs[i])
            if len(out) == n:
                break
    return out
