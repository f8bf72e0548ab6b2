"""Which subnets to measure when each measurement is expensive: a balanced design that covers every choice.

A latency model (or any additive cost model) has one term per (decision, choice). Random draws leave some of those
terms with one or two observations among 60 subnets and others with thirty; a balanced design gives every choice
of every decision about the same number of appearances, so 60 timings inform every term. The design here is
strict fair sampling across subnets: each new subnet takes, for every active decision, the choice that has
appeared least often so far (ties broken by the caller's generator), walking decisions in declaration order so a
conditional decision only counts where it exists. Coverage of a conditional decision follows its parent's balance
(e.g. a third block appears in the third of subnets of depth 3), which fair sampling gives without forcing.

`covering_design(space, n, seed)` = the smallest subnet, the largest, `cover` balanced subnets, then random draws
(the SPOS distribution) up to `n` distinct subnets; random draws add interaction patterns a balanced sequence
repeats less often.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .space import Arch, Choice, SearchSpace

__all__ = ["covering_design", "choice_counts"]


def choice_counts(space: SearchSpace, archs: list[Arch]) -> dict[tuple[str, Choice], int]:
    """How often each (decision, choice) appears among `archs` (inactive decisions do not count); zeros included."""
    counts: Counter[tuple[str, Choice]] = Counter()
    for a in archs:
        counts.update(a.values)
    return {(d.name, c): counts[(d.name, c)] for d in space.decisions for c in d.choices}


def _fair(space: SearchSpace, counts: dict[tuple[str, Choice], int], rng: np.random.Generator) -> Arch:
    """One subnet taking, per active decision, a least-seen choice (uniformly among ties)."""
    chosen: dict[str, Choice] = {}
    for d in space.decisions:
        if not space.is_active(d, chosen):
            continue
        seen = np.array([counts[(d.name, c)] for c in d.choices])
        least = np.flatnonzero(seen == seen.min())
        chosen[d.name] = d.choices[int(least[rng.integers(len(least))])]
    return Arch(space, tuple(chosen.items()))


def covering_design(space: SearchSpace, n: int, seed: int = 0, cover: int | float = 0.5) -> list[Arch]:
    """`n` distinct subnets to measure: smallest, largest, a balanced covering part, random draws for the rest.

    `cover`: how many of the subnets come from fair sampling, as a count or (below 1) a fraction of `n`; it is
    raised to the number of choices of the widest decision so that, where the space allows, every choice of every
    unconditional decision appears at least once. Fewer than `n` come back only when the space has fewer subnets.
    """
    if n < 1:
        raise ValueError(f"a design needs at least 1 subnet, got n={n}")
    rng = np.random.default_rng(seed)
    total = space.size()
    n = min(n, total)
    out: dict[Arch, None] = dict.fromkeys([space.smallest(), space.largest()][:n])
    counts = choice_counts(space, list(out))
    widest = max(len(d.choices) for d in space.decisions)
    n_cover = min(n, len(out) + max(widest, int(round(cover * n)) if cover < 1 else int(cover)))

    def add(arch: Arch) -> None:
        if arch not in out:
            out[arch] = None
            counts.update({k: counts[k] + 1 for k in arch.values})

    stale = 0
    while len(out) < n_cover and stale < 100:  # fair draws can repeat in tiny spaces; stop adding after 100 repeats
        before = len(out)
        add(_fair(space, counts, rng))
        stale = stale + 1 if len(out) == before else 0
    while len(out) < n:
        add(space.sample(rng))
    return list(out)
