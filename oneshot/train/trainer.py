"""`train(recipe)`: build the data, supernet and path sampler a recipe names and train them once with Lightning."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy

from supernets import create_supernet, space_to_dict

from oneshot.data import SplitDataModule, datamodule_from_section
from oneshot.recipe import Recipe
from oneshot.threads import configure_threads

from .checkpoint import AtomicCheckpointIO, CheckpointMetadata, read_checkpoint
from .module import SupernetModule
from .path_samplers import create_path_sampler

__all__ = ["train", "checkpoint_path", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "supernet.ckpt"


def checkpoint_path(recipe: Recipe) -> Path:
    """Where `train(recipe)` writes its checkpoint: `<output_dir>/<name>/supernet.ckpt`."""
    return recipe.run_dir / CHECKPOINT_NAME


def _supernet_overrides(recipe: Recipe, dm: SplitDataModule) -> dict[str, Any]:
    """The recipe's supernet overrides plus what the data dictates (classes, channels, image size)."""
    derived = {"num_classes": dm.num_classes, "in_chans": dm.in_chans, "image_size": dm.image_size}
    given = dict(recipe.supernet.overrides)
    for key, value in derived.items():
        if key in given and given[key] != value:
            raise ValueError(f"supernet.overrides.{key}={given[key]} contradicts the data: {dm.name} at "
                             f"data.image_size={dm.image_size} has {key}={value}")
    return {**given, **derived}


def _strategy(strategy: str, accelerator: str, devices: int | str) -> Any:
    """DDP with unused-parameter search (a path leaves most supernet weights unused) and gloo on CPU."""
    multi = devices not in (1, "1", [0])
    if strategy == "ddp" or (strategy == "auto" and multi and str(devices) not in ("auto",)):
        cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
        return DDPStrategy(find_unused_parameters=True, process_group_backend="gloo" if cpu else None)
    return strategy


def _resume_path(recipe: Recipe, resume: bool | str | os.PathLike) -> Path | None:
    if resume is False or resume is None:
        return None
    if resume is True:
        path = checkpoint_path(recipe)
        return path if path.is_file() else None  # nothing to resume yet: start fresh
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint to resume {str(path)!r} does not exist")
    return path


def train(recipe: Recipe, resume: bool | str | os.PathLike = False, callbacks: Sequence[Callback] = (),
          progress: bool = True) -> Path:
    """Train the recipe's supernet and return the path of its checkpoint (`<output_dir>/<name>/supernet.ckpt`).

    recipe:    a `Recipe` (see `oneshot.recipe.load_recipe`); its `supernet`, `data` and `train` sections are used,
               plus `evaluate.batch_size` for the holdout loader.
    resume:    False starts from scratch (an existing checkpoint is replaced when training ends); True continues
               from the run's checkpoint when it exists (and starts fresh otherwise); a path continues from that
               checkpoint. Resuming restores weights, optimizer, schedule, sampler and the loop position, so the
               run continues at the saved global step with the same paths and data order.
    callbacks: extra Lightning callbacks (e.g. for progress reporting in a pipeline).
    progress:  show Lightning's progress bar and model summary.

    The checkpoint is also saved (atomically) at every epoch end, or every `train.checkpoint_every_n_steps`.
    """
    tr = recipe.train
    configure_threads(tr.threads)
    L.seed_everything(recipe.seed, workers=True, verbose=False)
    dm = datamodule_from_section(recipe.data, seed=recipe.seed, eval_batch_size=recipe.evaluate.batch_size)
    dm.setup()
    supernet = create_supernet(recipe.supernet.name, **_supernet_overrides(recipe, dm))
    sampler = create_path_sampler(tr.sampler, supernet.space, seed=recipe.seed, **tr.sampler_args)
    resume_from = _resume_path(recipe, resume)
    if resume_from is not None:
        old = read_checkpoint(resume_from)["oneshot"]
        if old["space"] != space_to_dict(supernet.space):
            raise ValueError(f"cannot resume {str(resume_from)!r}: it holds supernet space {old['space']['name']!r} "
                             f"with another configuration than the recipe's {supernet.space.name!r}")
        if old["sampler"]["name"] != sampler.name or old["sampler"].get("args", {}) != sampler.args():
            raise ValueError(f"cannot resume {str(resume_from)!r}: it was trained with sampler "
                             f"{old['sampler']['name']!r} {old['sampler'].get('args', {})}, the recipe asks for "
                             f"{sampler.name!r} {sampler.args()}")
    module = SupernetModule(supernet, sampler, optimizer=tr.optimizer, scheduler=tr.scheduler, grad_clip=tr.grad_clip,
                            label_smoothing=tr.label_smoothing, channels_last=tr.channels_last)
    run_dir = recipe.run_dir
    periodic = ModelCheckpoint(dirpath=run_dir, filename=Path(CHECKPOINT_NAME).stem, save_top_k=1,
                               enable_version_counter=False, every_n_train_steps=tr.checkpoint_every_n_steps,
                               every_n_epochs=None if tr.checkpoint_every_n_steps else 1)
    trainer = L.Trainer(
        max_epochs=tr.epochs,
        max_steps=tr.max_steps,
        accelerator=tr.accelerator,
        devices=tr.devices,
        strategy=_strategy(tr.strategy, tr.accelerator, tr.devices),
        precision=tr.precision,
        plugins=[AtomicCheckpointIO()],
        callbacks=[CheckpointMetadata(dm.info(), recipe.to_dict()), periodic, *callbacks],
        logger=CSVLogger(save_dir=str(run_dir), name="logs"),  # logs/version_<n>: a resumed run keeps the old logs
        default_root_dir=str(run_dir),
        enable_progress_bar=progress,
        enable_model_summary=progress,
        log_every_n_steps=tr.log_every_n_steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings():
        for message in _EXPECTED_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        trainer.fit(module, datamodule=dm, ckpt_path=str(resume_from) if resume_from else None)
    path = checkpoint_path(recipe)
    trainer.save_checkpoint(path, weights_only=False)
    return path


# Lightning warnings that describe this design rather than a problem: the holdout loader exists for evaluation,
# not for validating the supernet while it trains, and the run folder is reused on purpose.
_EXPECTED_WARNINGS = (".*val_dataloader.*validation_step.*", ".*Checkpoint directory .* exists and is not empty.*",
                      ".*isinstance\\(treespec, LeafSpec\\).*")
