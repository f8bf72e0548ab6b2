"""Train a supernet once: a LightningModule for the multi-path step, `train(recipe)`, and `oneshot train`.

`SupernetModule` is only the training step. The supernet, the path sampler and the optimizer / schedule specs
come in through the constructor; data comes from a DataModule (`oneshot.data`); the checkpoint metadata is added
by a callback. One step: the sampler lists the paths for this global step, each path runs forward and backward
on the same batch (gradients accumulate, each loss scaled by 1/len(paths) so the step is the mean over paths),
then gradients are clipped and the optimizer steps once (manual optimization).

Under DDP every rank draws the same paths, because `sampler.paths(step)` depends only on the seed and the global
step, and trains them on its own shard of the data; DDP averages the gradients of each backward.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy

from supernets import Supernet, create_supernet, space_to_dict

from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, AtomicCheckpointIO, code_version, read_checkpoint
from .data import SplitDataModule, datamodule_from_section
from .recipe import Recipe, load_recipe
from .samplers import PathSampler, create_sampler
from .threads import configure_threads

__all__ = [
    "SupernetModule", "CheckpointMetadata", "train", "build_optimizer", "build_scheduler", "checkpoint_path",
    "add_arguments", "run",
]

CHECKPOINT_NAME = "supernet.ckpt"


# --------------------------------------------------------------------------- optimizer and schedule from specs
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


# --------------------------------------------------------------------------- the LightningModule
class SupernetModule(L.LightningModule):
    """The multi-path training step of a weight-sharing supernet.

    supernet:        the network, called as `supernet(x, arch)`.
    sampler:         which paths train on each step (`oneshot.samplers`); with `sampler.teacher` the first path
                     is fitted to the labels and the others to its detached soft outputs (in-place distillation).
    optimizer:       spec for `build_optimizer`; scheduler: spec for `build_scheduler` (total steps = the
                     trainer's estimated optimizer steps).
    grad_clip:       max global gradient norm (None: no clipping).
    label_smoothing: for the cross-entropy on labels.
    channels_last:   run activations in NHWC memory format (faster depthwise convolutions on CPU and GPU).
    """

    def __init__(
        self,
        supernet: Supernet,
        sampler: PathSampler,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        grad_clip: float | None = None,
        label_smoothing: float = 0.0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if sampler.space.fingerprint != supernet.space.fingerprint:
            raise ValueError(f"sampler draws from space {sampler.space.name!r}, the supernet is "
                             f"{supernet.space.name!r}; build the sampler from supernet.space")
        self.supernet = supernet
        self.sampler = sampler
        self.optimizer_spec = dict(optimizer or {"name": "SGD", "lr": 0.05, "momentum": 0.9})
        self.scheduler_spec = None if scheduler is None else dict(scheduler)
        self.grad_clip = grad_clip
        self.label_smoothing = float(label_smoothing)
        self.channels_last = bool(channels_last)
        self.automatic_optimization = False  # several backward passes per optimizer step
        if self.channels_last:
            self.supernet.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        return self.supernet(x, arch)

    def configure_optimizers(self) -> Any:
        opt = build_optimizer(self.supernet, self.optimizer_spec)
        sched = build_scheduler(opt, self.scheduler_spec, int(self.trainer.estimated_stepping_batches))
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch  # (B, C, H, W), (B,)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        opt = self.optimizers()
        paths = self.sampler.paths(self.global_step)
        opt.zero_grad(set_to_none=True)
        soft_target = None
        losses, correct = [], 0.0
        for arch in paths:
            logits = self.supernet(x, arch)  # (B, num_classes)
            if soft_target is None:
                loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
                if self.sampler.teacher:
                    soft_target = logits.detach().softmax(-1)
            else:  # in-place distillation towards the teacher path's outputs
                loss = -(soft_target * logits.log_softmax(-1)).sum(-1).mean()
            self.manual_backward(loss / len(paths))
            losses.append(loss.detach())
            correct += (logits.detach().argmax(-1) == y).float().mean()
        if self.grad_clip:
            self.clip_gradients(opt, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
        opt.step()
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()
        mean_loss = torch.stack(losses).mean()
        self.log("train/loss", mean_loss, prog_bar=True)
        self.log("train/acc", correct / len(paths), prog_bar=True)
        self.log("lr", opt.param_groups[0]["lr"], prog_bar=False)
        return mean_loss

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["sampler"] = self.sampler.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "sampler" in checkpoint:
            self.sampler.load_state_dict(checkpoint["sampler"])


class CheckpointMetadata(Callback):
    """Adds the `oneshot` section (space, data, sampler, recipe, code version) to every checkpoint saved."""

    def __init__(self, data_info: dict[str, Any], recipe: dict[str, Any] | None = None) -> None:
        self.data_info, self.recipe = data_info, recipe or {}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["oneshot"] = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "space": space_to_dict(pl_module.supernet.space),
            "data": self.data_info,
            "sampler": pl_module.sampler.state_dict(),
            "recipe": self.recipe,
            "code_version": code_version(),
            "global_step": int(trainer.global_step),
            "epoch": int(trainer.current_epoch),
        }


# --------------------------------------------------------------------------- train(recipe)
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
    sampler = create_sampler(tr.sampler, supernet.space, seed=recipe.seed, **tr.sampler_args)
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


# --------------------------------------------------------------------------- CLI: oneshot train
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML file, or the name of a shipped recipe (e.g. digits)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field, e.g. --set train.epochs=2 (values are read as YAML)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run's checkpoint if there is one")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["train.epochs=2", "data.path=/x"]` -> `{"train.epochs": 2, "data.path": "/x"}` (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE (e.g. train.epochs=2), got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe, parse_overrides(args.overrides))
    start = time.perf_counter()
    path = train(recipe, resume=args.resume, progress=not args.no_progress)
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        from .pipeline import record_phase

        seconds = time.perf_counter() - start
        record_phase(recipe.run_dir, "train", seconds)  # the run's report shows compute per phase
        print(f"supernet checkpoint: {path}  ({seconds:.1f} s)")
    return 0
