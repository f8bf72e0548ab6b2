"""oneshot: train a weight-sharing supernet once, score, predict, search, extract and retrain its subnets."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names, imported on first use so `import oneshot` stays cheap (the CLI starts fast).
_LAZY = {
    "load_recipe": "oneshot.recipe",
    "Recipe": "oneshot.recipe",
    "ResultTable": "oneshot.table",
    "configure_threads": "oneshot.threads",
    "search": "oneshot.search",
    "LatencyModel": "oneshot.latency",
    "run_pipeline": "oneshot.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'oneshot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
