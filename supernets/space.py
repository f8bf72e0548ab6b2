"""Declarative, torch-free search spaces and the subnet value (`Arch`) that lives in them.

A `SearchSpace` is an ordered tuple of `Decision`s. A decision may be conditional: it only exists when an earlier
decision takes one of a set of values (e.g. a block's kernel size only matters when the stage is deep enough to
contain the block). Everything else in oneshot (supernets, samplers, predictor encodings, Optuna distributions) is
derived from this one description, so the lists of choices are written exactly once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator, Mapping, Protocol, Union

import numpy as np

Choice = Union[int, float, str]

__all__ = ["Choice", "Decision", "SearchSpace", "Arch", "ArchCodec", "KeyValueCodec", "ArchCanonicalizer"]


@dataclass(frozen=True)
class Decision:
    """One named architectural choice; `when=(parent, values)` makes it exist only for those parent values."""

    name: str
    choices: tuple[Choice, ...]
    when: tuple[str, tuple[Choice, ...]] | None = None

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"decision {self.name!r} has no choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"decision {self.name!r} repeats a choice: {self.choices}")

    def coerce(self, value: Any) -> Choice:
        """Map a value (possibly a string read from text or JSON) onto one of the choices, or raise naming them."""
        if value in self.choices and not isinstance(value, bool):
            for c in self.choices:  # return the declared object so 3 and 3.0 print alike
                if c == value and type(c) is type(value):
                    return c
            return next(c for c in self.choices if c == value)
        text = str(value).strip()
        for c in self.choices:
            if str(c) == text:
                return c
        raise ValueError(f"{value!r} is not a choice of decision {self.name!r}; allowed: {list(self.choices)}")


class ArchCodec(Protocol):
    """Turns an arch's decision values into the space's short string form and back."""

    def format(self, space: SearchSpace, values: Mapping[str, Choice]) -> str: ...

    def parse(self, space: SearchSpace, text: str) -> dict[str, Any]: ...


class ArchCanonicalizer(Protocol):
    """Maps an arch's decision values to those of one fixed representative of all archs computing the same network."""

    def canonical(self, space: SearchSpace, values: Mapping[str, Choice]) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class KeyValueCodec:
    """Generic string form `name=value,name=value` used by spaces without a dedicated notation."""

    def format(self, space: SearchSpace, values: Mapping[str, Choice]) -> str:
        return ",".join(f"{k}={v}" for k, v in values.items())

    def parse(self, space: SearchSpace, text: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in filter(None, text.strip().split(",")):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"cannot read {part!r} in arch string {text!r}: expected name=value")
            out[key.strip()] = value.strip()
        return out


