"""Optimizers and LR schedules from recipe specs: the one factory every LightningModule of the project uses."""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["build_optimizer", "build_scheduler", "configure_optimizers"]


def build_optimizer(module: torch.nn.Module, spec: dict[str, Any]) -> torch.optim.Optimizer:
    """Any `torch.optim` class from a spec like `{"name": "SGD", "lr": 0.05, "momentum": 0.9}`.

    Weight decay applies to conv and linear weights only (tensors with more than one dimension); BN affine
    parameters and biases are not decayed.
    """
    spec = dict(spec)
    name = spec.pop("name", "SGD")
    cls = getattr(torch.optim, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        known = sorted(n for n, c in vars(torch.optim).items() if isinstance(c, type) and issubclass(c, torch.optim.Optimizer) and n != "Optimizer")
        raise ValueError(f"unknown optimizer {name!r} in train.optimizer; torch.optim has: {known}")
    params = [p for p in module.parameters() if p.requires_grad]
    decay = float(spec.pop("weight_decay", 0.0) or 0.0)
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    try:
        return cls([g for g in groups if g["params"]], **spec)
    except TypeError as exc:
        raise ValueError(f"bad train.optimizer arguments for {name}: {exc}") from None


def build_scheduler(optimizer: torch.optim.Optimizer, spec: dict[str, Any] | None, total_steps: int
                    ) -> torch.optim.lr_scheduler.LRScheduler | None:
    """An LR schedule stepped once per optimizer step.

    `{"name": "cosine", "warmup_steps": 0, "min_lr_ratio": 0.0}`: linear warmup, then cosine decay to
    min_lr_ratio * lr at `total_steps`. `{"name": "constant"}` or None: no schedule. Any other name is a class of
    `torch.optim.lr_scheduler` with its keyword arguments, e.g. `{"name": "StepLR", "step_size": 100}`.
    """
    if not spec or spec.get("name", "constant") == "constant":
        return None
    spec = dict(spec)
    name = spec.pop("name")
    if name == "cosine":
        warmup = int(spec.pop("warmup_steps", 0))
        floor = float(spec.pop("min_lr_ratio", 0.0))
        if spec:
            raise ValueError(f"unknown cosine schedule argument(s) {sorted(spec)}; known: warmup_steps, min_lr_ratio")
        total = max(1, int(total_steps))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    cls = getattr(torch.optim.lr_scheduler, name, None)
    if not isinstance(cls, type):
        raise ValueError(f"unknown LR schedule {name!r} in train.scheduler; use 'cosine', 'constant' or a "
                         f"torch.optim.lr_scheduler class name")
    try:
        return cls(optimizer, **spec)
    except TypeError as exc:
        raise ValueError(f"bad train.scheduler arguments for {name}: {exc}") from None


def configure_optimizers(module: torch.nn.Module, optimizer: dict[str, Any], scheduler: dict[str, Any] | None,
                         total_steps: int) -> Any:
    """What a LightningModule's `configure_optimizers` returns: the optimizer over `module`'s parameters, plus
    its schedule stepped once per optimizer step when there is one (`total_steps`: the trainer's estimate)."""
    opt = build_optimizer(module, optimizer)
    sched = build_scheduler(opt, scheduler, int(total_steps))
    if sched is None:
        return opt
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
