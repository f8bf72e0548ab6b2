"""Score many subnets with zero-cost proxies into a cached table, and serve the scores to predictor encodings.

`score_proxies` builds each subnet (randomly initialized, seeded: columns `<proxy>@init`; or cut from a trained
supernet: `<proxy>@supernet`), runs the requested proxies on one fixed batch and appends one record per subnet
to a `ResultTable` (JSON lines), keyed by (arch string, batch digest, seed, weights). A second call computes only
what the table lacks, so interrupted runs resume and asking for one more proxy computes only that proxy. Proxies
that do not read weights (`params`, `flops`, `zen`) have plain column names and the same value either way;
`params` and `flops` come from the analytic cost model without building a network.

Record fields: key, arch, one field per proxy column (null where the proxy is undefined for the subnet), batch
(digest of images and labels), batch_size, seed, weights ("init" or the supernet's weights digest),
code_version, seconds (per column, wall time of that proxy on that subnet).

`ProxyLookup` is the bridge to `predictors`: `lookup(archs) -> (N, P)` proxy values, read from the table or
computed on demand and stored, which the `zc` encoding rank-normalizes into features.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from predictors.base import as_archs
from supernets import Arch, SearchSpace, Supernet, config_from_dict, extract

from oneshot.training.checkpoint import load_supernet, weights_digest
from oneshot.version import code_version
from oneshot.console import progress_bar
from oneshot.table import ResultTable
from .proxies import get_proxy, score_many

__all__ = ["ProxyBatch", "ProxyLookup", "score_proxies", "proxy_columns", "INIT", "SUPERNET"]

INIT, SUPERNET = "init", "supernet"


@dataclass(frozen=True, eq=False)
class ProxyBatch:
    """The one batch every subnet is scored on: images (B, C, H, W) normalized float, labels (B,) int64."""

    images: torch.Tensor
    labels: torch.Tensor
    source: dict[str, Any] = field(default_factory=dict)  # where it came from (dataset info, indices seed)

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or not self.images.is_floating_point():
            raise ValueError(f"a proxy batch needs float images (B, C, H, W), got {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"a proxy batch needs one label per image: {self.images.shape[0]} images, "
                             f"labels of shape {tuple(self.labels.shape)}")

    @cached_property
    def digest(self) -> str:
        """Short hash of the exact images and labels, part of every table key."""
        h = hashlib.sha1()
        h.update(self.images.detach().float().cpu().contiguous().numpy().tobytes())
        h.update(self.labels.detach().long().cpu().numpy().tobytes())
        return h.hexdigest()[:12]

    @classmethod
    def from_datamodule(cls, datamodule: Any, size: int = 64, seed: int = 0) -> ProxyBatch:
        """`size` training-split images drawn without replacement by `seed` (the holdout and test are not read)."""
        from oneshot.data import gather

        datamodule.setup()
        n = len(datamodule.train_set)
        if not 2 <= size <= n:
            raise ValueError(f"proxy batch size must be between 2 and the {n} training images, got {size}")
        idx = np.sort(np.random.default_rng([int(seed), 0x2C0]).choice(n, size, replace=False))
        images, labels = gather(datamodule.train_set, idx.tolist())
        info = {k: v for k, v in datamodule.info().items() if k in ("name", "path", "image_size", "mean", "std")}
        return cls(images.float(), labels.long(), {**info, "size": int(size), "seed": int(seed)})


def proxy_columns(proxies: Sequence[str], weights: str = INIT) -> list[str]:
    """Table column per proxy: `<name>@init` / `<name>@supernet` for proxies that read weights, else `<name>`."""
    if weights not in (INIT, SUPERNET):
        raise ValueError(f"weights kind must be {INIT!r} or {SUPERNET!r}, got {weights!r}")
    return [f"{p}@{weights}" if get_proxy(p).uses_weights else p for p in proxies]


def _key(arch: str, batch: str, seed: int, weights: str) -> str:
    return hashlib.sha1(json.dumps([arch, batch, int(seed), weights]).encode()).hexdigest()[:20]


def _weights(space: SearchSpace, weights: Supernet | str | os.PathLike | None) -> tuple[Supernet | None, str]:
    """(supernet or None, weights id for keys)."""
    if weights is None:
        return None, INIT
    if isinstance(weights, Supernet):
        supernet, wid = weights, weights_digest(weights)
    else:
        supernet, info = load_supernet(weights)
        wid = info.get("checkpoint_id") or weights_digest(supernet)
    if supernet.space.fingerprint != space.fingerprint:
        raise ValueError(f"the supernet's space {supernet.space.name!r} is not the space {space.name!r} to score")
    return supernet, wid


def score_proxies(
    space: SearchSpace,
    archs: Iterable[Arch | str],
    proxies: Sequence[str],
    batch: ProxyBatch,
    table: str | os.PathLike | ResultTable | None = None,
    weights: Supernet | str | os.PathLike | None = None,
    seed: int = 0,
    *,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[dict[str, Any]]:
    """One record per subnet with its proxy values (see the module docstring for the fields).

    space:   the search space of `archs`; archs: subnets (Arch or arch strings), repeats dropped.
    proxies: registered proxy names (`list_proxies()`); batch: the images and labels every subnet sees.
    table:   JSONL result table (path or open `ResultTable`) to read earlier values from and append new ones
             to; None keeps nothing.
    weights: None scores randomly initialized subnets (init seeded by `seed`, columns `@init`); a `Supernet` or
             a checkpoint path scores subnets holding the supernet's weights (columns `@supernet`).
    seed:    seeds each subnet's initialization (the same for every subnet) and every proxy's own randomness.
    """
    for p in proxies:
        get_proxy(p)  # unknown names fail before any work
    space_archs = list(dict.fromkeys(as_archs(space, archs)))  # parsed, checked, repeats dropped
    supernet, wid = _weights(space, weights)
    columns = proxy_columns(proxies, INIT if supernet is None else SUPERNET)
    if isinstance(table, (str, os.PathLike)):
        table = ResultTable(table, space, meta={"kind": "proxies"})
    keys = [_key(str(a), batch.digest, seed, wid) for a in space_archs]
    old = {k: (table.get(k) if table is not None else None) or {} for k in keys}
    todo = [(a, k) for a, k in zip(space_archs, keys) if any(c not in old[k] for c in columns)]
    fresh: dict[str, dict[str, Any]] = {}
    if todo:
        config = config_from_dict(space.family, json.loads(space.config))
        images, labels = batch.images.to(device), batch.labels.to(device)
        version = code_version()
        if supernet is not None:
            supernet.to(device)
        for arch, key in progress_bar(todo, desc="proxies", unit="subnet", enabled=progress):
            record = dict(old[key])
            seconds = dict(record.get("seconds", {}))
            pending = [(n, c) for n, c in zip(proxies, columns) if c not in record]
            values: dict[str, float] = {}
            took: dict[str, float] = {}
            for name, _ in pending:
                from_arch = get_proxy(name).from_arch
                if from_arch is not None:
                    t0 = time.perf_counter()
                    values[name] = from_arch(arch)
                    took[name] = time.perf_counter() - t0
            on_net = [n for n, _ in pending if n not in values]
            if on_net:
                net = _network(config, arch, supernet, seed, device)
                # the network is ours: the last proxy to use it may do so without a protective copy
                values.update(score_many(net, images, labels, on_net, seed=seed, inplace=True, seconds=took))
            for name, column in pending:
                seconds[column] = round(took[name], 4)
                record[column] = values[name] if np.isfinite(values[name]) else None  # strict JSON: undefined is null
            record.update(key=key, arch=str(arch), batch=batch.digest, batch_size=int(images.shape[0]),
                          seed=int(seed), weights=wid, code_version=version, seconds=seconds)
            if table is not None:
                table.add(record)  # durable now; a resumed run skips this subnet
            fresh[key] = record
    return [fresh.get(k) or old[k] for k in keys]


def _network(config: Any, arch: Arch, supernet: Supernet | None, seed: int, device: Any) -> torch.nn.Module:
    if supernet is not None:
        return extract(supernet, arch).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))  # every subnet starts from the same seed: independent of scoring order
        return config.build_subnet(arch).to(device)


class ProxyLookup:
    """Proxy vectors of subnets for the `zc` predictor encoding: from a table, the rest computed on demand.

    Same arguments as `score_proxies`. Values already in `table` for this batch, seed and weights are read once
    at construction; `lookup(archs)` returns an (N, P) float array (NaN where a proxy is undefined), computing
    and storing (in memory, and in the table when there is one) the subnets it has not seen. `computed` counts
    subnets scored by this lookup and `seconds` their total wall time, to keep the cost in view.
    """

    def __init__(self, space: SearchSpace, proxies: Sequence[str], batch: ProxyBatch,
                 table: str | os.PathLike | None = None, weights: Supernet | str | os.PathLike | None = None,
                 seed: int = 0, device: str | torch.device = "cpu") -> None:
        self.space, self.proxies, self.batch, self.seed, self.device = space, list(proxies), batch, int(seed), device
        self._supernet, self._wid = _weights(space, weights)
        self.names = proxy_columns(self.proxies, INIT if self._supernet is None else SUPERNET)
        self.table = ResultTable(table, space, meta={"kind": "proxies"}) if table is not None else None
        self._cache: dict[str, np.ndarray] = {}
        self.computed, self.seconds = 0, 0.0
        if self.table is not None:
            for r in self.table.records():
                if r.get("batch") == batch.digest and r.get("seed") == self.seed and r.get("weights") == self._wid \
                        and all(c in r for c in self.names):
                    self._cache[r["arch"]] = self._row(r)

    def _row(self, record: dict[str, Any]) -> np.ndarray:
        return np.array([np.nan if record[c] is None else float(record[c]) for c in self.names])

    def __len__(self) -> int:
        return len(self._cache)

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        """(len(archs), P) proxy values in the order of `names`."""
        missing = list(dict.fromkeys(a for a in archs if str(a) not in self._cache))
        if missing:
            t0 = time.perf_counter()
            for r in score_proxies(self.space, missing, self.proxies, self.batch, self.table, self._supernet,
                                   self.seed, device=self.device):
                self._cache[r["arch"]] = self._row(r)
            self.computed += len(missing)
            self.seconds += time.perf_counter() - t0
        if not archs:
            return np.zeros((0, len(self.names)))
        return np.stack([self._cache[str(a)] for a in archs])

    def reference(self) -> np.ndarray:
        """(M, P) values of every subnet known so far: what the `zc` encoding ranks new values against."""
        if not self._cache:
            return np.zeros((0, len(self.names)))
        return np.stack(list(self._cache.values()))
