"""A test helper: an objective that records its calls and keeps the identity a saved study knows it by."""

from __future__ import annotations

import functools
from typing import Any, Callable


def counted(f: Callable[[Any], float]) -> tuple[list, Callable[[Any], float]]:
    """(calls, `f` recording each subnet it scores in `calls`), under `f`'s qualified name and `identity`: a saved
    study resumed with it sees the same objective."""
    calls: list = []

    @functools.wraps(f)
    def wrapper(arch: Any) -> float:
        calls.append(arch)
        return f(arch)

    return calls, wrapper
