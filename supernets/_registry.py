"""`Registry`: named things of one kind (spaces, datasets, samplers, predictors, encodings) behind one small API.

Every registry of the project is one of these, so registering, creating and listing read the same everywhere and a
name can never be registered twice. It lives in the bottom layer because supernets and predictors use it too.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable, Generic, Iterator, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Objects (classes or factory functions) found by name.

    kind: what the entries are, for error messages (`"predictor"` -> "unknown predictor 'x'; registered: [...]").
    key:  how an entry names itself when registered without a name (default: its `name` attribute, else
          `__name__`).
    sort: list names sorted (default) or in registration order (where the order says something, e.g. the
          recommended entries first).
    """

    def __init__(self, kind: str, key: Callable[[T], str] | None = None, sort: bool = True) -> None:
        self.kind = kind
        self.sort = sort
        self._key = key or (lambda obj: getattr(obj, "name", None) or obj.__name__)  # type: ignore[attr-defined]
        self._entries: dict[str, T] = {}

    def register(self, obj: T | None = None, *, name: str | None = None) -> Any:
        """Add `obj` under `name` (default: its own name); usable as `@reg.register` or `@reg.register(name=...)`."""
        if obj is None:
            return lambda o: self.register(o, name=name)
        key = name or self._key(obj)
        if not key:
            raise ValueError(f"{self.kind} {obj!r} needs a name")
        if key in self._entries:
            raise ValueError(f"{self.kind} {key!r} is already registered")
        self._entries[key] = obj
        return obj

    def get(self, name: str) -> T:
        """The entry registered as `name`; a one-line ValueError listing the registered names otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {self.list()}") from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the entry `name` (a class or factory) with the given arguments."""
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern (sorted, or in registration order)."""
        names = [n for n in self._entries if fnmatch.fnmatch(n, pattern)]
        return sorted(names) if self.sort else names

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"
