"""Sane CPU thread defaults: oversubscribed OpenMP spin-waiting can make CPU training tens of times slower."""

from __future__ import annotations

import os

__all__ = ["available_cores", "configure_threads"]


def available_cores() -> int:
    """Cores this process may run on (respects affinity / container limits where the OS exposes them)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def configure_threads(threads: int | None = None) -> int:
    """Use `threads` torch intra-op threads (default: the available cores) and passive OpenMP waiting.

    Call before heavy work; OMP_WAIT_POLICY only takes effect if set before OpenMP starts, so the CLI sets it
    first thing. Returns the thread count in force.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    n = threads or available_cores()
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    return n
