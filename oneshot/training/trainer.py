"""`train(recipe)`: build the data, supernet and path sampler a recipe names and train them once with Lightning."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy

from supernets import FamilyConfig, Supernet, get_config, space_to_dict

from oneshot.console import fit_interruptibly, quiet_lightning, trainer_console
from oneshot.data import SPLIT_KEYS, SplitDataModule, datamodule_from_section
from oneshot.recipe import Recipe
from oneshot.threads import configure_threads

from .checkpoint import AtomicCheckpointIO, CheckpointMetadata, read_checkpoint
from .module import SupernetModule
from .path_samplers import PathSampler, create_path_sampler

__all__ = ["train", "checkpoint_path", "build_supernet", "supernet_config", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "supernet.ckpt"


def checkpoint_path(recipe: Recipe) -> Path:
    """Where `train(recipe)` writes its checkpoint: `<output_dir>/<name>/supernet.ckpt`."""
    return recipe.run_dir / CHECKPOINT_NAME


def _supernet_overrides(recipe: Recipe, dm: SplitDataModule) -> dict[str, Any]:
    """The recipe's supernet overrides plus what the data dictates (classes, channels, image size)."""
    if not isinstance(dm.image_size, int):  # a user's data class with non-square images
        raise ValueError(f"supernet {recipe.supernet.name!r} takes square images, but {dm.name} gives "
                         f"{dm.input_shape[1]}x{dm.input_shape[2]} ones")
    derived = {"num_classes": dm.num_classes, "in_chans": dm.in_chans, "image_size": dm.image_size}
    given = dict(recipe.supernet.overrides)
    for key, value in derived.items():
        if key in given and given[key] != value:
            raise ValueError(f"supernet.overrides.{key}={given[key]} contradicts the data: {dm.name} at "
                             f"data.image_size={dm.image_size} has {key}={value}")
    return {**given, **derived}


def supernet_config(recipe: Recipe, dm: SplitDataModule) -> FamilyConfig:
    """The config of the recipe's supernet, fitted to the data (classes, channels, input size).

    A shipped family takes them as config overrides. Your own module (`supernet.class_path`, or a registered space
    of family "module") becomes a `supernets.ModuleConfig` at the data's input shape (C, H, W), whose constructor
    gets `num_classes` and `in_chans` from the data where it takes arguments of those names and the init_args leave
    them out; these resolved init_args are what the checkpoint records.
    """
    section = recipe.supernet
    if section.class_path is not None:
        return _module_config(section.class_path, section.init_args, dm, "supernet.class_path")
    config = get_config(section.name)
    if config.family == "module":  # a registered space written with the blocks: overrides are its init_args
        return _module_config(config.class_path, {**config.init_args, **section.overrides}, dm,
                              f"supernet {section.name!r}")
    return get_config(section.name, **_supernet_overrides(recipe, dm))


def build_supernet(recipe: Recipe, dm: SplitDataModule) -> Supernet:
    """The recipe's supernet for the data (`supernet_config`); for your own module, one-line errors naming its
    class path when it declares no choices or its logits do not have one column per class."""
    config = supernet_config(recipe, dm)
    name = recipe.supernet.name
    if config.family != "module":
        return config.build_supernet(name)
    class_path = config.class_path
    try:
        supernet = config.build_supernet(name)
    except ValueError as exc:  # the blocks name the block and decision at fault; say whose code it is
        raise ValueError(str(exc) if class_path in str(exc) else f"{class_path}: {exc}") from None
    if not supernet.space.decisions:  # a plain module: nothing to search
        raise ValueError(f"{class_path} declares no choices, so there is nothing to search: build it from the "
                         f"elastic blocks of `supernets` (Value, ElasticConv2d, ElasticDepth, LayerChoice, ...)")
    _check_outputs(supernet, dm, class_path)
    return supernet


# Constructor arguments a module supernet gets from the data when it declares them (data attribute per argument).
_FROM_DATA = {"num_classes": "num_classes", "in_chans": "in_chans"}


def _module_config(class_path: str, init_args: dict[str, Any], dm: SplitDataModule, key: str) -> FamilyConfig:
    import inspect

    from supernets import ModuleConfig

    from oneshot.data.user import import_class_path

    cls = import_class_path(class_path, key)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ValueError(f"{key} {class_path!r} is not an nn.Module class (a supernet is an nn.Module built from "
                         f"the elastic blocks of `supernets`)")
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    args = dict(init_args)
    for arg, attr in _FROM_DATA.items():
        if arg in params:
            value = getattr(dm, attr)
            if arg in args and args[arg] != value:
                raise ValueError(f"{key} {class_path!r}: init_args {arg}={args[arg]} contradicts the data "
                                 f"({dm.name} has {arg}={value}); leave it out, the data sets it")
            args[arg] = value
    return ModuleConfig(class_path, args, tuple(dm.input_shape))


