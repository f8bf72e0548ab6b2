"""The Lightning callbacks of `oneshot.console.trainer_console`, apart so that `oneshot.console` loads no Lightning."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback, TQDMProgressBar

__all__ = ["EpochLines", "EpochBar"]


class EpochLines(Callback):
    """One plain line per training epoch with the logged metrics: Lightning's bar for a log file."""

    def __init__(self, desc: str = "train") -> None:
        self.desc = desc

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.global_rank != 0:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        print(f"{self.desc}: epoch {trainer.current_epoch + 1}/{total}, step {trainer.global_step}"
              f"{f', {shown}' if shown else ''}", flush=True)


class EpochBar(TQDMProgressBar):
    """Lightning's bar, its epochs counted as `EpochLines` counts them (`train: epoch 1/2`, not `Epoch 0`)."""

    def __init__(self, desc: str = "train") -> None:
        super().__init__()
        self.desc = desc

    def on_train_epoch_start(self, trainer: Any, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        self.train_progress_bar.set_description(f"{self.desc}: epoch {trainer.current_epoch + 1}/{total}")
