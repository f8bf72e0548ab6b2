"""The predictor file: a zip of `meta.json` plus `.npy` arrays and raw blobs, readable without running code.

A predictor file may come from someone else (a shared surrogate, a downloaded study), so reading it must not
execute anything: pickle does exactly that (a crafted `__reduce__` runs on load), so it is not used and pickle
files are refused. The state a predictor saves is a tree of JSON values (dicts with string keys, lists, strings,
numbers, booleans, None), numpy arrays of numbers (stored as `.npy`, read with `allow_pickle=False`) and bytes
(stored as they are, e.g. an xgboost booster in its own UBJSON format). In `meta.json` an array appears as
`{"$array": "arrays/3.npy"}` and a blob as `{"$bytes": "blobs/0.bin"}`.

Entries get a fixed timestamp, so the same predictor saved twice gives the same bytes (a study identifies a
`predictor:PATH` objective by the file's digest).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from supernets.files import atomic_write_bytes

__all__ = ["write_state_file", "read_state_file", "PICKLE_REFUSED"]

META = "meta.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold; fixed so saves are reproducible
PICKLE_REFUSED = "not a oneshot predictor file (pickle files are refused: they can run code)"


def _pack(value: Any, blobs: dict[str, bytes], where: str) -> Any:
    """`value` with arrays and bytes moved into `blobs` and replaced by references; refuses any other object."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, np.bool_):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":  # object arrays would need pickle
            raise TypeError(f"predictor state {where} is an array of {value.dtype}; only numeric arrays are saved")
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(value), allow_pickle=False)
        name = f"arrays/{len(blobs)}.npy"
        blobs[name] = buf.getvalue()
        return {"$array": name}
    if isinstance(value, (bytes, bytearray)):
        name = f"blobs/{len(blobs)}.bin"
        blobs[name] = bytes(value)
        return {"$bytes": name}
    if isinstance(value, (list, tuple)):
        return [_pack(v, blobs, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) and not k.startswith("$") for k in value):
            raise TypeError(f"predictor state {where} has a key that is not a string or starts with '$'")
        return {k: _pack(v, blobs, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"predictor state {where} is a {type(value).__name__}: only JSON values, numeric arrays "
                    "and bytes are saved (no pickled objects)")


def _unpack(value: Any, archive: zipfile.ZipFile) -> Any:
    if isinstance(value, list):
        return [_unpack(v, archive) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and "$array" in value:
        with archive.open(str(value["$array"])) as f:
            return np.load(io.BytesIO(f.read()), allow_pickle=False)
    if len(value) == 1 and "$bytes" in value:
        return archive.read(str(value["$bytes"]))
    return {k: _unpack(v, archive) for k, v in value.items()}


def write_state_file(path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write `meta` (JSON values, arrays, bytes) as a predictor file, atomically; returns the path."""
    path = Path(path)
    blobs: dict[str, bytes] = {}
    tree = _pack(meta, blobs, "")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [(META, json.dumps(tree, indent=1).encode()), *blobs.items()]:
            z.writestr(zipfile.ZipInfo(name, _EPOCH), data, compress_type=zipfile.ZIP_DEFLATED)
    atomic_write_bytes(path, buf.getvalue())  # readers see the old file or the new one, never half of one
    return path


def read_state_file(path: str | os.PathLike) -> dict[str, Any]:
    """The `meta` tree of a file written by `write_state_file`; one-line ValueError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictor file {str(path)!r} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80":  # every pickle of protocol 2 or later starts so (version-1 predictor files did)
        raise ValueError(f"{str(path)!r} is {PICKLE_REFUSED}; fit and save it again with this version")
    if head != b"PK\x03\x04":
        raise ValueError(f"{str(path)!r} is not a readable oneshot predictor file (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read(META))
            return _unpack(meta, z)
    except (zipfile.BadZipFile, KeyError, EOFError, OSError, UnicodeDecodeError, json.JSONDecodeError,
            ValueError, zlib.error) as exc:  # truncated, corrupt, or a zip of something else
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{str(path)!r} is not a readable oneshot predictor file (truncated or corrupt: "
                         f"{reason})") from None
