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
    entry_points: a Python entry-point group (e.g. `oneshot.spaces`) through which installed packages add
          entries: `name = package.module:object` in their metadata. Found on first `list`/`get` (so importing
          the registry stays cheap), and an entry point's module is imported only when its name is asked for;
          a name registered in code wins over an entry point of the same name.
    adapt: turns a loaded entry-point object into an entry (`adapt(name, obj)`), raising ValueError when it is
          not one; default: the object itself.
    """

    def __init__(self, kind: str, key: Callable[[T], str] | None = None, sort: bool = True,
                 entry_points: str | None = None, adapt: Callable[[str, Any], T] | None = None) -> None:
        self.kind = kind
        self.sort = sort
        self._key = key or (lambda obj: getattr(obj, "name", None) or obj.__name__)  # type: ignore[attr-defined]
        self._entries: dict[str, T] = {}
        self.group = entry_points
        self._adapt = adapt
        self._found: dict[str, Any] | None = None  # entry points of `group` by name, once looked up

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
        if self.group is not None and isinstance(name, str) and name not in self._entries:
            self._load(name)
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {self.list()}") from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the entry `name` (a class or factory) with the given arguments."""
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern (sorted, or in registration order)."""
        names = [n for n in [*self._entries, *self._pending()] if fnmatch.fnmatch(n, pattern)]
        return sorted(names) if self.sort else names

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._pending()

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries) + len(self._pending())

    # ----------------------------------------------------------------- entry points
    def _pending(self) -> dict[str, Any]:
        """Entry points of `group` whose names are not registered (yet): listed without importing anything."""
        if self.group is None:
            return {}
        if self._found is None:
            from importlib.metadata import entry_points

            self._found = {ep.name: ep for ep in entry_points(group=self.group)}
        return {n: ep for n, ep in self._found.items() if n not in self._entries}

    def _load(self, name: str) -> None:
        """Import the entry point `name` (if one is installed) and register what it names."""
        ep = self._pending().get(name)
        if ep is None:
            return
        where = f"entry point {name!r} ({ep.value}) in group {self.group!r}"
        try:
            obj = ep.load()
        except Exception as exc:  # whatever the package's import raises: one line naming the entry point
            raise ValueError(f"{where} does not load: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
        if self._adapt is not None:
            try:
                obj = self._adapt(name, obj)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        self._entries[name] = obj

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"
