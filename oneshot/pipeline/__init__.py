"""Stage 7, the pipeline (the top layer): every phase of a recipe end to end, in one run folder, with a report.

`run_folder.py` is the run folder phases read and write; `phases.py` the phases and `run_pipeline`; `report.py`
the Markdown report with plots. The phase names live here, importable without torch (`oneshot run --help`).
"""

from __future__ import annotations

from oneshot import _shadow  # noqa: F401  (a clear error when 'oneshot' is a stray folder)

import importlib
from typing import Any

__all__ = ["PHASES", "DEFAULT_RECIPE", "PHASE_FUNCTIONS", "Run", "run_pipeline", "record_phase"]

DEFAULT_RECIPE = "digits"
PHASES = ("train", "evaluate", "predict", "calibrate", "search", "extract", "retrain", "report")

_LAZY = {"PHASE_FUNCTIONS": "oneshot.pipeline.phases", "run_pipeline": "oneshot.pipeline.phases",
         "Run": "oneshot.pipeline.run_folder", "record_phase": "oneshot.pipeline.run_folder"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'oneshot.pipeline' has no attribute {name!r}")
