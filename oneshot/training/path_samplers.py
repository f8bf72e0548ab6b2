"""Path samplers: which subnets of the supernet train on each step.

A sampler is a small object with its own seed. `paths(step)` is a pure function of (seed, step): the generator is
`np.random.default_rng([seed, step])`, so every DDP rank draws the same paths for a step without talking to the
others, and a run resumed from a checkpoint at step s draws exactly the paths the uninterrupted run would have.
The state to checkpoint is therefore just the sampler's name, seed and settings (`state_dict()`).

Path samplers are found by name (`create_path_sampler("fair", space, seed=0)`), as the recipe's `train.sampler` says:

- `fair`     FairNAS strict fairness: m paths per step that together activate every choice of every decision
             equally often (see `FairSampler` for the exact definition with conditional decisions; `exact=True`
             for spaces whose decisions have different numbers of choices).
- `uniform`  one uniformly drawn path per step (single-path one-shot, SPOS).
- `sandwich` the largest, the smallest and n random paths per step (BigNAS); with `distill=True` the largest path is
             a teacher whose soft outputs are the targets of the others (in-place distillation).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, ClassVar

import numpy as np

from supernets import Arch, SearchSpace
from supernets._registry import Registry

__all__ = [
    "PathSampler", "FairSampler", "UniformSampler", "SandwichSampler", "register_path_sampler",
    "create_path_sampler", "list_path_samplers", "path_sampler_from_state", "activation_counts",
]

_PATH_SAMPLERS: Registry[type[PathSampler]] = Registry("path sampler")


def register_path_sampler(cls: type[PathSampler]) -> type[PathSampler]:
    """Class decorator: make a path sampler creatable by its `name`."""
    return _PATH_SAMPLERS.register(cls)


def list_path_samplers(pattern: str = "*") -> list[str]:
    """Registered path sampler names matching a shell-style pattern, sorted."""
    return _PATH_SAMPLERS.list(pattern)


def create_path_sampler(name: str, space: SearchSpace, seed: int = 0, **kwargs: Any) -> PathSampler:
    """Build a registered path sampler, e.g. `create_path_sampler("sandwich", space, seed=1, num_random=2)`."""
    cls = _PATH_SAMPLERS.get(name)
    try:
        return cls(space, seed=seed, **kwargs)
    except TypeError as exc:  # unknown keyword from a recipe's sampler_args
        raise ValueError(f"bad arguments {kwargs} for sampler {name!r}: {exc}") from None


def path_sampler_from_state(space: SearchSpace, state: dict[str, Any]) -> PathSampler:
    """Rebuild a sampler from `state_dict()` output (as stored in a supernet checkpoint)."""
    sampler = create_path_sampler(state["name"], space, seed=int(state["seed"]), **state.get("args", {}))
    sampler.load_state_dict(state)
    return sampler


class PathSampler:
    """Base class: `paths(step)` lists the subnets that run forward/backward on one batch before one optimizer step.

    Subclasses implement `_paths(rng)` and list their constructor settings in `args()`; `teacher` is True when the
    first path is meant as a distillation teacher for the rest.
    """

    name: ClassVar[str] = ""
    teacher: bool = False

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = int(seed)

    def rng(self, step: int) -> np.random.Generator:
        """The generator for `step`: a function of (seed, step) only, identical on every rank and after resume."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        return np.random.default_rng([self.seed, int(step)])

    def paths(self, step: int) -> list[Arch]:
        """The subnets to train on optimizer step `step` (0-based)."""
        return self._paths(self.rng(step))

    def _paths(self, rng: np.random.Generator) -> list[Arch]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def paths_per_step(self) -> int:
        """How many forward/backward passes one step costs."""
        return len(self.paths(0))

    def args(self) -> dict[str, Any]:
        """Constructor settings besides space and seed (saved in the state, so the sampler can be rebuilt)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue drawing the same paths: name, seed, settings and the space's fingerprint."""
        return {"name": self.name, "seed": self.seed, "args": self.args(), "fingerprint": self.space.fingerprint}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the seed; refuses state of another sampler kind or space, or with other settings."""
        if state.get("name") != self.name:
            raise ValueError(f"sampler state is for {state.get('name')!r}, this sampler is {self.name!r}")
        if state.get("fingerprint") not in (None, self.space.fingerprint):
            raise ValueError(
                f"sampler state belongs to a space with fingerprint {state.get('fingerprint')}, "
                f"not {self.space.name!r} ({self.space.fingerprint})"
            )
        if state.get("args", {}) != self.args():
            raise ValueError(f"sampler state has settings {state.get('args')}, this {self.name!r} has {self.args()}")
        self.seed = int(state["seed"])

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.args().items())
        return f"{type(self).__name__}(space={self.space.name!r}, seed={self.seed}{args})"


@register_path_sampler
class FairSampler(PathSampler):
    """FairNAS strict fairness, extended to conditional decisions (elastic depth).

    One step draws m paths, m = the largest number of choices of any decision in the space. Decisions are filled
    in declaration order (parents first). For each decision, let P be the paths of this step in which it is active
    (all m paths for an unconditional decision) and n its number of choices: every choice is given to
    floor(|P| / n) paths of P, a random distinct subset of |P| mod n choices is given to one path more, and the
    resulting multiset is shuffled over P. Hence, within a step:

    - an unconditional decision with n = m choices activates each choice exactly once (FairNAS);
    - one with fewer choices activates each floor(m/n) or ceil(m/n) times, exact when n divides m;
    - a conditional decision (a block's kernel or expansion, which exists only when its stage is deep enough)
      is fair *among the paths that reach the block*: its choices' counts over those paths differ by at most one.

    Fairness for elastic depth is thus: every depth choice is drawn equally often (per step, as any unconditional
    decision), and the operators inside a block are balanced over the paths in which the block is active. Deeper
    blocks are active in fewer paths (block j runs in the paths whose depth exceeds j), so their weights are
    updated less often than those of first blocks; that is inherent to weight-shared depth and is not reweighted.
    The leftover choices of uneven decisions are drawn at random each step, so they are balanced in expectation.

    `exact=True` removes the leftovers when decisions have different numbers of choices (a ResNet space with 2
    widths and 3 expansions): m becomes the least common multiple of the unconditional decisions' choice counts
    (raised to a multiple of it that is at least the largest count), so every unconditional decision activates
    each choice exactly m/n times per step (count spread 0), at the price of m paths per step (6 instead of 3 for
    counts 2 and 3). Conditional decisions stay within one, as above. Spaces whose counts all divide the largest
    draw the same paths either way.
    """

    name = "fair"

    def __init__(self, space: SearchSpace, seed: int = 0, exact: bool = False) -> None:
        super().__init__(space, seed)
        self.exact = bool(exact)
        self.m = largest = max(len(d.choices) for d in space.decisions)
        if self.exact:
            step = math.lcm(*(len(d.choices) for d in space.decisions if d.when is None))
            self.m = step * -(-largest // step)  # the least multiple of the lcm that is >= the largest count

    def args(self) -> dict[str, Any]:
        # Only a non-default setting is saved, so states written before `exact` existed load unchanged.
        return {"exact": True} if self.exact else {}

    def _paths(self, rng: np.random.Generator) -> list[Arch]:
        values: list[dict[str, Any]] = [{} for _ in range(self.m)]
        for d in self.space.decisions:
            active = [i for i, v in enumerate(values) if self.space.is_active(d, v)]
            if not active:
                continue
            n = len(d.choices)
            q, r = divmod(len(active), n)
            picks = list(range(n)) * q + sorted(rng.choice(n, size=r, replace=False).tolist())
            for i, c in zip(active, rng.permutation(picks)):
                values[i][d.name] = d.choices[int(c)]
        return [self.space.make(v) for v in values]


@register_path_sampler
class UniformSampler(PathSampler):
    """Single-path one-shot (SPOS): one path per step, every active decision drawn uniformly."""

    name = "uniform"

    def _paths(self, rng: np.random.Generator) -> list[Arch]:
        return [self.space.sample(rng)]


@register_path_sampler
class SandwichSampler(PathSampler):
    """BigNAS sandwich rule: [largest, smallest, `num_random` uniform paths] per step.

    With `distill=True` the largest path comes first as a teacher: the training module fits it to the labels
    and the other paths to its detached soft outputs (in-place distillation).
    """

    name = "sandwich"

    def __init__(self, space: SearchSpace, seed: int = 0, num_random: int = 2, distill: bool = False) -> None:
        super().__init__(space, seed)
        if num_random < 0:
            raise ValueError(f"sandwich num_random must be >= 0, got {num_random}")
        self.num_random = int(num_random)
        self.distill = bool(distill)
        self.teacher = self.distill

    def _paths(self, rng: np.random.Generator) -> list[Arch]:
        return [self.space.largest(), self.space.smallest()] + [self.space.sample(rng) for _ in range(self.num_random)]

    def args(self) -> dict[str, Any]:
        return {"num_random": self.num_random, "distill": self.distill}


def activation_counts(space: SearchSpace, paths: list[Arch]) -> dict[str, Counter]:
    """Per decision, how often each choice is active in `paths` (inactive decisions count nothing)."""
    counts: dict[str, Counter] = {d.name: Counter({c: 0 for c in d.choices}) for d in space.decisions}
    for arch in paths:
        for name, value in arch.values:
            counts[name][value] += 1
    return counts

