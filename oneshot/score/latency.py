"""Measured latency as a search cost: time standalone subnets on the target device, fit a predictor to them.

A budget on latency must be checked before a subnet is evaluated, thousands of times per search, so timing every
proposal is out. Instead a few dozen subnets, chosen to cover every choice of every decision, are timed once
(stored in a result table, so nothing is timed twice and an interrupted measurement resumes), the structured
latency model of `predictors.latency` is fitted to them (per-op terms, costs, a residual; the mix chosen per
device by cross-validation), and the search reads latency from it: exact for a measured subnet, estimated for the
rest, with the estimate's cross-validated error reported so a user knows how far a latency budget can be trusted.
Each table is one target: device, batch size and threads, which the summary and the run report name.

    model = LatencyModel.measure("mbv3_tiny", num_subnets=60, device="cpu", table="runs/latency.jsonl")
    search(ckpt, "supernet", budgets={"latency": [2.0]}, costs={"latency": model})
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernets import Arch, SearchSpace, config_from_dict, get_space

from oneshot.table import ResultTable

__all__ = ["measure_latency", "LatencyModel", "describe_target"]


def _as_space(space: SearchSpace | str | Path) -> SearchSpace:
    """A space from a space, a registered name, or a supernet checkpoint (whose space may carry overrides)."""
    if isinstance(space, SearchSpace):
        return space
    if Path(space).is_file():
        from oneshot.training.checkpoint import load_supernet

        return load_supernet(space)[0].space
    return get_space(str(space))


def measure_latency(
    space: SearchSpace | str | Path,
    archs: Iterable[Arch | str],
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    repeats: int = 20,
    warmup: int = 5,
    table: str | Path | None = None,
    threads: int | None = None,
    clock: str = "wall",
) -> dict[str, float]:
    """Milliseconds per forward pass of each standalone subnet (batch `batch_size`, eval mode), by arch string.

    The minimum over `repeats` timed passes is kept: other processes on the machine only ever add time, so the
    minimum is the stable estimate of what the network itself costs. Weights do not change latency, so subnets
    are built fresh from the space's config. `table` (JSONL) keeps measurements across calls. `threads`: torch
    intra-op threads while timing (default: as set), restored afterwards; tables of other settings are kept apart.
    `clock`: "wall" (latency as a user sees it) or "thread" (CPU time of the calling thread: on a machine shared
    with other processes it leaves out the time the timing thread waits for a core; one CPU thread only).
    """
    if clock not in ("wall", "thread"):
        raise ValueError(f"clock must be 'wall' or 'thread', got {clock!r}")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        if clock == "thread" and (_device_name(device) != "cpu" or torch.get_num_threads() != 1):
            raise ValueError("clock='thread' times one CPU thread: use device='cpu' and threads=1")
        return _measure(space, archs, device, batch_size, repeats, warmup, table, clock)
    finally:
        torch.set_num_threads(before)


ONNXRUNTIME = "onnxruntime"  # a "device": the subnet exported to ONNX and run by onnxruntime's CPU provider


def _device_name(device: str | torch.device) -> str:
    """`onnxruntime`, or torch's canonical device string (`cpu`, `cuda:0`); a one-line error for anything else."""
    if str(device) == ONNXRUNTIME:
        return ONNXRUNTIME
    try:
        return str(torch.device(device))
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {str(device)!r}: use cpu, cuda, cuda:N or {ONNXRUNTIME}") from None


