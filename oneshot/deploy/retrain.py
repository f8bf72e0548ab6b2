"""Standalone retraining of chosen subnets, and the measured proxy-to-real gap.

From scratch is the default: the field's standard for final numbers. `from_scratch=False` fine-tunes from the
inherited supernet weights instead. With three or more subnets that carry a supernet estimate, Kendall tau and
Spearman between the supernet's holdout accuracy and the standalone test accuracy are reported: how well the
supernet ranked these subnets is measured and shown, never assumed.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from predictors.metrics import rank_agreement  # re-exported: the one rank correlation, kept in predictors
from supernets import Arch, config_from_dict

from oneshot.console import fit_interruptibly, quiet_lightning, trainer_console
from oneshot.recipe import RetrainSection
from oneshot.table import ResultTable
from oneshot.training.optim import configure_optimizers

__all__ = ["StandaloneModule", "retrain_subnets", "rank_agreement"]


class StandaloneModule(L.LightningModule):
    """Plain supervised training of one standalone network (the recipe for final numbers)."""

    def __init__(self, net: nn.Module, optimizer: dict[str, Any], scheduler: dict[str, Any] | None,
                 label_smoothing: float = 0.0, channels_last: bool = True) -> None:
        super().__init__()
        self.net, self.optimizer_spec, self.scheduler_spec = net, dict(optimizer), scheduler
        self.label_smoothing = label_smoothing
        self.channels_last = channels_last  # NHWC: much faster depthwise convolutions on CPU (oneDNN)
        if channels_last:
            self.net.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        x, y = batch
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = self.net(x)  # (B, classes)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing if split == "train" else 0.0)
        acc = (logits.argmax(1) == y).float().mean()
        self.log(f"{split}_loss", loss, prog_bar=split == "train", on_step=split == "train", on_epoch=split != "train")
        self.log(f"{split}_acc", acc, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):  # type: ignore[override]
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):  # type: ignore[override]
        self._step(batch, "holdout")

    def test_step(self, batch, batch_idx):  # type: ignore[override]
        self._step(batch, "test")

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self.net, self.optimizer_spec, self.scheduler_spec,
                                    self.trainer.estimated_stepping_batches)


def _digest(obj: Any) -> str:
    """Short hash of JSON-able settings or of a state dict (tensors by their bytes)."""
    h = hashlib.sha1()
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        for name, t in sorted(obj.items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
            h.update(t.float().numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes())
    else:
        h.update(json.dumps(obj, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def retrain_subnets(
    items: Sequence[dict[str, Any]],
    data_info: dict[str, Any],
    section: RetrainSection | None = None,
    seed: int = 0,
    table_path: str | Path | None = None,
    accelerator: str = "auto",
    progress: bool = True,
    data_overrides: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train each subnet standalone and score it on the test split; returns one record per item.

    items:      dicts with `arch` (an `Arch`) and optionally `module` (inherited weights, used when fine-tuning),
                `supernet_acc` and `name`; extra keys are copied into the record.
    data_info:  the DataModule description saved with the supernet (`SplitDataModule.info()`).
    table_path: a result table: subnets already retrained with the same settings, data and (fine-tuning) starting
                weights are not trained again; their records are served with this call's names and estimates.
    progress:   Lightning's bar on a terminal, one line per epoch when stdout is piped; a line naming each
                subnet (`retrain i/n NAME ARCH`) is printed either way, since one subnet can take minutes.
    """
    from oneshot.score.evaluate import data_identity, datamodule_for

    section = section or RetrainSection()
    if not items:
        raise ValueError("no subnets to retrain")
    if not isinstance(section.epochs, int) or section.epochs < 1:  # 0 epochs would report untrained accuracy
        raise ValueError(f"retraining needs at least 1 epoch, got epochs={section.epochs!r}")
    dm = datamodule_for(data_info, {"seed": seed, **(data_overrides or {})})
    dm.setup()
    space = items[0]["arch"].space
    settings = {"epochs": section.epochs, "from_scratch": section.from_scratch, "optimizer": section.optimizer,
                "scheduler": section.scheduler, "seed": seed, "data": data_info.get("name")}
    # The cache key covers everything the result depends on: every training setting, the data as rebuilt (path,
    # split, sample caps, augmentation, batch size), and for fine-tuning the inherited weights.
    data_id = _digest({k: v for k, v in data_identity(dm).items() if k != "num_workers"})  # moved data: same id
    table = ResultTable(table_path, space, meta={"kind": "standalone retraining"}) if table_path else None
    out = []
    for i, item in enumerate(items, 1):
        arch: Arch = item["arch"]
        start = None if section.from_scratch or item.get("module") is None else _digest(item["module"].state_dict())
        key = _digest([str(arch), settings, {k: v for k, v in vars(section).items() if k != "extra_subnets"},
                       data_id, start])
        extras = {k: v for k, v in item.items() if k not in ("arch", "module")}
        label = f"retrain {i}/{len(items)} {item.get('name') or 'subnet'} {arch}"
        if table is not None and key in table:
            print(f"{label}: already retrained with these settings, kept", flush=True)
            out.append({**table.get(key), **extras})  # the training is reused; names and estimates are today's
            continue
        print(f"{label}: {section.epochs} epochs {'from scratch' if section.from_scratch else 'fine-tuning'}",
              flush=True)
        torch.manual_seed(seed)
        if section.from_scratch:
            net = config_from_dict(space.family, json.loads(space.config)).build_subnet(arch)
        elif item.get("module") is None:  # a record saying "fine-tuned" must not hide a from-scratch run
            raise ValueError(f"fine-tuning {arch} needs its inherited weights: give the item a 'module' "
                             "(e.g. from load_subnet) or set from_scratch")
        else:
            net = item["module"]
        net.train()  # inherited modules arrive in eval mode: BN must track this training's statistics
        module = StandaloneModule(net, section.optimizer, section.scheduler)
        # One Trainer per subnet: its device banners and tips would repeat for each (quiet_lightning).
        with warnings.catch_warnings(), quiet_lightning():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            trainer = L.Trainer(
                max_epochs=section.epochs, accelerator=accelerator, devices=1, logger=False,
                enable_checkpointing=False, num_sanity_val_steps=0,
                check_val_every_n_epoch=max(1, section.epochs),  # holdout once, at the end
                **trainer_console(progress, desc=f"retrain {i}/{len(items)}"),
            )
            t0 = time.perf_counter()
            # Ctrl-C: KeyboardInterrupt (exit 130 at the command), not Lightning's own exit(1); retrained subnets
            # are in the table already, so the next run resumes with the one that was interrupted
            fit_interruptibly(trainer, "fit", module, train_dataloaders=dm.train_dataloader(),
                              val_dataloaders=dm.val_dataloader())
            fit_s = time.perf_counter() - t0
            test = fit_interruptibly(trainer, "test", module, dataloaders=dm.test_dataloader(), verbose=False)[0]
            holdout = fit_interruptibly(trainer, "validate", module, dataloaders=dm.val_dataloader(), verbose=False)[0]
        record = {
            "key": key, "arch": str(arch), "name": item.get("name"),
            "standalone_test_acc": float(test["test_acc"]), "standalone_test_loss": float(test["test_loss"]),
            "standalone_holdout_acc": float(holdout["holdout_acc"]), "standalone_test_size": len(dm.test_set),
            "train_seconds": fit_s, **settings, "data_digest": data_id, "start_weights": start,
            **{k: v for k, v in item.items() if k not in ("arch", "module", "name")},
        }
        if table is not None:
            table.add(record)
        out.append(record)
    return out