@dataclass(frozen=True)
class SearchSpace:
    """A named, ordered set of decisions; `family` and `config` say how to rebuild the supernet it describes."""

    name: str
    decisions: tuple[Decision, ...]
    family: str = "generic"
    config: str = "{}"  # canonical JSON of the family config, kept as text so the space stays hashable
    codec: ArchCodec = field(default=KeyValueCodec(), compare=False, repr=False)
    # Families whose different strings can denote one network (nb201 dead edges, macro identities) provide this.
    canonicalizer: ArchCanonicalizer | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        seen: dict[str, Decision] = {}
        for d in self.decisions:
            if d.name in seen:
                raise ValueError(f"space {self.name!r} declares decision {d.name!r} twice")
            if d.when is not None:
                parent, allowed = d.when
                if parent not in seen:
                    raise ValueError(f"decision {d.name!r} depends on {parent!r}, which must be declared before it")
                bad = [v for v in allowed if v not in seen[parent].choices]
                if bad:
                    raise ValueError(f"decision {d.name!r} depends on values {bad} that {parent!r} does not have")
            seen[d.name] = d

    # ------------------------------------------------------------------ lookup
    @cached_property
    def by_name(self) -> dict[str, Decision]:
        """Decisions keyed by name, for O(1) lookup."""
        return {d.name: d for d in self.decisions}

    @cached_property
    def fingerprint(self) -> str:
        """Short hash of everything that defines the space, so archs of different spaces never compare equal."""
        blob = json.dumps([self.name, self.family, self.config, self.describe()], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def __getitem__(self, name: str) -> Decision:
        try:
            return self.by_name[name]
        except KeyError:
            raise ValueError(f"unknown decision {name!r} in space {self.name!r}; known: {list(self.by_name)}") from None

    def __len__(self) -> int:
        return len(self.decisions)

    def is_active(self, decision: Decision, values: Mapping[str, Any]) -> bool:
        """Whether `decision` exists given the values chosen so far (parents are always earlier)."""
        if decision.when is None:
            return True
        parent, allowed = decision.when
        return parent in values and values[parent] in allowed

    # ------------------------------------------------------------------ building archs
    def make(self, values: Mapping[str, Any]) -> Arch:
        """Validate and canonicalize decision values into an `Arch`; values of inactive decisions are dropped."""
        unknown = [k for k in values if k not in self.by_name]
        if unknown:
            raise ValueError(
                f"unknown decision(s) {unknown} for space {self.name!r}; known: {list(self.by_name)}"
            )
        chosen: dict[str, Choice] = {}
        for d in self.decisions:
            if not self.is_active(d, chosen):
                continue
            if d.name not in values:
                raise ValueError(f"missing decision {d.name!r} for space {self.name!r}; allowed: {list(d.choices)}")
            chosen[d.name] = d.coerce(values[d.name])
        return Arch(self, tuple(chosen.items()))

    def canonical(self, arch: Arch) -> Arch:
        """One fixed representative of every arch denoting the same network, so equal networks are scored once.

        Archs with equal `canonical` compute the same function (for any weights) and differ only in their string;
        use it as the key of score caches and to deduplicate training sets. Identity for spaces without a rule.
        """
        if not isinstance(arch, Arch) or arch.space.fingerprint != self.fingerprint:
            raise ValueError(f"canonical() of space {self.name!r} got {arch!r}, which is not an arch of this space")
        if self.canonicalizer is None:
            return arch
        return self.make(self.canonicalizer.canonical(self, arch.as_dict()))

    def sample(self, rng: np.random.Generator) -> Arch:
        """Draw each active decision uniformly with the caller's generator (the SPOS distribution)."""
        chosen: dict[str, Choice] = {}
        for d in self.decisions:
            if self.is_active(d, chosen):
                chosen[d.name] = d.choices[int(rng.integers(len(d.choices)))]
        return Arch(self, tuple(chosen.items()))

    def _pick(self, which: int) -> Arch:
        chosen: dict[str, Choice] = {}
        for d in self.decisions:
            if self.is_active(d, chosen):
                chosen[d.name] = d.choices[which]
        return Arch(self, tuple(chosen.items()))

    def smallest(self) -> Arch:
        """The subnet taking every decision's first choice (choices are declared cheapest first)."""
        return self._pick(0)

    def largest(self) -> Arch:
        """The subnet taking every decision's last choice (the most expensive one)."""
        return self._pick(-1)

    def __iter__(self) -> Iterator[Arch]:
        """Every distinct subnet once, in a fixed order; only sensible for small spaces (see `size`)."""

        def rec(i: int, chosen: dict[str, Choice]) -> Iterator[dict[str, Choice]]:
            if i == len(self.decisions):
                yield dict(chosen)
                return
            d = self.decisions[i]
            if not self.is_active(d, chosen):
                yield from rec(i + 1, chosen)
                return
            for c in d.choices:
                chosen[d.name] = c
                yield from rec(i + 1, chosen)
                del chosen[d.name]

        for values in rec(0, {}):
            yield Arch(self, tuple(values.items()))

    def size(self) -> int:
        """Number of distinct subnets, counted through the condition tree without enumerating."""
        children: dict[str | None, list[Decision]] = {}
        for d in self.decisions:
            children.setdefault(d.when[0] if d.when else None, []).append(d)

        def count(d: Decision) -> int:
            total = 0
            for c in d.choices:
                n = 1
                for child in children.get(d.name, []):
                    if c in child.when[1]:  # type: ignore[index]
                        n *= count(child)
                total += n
            return total

        n = 1
        for root in children.get(None, []):
            n *= count(root)
        return n

    def describe(self) -> list[dict[str, Any]]:
        """JSON-able description (name, choices, condition) from which Optuna distributions and encodings derive."""
        return [
            {"name": d.name, "choices": list(d.choices), "when": None if d.when is None else [d.when[0], list(d.when[1])]}
            for d in self.decisions
        ]


@dataclass(frozen=True, eq=False)
class Arch:
    """A subnet: the active decisions of one space with their values, canonical, hashable and printable."""

    space: SearchSpace
    values: tuple[tuple[str, Choice], ...]

    @cached_property
    def _dict(self) -> dict[str, Choice]:
        return dict(self.values)

    def __getitem__(self, name: str) -> Choice:
        try:
            return self._dict[name]
        except KeyError:
            self.space[name]  # raises for names the space does not know
            raise KeyError(f"decision {name!r} is inactive in {self}") from None

    def get(self, name: str, default: Any = None) -> Any:
        """Value of `name`, or `default` when the decision is inactive in this subnet."""
        return self._dict.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self._dict

    def as_dict(self) -> dict[str, Choice]:
        """The active decisions as a plain dict (a copy)."""
        return dict(self._dict)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Arch)
            and self.space.fingerprint == other.space.fingerprint
            and self.values == other.values
        )

    def __hash__(self) -> int:
        return hash((self.space.fingerprint, self.values))

    def __str__(self) -> str:
        return self.space.codec.format(self.space, self._dict)

    def __repr__(self) -> str:
        return f"Arch({self.space.name}: {self})"

    @classmethod
    def from_str(cls, space: SearchSpace, text: str) -> Arch:
        """Parse the space's string form; errors name the offending decision and its allowed choices."""
        if not isinstance(text, str):
            raise TypeError(f"arch string must be str, got {type(text).__name__}")
        return space.make(space.codec.parse(space, text))

    def to_json(self) -> dict[str, Any]:
        """JSON form: the space's name and fingerprint plus the string, enough to check provenance on load."""
        return {"space": self.space.name, "fingerprint": self.space.fingerprint, "arch": str(self)}

    @classmethod
    def from_json(cls, space: SearchSpace, data: Mapping[str, Any]) -> Arch:
        """Inverse of `to_json`; refuses an arch recorded for another space."""
        fp = data.get("fingerprint")
        if fp is not None and fp != space.fingerprint:
            raise ValueError(
                f"arch {data.get('arch')!r} was recorded for space {data.get('space')!r} (fingerprint {fp}), "
                f"not for {space.name!r} (fingerprint {space.fingerprint})"
            )
        return cls.from_str(space, data["arch"])

