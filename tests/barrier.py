"""A file barrier between processes: each one touches `<tag>-<who>` in a shared folder, then waits until `n` have."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def meet(folder: str | os.PathLike, tag: str, who: object, n: int, timeout: float = 300,
         alive: Callable[[], None] | None = None) -> None:
    """Arrive as `who` at the barrier `tag` and wait for `n` arrivals (until `timeout`); `alive` is called while
    waiting (e.g. to fail at once if the other process died)."""
    Path(folder, f"{tag}-{who}").touch()
    deadline = time.time() + timeout
    while sum(name.startswith(f"{tag}-") for name in os.listdir(folder)) < n and time.time() < deadline:
        if alive is not None:
            alive()
        time.sleep(0.02)


def worker_env() -> dict[str, str]:
    """This environment with the tests folder on PYTHONPATH, so that a `python -c` worker can import this module."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])]))