def _check_outputs(supernet: Supernet, dm: SplitDataModule, class_path: str) -> None:
    """One forward of the smallest subnet: the logits must have one column per class of the data."""
    x = torch.zeros(1, *dm.input_shape)
    was_training = supernet.training
    supernet.eval()
    try:
        with torch.no_grad():
            out = supernet(x, supernet.space.smallest())
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{class_path}: the smallest subnet fails on one {tuple(dm.input_shape)} image: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    finally:
        supernet.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, dm.num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{class_path} returns {shape} for one image, but the data has {dm.num_classes} classes: "
                         f"logits must be (batch, {dm.num_classes})")


def _strategy(strategy: str, accelerator: str, devices: int | str) -> Any:
    """DDP with unused-parameter search (a path leaves most supernet weights unused) and gloo on CPU."""
    multi = devices not in (1, "1", [0])
    if strategy == "ddp" or (strategy == "auto" and multi and str(devices) not in ("auto",)):
        cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
        return DDPStrategy(find_unused_parameters=True, process_group_backend="gloo" if cpu else None)
    return strategy


def _checkpoint_to_resume(own: Path, resume: bool | str | os.PathLike, overwrite: bool) -> Path | None:
    """Where training into `own` continues from (None: from scratch); refuses to replace a trained one unasked."""
    if overwrite:
        if resume not in (True, False, None):
            raise ValueError(f"overwrite=True trains from scratch; it cannot also resume {str(resume)!r}")
        return None
    if resume is True:
        return own if own.is_file() else None  # nothing to resume yet: start fresh
    if resume not in (False, None):
        path = Path(resume)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint to resume {str(path)!r} does not exist")
        if not own.is_file() or own.resolve() == path.resolve():
            return path
    if own.is_file():
        raise ValueError(f"{str(own)!r} already holds a trained supernet: resume it (resume=True; `oneshot train` "
                         f"does by default) or replace it (overwrite=True; `oneshot train --overwrite`)")
    return None


# Data settings a resumed run must share with the checkpoint (recipe key -> DataModule.info() key): anything else
# would train on other images (a changed split leaks holdout and test images into training) or in another order.
_RESUME_DATA_KEYS = {**{f"data.{k}": k for k in SPLIT_KEYS}, "data.path": "path", "data.image_size": "image_size",
                     "data.batch_size": "batch_size", "data.augment": "augment", "data.crop_padding": "crop_padding",
                     "data.hflip": "hflip", "data.mean": "mean", "data.std": "std", "seed": "seed",
                     "data.class_path": "class_path", "data.init_args": "init_args"}


def _check_resumable(path: Path, old: dict[str, Any], supernet: Any, sampler: Any, data: dict[str, Any]) -> None:
    """One-line errors when the recipe asks for another space, sampler or data than the checkpoint was trained on."""
    if old["space"] != space_to_dict(supernet.space):
        raise ValueError(f"cannot resume {str(path)!r}: it holds supernet space {old['space']['name']!r} "
                         f"with another configuration than the recipe's {supernet.space.name!r}")
    if old["sampler"]["name"] != sampler.name or old["sampler"].get("args", {}) != sampler.args():
        raise ValueError(f"cannot resume {str(path)!r}: it was trained with sampler "
                         f"{old['sampler']['name']!r} {old['sampler'].get('args', {})}, the recipe asks for "
                         f"{sampler.name!r} {sampler.args()}")
    for key, field in _RESUME_DATA_KEYS.items():
        if key == "data.path" and "split_digest" in old["data"]:
            continue  # data that moved (--data-path) is fine: the split digest below proves it is the same images
        if field in old["data"] and old["data"][field] != data.get(field):  # get: class_path only for user data
            raise ValueError(f"cannot resume {str(path)!r}: the recipe sets {key}={data.get(field)!r} but the "
                             f"checkpoint was trained with {old['data'][field]!r}; restore it, or train elsewhere "
                             f"(--set name=OTHER) or from scratch (`oneshot train --overwrite`, overwrite=True)")
    if old["data"].get("split_digest", data["split_digest"]) != data["split_digest"]:
        raise ValueError(f"cannot resume {str(path)!r}: the rebuilt train/holdout/test split differs from the one it "
                         f"was trained with (the data files or the numpy / scikit-learn version changed)")


