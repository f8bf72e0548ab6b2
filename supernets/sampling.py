"""Random subnets of a space: the one place that draws them beyond `SearchSpace.sample` itself.

`SearchSpace.sample(rng)` is the distribution (every active decision uniform, the SPOS path). Everything here is
built on it: distinct draws for evaluation, a new subnet that fits a budget for search, and a batched variant for
scoring thousands of candidates. Each takes the caller's generator, never a global one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Iterable

import numpy as np

from .space import Arch, SearchSpace

__all__ = ["SpaceExhausted", "ENUMERATE_LIMIT", "all_archs", "random_unseen", "sample_distinct", "sample_many"]

ENUMERATE_LIMIT = 200_000  # spaces up to this many subnets may be listed whole (nb201: 15,625)


class SpaceExhausted(RuntimeError):
    """Every subnet that fits the budget has been tried already."""


def _always(arch: Arch) -> bool:
    return True


@lru_cache(maxsize=8)
def all_archs(space: SearchSpace) -> tuple[Arch, ...]:
    """Every subnet of a small space, listed once per process."""
    if space.size() > ENUMERATE_LIMIT:
        raise ValueError(f"space {space.name!r} has {space.size():,} subnets, too many to list")
    return tuple(space)


def _networks(space: SearchSpace, archs: set[Arch] | frozenset[Arch]) -> set[Arch] | None:
    """Canonical forms of `archs`, or None for a space where every arch is its own network."""
    return None if space.canonicalizer is None else {space.canonical(a) for a in archs}


def random_unseen(space: SearchSpace, rng: np.random.Generator, seen: set[Arch] | frozenset[Arch],
                  feasible: Callable[[Arch], bool] = _always, max_draws: int = 2000,
                  networks: set[Arch] | None = None) -> Arch:
    """A uniform subnet that is `feasible`, not in `seen` and no network of `seen` again (`space.canonical`).

    `networks` is the set of canonical forms of `seen` when the caller keeps it (else it is computed here).
    Raises SpaceExhausted when no such subnet is left.
    """
    if networks is None:
        networks = _networks(space, seen)

    def new(a: Arch) -> bool:
        return a not in seen and (networks is None or space.canonical(a) not in networks) and feasible(a)

    for _ in range(max_draws):
        a = space.sample(rng)
        if new(a):
            return a
    if space.size() <= ENUMERATE_LIMIT:  # tight budget or nearly exhausted: list what is left
        pool = [a for a in all_archs(space) if new(a)]
        if pool:
            return pool[int(rng.integers(len(pool)))]
        raise SpaceExhausted(f"every subnet of {space.name!r} within the budget has been evaluated")
    raise SpaceExhausted(f"no new subnet within the budget found in {max_draws} random draws")


def sample_distinct(space: SearchSpace, n: int, rng: np.random.Generator, exclude: Iterable[Arch] = ()) -> list[Arch]:
    """`n` distinct uniform subnets (fewer only if the space is smaller), none of them in `exclude`."""
    seen, out = set(exclude), []
    for _ in range(max(0, min(n, space.size() - len(seen)))):
        try:
            arch = random_unseen(space, rng, seen)
        except SpaceExhausted:
            break
        seen.add(arch)
        out.append(arch)
    return out


def sample_many(space: SearchSpace, rng: np.random.Generator, n: int) -> list[Arch]:
    """`n` uniform subnets (as `space.sample`, with one generator call for the whole batch: candidate pools of
    thousands of subnets are drawn this way because per-decision generator calls dominate their cost)."""
    u = rng.random((n, len(space.decisions)))
    out = []
    for row in u:
        chosen: dict[str, Any] = {}
        for d, x in zip(space.decisions, row):
            if d.when is None or space.is_active(d, chosen):
                chosen[d.name] = d.choices[int(x * len(d.choices))]
        out.append(Arch(space, tuple(chosen.items())))
    return out
