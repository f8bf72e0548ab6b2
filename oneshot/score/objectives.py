"""Objectives that search maximizes: `arch -> score` callables built from what a user names.

Search (`oneshot.study`) only ever calls an objective; everything that loads a checkpoint, data or a predictor file
to score a subnet lives here. `resolve_objective(target, objective)` turns the `search(...)` arguments into
(space, callable, short name, identity); the identity says what the scores mean (a checkpoint's weights and the
evaluation settings, a predictor file's digest, a callable's qualified name) so that a saved study is never resumed
with another objective:

- a callable `arch -> float` is used as is (e.g. a lookup into a benchmark's table);
- `"supernet"` with a checkpoint path: holdout accuracy after BN recalibration, through the checkpoint's
  evaluation table (`supernet_objective`);
- a fitted predictor, or `"predictor:PATH"`: the predictor's mean (`predictor_objective`);
- `"synthetic:KIND[,NOISE]"`: `predictors.synthetic.make_objective` (demos and tests).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from supernets.registry import get_space, list_supernets, space_from_dict
from supernets.space import Arch, SearchSpace

__all__ = ["Objective", "ResolvedObjective", "resolve_objective", "supernet_objective", "predictor_objective", "checkpoint_space",
           "safe_name"]

Objective = Callable[[Arch], float]


def safe_name(name: str) -> str:
    """`name` reduced to characters safe in file and study names."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", name).strip("-") or "search"


class ResolvedObjective(NamedTuple):
    """An objective ready for search: its space, the callable, a short name for study names, and its identity."""

    space: SearchSpace
    fn: Objective
    name: str
    identity: str  # what the scores mean, e.g. "supernet weights=... data=... calib=4x128 seed=0"


def resolve_objective(target: SearchSpace | str | Path | None, objective: Any,
                      evaluate_args: Mapping[str, Any] | None = None, proxies: Any = None) -> ResolvedObjective:
    """(space, `arch -> score`, short name, identity) from the user's target and objective arguments; `proxies`:
    the proxy source a predictor file fitted with `zc` features needs to encode new subnets."""
    if isinstance(objective, str) and objective.startswith("predictor:"):
        from predictors import load_predictor

        path = Path(objective.split(":", 1)[1])
        pred = load_predictor(path, proxies=proxies)  # None: as without proxies (a zc encoding then says so)
        space = pred.space if target is None else _space_of(target)
        _check_same_space(space, pred.space, "predictor file")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return ResolvedObjective(space, predictor_objective(pred), f"predictor-{pred.name}",
                                 f"predictor file sha256={digest}")
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
            return ResolvedObjective(space, make_objective(space, kind, noise=noise, seed=0), f"synthetic-{kind}",
                                     f"synthetic {kind} noise={noise:g}")
        raise ValueError(f"unknown objective {objective!r}; give a callable arch -> float, a fitted predictor, "
                         "'supernet' (with a checkpoint), 'predictor:PATH' or 'synthetic:additive|pairwise'")
    if hasattr(objective, "predict") and hasattr(objective, "fit"):
        _check_same_space(space, objective.space, "predictor")
        name = getattr(objective, "name", "model")
        # An in-memory predictor has no file to digest: its type names it (save it and pass "predictor:PATH" for
        # a study that can tell two fitted predictors apart).
        return ResolvedObjective(space, predictor_objective(objective), f"predictor-{name}",
                                 f"predictor object {_qualname(objective)}")
    if callable(objective):
        name = getattr(objective, "__name__", type(objective).__name__)
        # A callable may say what tells it apart from others of its name (closures of one factory share it), as
        # `predictors.synthetic.make_objective` does.
        extra = getattr(objective, "identity", None)
        return ResolvedObjective(space, objective, "objective" if name == "<lambda>" else safe_name(name),
                                 f"callable {_qualname(objective)}" + (f" [{extra}]" if extra else ""))
    raise TypeError(f"objective must be callable or a string, got {type(objective).__name__}")


def _qualname(obj: Any) -> str:
    """`module.Qualified.name` of a function, or of an object's type."""
    target = obj if hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(target, '__module__', '?')}.{target.__qualname__}"


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
    from oneshot.training.checkpoint import read_checkpoint

    return space_from_dict(read_checkpoint(path)["oneshot"]["space"])


def supernet_objective(path: Path, evaluate_args: dict[str, Any]) -> ResolvedObjective:
    """Holdout accuracy after BN recalibration, through `oneshot.score.evaluate` and the checkpoint's result table.

    The supernet and its data are loaded once; each subnet is then evaluated (or read from
    `<checkpoint dir>/evaluations.jsonl` when an earlier run evaluated it with the same settings). `evaluate_args`
    go to `oneshot.score.evaluate.evaluate` (e.g. `calib_batches`, `batch_size`, `table`, `data` overrides).
    """
    import torch

    from oneshot.data import SplitDataModule
    from oneshot.training.checkpoint import load_supernet

    from .evaluate import (DEFAULT_CALIB_BATCH_SIZE, DEFAULT_CALIB_BATCHES, TABLE_NAME, _data_digest, datamodule_for,
                           evaluate)

    supernet, info = load_supernet(path)
    args = dict(evaluate_args)
    data = args.pop("data", None)
    dm = data if isinstance(data, SplitDataModule) else datamodule_for(info["data"], data)
    args.setdefault("table", path.parent / TABLE_NAME)
    args.setdefault("progress", False)

    def supernet_holdout_acc(arch: Arch) -> float:
        with torch.no_grad():
            return float(evaluate(supernet, [arch], data=dm, **args)[0]["holdout_acc"])

    # The same settings that key the evaluation table: weights, holdout data, calibration.
    calib = (f"{args.get('calib_batches', DEFAULT_CALIB_BATCHES)}x{args.get('calib_batch_size', DEFAULT_CALIB_BATCH_SIZE)}"
             f" seed={args.get('seed', 0)}")
    identity = f"supernet weights={info['checkpoint_id']} data={_data_digest(dm)} calib={calib}"
    return ResolvedObjective(supernet.space, supernet_holdout_acc, f"supernet-{safe_name(path.stem)}", identity)
