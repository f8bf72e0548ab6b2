"""The code version recorded with every checkpoint, evaluation and search result (one format everywhere)."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

__all__ = ["code_version"]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit of the source tree when there is one (`0.1.0+g1a2b3c4[.dirty]`)."""
    from oneshot import __version__

    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}{'.dirty' if dirty else ''}" if sha else __version__
