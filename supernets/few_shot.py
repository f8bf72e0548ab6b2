"""Few-shot supernets: k copies of a one-shot supernet, one per choice of a split decision (Zhao et al. 2021).

Weight sharing couples subnets that compete for the same weights; splitting the supernet on one decision into k
sub-supernets removes the coupling across that decision. Each copy starts from the trained one-shot weights and
is fine-tuned only on the subnets it owns (those with `arch[split] == its choice`); every subnet is then run and
extracted through the copy that owns it. `FewShotSupernet` is itself a `Supernet` over the unchanged space, so
evaluation, search and extraction use it exactly as a one-shot supernet.

`restrict_space(space, split, choice)` is the space of the subnets one copy owns: the split decision narrowed to
`(choice,)`. Path samplers built on it draw only owned subnets, with their usual rules (fairness included).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch
from torch import nn

from .base import FamilyConfig, Supernet
from .space import Arch, Choice, Decision, SearchSpace

__all__ = ["FewShotSupernet", "restrict_space", "check_split"]


def check_split(space: SearchSpace, split: str) -> Decision:
    """The decision to split on; a one-line ValueError when it is unknown or conditional (absent in some subnets)."""
    if split not in space.by_name:
        raise ValueError(f"few-shot split {split!r} is not a decision of space {space.name!r}; known: "
                         f"{list(space.by_name)}")
    decision = space.by_name[split]
    if decision.when is not None:
        raise ValueError(f"few-shot split {split!r} exists only when {decision.when[0]!r} is in "
                         f"{list(decision.when[1])}: split on a decision every subnet has")
    if len(decision.choices) < 2:
        raise ValueError(f"few-shot split {split!r} has a single choice; there is nothing to split")
    return decision


def restrict_space(space: SearchSpace, split: str, choice: Choice) -> SearchSpace:
    """`space` with decision `split` narrowed to `(choice,)`: the subnets one few-shot copy owns.

    Decisions conditioned on `split` keep only the parent values that remain, so the restricted space is valid
    (its archs map to the full space with `space.make(arch.as_dict())`). Its fingerprint differs from the full
    space's: a restricted arch is never mistaken for an arch of the full space.
    """
    decision = check_split(space, split)
    choice = decision.coerce(choice)
    decisions = []
    for d in space.decisions:
        if d.name == split:
            d = dataclasses.replace(d, choices=(choice,))
        elif d.when is not None and d.when[0] == split:
            d = dataclasses.replace(d, when=(split, tuple(v for v in d.when[1] if v == choice)))
        decisions.append(d)
    return dataclasses.replace(space, decisions=tuple(decisions))


def _key(choice: Choice) -> str:
    """Module name of the copy owning `choice` (module names may not contain '.')."""
    return str(choice).replace(".", "_")


class FewShotSupernet(Supernet):
    """k copies of a family supernet, keyed by the split decision's choice; `forward(x, arch)` runs the owner.

    config: the family config (every copy is `config.build_supernet(name)`); name: the space's name.
    split:  an unconditional decision of the space; one copy per choice, in the decision's order.
    The copies are independent after `from_oneshot`; parameters count k times, compute per subnet is unchanged.
    """

    def __init__(self, config: FamilyConfig, name: str, split: str) -> None:
        super().__init__(config, name)
        self.split = split
        self.choices: tuple[Choice, ...] = check_split(self.space, split).choices
        keys = [_key(c) for c in self.choices]
        if len(set(keys)) != len(keys):
            raise ValueError(f"choices {list(self.choices)} of split {split!r} give clashing module names {keys}")
        self.copies = nn.ModuleDict({k: config.build_supernet(name) for k in keys})

    @classmethod
    def from_oneshot(cls, supernet: Supernet, split: str) -> FewShotSupernet:
        """Split a trained one-shot supernet: every copy starts as an exact copy of its weights and BN statistics."""
        if isinstance(supernet, FewShotSupernet):
            raise ValueError(f"supernet is already split on {supernet.split!r}; split a one-shot supernet")
        few = cls(supernet.config, supernet.space.name, split)
        state = supernet.state_dict()
        for copy in few.copies.values():
            copy.load_state_dict(state)
        ref = next(supernet.parameters())
        return few.to(device=ref.device, dtype=ref.dtype)

    def owner_key(self, arch: Arch) -> str:
        """Name of the copy that owns `arch` (under `copies.`)."""
        self.check_arch(arch)
        return _key(arch[self.split])

    def owner(self, arch: Arch) -> Supernet:
        """The copy that trains, runs and gives its weights to `arch`."""
        return self.copies[self.owner_key(arch)]  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:  # x: (B, C, H, W) -> (B, num_classes)
        return self.owner(arch)(x, arch)

    def weight_source(self, name: str, arch: Arch) -> str:
        key = self.owner_key(arch)
        return f"copies.{key}.{self.copies[key].weight_source(name, arch)}"

    def cut(self, name: str, big: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        # Copies are the same family, so any of them cuts a subnet tensor the same way.
        return next(iter(self.copies.values())).cut(name, big, shape)

    def few_shot_info(self) -> dict[str, Any]:
        """`{"split", "choices"}`: stored in checkpoints so `FewShotSupernet` is rebuilt from the file alone."""
        return {"split": self.split, "choices": list(self.choices)}

    @staticmethod
    def from_info(config: FamilyConfig, name: str, info: dict[str, Any]) -> FewShotSupernet:
        """Rebuild (untrained) from `few_shot_info()`; refuses a split whose choices no longer match the space."""
        few = FewShotSupernet(config, name, str(info["split"]))
        stored: Sequence[Any] = info.get("choices", few.choices)
        if [str(c) for c in stored] != [str(c) for c in few.choices]:
            raise ValueError(f"few-shot split {few.split!r} was made for choices {list(stored)}, the space has "
                             f"{list(few.choices)}")
        return few
