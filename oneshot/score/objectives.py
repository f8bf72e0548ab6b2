"""Objectives that search maximizes: `arch -> score` callables built from what a user names.

Search (`oneshot.study`) only ever calls an objective; everything that loads a checkpoint, data or a predictor file
to score a subnet lives here. `resolve_objective(target, objective)` turns the `search(...)` arguments into
(space, callable, short name):

- a callable `arch -> float` is used as is (e.g. a lookup into a benchmark's table);
- `"supernet"` with a checkpoint path: holdout accuracy after BN recalibration, through the checkpoint's
  evaluation table (`supernet_objective`);
- a fitted predictor, or `"predictor:PATH"`: the predictor's mean (`predictor_objective`);
- `"synthetic:KIND[,NOISE]"`: `predictors.synthetic.make_objective` (demos and tests).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from supernets.registry import get_space, list_supernets, space_from_dict
from supernets.space import Arch, SearchSpace

__all__ = ["Objective", "resolve_objective", "supernet_objective", "predictor_objective", "checkpoint_space",
           "safe_name"]

Objective = Callable[[Arch], float]


def safe_name(name: str) -> str:
    """`name` reduced to characters safe in file and study names."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", name).strip("-") or "search"


def resolve_objective(target: SearchSpace | str | Path | None, objective: Any,
                      evaluate_args: Mapping[str, Any] | None = None) -> tuple[SearchSpace, Objective, str]:
    """(space, `arch -> score`, short name for study names) from the user's target and objective arguments."""
    if isinstance(objective, str) and objective.startswith("predictor:"):
        from predictors import load_predictor

        pred = load_predictor(objective.split(":", 1)[1])
        space = pred.space if target is None else _space_of(target)
        _check_same_space(space, pred.space, "predictor file")
        return space, predictor_objective(pred), f"predictor-{pred.name}"
    if objective is None or objective == "supernet":
        if not isinstance(target, (str, Path)) or not Path(target).is_file():
            raise ValueError("objective 'supernet' needs a checkpoint file as the first argument "
                             f"(got {target!r}); for a space, give objective=callable, 'predictor:PATH' or "
                             "'synthetic:additive'")
        return supernet_objective(Path(target), dict(evaluate_args or {}))
    space = _space_of(target)
    if isinstance(objective, str):
        if objective.startswith("synthetic:"):
            from predictors.synthetic import make_objective

            kind, *rest = objective.split(":", 1)[1].split(",")
            noise = float(rest[0]) if rest else 0.0
            return space, make_objective(space, kind, noise=noise, seed=0), f"synthetic-{kind}"
        raise ValueError(f"unknown objective {objective!r}; give a callable arch -> float, a fitted predictor, "
                         "'supernet' (with a checkpoint), 'predictor:PATH' or 'synthetic:additive|pairwise'")
    if hasattr(objective, "predict") and hasattr(objective, "fit"):
        _check_same_space(space, objective.space, "predictor")
        return space, predictor_objective(objective), f"predictor-{getattr(objective, 'name', 'model')}"
    if callable(objective):
        name = getattr(objective, "__name__", type(objective).__name__)
        return space, objective, "objective" if name == "<lambda>" else safe_name(name)
    raise TypeError(f"objective must be callable or a string, got {type(objective).__name__}")


def _space_of(target: SearchSpace | str | Path | None) -> SearchSpace:
    if isinstance(target, SearchSpace):
        return target
    if isinstance(target, str) and not Path(target).is_file():
        if target not in list_supernets():
            raise ValueError(f"unknown space {target!r}: not a file and not a registered space {list_supernets()}")
        return get_space(target)
    if isinstance(target, (str, Path)):
        return checkpoint_space(Path(target))
    raise TypeError(f"expected a SearchSpace, a space name or a checkpoint path, got {type(target).__name__}")


def _check_same_space(space: SearchSpace, other: SearchSpace, what: str) -> None:
    if space.fingerprint != other.fingerprint:
        raise ValueError(f"the {what} is for space {other.name!r} ({other.fingerprint}), not {space.name!r} "
                         f"({space.fingerprint})")


def predictor_objective(pred: Any) -> Objective:
    """A fitted predictor's mean as the objective (search over a surrogate instead of the supernet)."""
    def predicted(arch: Arch) -> float:
        mean, _ = pred.predict([arch])
        return float(np.asarray(mean).reshape(-1)[0])

    return predicted


def checkpoint_space(path: Path) -> SearchSpace:
    """The space a supernet checkpoint was trained on, read without building the supernet."""
    from oneshot.train.checkpoint import read_checkpoint

    return space_from_dict(read_checkpoint(path)["oneshot"]["space"])


def supernet_objective(path: Path, evaluate_args: dict[str, Any]) -> tuple[SearchSpace, Objective, str]:
    """Holdout accuracy after BN recalibration, through `oneshot.score.evaluate` and the checkpoint's result table.

    The supernet and its data are loaded once; each subnet is then evaluated (or read from
    `<checkpoint dir>/evaluations.jsonl` when an earlier run evaluated it with the same settings). `evaluate_args`
    go to `oneshot.score.evaluate.evaluate` (e.g. `calib_batches`, `batch_size`, `table`, `data` overrides).
    """
    import torch

    from oneshot.data import SplitDataModule, datamodule_from_info
    from oneshot.train.checkpoint import load_supernet

    from .evaluate import TABLE_NAME, evaluate

    supernet, info = load_supernet(path)
    args = dict(evaluate_args)
    data = args.pop("data", None)
    dm = data if isinstance(data, SplitDataModule) else datamodule_from_info(info["data"], **(data or {}))
    args.setdefault("table", path.parent / TABLE_NAME)
    args.setdefault("progress", False)

    def supernet_holdout_acc(arch: Arch) -> float:
        with torch.no_grad():
            return float(evaluate(supernet, [arch], data=dm, **args)[0]["holdout_acc"])

    return supernet.space, supernet_holdout_acc, f"supernet-{safe_name(path.stem)}"
