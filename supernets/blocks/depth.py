"""`ElasticDepth`: a sequence of blocks of which the subnet runs the first d."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from torch import nn

from .context import values_for
from .values import Value, as_spec

__all__ = ["ElasticDepth"]


class ElasticDepth(nn.Module):
    """Blocks (registered as `0`, `1`, ... like `nn.Sequential`) of which the first `depth` run, in order.

    depths: an int, a tuple of depths (an auto-named private decision) or a shared `Value`, each in 1..len(blocks).
    A decision used only by block i exists only when the depth exceeds i (a conditional decision of the space).
    """

    def __init__(self, blocks: Sequence[nn.Module], depths: Any) -> None:
        super().__init__()
        blocks = list(blocks)
        if not blocks or not all(isinstance(b, nn.Module) for b in blocks):
            raise TypeError("ElasticDepth needs a non-empty sequence of nn.Module blocks")
        for i, b in enumerate(blocks):
            self.add_module(str(i), b)
        spec = as_spec(depths, "depths")
        if not isinstance(spec, (int, Value)):
            raise TypeError("depths must be an int, a tuple of depths or a Value (not a Derived)")
        self.value = spec if isinstance(spec, Value) else Value((spec,))  # a fixed depth: a one-choice decision
        self.fixed = not isinstance(spec, Value)

    def block_specs(self) -> list[tuple[str, Value]]:
        return [] if self.fixed else [("depth", self.value)]

    def block_problem(self) -> str | None:
        c = self.value.choices
        bad = [d for d in c if not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= len(self)]
        if bad:
            return f"depth choice {bad[0]!r} is outside 1..{len(self)} (it holds {len(self)} blocks)"
        if list(c) != sorted(c):
            return f"depth choices must be increasing (cheapest first), got {list(c)}"
        return None

    def depth(self, values: dict[Any, Any]) -> int:
        """The number of blocks the active subnet runs."""
        return self.value.choices[0] if self.fixed else values[self.value]

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> nn.Module:
        return list(self._modules.values())[i]

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self._modules.values())

    def forward(self, x: Any) -> Any:
        d = self.depth(values_for(self))
        for i, block in enumerate(self._modules.values()):
            if i == d:
                break
            x = block(x)
        return x
