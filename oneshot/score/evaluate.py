"""Score subnets of a trained supernet on the holdout split, after BN recalibration, and keep every result.

For each subnet: reset and re-estimate its BN statistics on K fixed training batches (`oneshot.score.bn`), then measure
holdout accuracy and loss, and add MACs / FLOPs / params from the analytic cost model (`supernets.cost`). The
test split is never read. Results go to a `ResultTable` (JSON lines) next to the checkpoint, keyed by
(checkpoint weights, canonical arch string, calibration settings, holdout data): a second call with the same subnets
(or other spellings of the same networks) evaluates nothing, a run interrupted part-way (even by kill -9) resumes
where it stopped, and processes sharing a table claim subnets so that each is evaluated once.

Record fields: key, arch, holdout_acc (fraction correct, 0..1), holdout_loss (mean cross-entropy, nats),
holdout_size, macs, flops, params, calib_batches, calib_batch_size, seed, checkpoint (weights digest),
checkpoint_path, data (holdout split digest), code_version, calib_seconds, eval_seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from supernets import Arch, SearchSpace, Supernet, cost
from supernets.sampling import sample_distinct

from oneshot.data import SplitDataModule, datamodule_from_info, gather
from oneshot.console import progress_bar
from oneshot.table import ResultTable
from oneshot.threads import configure_threads
from oneshot.training.checkpoint import load_supernet, weights_digest
from oneshot.version import code_version

from .bn import DEFAULT_CALIB_BATCH_SIZE, DEFAULT_CALIB_BATCHES, CalibrationSet, recalibrate_bn

__all__ = ["evaluate", "Evaluations", "sample_archs", "read_archs", "resolve_device", "HoldoutSet", "TABLE_NAME",
           "datamodule_for", "data_identity"]

TABLE_NAME = "evaluations.jsonl"


class HoldoutSet:
    """The holdout split as batches of (images, labels) cached on one device, read once for all subnets."""

    def __init__(self, datamodule: SplitDataModule, batch_size: int = 256, device: str | torch.device = "cpu",
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        datamodule.setup()
        ds = datamodule.holdout_set
        x, y = gather(ds, list(range(len(ds))))
        self.size = len(y)
        self.batches = [(xb.to(device).contiguous(memory_format=memory_format), yb.to(device))
                        for xb, yb in zip(x.split(batch_size), y.split(batch_size))]

    @torch.no_grad()
    def score(self, model: torch.nn.Module, arch: Arch | None = None) -> tuple[float, float]:
        """(accuracy as a fraction, mean cross-entropy) of `model` in eval mode over the whole holdout split."""
        model.eval()
        correct, loss = 0, 0.0
        for x, y in self.batches:
            logits = model(x, arch) if arch is not None else model(x)  # (B, num_classes)
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
        return correct / self.size, loss / self.size


class Evaluations(list):
    """The records `evaluate` returns (a list), plus how many subnets it evaluated now rather than found stored."""

    def __init__(self, records: Iterable[dict[str, Any]] = (), evaluated: int = 0) -> None:
        super().__init__(records)
        self.evaluated = evaluated


def sample_archs(space: SearchSpace, n: int, seed: int = 0, exclude: Iterable[Arch] = ()) -> list[Arch]:
    """`n` distinct uniformly drawn subnets (fewer only if the space is smaller), none of them in `exclude`."""
    return sample_distinct(space, n, np.random.default_rng([seed, 0xE7A1]), exclude)


def read_archs(path: str | os.PathLike, space: SearchSpace) -> list[Arch]:
    """Arch strings from a text file, one per line (blank lines and `#` comments skipped), or from a JSONL
    result table (its `arch` fields); errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"arch file {str(path)!r} does not exist")
    archs = []
    try:
        text_lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"arch file {str(path)!r} is not text") from None
    for lineno, line in enumerate(text_lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(f"{str(path)!r} line {lineno}: not valid JSON") from None
            if "arch" not in obj:
                continue  # a table header
            text = str(obj["arch"])
        try:
            archs.append(Arch.from_str(space, text))
        except ValueError as exc:
            raise ValueError(f"{str(path)!r} line {lineno}: {exc}") from None
    return archs


def _key(checkpoint: str, arch: str, calib: dict[str, int], data: str) -> str:
    blob = json.dumps([checkpoint, arch, calib, data], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def datamodule_for(data_info: dict[str, Any], overrides: dict[str, Any] | None = None) -> SplitDataModule:
    """The DataModule a checkpoint describes, with `overrides` (e.g. `path=` where the data moved since).

    Data that only moved keeps the identity of its recorded path in every result key (evaluation tables, study
    identities, retraining caches): `setup()` checks the split digest, so these are the same images, and work done
    before the move is reused instead of repeated."""
    overrides = dict(overrides or {})
    dm = datamodule_from_info(data_info, **overrides)
    if "path" in overrides and getattr(dm, "expected_split_digest", None) and data_info.get("path") is not None:
        dm.recorded_path = data_info["path"]  # type: ignore[attr-defined]
    return dm


def data_identity(datamodule: SplitDataModule) -> dict[str, Any]:
    """`datamodule.info()` as results are keyed by it: a moved data folder under its recorded path."""
    info = dict(datamodule.info())
    if getattr(datamodule, "recorded_path", None) is not None:
        info["path"] = datamodule.recorded_path  # type: ignore[attr-defined]
    return info


def _data_digest(datamodule: SplitDataModule) -> str:
    """Identifies the holdout images and their preprocessing (not batch sizes or training-only settings)."""
    info = data_identity(datamodule)
    keep = ("name", "path", "image_size", "holdout_fraction", "test_fraction", "mean", "std", "split_seed",
            "max_eval_samples")
    keep += tuple(k for k in ("class_path", "init_args") if k in info)  # a user's data class (oneshot.data.user)
    return hashlib.sha1(json.dumps({k: info[k] for k in keep}, sort_keys=True).encode()).hexdigest()[:12]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to run on (None: CUDA when available, else CPU); a one-line error for unknown or absent ones."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {str(device)!r}: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device {str(device)!r} asked for, but {torch.cuda.device_count()} CUDA GPU(s) are "
                         f"available here; use cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {str(device)!r} is not supported: use cpu, cuda or cuda:N")
    return dev


def _resolve_archs(space: SearchSpace, supernet: Supernet, archs: Iterable[Arch | str] | None) -> list[Arch]:
    out = []
    for a in archs or ():
        if isinstance(a, str):
            a = Arch.from_str(space, a)
        supernet.check_arch(a)  # refuses archs of another space, naming both
        out.append(a)
    return list(dict.fromkeys(out))  # drop repeats, keep order


def evaluate(
    checkpoint_or_supernet: str | os.PathLike | Supernet,
    archs: Iterable[Arch | str] | None = None,
    num_subnets: int | None = None,
    *,
    data: SplitDataModule | dict[str, Any] | None = None,
    calib_batches: int = DEFAULT_CALIB_BATCHES,
    calib_batch_size: int = DEFAULT_CALIB_BATCH_SIZE,
    batch_size: int = 128,
    seed: int = 0,
    table: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    threads: int | None = None,
    channels_last: bool = True,
) -> Evaluations:
    """Holdout accuracy and loss (after BN recalibration), MACs, FLOPs and params of subnets; one record each.

    checkpoint_or_supernet: a checkpoint written by `train` (path), or a `Supernet` in memory.
    archs:          subnets (Arch objects or arch strings of the supernet's space).
    num_subnets:    also draw this many distinct random subnets (seeded by `seed`).
    data:           the DataModule whose holdout split scores the subnets and whose training split feeds the
                    calibration; required with a Supernet; with a checkpoint, None rebuilds the training data
                    from the checkpoint, and a dict overrides some of its arguments (e.g. `{"path": ...}`).
    calib_batches:  K, batches re-estimating BN statistics; calib_batch_size: images per calibration batch.
    batch_size:     holdout images per forward pass.
    seed:           fixes the calibration subset (and the random subnets).
    table:          JSONL result table; default `<checkpoint dir>/evaluations.jsonl` for a checkpoint, none
                    (nothing stored) for an in-memory supernet.
    device:         where to run (default: CUDA when available, else CPU).
    progress:       show a progress bar.
    threads:        torch CPU threads (None: leave as configured).
    channels_last:  run in NHWC memory format (the supernet is converted in place; outputs are unchanged):
                    2-3x faster BN recalibration on CPU.

    Returns records in the order of `archs` followed by the random ones; subnets already in the table are not
    evaluated again, nor is a subnet whose canonical form (`space.canonical`) was: its record is served under
    the requested string, with a `canonical` field naming the spelling that was evaluated. Processes sharing a
    table claim each subnet before evaluating it, so running several at once splits the work. Note that the
    supernet's BN statistics are overwritten (they belong to the last subnet).
    """
    for name, value in (("batch_size", batch_size), ("calib_batches", calib_batches),
                        ("calib_batch_size", calib_batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    dev = resolve_device(device)
    if threads is not None:
        configure_threads(threads)
    if isinstance(checkpoint_or_supernet, Supernet):
        supernet, ckpt_path, ckpt_id = checkpoint_or_supernet, None, None
        if not isinstance(data, SplitDataModule):
            raise ValueError("evaluating an in-memory supernet needs data=<a SplitDataModule> (its holdout split "
                             "scores the subnets, its train split calibrates BN)")
        dm = data
    else:
        supernet, info = load_supernet(checkpoint_or_supernet)
        ckpt_path, ckpt_id = Path(checkpoint_or_supernet), info["checkpoint_id"]
        if isinstance(data, SplitDataModule):
            dm = data
        else:
            dm = datamodule_for(info["data"], data)
        if table is None:
            table = ckpt_path.parent / TABLE_NAME
    space = supernet.space
    chosen = _resolve_archs(space, supernet, archs)
    if num_subnets:
        chosen += sample_archs(space, num_subnets, seed, exclude=chosen)
    if not chosen:
        raise ValueError("nothing to evaluate: give archs or num_subnets")

    dm.setup()
    ckpt_id = ckpt_id or weights_digest(supernet)
    calib = {"calib_batches": int(calib_batches), "calib_batch_size": int(calib_batch_size), "seed": int(seed)}
    balanced = CalibrationSet.can_balance(dm.train_set)  # one decision for the key and for the draw
    if balanced:  # class-balanced draws: other statistics, another key
        calib["calib_balanced"] = True
    data_id = _data_digest(dm)
    # One network, one evaluation: equivalent spellings (space.canonical) share the key of the canonical one.
    canon = [space.canonical(a) for a in chosen]
    keys = [_key(ckpt_id, str(c), calib, data_id) for c in canon]
    results = ResultTable(table, space, meta={"checkpoint": str(ckpt_path) if ckpt_path else None,
                                              "checkpoint_id": ckpt_id}) if table is not None else None
    pending = list({k: c for c, k in zip(canon, keys) if results is None or k not in results}.items())
    fresh: dict[str, dict[str, Any]] = {}
    ready: list[Any] = []  # (calibration set, holdout set, device, format), built once the first subnet is ours

    def score(arch: Arch, key: str) -> dict[str, Any]:
        if not ready:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            supernet.to(dev, memory_format=fmt)
            cset = CalibrationSet.from_datamodule(dm, calib_batches, calib_batch_size, seed, dev,
                                                  balanced).to(dev, fmt)
            ready.append((cset, HoldoutSet(dm, batch_size, dev, fmt), code_version()))
        cset, holdout, version = ready[0]
        t0 = time.perf_counter()
        recalibrate_bn(supernet, cset, arch)
        t1 = time.perf_counter()
        acc, loss = holdout.score(supernet, arch)
        t2 = time.perf_counter()
        c = cost(arch)
        return {
            "key": key, "arch": str(arch), "holdout_acc": acc, "holdout_loss": loss, "holdout_size": holdout.size,
            "macs": c.macs, "flops": c.flops, "params": c.params, **calib,
            "checkpoint": ckpt_id, "checkpoint_path": str(ckpt_path) if ckpt_path else None, "data": data_id,
            "code_version": version, "calib_seconds": round(t1 - t0, 4), "eval_seconds": round(t2 - t1, 4),
        }

    bar = progress_bar(total=len(pending), desc="evaluate", unit="subnet", enabled=progress and bool(pending))
    while pending:
        waiting = []
        for key, arch in pending:
            if results is None:
                fresh[key] = score(arch, key)
            elif results.claim(key):  # another process sharing the table evaluates each subnet once, not twice
                try:
                    fresh[key] = score(arch, key)
                    results.add(fresh[key])  # durable now: an interruption after this loses nothing
                finally:
                    results.release(key)
            elif key not in results:
                waiting.append((key, arch))  # claimed by a live process: its record will arrive
                continue
            bar.update()
        if waiting:
            time.sleep(0.2)  # nothing of ours left: wait for the other processes' records (or their death)
            results.refresh()  # type: ignore[union-attr]
            bar.update(sum(k in results for k, _ in waiting))  # type: ignore[operator]
            waiting = [(k, a) for k, a in waiting if k not in results]  # type: ignore[operator]
        pending = waiting
    bar.close()
    out = Evaluations(evaluated=len(fresh))
    for arch, c, key in zip(chosen, canon, keys):
        record = fresh[key] if key in fresh else results.get(key)  # type: ignore[union-attr]
        if str(arch) != record["arch"]:  # served for another spelling of the same network: say so
            record = {**record, "arch": str(arch), "canonical": record["arch"]}
        out.append(record)
    return out
