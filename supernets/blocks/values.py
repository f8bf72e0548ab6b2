"""`Value` and `Derived`: the choices a block takes as arguments, declared once and shared by every block using them.

A `Value` is one decision of the space. Passing the same `Value` object to several blocks makes them share it: that
is how widths tied by a residual add, a concat or the next layer's input are declared once, never kept in step by
hand. A `Derived` is an int computed from other Values (a bottleneck width from a stage width and an expansion); it
is not a decision. The names of the space's decisions are given here or derived from the module tree by
`BlockSupernet` (the path of the first block using a Value plus its role, e.g. `blocks.1.conv.kernel`).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence, Union

from ..space import Choice

__all__ = ["Value", "Derived", "Spec", "as_spec", "spec_max", "spec_parents", "describe_spec"]


class Value:
    """One decision: its choices listed cheapest first (`Value((8, 12, 16), name="width")`)."""

    def __init__(self, choices: Sequence[Choice], name: str | None = None) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise TypeError(f"Value choices must be a tuple or list, got {choices!r}")
        self.choices: tuple[Choice, ...] = tuple(choices)
        if not self.choices:
            raise ValueError("a Value has no choices" if name is None else f"Value {name!r} has no choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"Value {name!r} repeats a choice: {self.choices}")
        if name is not None and (not isinstance(name, str) or not name or "=" in name or "," in name):
            raise ValueError(f"Value name must be a non-empty string without '=' or ',', got {name!r}")
        self.name = name
        self.key: str | None = name  # the decision name in the space, set by BlockSupernet for auto-named Values

    def __repr__(self) -> str:
        return f"Value({list(self.choices)}, name={self.key or self.name!r})"


class Derived:
    """An int computed from other Values' choices by `fn` (e.g. `Derived(lambda w, e: w * e, width, expand)`)."""

    def __init__(self, fn: Callable[..., int], *values: Value | Derived) -> None:
        if not values or not all(isinstance(v, (Value, Derived)) for v in values):
            raise TypeError("Derived(fn, *values) needs at least one Value (or Derived) after the function")
        self.fn, self.values = fn, tuple(values)
        leaves: dict[Value, None] = {}
        for v in self.values:
            leaves.update(dict.fromkeys(v.leaves if isinstance(v, Derived) else (v,)))
        self.leaves: tuple[Value, ...] = tuple(leaves)  # the Values this depends on, directly or not, first-use order
        outs = {self.resolve(dict(zip(self.leaves, combo))) for combo in
                itertools.product(*(v.choices for v in self.leaves))}
        bad = [o for o in outs if not isinstance(o, int) or isinstance(o, bool) or o < 1]
        if bad:
            raise ValueError(f"Derived {getattr(fn, '__name__', fn)!r} must give positive ints, gave {bad[0]!r}")
        self.max, self.min = max(outs), min(outs)

    def resolve(self, values: dict[Any, Any]) -> int:
        """The int for the given Value -> choice mapping."""
        return self.fn(*(v.resolve(values) if isinstance(v, Derived) else values[v] for v in self.values))

    def __repr__(self) -> str:
        return f"Derived({getattr(self.fn, '__name__', 'fn')}, {', '.join(repr(v) for v in self.values)})"


Spec = Union[int, Value, Derived]


def as_spec(x: Any, what: str, choices_ok: bool = True) -> Spec:
    """A block argument as int (fixed), Value or Derived; a tuple/list becomes a private (auto-named) Value."""
    if isinstance(x, (Value, Derived)):
        return x
    if isinstance(x, bool):
        raise TypeError(f"{what} must be an int, a Value or a Derived, got {x!r}")
    if isinstance(x, int):
        if x < 1:
            raise ValueError(f"{what} must be positive, got {x}")
        return x
    if isinstance(x, (tuple, list)):
        if not choices_ok:
            raise TypeError(f"{what} cannot be a list of choices: pass the Value of the layer that produces it")
        return Value(tuple(x))
    raise TypeError(f"{what} must be an int, a tuple of choices, a Value or a Derived, got {x!r}")


def spec_max(s: Spec) -> int:
    """The largest int a spec takes (what a block allocates)."""
    if isinstance(s, int):
        return s
    if isinstance(s, Derived):
        return s.max
    return max(s.choices)  # type: ignore[type-var]


def spec_parents(s: Spec) -> tuple[Value, ...]:
    """The decisions a spec depends on."""
    if isinstance(s, Value):
        return (s,)
    if isinstance(s, Derived):
        return s.leaves
    return ()


def describe_spec(s: Spec) -> str:
    """How a spec reads in messages: `Value 'width'`, `fixed`, `Derived of 'a', 'b'`."""
    if isinstance(s, Value):
        return f"Value {s.key or s.name!r}"
    if isinstance(s, Derived):
        return "Derived of " + ", ".join(repr(v.key or v.name) for v in s.leaves)
    return "fixed"
