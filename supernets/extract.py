"""Turn a subnet into a plain standalone module with its inherited weights, and save/load it as one file."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .base import Supernet
from .files import atomic_write_bytes  # re-exported: other modules import it from here
from .registry import config_from_dict, space_from_dict, space_to_dict
from .space import Arch

__all__ = ["extract", "save_subnet", "load_subnet", "atomic_write_bytes", "load_torch_file"]

SUBNET_FORMAT = "oneshot-subnet"
SUBNET_VERSION = 1
SAFETENSORS_SUFFIX = ".safetensors"


def extract(supernet: Supernet, arch: Arch) -> nn.Module:
    """A standalone `nn.Module` for `arch` holding exactly the supernet weights (and BN statistics) it uses."""
    supernet.check_arch(arch)
    materialize = getattr(supernet, "materialize", None)
    if materialize is not None:  # block-built supernets copy their slices straight into plain modules
        return materialize(arch).eval()
    ref = next(supernet.parameters())
    sub = supernet.config.build_subnet(arch).to(device=ref.device, dtype=ref.dtype)
    source = {**dict(supernet.named_parameters()), **dict(supernet.named_buffers())}

    def slice_of(name: str, like: torch.Tensor) -> torch.Tensor:
        src = supernet.weight_source(name, arch)
        if src not in source:
            raise KeyError(f"supernet has no tensor {src!r} for subnet tensor {name!r}")
        return supernet.cut(name, source[src], like.shape)

    _fill(sub, slice_of)
    return sub.eval()


@torch.no_grad()
def _fill(module: nn.Module, value_of: Callable[[str, torch.Tensor], torch.Tensor]) -> None:
    """Copy `value_of(name, tensor)` into every parameter and persistent buffer of `module`, in one pass.

    Copying into each module's own tensors skips `state_dict()` and `load_state_dict` (which walk the module tree
    several times and check every key): extraction is 1.25-1.4x faster (benchmarks/bench_extract.py). A value
    of the wrong shape is a ValueError naming the tensor.
    """
    for prefix, mod in module.named_modules():
        for key, current in [*mod._parameters.items(), *mod._buffers.items()]:
            if current is None or key in mod._non_persistent_buffers_set:
                continue
            name = f"{prefix}.{key}" if prefix else key
            value = value_of(name, current)
            if value.shape != current.shape:
                raise ValueError(f"tensor {name!r} has shape {tuple(value.shape)}, the subnet needs "
                                 f"{tuple(current.shape)}")
            current.copy_(value)


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
    """Save a standalone subnet as one self-describing file: arch string, space config, weights, free metadata.

    A path ending in `.safetensors` writes safetensors (tensors plus string metadata: nothing in it can execute
    code when read, so a received file is safe to open); any other suffix writes a torch file (loaded with
    `weights_only=True`). `meta` must be JSON-able for safetensors.
    """
    space = arch.space
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    if Path(path).suffix == SAFETENSORS_SUFFIX:
        from safetensors.torch import save

        header = {"format": SUBNET_FORMAT, "version": str(SUBNET_VERSION), "space": json.dumps(space_to_dict(space)),
                  "arch": str(arch), "meta": json.dumps(dict(meta or {}))}
        data = save({k: v.contiguous() for k, v in state.items()}, metadata=header)
    else:
        payload = {"format": SUBNET_FORMAT, "version": SUBNET_VERSION, "space": space_to_dict(space),
                   "arch": str(arch), "state_dict": state, "meta": dict(meta or {})}
        buf = io.BytesIO()
        torch.save(payload, buf)
        data = buf.getvalue()
    atomic_write_bytes(path, data)
    return Path(path)


def load_subnet(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[nn.Module, Arch, dict]:
    """Load a file written by `save_subnet` without the supernet or recipe: (module in eval mode, arch, meta).

    The module is rebuilt from the space description and the arch string stored in the file, then given its
    weights; a `.safetensors` file is read without unpickling anything.
    """
    path = Path(path)
    if path.suffix == SAFETENSORS_SUFFIX:
        header, state = _read_safetensors(path)
    else:
        payload = load_torch_file(path, "oneshot subnet file", map_location)
        if not isinstance(payload, dict) or payload.get("format") != SUBNET_FORMAT:
            raise ValueError(f"{str(path)!r} is not a oneshot subnet file (no '{SUBNET_FORMAT}' header)")
        header, state = payload, payload.get("state_dict")
    if str(header.get("version")) != str(SUBNET_VERSION):
        raise ValueError(f"{str(path)!r} has subnet format version {header.get('version')}, expected {SUBNET_VERSION}")
    try:
        space = space_from_dict(header["space"])
        arch = Arch.from_str(space, header["arch"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{str(path)!r} lacks a valid space description or arch string: {exc!r}") from None
    module = config_from_dict(space.family, header["space"]["config"]).build_subnet(arch)
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} holds no weights")
    needed = set(module.state_dict())
    if set(state) != needed:
        missing, extra = sorted(needed - set(state)), sorted(set(state) - needed)
        raise ValueError(f"weights in {str(path)!r} do not fit subnet {arch}: missing {missing[:3]}, unexpected "
                         f"{extra[:3]}")
    try:
        _fill(module, lambda name, _: state[name])
    except ValueError as exc:
        raise ValueError(f"weights in {str(path)!r} do not fit subnet {arch}: {exc}") from None
    return module.to(map_location).eval(), arch, header["meta"]


def _read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(header with space/arch/meta decoded from JSON, tensors) of a subnet safetensors file; one-line errors."""
    from safetensors.torch import load

    if not path.is_file():
        raise FileNotFoundError(f"oneshot subnet file {str(path)!r} does not exist")
    data = path.read_bytes()
    try:
        state = load(data)
        n = int.from_bytes(data[:8], "little")  # the format: 8-byte header length, then the JSON header
        header = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    except Exception as exc:  # safetensors raises its own error types for torn or foreign files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(f"{str(path)!r} is not a readable safetensors file (corrupt or truncated?): "
                         f"{type(exc).__name__}: {first}") from None
    if header.get("format") != SUBNET_FORMAT:
        raise ValueError(f"{str(path)!r} is not a oneshot subnet file (no '{SUBNET_FORMAT}' metadata)")
    try:
        header = {**header, "space": json.loads(header["space"]), "meta": json.loads(header.get("meta", "{}"))}
    except (KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(path)!r} has unreadable subnet metadata: {exc!r}") from None
    return header, state
