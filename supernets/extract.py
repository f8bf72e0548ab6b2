"""Turn a subnet into a plain standalone module with its inherited weights, and save/load it as one file."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import Supernet, crop_to
from .files import atomic_write_bytes  # re-exported: other modules import it from here
from .registry import config_from_dict, space_from_dict, space_to_dict
from .space import Arch

__all__ = ["extract", "save_subnet", "load_subnet", "atomic_write_bytes", "load_torch_file"]

SUBNET_FORMAT = "oneshot-subnet"
SUBNET_VERSION = 1


def extract(supernet: Supernet, arch: Arch) -> nn.Module:
    """A standalone `nn.Module` for `arch` holding exactly the supernet weights (and BN statistics) it uses."""
    supernet.check_arch(arch)
    sub = supernet.config.build_subnet(arch)
    source = supernet.state_dict()
    state = {}
    for name, tensor in sub.state_dict().items():
        src = supernet.weight_source(name, arch)
        if src not in source:
            raise KeyError(f"supernet has no tensor {src!r} for subnet tensor {name!r}")
        state[name] = crop_to(source[src], tensor.shape).clone()
    sub.load_state_dict(state)
    ref = next(supernet.parameters())
    return sub.to(device=ref.device, dtype=ref.dtype).eval()


def load_torch_file(path: str | os.PathLike, what: str, map_location: Any = "cpu") -> Any:
    """`torch.load` (weights only) with errors that name the file and the problem instead of torch internals."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(f"{str(path)!r} is not a readable {what} (corrupt or truncated?): "
                         f"{type(exc).__name__}: {first}") from None


def save_subnet(module: nn.Module, arch: Arch, path: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
    """Save a standalone subnet as one self-describing file: arch string, space config, weights, free metadata."""
    space = arch.space
    payload = {
        "format": SUBNET_FORMAT,
        "version": SUBNET_VERSION,
        "space": space_to_dict(space),
        "arch": str(arch),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "meta": dict(meta or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def load_subnet(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, Arch, dict]:
    """Load a file written by `save_subnet` without the supernet or recipe: (module in eval mode, arch, meta)."""
    path = Path(path)
    payload = load_torch_file(path, "oneshot subnet file", map_location)
    if not isinstance(payload, dict) or payload.get("format") != SUBNET_FORMAT:
        raise ValueError(f"{str(path)!r} is not a oneshot subnet file (no '{SUBNET_FORMAT}' header)")
    if payload.get("version") != SUBNET_VERSION:
        raise ValueError(f"{str(path)!r} has subnet format version {payload.get('version')}, expected {SUBNET_VERSION}")
    space = space_from_dict(payload["space"])
    arch = Arch.from_str(space, payload["arch"])
    module = config_from_dict(space.family, payload["space"]["config"]).build_subnet(arch)
    try:
        module.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"weights in {str(path)!r} do not fit subnet {arch}: {exc}") from None
    return module.to(map_location).eval(), arch, payload["meta"]
