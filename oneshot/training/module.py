"""The LightningModule of supernet training: the multi-path step, nothing else.

`SupernetModule` is only the training step. The supernet, the path sampler and the optimizer / schedule specs
come in through the constructor; data comes from a DataModule (`oneshot.data`); the checkpoint metadata is added
by a callback. One step: the sampler lists the paths for this global step, each path runs forward and backward
on the same batch (gradients accumulate, each loss scaled by 1/len(paths) so the step is the mean over paths),
then gradients are clipped and the optimizer steps once (manual optimization).

Under DDP every rank draws the same paths, because `sampler.paths(step)` depends only on the seed and the global
step, and trains them on its own shard of the data; DDP averages the gradients of each backward.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from supernets import Supernet

from .optim import configure_optimizers
from .path_samplers import PathSampler

__all__ = ["SupernetModule"]


class SupernetModule(L.LightningModule):
    """The multi-path training step of a weight-sharing supernet.

    supernet:        the network, called as `supernet(x, arch)`.
    sampler:         which paths train on each step (`oneshot.training.path_samplers`); with `sampler.teacher` the first
                     path is fitted to the labels and the others to its detached soft outputs (in-place distillation).
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
        return configure_optimizers(self.supernet, self.optimizer_spec, self.scheduler_spec,
                                    self.trainer.estimated_stepping_batches)

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
