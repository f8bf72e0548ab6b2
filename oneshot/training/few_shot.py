"""Few-shot training (Zhao et al. 2021): train one-shot, split on one decision, fine-tune each copy on its subnets.

`train.few_shot: {split: <decision>, epochs: e}` in a recipe runs two phases in the run folder:

1. one-shot: the recipe's supernet and sampler for `train.epochs` into `oneshot.ckpt` (as without few-shot);
2. few-shot: `FewShotSupernet.from_oneshot(...)` (k copies, one per choice of `split`, each starting from the
   trained weights), trained for k * e epochs into `supernet.ckpt`. Step s trains copy s mod k on the paths that
   the recipe's sampler draws, at that copy's own step s // k, from the copy's restricted space (`split` fixed to
   its choice): every copy gets e epochs of steps, each costing what a one-shot step costs, and the sampler's
   rules (fairness, sandwich) hold within the copy's subnets.

The few-shot phase has its own optimizer and schedule, restarted at `few_shot.lr_scale` x the recipe's peak LR
(default 1: the recipe's schedule again). Measured on macro / CIFAR-10 at CPU scale (benchmarks/
bench_fidelity_settings.py, one seed): a tenth of the peak ranked +0.04 tau better than the full peak (within
noise); both few-shot runs ranked below the fair one-shot supernet they started from.

Total training compute, in path-steps, is (train.epochs + k * few_shot.epochs) x steps-per-epoch x paths-per-step;
a one-shot baseline at equal compute trains train.epochs + k * few_shot.epochs epochs. Interleaving the copies
(rather than fine-tuning them one after another) keeps one optimizer, one schedule and one checkpoint, so resuming
works exactly as for one-shot training; a copy's parameters get no gradient on the other copies' steps, and
the optimizers we use skip parameters without a gradient (no weight decay or momentum drift).

Which decision to split on. Splitting removes weight sharing across the split decision's choices only, so split on
the decision whose choice most changes what the shared weights downstream of it see, at the smallest k (compute
grows as k x few_shot.epochs):
- macro: `layer0`, the first layer's op (3 choices). All 7 later layers are shared between subnets whose inputs
  differ by that op (identity vs a k3 or k5 block, at full resolution); a later layer's op changes the input of
  fewer shared layers, and `layer7` only that of the head.
- nb201: an edge every cell repeats; `1<-0` feeds nodes 2 and 3 (its `none` also kills edges 2<-1 and 3<-1), an edge
  into the output node (`3<-0`, `3<-1`, `3<-2`) changes the cell's output directly (Zhao et al. split an edge of
  the cell with its 5 operations). Which of the two ranks better is an empirical question left to the GPU run.
- mbv3: the first stage's width (`s0.w`): channel slices are shared by first-slice, so it sets the input channels
  of every later block; a depth decision (`s<i>.d`) also separates the subnets that run extra blocks.
Not measured here: the equal-compute comparison needs real data and ground truth (benchmarks/bench_few_shot.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from lightning.pytorch.callbacks import Callback

from supernets import Arch, FewShotSupernet, SearchSpace, restrict_space
from supernets.few_shot import check_split

from oneshot.recipe import Recipe

from .checkpoint import load_supernet
from .path_samplers import PathSampler, create_path_sampler
from .trainer import _setup, build_supernet, checkpoint_path, run_phase

__all__ = ["FewShotSampler", "train_few_shot", "oneshot_checkpoint_path", "ONESHOT_CHECKPOINT_NAME"]

ONESHOT_CHECKPOINT_NAME = "oneshot.ckpt"


def oneshot_checkpoint_path(recipe: Recipe) -> Path:
    """Where a few-shot recipe keeps its one-shot phase: `<output_dir>/<name>/oneshot.ckpt`."""
    return recipe.run_dir / ONESHOT_CHECKPOINT_NAME


class FewShotSampler(PathSampler):
    """Round-robin over the copies of a few-shot supernet: step s runs sampler `sampler` of copy s mod k.

    space:   the full space; split: the decision the supernet is split on.
    sampler: the registered path sampler each copy uses on its restricted space, with `sampler_args`.
    Not registered by name: a recipe asks for it through `train.few_shot`, not `train.sampler`.
    """

    name = "few_shot"

    def __init__(self, space: SearchSpace, split: str, sampler: str, seed: int = 0, **sampler_args: Any) -> None:
        super().__init__(space, seed)
        self.split, self.sampler_name, self.sampler_args = split, sampler, dict(sampler_args)
        self.inner = [create_path_sampler(sampler, restrict_space(space, split, c), seed=seed, **sampler_args)
                      for c in space[split].choices]
        self.teacher = self.inner[0].teacher

    def paths(self, step: int) -> list[Arch]:
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        k = len(self.inner)
        # Restricted archs live in another space (another fingerprint): re-make them in the full space.
        return [self.space.make(a.as_dict()) for a in self.inner[step % k].paths(step // k)]

    def _paths(self, rng: np.random.Generator) -> list[Arch]:  # pragma: no cover - paths() is overridden
        raise NotImplementedError

    def args(self) -> dict[str, Any]:
        return {"split": self.split, "sampler": self.sampler_name, "sampler_args": self.sampler_args}


def train_few_shot(recipe: Recipe, resume: bool | str | os.PathLike = True, callbacks: Sequence[Callback] = (),
                   progress: bool = True, overwrite: bool = False) -> Path:
    """Both phases of a `train.few_shot` recipe; returns the few-shot checkpoint (`supernet.ckpt`).

    resume/overwrite as in `oneshot.training.train`, per phase: True continues whichever phase is unfinished (a
    finished few-shot checkpoint is returned untouched); a path is refused (two checkpoints make one run).
    """
    tr, few = recipe.train, recipe.train.few_shot
    if few is None:
        raise ValueError("recipe has no train.few_shot section")
    if resume not in (True, False, None):
        raise ValueError(f"a few-shot run resumes from its own run folder (resume=True), not from {str(resume)!r}")
    final, first = checkpoint_path(recipe), oneshot_checkpoint_path(recipe)
    dm = _setup(recipe)
    oneshot = build_supernet(recipe, dm)
    check_split(oneshot.space, few.split)  # before an hour of one-shot training, not after
    if overwrite or not (resume and final.is_file()):  # the one-shot phase is unfinished or asked to be redone
        sampler = create_path_sampler(tr.sampler, oneshot.space, seed=recipe.seed, **tr.sampler_args)
        run_phase(recipe, dm, oneshot, sampler, first, tr.epochs, tr.max_steps, resume, overwrite, callbacks,
                  progress)
    resuming = bool(resume) and final.is_file() and not overwrite
    if resuming:  # weights come from the few-shot checkpoint; the structure is all that is needed here
        supernet = FewShotSupernet(oneshot.config, oneshot.space.name, few.split)
    else:
        trained, _ = load_supernet(first)
        supernet = FewShotSupernet.from_oneshot(trained, few.split).train()
    sampler = FewShotSampler(supernet.space, few.split, tr.sampler, seed=recipe.seed, **tr.sampler_args)
    k = len(supernet.choices)
    return run_phase(recipe, dm, supernet, sampler, final, k * few.epochs, -1, resume, overwrite, callbacks,
                     progress, lr_scale=few.lr_scale)
