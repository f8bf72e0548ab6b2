"""oneshot: train a weight-sharing supernet once, score, predict, search, extract and retrain its subnets.

The engine is a folder per stage, in the order data flows through a run; each imports only the stages above it
in this list (and `supernets`, `predictors`), never one below:

    recipe.py, table.py, threads.py, version.py   config, result tables, CPU threads, code version
    data/       DataModules with train / holdout / test splits
    training/   path samplers, the supernet LightningModule, optimizer factories, checkpoint I/O, train(recipe)
    score/      BN recalibration, evaluation, latency, the objectives search maximizes
    study/      Optuna search: space mapping, budgets, search samplers, storage, the loop, results
    deploy/     extraction of standalone subnets, retraining
    pipeline/   the run folder, the phases of `oneshot run`, the report
    cli/        the `oneshot` command: argument definitions, the engine imported when a command runs
"""

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
    "search": "oneshot.study.search",
    "LatencyModel": "oneshot.score.latency",
    "run_pipeline": "oneshot.pipeline",
    "train": "oneshot.training.trainer",
    "load_supernet": "oneshot.training.checkpoint",
    "evaluate": "oneshot.score.evaluate",
    "recalibrate_bn": "oneshot.score.bn",
    "CalibrationSet": "oneshot.score.bn",
    "TabularBenchmark": "oneshot.score.tabular",
    "fidelity": "oneshot.score.fidelity",
    "extract_subnets": "oneshot.deploy.extract",
    "retrain_subnets": "oneshot.deploy.retrain",
    "rank_agreement": "oneshot.deploy.retrain",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'oneshot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