def _target_steps(tr: Any, dm: SplitDataModule, epochs: int, max_steps: int) -> int | None:
    """Optimizer steps a phase asks for in all (one per batch), or None where it depends on the launch (DDP)."""
    if tr.devices not in (1, "1"):
        return None
    steps = epochs * (len(dm.train_set) // dm.batch_size)
    return steps if max_steps < 0 else min(steps, max_steps)


def _schedule_note(old: dict[str, Any], optimizer: dict[str, Any], scheduler: dict[str, Any] | None, done: int,
                   target: int | None) -> str | None:
    """A line for a resumed run whose LR schedule, recomputed for `target` steps, puts the learning rate somewhere
    else than where the checkpoint's schedule left it (a run continued for more epochs: cosine restarts higher).

    None when the LR stays put, or it cannot be told (no schedule state, a schedule other than `cosine`, DDP)."""
    from torch.optim.lr_scheduler import LambdaLR

    from .optim import build_scheduler

    try:
        before = float(old["lr_schedulers"][0]["_last_lr"][0])
        probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=float(optimizer["lr"]))
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    sched = build_scheduler(probe, scheduler, target) if target else None
    if not isinstance(sched, LambdaLR):
        return None
    after = float(optimizer["lr"]) * sched.lr_lambdas[0](done)
    if math.isclose(before, after, rel_tol=1e-6, abs_tol=1e-12):
        return None
    return (f"continuing at step {done} of {target}: the learning-rate schedule is recomputed for the new length, "
            f"so the LR moves from {before:.3g} (where the checkpoint's schedule left it) to {after:.3g}")


def _check_device(tr: Any) -> None:
    if tr.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(f"train.accelerator={tr.accelerator!r} but no CUDA GPU is available here; use 'auto' or "
                         f"'cpu'")


def train(recipe: Recipe, resume: bool | str | os.PathLike = True, callbacks: Sequence[Callback] = (),
          progress: bool = True, overwrite: bool = False) -> Path:
    """Train the recipe's supernet and return the path of its checkpoint (`<output_dir>/<name>/supernet.ckpt`).

    recipe:    a `Recipe` (see `oneshot.recipe.load_recipe`); its `supernet`, `data` and `train` sections are used,
               plus `evaluate.batch_size` for the holdout loader.
    resume:    True (the default, as in `oneshot train` and `oneshot run`) continues from the run's checkpoint when
               it exists and starts fresh otherwise; a path continues from that checkpoint; False only starts
               fresh. Resuming restores weights, optimizer, schedule, sampler and the loop position, mid-epoch
               included, so the run ends with the weights an uninterrupted one would have. A resume with other
               space, sampler, data or split settings than the checkpoint's is refused; one with nothing left to
               train returns the checkpoint untouched.
    overwrite: train from scratch and replace an existing checkpoint (otherwise replacing one is refused).
    callbacks: extra Lightning callbacks (e.g. for progress reporting in a pipeline).
    progress:  report progress: Lightning's bar on a terminal, one line per epoch when stdout is piped.

    The checkpoint is saved (atomically) at every epoch end, or every `train.checkpoint_every_n_steps`, and at
    the end. With `train.few_shot` the one-shot phase writes `oneshot.ckpt` and the few-shot phase, which follows,
    writes `supernet.ckpt` (`oneshot.training.few_shot`).
    """
    tr = recipe.train
    if tr.few_shot is not None:
        from .few_shot import train_few_shot  # the few-shot phase follows the one-shot one

        return train_few_shot(recipe, resume=resume, callbacks=callbacks, progress=progress, overwrite=overwrite)
    dm = _setup(recipe)
    supernet = build_supernet(recipe, dm)
    sampler = create_path_sampler(tr.sampler, supernet.space, seed=recipe.seed, **tr.sampler_args)
    return run_phase(recipe, dm, supernet, sampler, checkpoint_path(recipe), tr.epochs, tr.max_steps, resume,
                     overwrite, callbacks, progress)


def _setup(recipe: Recipe) -> SplitDataModule:
    """Check the device, set threads and seeds, and build the recipe's data (set up)."""
    _check_device(recipe.train)
    configure_threads(recipe.train.threads)
    L.seed_everything(recipe.seed, workers=True, verbose=False)
    dm = datamodule_from_section(recipe.data, seed=recipe.seed, eval_batch_size=recipe.evaluate.batch_size)
    dm.setup()
    return dm


