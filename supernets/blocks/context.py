"""The active subnet during a `BlockSupernet` forward: a context variable, set only inside that forward.

Blocks read their choices from here instead of holding an "active subnet" attribute (the Once-for-All pattern we
avoid): nothing survives a call, and two supernets (or two threads) never see each other's subnet.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any, Iterator

from torch import nn

__all__ = ["active_values", "activate", "values_for"]

# Value/Derived object -> its choice (or int) in the running subnet; None outside any BlockSupernet forward.
_ACTIVE: ContextVar[dict[Any, Any] | None] = ContextVar("oneshot_active_subnet", default=None)


@contextlib.contextmanager
def activate(values: dict[Any, Any]) -> Iterator[None]:
    """Make `values` the active subnet for the body; the previous state is restored on exit, even on error."""
    token = _ACTIVE.set(values)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def values_for(block: nn.Module) -> dict[Any, Any]:
    """The active values, or a one-line error naming `block` when it runs outside `BlockSupernet.forward`."""
    values = _ACTIVE.get()
    if values is None:
        name = getattr(block, "_block_name", None) or type(block).__name__
        raise RuntimeError(f"block {name!r} ran outside BlockSupernet.forward: run the supernet as "
                           f"supernet(x, arch), or extract(supernet, arch) for a plain module")
    return values


def active_values() -> dict[Any, Any] | None:
    """The active Value -> choice mapping, for user modules that read a Value themselves (None outside)."""
    return _ACTIVE.get()