def _measure(space: SearchSpace | str | Path, archs: Iterable[Arch | str], device: str | torch.device,
             batch_size: int, repeats: int, warmup: int, table: str | Path | None, clock: str) -> dict[str, float]:
    space = _as_space(space)
    config = config_from_dict(space.family, json.loads(space.config))
    name = _device_name(device)
    dev = torch.device("cpu" if name == ONNXRUNTIME else name)
    settings = {"device": name, "batch_size": batch_size, "repeats": repeats, "threads": torch.get_num_threads(),
                **({"clock": clock} if clock != "wall" else {})}  # wall-clock tables keep their old keys
    now = time.thread_time if clock == "thread" else time.perf_counter
    store = ResultTable(table, space, meta={"kind": "latency", **settings}) if table else None
    suffix = json.dumps(settings, sort_keys=True)
    # (C, H, W): a user's module (ModuleConfig) gives its input_shape, which may be non-square
    shape = getattr(config, "input_shape", None) or (config.in_chans, config.image_size, config.image_size)
    x = torch.randn(batch_size, *shape, device=dev)
    out: dict[str, float] = {}
    for a in archs:
        arch = a if isinstance(a, Arch) else Arch.from_str(space, a)
        key = f"{arch}|{suffix}"
        if store is not None and key in store:
            out[str(arch)] = float(store.get(key)["latency_ms"])
            continue
        net = config.build_subnet(arch).to(dev).eval()
        out[str(arch)] = (_time_onnx(net, x, repeats, warmup) if name == ONNXRUNTIME
                          else _time_torch(net, x, dev, repeats, warmup, now))
        if store is not None:
            store.add({"key": key, "arch": str(arch), "latency_ms": out[str(arch)], **settings})
    return out