def run_phase(recipe: Recipe, dm: SplitDataModule, supernet: Supernet, sampler: PathSampler, path: Path,
              epochs: int, max_steps: int, resume: bool | str | os.PathLike, overwrite: bool,
              callbacks: Sequence[Callback], progress: bool, lr_scale: float = 1.0) -> Path:
    """Train `supernet` with `sampler` for `epochs` (or `max_steps`, -1: no limit) into checkpoint `path`.

    The recipe gives the optimizer (its `lr` times `lr_scale`), schedule, hardware and checkpoint cadence; `resume`
    and `overwrite` as in `train`. Returns `path`.
    """
    tr = recipe.train
    optimizer = dict(tr.optimizer)
    if lr_scale != 1.0:
        if not isinstance(optimizer.get("lr"), (int, float)):
            raise ValueError("train.few_shot.lr_scale scales train.optimizer.lr, which the recipe does not set")
        optimizer["lr"] = float(optimizer["lr"]) * lr_scale
    resume_from = _checkpoint_to_resume(path, resume, overwrite)
    if resume_from is not None:
        old = read_checkpoint(resume_from)
        _check_resumable(resume_from, old["oneshot"], supernet, sampler, dm.info())
        done, target = int(old.get("global_step", 0)), _target_steps(tr, dm, epochs, max_steps)
        if target is not None and done > target:
            raise ValueError(f"cannot resume {str(resume_from)!r}: it has trained {done} steps, more than the "
                             f"recipe's {epochs} epochs (max_steps={max_steps}) ask ({target}); raise "
                             f"them, train elsewhere (--set name=OTHER) or from scratch (`oneshot train "
                             f"--overwrite`, overwrite=True)")
        if target is not None and done == target and resume_from == path:
            return path  # nothing left to train: the checkpoint stays as it is, byte for byte
        note = _schedule_note(old, optimizer, tr.scheduler, done, target)
        if note:
            print(note, flush=True)
    module = SupernetModule(supernet, sampler, optimizer=optimizer, scheduler=tr.scheduler, grad_clip=tr.grad_clip,
                            label_smoothing=tr.label_smoothing, channels_last=tr.channels_last)
    run_dir = recipe.run_dir
    periodic = ModelCheckpoint(dirpath=path.parent, filename=path.stem, save_top_k=1,
                               enable_version_counter=False, every_n_train_steps=tr.checkpoint_every_n_steps,
                               every_n_epochs=None if tr.checkpoint_every_n_steps else 1)
    console = trainer_console(progress, desc="train supernet")
    extra = [*console.pop("callbacks"), *callbacks]
    # Quiet from construction on: Lightning prints its device banners and tips while the Trainer is built.
    with warnings.catch_warnings(), quiet_lightning():
        for message in _EXPECTED_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        trainer = L.Trainer(
            max_epochs=epochs,
            max_steps=max_steps,
            accelerator=tr.accelerator,
            devices=tr.devices,
            strategy=_strategy(tr.strategy, tr.accelerator, tr.devices),
            precision=tr.precision,
            plugins=[AtomicCheckpointIO()],
            callbacks=[CheckpointMetadata(dm.info(), recipe.to_dict()), periodic, *extra],
            logger=CSVLogger(save_dir=str(run_dir), name="logs"),  # logs/version_<n>: a resume keeps the old logs
            default_root_dir=str(run_dir),
            log_every_n_steps=tr.log_every_n_steps,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            **console,
        )
        # weights_only: a checkpoint is data (tensors, numbers, strings); loading one never runs code
        # fit_interruptibly: Ctrl-C ends the command like every other phase (exit 130), not Lightning's exit(1)
        fit_interruptibly(trainer, "fit", module, datamodule=dm, ckpt_path=str(resume_from) if resume_from else None,
                          weights_only=True)
    trainer.save_checkpoint(path, weights_only=False)
    return path


# Lightning warnings that describe this design rather than a problem: the holdout loader exists for evaluation,
# not for validating the supernet while it trains, and the run folder is reused on purpose.
_EXPECTED_WARNINGS = (".*val_dataloader.*validation_step.*", ".*Checkpoint directory .* exists and is not empty.*",
                      ".*isinstance\\(treespec, LeafSpec\\).*")
