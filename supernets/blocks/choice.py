"""`LayerChoice`: one of several candidate modules per subnet (the NAS-Bench-201 edge); `Zero`: the `none` op."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .context import values_for
from .values import Value

__all__ = ["LayerChoice", "Zero"]


class Zero(nn.Module):
    """The `none` op: zeros shaped like its input (an edge that contributes nothing)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class LayerChoice(nn.ModuleDict):
    """Runs the candidate the active subnet names; its decision's choices are the keys, cheapest first.

    Laid out like an `nn.ModuleDict` (state-dict names `<path>.<key>.<...>`). Several LayerChoices share one
    decision when given the same `Value` as `name` (one cell repeated); a string `name` names the decision.
    """

    def __init__(self, candidates: Mapping[str, nn.Module], name: str | Value | None = None) -> None:
        if not isinstance(candidates, Mapping) or not candidates:
            raise TypeError("LayerChoice needs a non-empty mapping of key -> candidate module")
        keys = tuple(candidates)
        bad = [k for k in keys if not isinstance(k, str) or not k or "." in k or "," in k or "=" in k]
        if bad:
            raise ValueError(f"LayerChoice keys must be non-empty strings without '.', ',' or '=', got {bad[0]!r}")
        not_modules = [k for k, m in candidates.items() if not isinstance(m, nn.Module)]
        if not_modules:
            raise TypeError(f"LayerChoice candidate {not_modules[0]!r} is not an nn.Module (use Zero() for 'none', "
                            f"nn.Identity() for the identity)")
        super().__init__(dict(candidates))
        if isinstance(name, Value):
            if tuple(name.choices) != keys:
                raise ValueError(f"LayerChoice keys {list(keys)} differ from the choices {list(name.choices)} of "
                                 f"its Value {name.key or name.name!r} (same keys in the same order)")
            self.value = name
        else:
            self.value = Value(keys, name=name)

    def block_specs(self) -> list[tuple[str, Value]]:
        return [("op", self.value)]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._modules[values_for(self)[self.value]](*args, **kwargs)  # type: ignore[misc]