def _time_onnx(net: torch.nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> float:
    """Milliseconds of `net` exported to ONNX under onnxruntime's CPU provider (minimum over `repeats`)."""
    from supernets.onnx import time_onnx

    return time_onnx(net, tuple(x.shape[1:]), repeats, warmup, x.shape[0], threads=torch.get_num_threads())


def _time_torch(net: torch.nn.Module, x: torch.Tensor, dev: torch.device, repeats: int, warmup: int,
                now: Any) -> float:
    """Milliseconds of one forward pass of `net` on `dev`: the minimum over `repeats` timed passes."""
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = now()
            net(x)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i >= warmup:
                times.append(now() - t0)
    return 1000.0 * min(times)


def describe_target(target: Mapping[str, Any]) -> str:
    """`cpu, batch 1, 1 thread` from a latency record or settings dict (the parts it has)."""
    parts = [str(target["device"])] if "device" in target else []
    parts += [f"batch {target['batch_size']}"] if "batch_size" in target else []
    parts += [f"{target['threads']} thread{'s' * (target['threads'] != 1)}"] if "threads" in target else []
    parts += ["thread CPU time"] if target.get("clock") == "thread" else []
    return ", ".join(parts)


class LatencyModel:
    """`arch -> milliseconds`: the measurement for a timed subnet, a fitted predictor's estimate for the rest."""

    # The structured latency model (predictors.latency): per-op and per-position terms, MACs/params and a GP
    # residual, the combination chosen per device by cross-validation on the timed subnets. Any other registered
    # predictor can be named instead; it is then fitted to log ms with these arguments.
    PREDICTOR_ARGS = {"encoding": "ordinal+cost", "target_transform": "standard"}

    def __init__(self, space: SearchSpace, measured: Mapping[str, float], predictor: str = "latency",
                 folds: int = 5, seed: int = 0, target: Mapping[str, Any] | None = None) -> None:
        from predictors import create_predictor, cross_validate, kendall_tau

        if len(measured) < max(folds, 3):
            raise ValueError(f"a latency model needs at least {max(folds, 3)} measured subnets, got {len(measured)}")
        self.space = space
        self.target = dict(target or {})  # what the milliseconds refer to: device, batch_size, threads
        self.measured = {str(Arch.from_str(space, a)): float(v) for a, v in measured.items()}
        self._measured_archs = {Arch.from_str(space, a): v for a, v in self.measured.items()}  # no str() per lookup
        archs = list(self.measured)
        ms = np.array([self.measured[a] for a in archs])
        if predictor == "latency":
            self.model = create_predictor("latency", space, seed=seed, folds=folds)
            self._log = False  # it models ms or log ms itself, per candidate
        else:
            self.model = create_predictor(predictor, space, seed=seed, **self.PREDICTOR_ARGS)
            self._log = True  # latency is a sum of per-layer costs: errors are relative
        y = np.log(ms) if self._log else ms
        if self._log:
            cv = cross_validate(self.model, archs, y, folds=folds, seed=seed)
            est = np.exp(cv.oof_mean)
            self.model.fit(archs, y)
        else:
            # The latency model cross-validates its candidates itself: the out-of-fold estimates of the one it
            # chose are the quality figures (no second, nested cross-validation: it would cost six fits).
            self.model.fit(archs, y)
            reg = self.model.regressor_
            est = reg.oof_[reg.chosen_]
        rel = np.abs(est / ms - 1)
        # How far a latency budget can be trusted, from held-out subnets.
        self.quality = {"n": len(archs), "kendall_tau": kendall_tau(ms, est),
                        "median_rel_error": float(np.median(rel)), "p90_rel_error": float(np.quantile(rel, 0.9)),
                        "model": self.model.regressor_.name if not self._log else predictor}
        self._memo: dict[Arch, float] = {}

    def __call__(self, arch: Arch) -> float:
        return self.many([arch])[0]

    def many(self, archs: Sequence[Arch]) -> list[float]:
        """Milliseconds of each subnet, predicting the ones not seen before in one batch and remembering them all.

        A search screens about a thousand candidates per proposal against a latency budget: one predictor call
        for all of them costs about what one call for a single subnet does (encoding and a GP's kernel included).
        """
        memo = self._memo
        todo = []
        for arch in dict.fromkeys(archs):
            if arch in memo:
                continue
            if arch.space.fingerprint != self.space.fingerprint:
                raise ValueError(f"the latency model was measured on space {self.space.name!r} "
                                 f"({self.space.fingerprint}); subnet {arch} is from {arch.space.name!r} "
                                 f"({arch.space.fingerprint}): time subnets of this space with `oneshot latency`")
            got = self._measured_archs.get(arch)
            if got is None:
                todo.append(arch)
            else:
                memo[arch] = got
        if todo:
            mean = self.model.predict(todo)[0]
            for arch, m in zip(todo, mean):
                memo[arch] = math.exp(m) if self._log else float(m)
        return [memo[a] for a in archs]

    @classmethod
    def measure(cls, space: SearchSpace | str | Path, num_subnets: int = 60, seed: int = 0,
                predictor: str = "latency", **measure_args: Any) -> LatencyModel:
        """Time the smallest, the largest and `num_subnets` more subnets, then fit the model.

        The subnets are a covering design (supernets.design): every choice of every decision appears about
        equally often, then random draws, so each term of the model is informed by several timings.
        """
        from supernets.design import covering_design

        space = _as_space(space)
        archs = covering_design(space, num_subnets + 2, seed=seed)
        target = {"device": _device_name(measure_args.get("device", "cpu")),
                  "batch_size": measure_args.get("batch_size", 1),
                  "threads": measure_args.get("threads") or torch.get_num_threads(),
                  "clock": measure_args.get("clock", "wall")}
        return cls(space, measure_latency(space, archs, **measure_args), predictor=predictor, seed=seed,
                   target=target)

    @classmethod
    def from_table(cls, table: str | Path, predictor: str = "latency") -> LatencyModel:
        """Fit on a latency table written by `measure_latency` / `oneshot latency` (it names its own space)."""
        from oneshot.table import read_table

        if not Path(table).is_file():
            raise FileNotFoundError(f"latency table {str(table)!r} does not exist (write one with `oneshot latency`)")
        space, rows = read_table(table)
        if not rows or "latency_ms" not in rows[0]:
            raise ValueError(f"{str(table)!r} is not a latency table (no latency_ms records)")
        targets = {(r.get("device"), r.get("batch_size"), r.get("threads"), r.get("clock")) for r in rows}
        if len(targets) > 1:
            raise ValueError(f"latency table {str(table)!r} mixes devices/batch sizes/threads "
                             f"{sorted(map(str, targets))}: "
                             "keep one table per target")
        target = {k: rows[0][k] for k in ("device", "batch_size", "threads", "clock") if k in rows[0]}
        return cls(space, {r["arch"]: r["latency_ms"] for r in rows}, predictor=predictor, target=target)

    def describe_target(self) -> str:
        """What the milliseconds refer to, e.g. `cpu, batch 1, 1 thread` (empty when not recorded)."""
        return describe_target(self.target)

    def summary(self) -> str:
        q = self.quality
        on = f" on {self.describe_target()}" if self.target else ""
        return (f"latency model on {q['n']} timed subnets{on} ({q['model']}): held-out Kendall tau "
                f"{q['kendall_tau']:.3f}, median relative error {100 * q['median_rel_error']:.1f}%, 90th percentile "
                f"{100 * q['p90_rel_error']:.1f}%")

