"""Deploy a standalone subnet as ONNX, and time it under onnxruntime's CPU provider.

`export_onnx` writes a model with a dynamic batch axis (input `input` (B, C, H, W), output `logits`
(B, num_classes)); with an `arch` the file also carries the arch string and the space description as ONNX metadata,
so a deployed file still says which subnet it is. `time_onnx` is what `oneshot latency --device onnxruntime`
measures: milliseconds per forward pass of the exported network in onnxruntime, the minimum over repeats.
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from .extract import atomic_write_bytes
from .registry import space_to_dict
from .space import Arch

__all__ = ["export_onnx", "onnx_bytes", "time_onnx", "ONNX_OPSET"]

ONNX_OPSET = 17  # LayerNormalization is a native operator from opset 17 on


def onnx_bytes(module: nn.Module, input_shape: tuple[int, ...], arch: Arch | None = None) -> bytes:
    """The ONNX model of `module` (in eval mode) for inputs (B, *input_shape), B dynamic, as bytes."""
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"input_shape must be (channels, height, width), got {tuple(input_shape)}")
    param = next(module.parameters(), None)
    x = torch.zeros((1, *input_shape), device=param.device if param is not None else "cpu")
    was_training = module.training
    module.eval()
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter: the torch.export-based one needs the onnxscript package, which oneshot
            # does not depend on. It warns that it is the legacy path on every call.
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), buf, dynamo=False, opset_version=ONNX_OPSET, input_names=["input"],
                              output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    finally:
        module.train(was_training)
    data = buf.getvalue()
    if arch is not None:
        data = _with_metadata(data, {"oneshot.arch": str(arch), "oneshot.space": json.dumps(space_to_dict(arch.space))})
    return data


def _with_metadata(data: bytes, props: dict[str, str]) -> bytes:
    import onnx

    model = onnx.load_from_string(data)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def export_onnx(module: nn.Module, path: str | os.PathLike, input_shape: tuple[int, ...],
                arch: Arch | None = None, overwrite: bool = False) -> Path:
    """Write `module` as an ONNX file (dynamic batch axis) atomically; refuses to replace a file unless `overwrite`.

    input_shape: (channels, height, width) of one image, e.g. `(3, 32, 32)`.
    arch:        the subnet `module` was extracted for; recorded in the file's metadata (`oneshot.arch`,
                 `oneshot.space`).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    atomic_write_bytes(path, onnx_bytes(module, input_shape, arch))
    return path


def time_onnx(module: nn.Module, input_shape: tuple[int, ...], repeats: int = 20, warmup: int = 5,
              batch_size: int = 1, threads: int = 1) -> float:
    """Milliseconds per forward pass of `module` exported to ONNX and run by onnxruntime's CPU provider.

    The minimum over `repeats` timed passes (after `warmup` untimed ones) is returned: other processes on the
    machine only ever add time. `threads` sets onnxruntime's intra-op threads (1 compares fairly with a
    one-thread torch measurement).
    """
    import numpy as np
    import onnxruntime as ort

    if repeats < 1 or warmup < 0 or batch_size < 1 or threads < 1:
        raise ValueError(f"time_onnx needs repeats >= 1, warmup >= 0, batch_size >= 1, threads >= 1; got "
                         f"{repeats}, {warmup}, {batch_size}, {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes(module, input_shape), options, providers=["CPUExecutionProvider"])
    x = {"input": np.random.default_rng(0).standard_normal((batch_size, *input_shape), dtype=np.float32)}
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        session.run(None, x)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return 1000.0 * min(times)
