"""Supernet checkpoints: written atomically by Lightning, readable later without the recipe.

A checkpoint is Lightning's own file (weights under `state_dict` with the `supernet.` prefix, optimizer, schedule
and loop state, so training resumes exactly) plus a `oneshot` section that makes it self-describing:

    oneshot:
      format: "oneshot-supernet", version: 1
      space:        space_to_dict(space)      # {"name", "family", "config"}: rebuilds the supernet
      data:         DataModule.info()         # dataset name/path, image size, mean/std, splits, ...
      sampler:      PathSampler.state_dict()  # {"name", "seed", "args", "fingerprint"}
      recipe:       Recipe.to_dict()          # the resolved recipe that trained it
      code_version: "0.1.0+g<commit>"
      global_step, epoch
      few_shot:     {"split", "choices"}       # only for a FewShotSupernet (k copies split on one decision)

`load_supernet(path)` rebuilds the supernet from that section alone. `AtomicCheckpointIO` makes every save of
Lightning's (periodic and final) a temp file + `os.replace`, so a crash never leaves a torn checkpoint, and reads
checkpoints back with `weights_only=True` (tensors and plain data: loading never runs code).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any, Callable, Optional

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

from supernets import FewShotSupernet, Supernet, config_from_dict, space_from_dict, space_to_dict
from supernets.extract import load_torch_file
from supernets.files import atomic_write_bytes

from oneshot.version import code_version

__all__ = [
    "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "AtomicCheckpointIO", "CheckpointMetadata", "load_supernet",
    "read_checkpoint", "weights_digest",
]

CHECKPOINT_FORMAT = "oneshot-supernet"
CHECKPOINT_VERSION = 1
_PREFIX = "supernet."  # the LightningModule holds the supernet as `self.supernet`


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that serializes in memory, then writes a temp file and renames it into place."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        atomic_write_bytes(path, buf.getvalue())

    def load_checkpoint(self, path: Any, map_location: Optional[Any] = None, weights_only: Optional[bool] = None
                        ) -> dict[str, Any]:
        """Resuming reads tensors and plain data only (`weights_only=True`), whatever torch's default is."""
        if weights_only is False:
            raise ValueError("oneshot reads checkpoints with weights_only=True only (a checkpoint must not run code)")
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


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
        if isinstance(pl_module.supernet, FewShotSupernet):  # k copies: the split rebuilds them (few_shot.py)
            checkpoint["oneshot"]["few_shot"] = pl_module.supernet.few_shot_info()


def weights_digest(module: torch.nn.Module) -> str:
    """Short hash of a module's parameters (not buffers: BN statistics are re-estimated before every score)."""
    h = hashlib.sha1()
    for name, p in sorted(module.named_parameters()):
        t = p.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device | Callable = "cpu") -> dict[str, Any]:
    """Load a checkpoint file and check it is a oneshot supernet checkpoint; errors name the file and the problem."""
    path = Path(path)
    ckpt = load_torch_file(path, "supernet checkpoint", map_location)
    section = ckpt.get("oneshot") if isinstance(ckpt, dict) else None
    if not isinstance(section, dict) or section.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is not a oneshot supernet checkpoint (no '{CHECKPOINT_FORMAT}' section; "
                         f"was it written by `oneshot train`?)")
    if section.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{str(path)!r} has checkpoint format version {section.get('version')}, "
                         f"this oneshot reads version {CHECKPOINT_VERSION}")
    if not isinstance(ckpt.get("state_dict"), dict):
        raise ValueError(f"{str(path)!r} holds no supernet weights ('state_dict' missing)")
    return ckpt


def load_supernet(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[Supernet, dict[str, Any]]:
    """Rebuild a trained supernet from a checkpoint alone: (supernet in eval mode, info).

    info is the checkpoint's `oneshot` section (space, data, sampler, recipe, code_version, global_step, epoch)
    plus `path` and `checkpoint_id` (a digest of the weights, used to key evaluation results).
    """
    ckpt = read_checkpoint(path, map_location)
    info = dict(ckpt["oneshot"])
    try:
        space = space_from_dict(info["space"])
        config = config_from_dict(space.family, info["space"]["config"])
        few_shot = info.get("few_shot")
        supernet = (FewShotSupernet.from_info(config, space.name, few_shot) if few_shot
                    else config.build_supernet(space.name))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{str(path)!r}: cannot rebuild the supernet from its space description: {exc}") from None
    state = {k[len(_PREFIX):]: v for k, v in ckpt["state_dict"].items() if k.startswith(_PREFIX)}
    try:
        supernet.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"weights in {str(path)!r} do not fit supernet {space.name!r}: "
                         f"{str(exc).splitlines()[0]}") from None
    supernet.to(map_location).eval()
    info.update(path=str(path), global_step=int(ckpt.get("global_step", info.get("global_step", 0))),
                epoch=int(ckpt.get("epoch", info.get("epoch", 0))), checkpoint_id=weights_digest(supernet))
    return supernet, info
