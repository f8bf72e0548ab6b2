"""Run by tests/test_ddp.py as `python tests/ddp_worker.py OUT_DIR`: `train()` with DDP on 2 CPU processes (gloo).

Lightning's DDP launcher starts the second rank by re-running this script. Every rank saves, to
OUT_DIR/rank<r>.pt, its parameters at the start and end of training, the paths it trained at each step, and the
labels of the batches it saw (to show that the ranks' data shards differ while their weights stay equal).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightning as L  # noqa: E402
import torch  # noqa: E402

from oneshot.recipe import Recipe  # noqa: E402
from oneshot.training.trainer import train  # noqa: E402


class SaveRankState(L.Callback):
    def __init__(self, out: Path) -> None:
        self.out, self.paths, self.labels, self.start = out, [], [], {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = {k: v.detach().clone() for k, v in pl_module.supernet.named_parameters()}
        pl_module.supernet.register_forward_pre_hook(
            lambda mod, args: self.paths.append((trainer.global_step, str(args[1]))))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.labels.append(batch[1].tolist())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.save({
            "rank": trainer.global_rank, "world_size": trainer.world_size, "global_step": trainer.global_step,
            "start": self.start, "paths": self.paths, "labels": self.labels,
            "params": {k: v.detach().clone() for k, v in pl_module.supernet.named_parameters()},
        }, self.out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    out = Path(sys.argv[1])
    recipe = Recipe.from_dict({
        "name": "ddp", "seed": 0, "output_dir": str(out),
        "supernet": {"name": "mbv3_test"},
        "data": {"name": "digits", "image_size": 8, "batch_size": 16, "max_train_samples": 64, "max_eval_samples": 20},
        "train": {"sampler": "sandwich", "sampler_args": {"num_random": 1, "distill": True}, "epochs": 2,
                  "accelerator": "cpu", "devices": 2, "strategy": "ddp", "threads": 1, "grad_clip": 1.0,
                  "optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}},
    })
    train(recipe, callbacks=[SaveRankState(out)], progress=False)
