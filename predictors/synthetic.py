"""Synthetic accuracy functions with known structure over any space, for testing predictors and search.

`make_objective(space, kind, noise, seed)` returns a deterministic `arch -> float` that looks like an accuracy
(roughly 0.3-0.95): a main effect per (decision, choice), optionally pairwise interactions between decisions,
a log-cost trend so cheaper subnets tend to score lower (budgets then matter), and optional Gaussian noise
that is a fixed function of the arch (the same arch always returns the same value, as a lookup table would).
"""

from __future__ import annotations

import hashlib
import math
from typing import Callable

import numpy as np

from supernets.space import Arch, SearchSpace

__all__ = ["make_objective", "KINDS"]

KINDS = ("additive", "pairwise")


def make_objective(
    space: SearchSpace,
    kind: str = "additive",
    noise: float = 0.0,
    seed: int = 0,
    cost_weight: float = 1.0,
) -> Callable[[Arch], float]:
    """A deterministic synthetic score over `space` (see module docstring); `noise` is the std of the added noise."""
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic objective kind {kind!r}; allowed: {list(KINDS)}")
    rng = np.random.default_rng(seed)
    main = {(d.name, c): float(rng.normal()) for d in space.decisions for c in d.choices}
    # Ordinal trend: later (costlier) choices are better on average, as in real spaces.
    trend = {(d.name, c): cost_weight * i / max(1, len(d.choices) - 1) for d in space.decisions
             for i, c in enumerate(d.choices)}
    pairs: list[tuple[str, str, dict]] = []
    if kind == "pairwise":
        names = [d.name for d in space.decisions]
        for _ in range(max(1, len(names))):
            a, b = rng.choice(len(names), size=2, replace=False)
            da, db = space.decisions[a], space.decisions[b]
            table = {(x, y): float(rng.normal()) * 1.5 for x in da.choices for y in db.choices}
            pairs.append((da.name, db.name, table))
    scale = 1.0 / math.sqrt(len(space.decisions))

    def objective(arch: Arch) -> float:
        if arch.space.fingerprint != space.fingerprint:
            raise ValueError(f"arch {arch} is not from space {space.name!r}")
        z = 0.0
        for name, value in arch.values:
            z += main[(name, value)] + trend[(name, value)]
        for a, b, table in pairs:
            if a in arch and b in arch:
                z += table[(arch[a], arch[b])]
        acc = 0.3 + 0.65 / (1.0 + math.exp(-0.9 * z * scale))
        if noise > 0:  # a fixed function of the arch, in accuracy units
            h = int.from_bytes(hashlib.sha1(f"{seed}:{arch}".encode()).digest()[:8], "little")
            acc += noise * float(np.random.default_rng(h).normal())
        return acc

    # What tells two objectives of this factory apart (a search records it with a saved study).
    objective.identity = f"synthetic {kind} noise={noise:g} seed={seed} cost_weight={cost_weight:g}"  # type: ignore[attr-defined]
    return objective
