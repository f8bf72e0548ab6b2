"""A recipe's run folder: where each phase of `oneshot run` writes its results and later phases read them."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from supernets.files import atomic_write_bytes

from oneshot.recipe import Recipe

__all__ = ["Run", "record_phase", "write_json", "phase_seconds", "phase_runs", "subnet_manifest"]


class Run:
    """A recipe's run folder: each phase writes its results here, and later phases (or later calls) read them."""

    def __init__(self, recipe: Recipe, progress: bool = True) -> None:
        from oneshot.training.trainer import checkpoint_path

        self.recipe, self.progress = recipe, progress
        self.dir = recipe.run_dir
        self.ckpt = checkpoint_path(recipe)

    def path(self, name: str, made_by: str) -> Path:
        """A file an earlier phase wrote; a clear error naming that phase when it is not there yet."""
        p = self.dir / name
        if not p.exists():
            raise FileNotFoundError(f"{str(p)!r} does not exist yet: run `oneshot {made_by} RECIPE` (or `oneshot run "
                                    f"RECIPE`) first")
        return p

    def read(self, name: str, made_by: str) -> Any:
        return json.loads(self.path(name, made_by).read_text())

    def write(self, name: str, obj: Any) -> Path:
        return write_json(self.dir / name, obj)

    @cached_property
    def loaded(self) -> tuple[Any, dict[str, Any]]:
        """(supernet, checkpoint info), loaded once per process."""
        from oneshot.training.checkpoint import load_supernet

        return load_supernet(self.path(self.ckpt.name, "train"))

    @property
    def space(self) -> Any:
        return self.loaded[0].space

    @cached_property
    def data(self) -> Any:
        """The checkpoint's DataModule, set up (same splits as training)."""
        from oneshot.data import datamodule_from_info

        dm = datamodule_from_info(self.loaded[1]["data"])
        dm.setup()
        return dm

    @cached_property
    def calibration(self) -> Any:
        """The evaluate settings' calibration batches, drawn once per process (fine-tuning extracts with them)."""
        from oneshot.score.bn import CalibrationSet

        ev = self.recipe.evaluate
        return CalibrationSet.from_datamodule(self.data, ev.calib_batches, ev.calib_batch_size, ev.seed,
                                              device=next(self.loaded[0].parameters()).device)

    @cached_property
    def proxies(self) -> Any:
        """The recipe's zero-cost proxies as a `ProxyLookup` on <run>/proxies.jsonl (None without predict.proxies)."""
        pr = self.recipe.predict
        if not pr.proxies:
            return None
        from oneshot.score.proxy_table import ProxyBatch, ProxyLookup

        batch = ProxyBatch.from_datamodule(self.data, pr.proxy_batch_size, self.recipe.seed)
        return ProxyLookup(self.space, pr.proxies, batch, table=self.dir / "proxies.jsonl", seed=self.recipe.seed)

    @property
    def eval_kwargs(self) -> dict[str, Any]:
        """Scoring settings shared by evaluate, search and extract, so they hit one evaluation table."""
        ev = self.recipe.evaluate
        return dict(calib_batches=ev.calib_batches, calib_batch_size=ev.calib_batch_size, batch_size=ev.batch_size,
                    seed=ev.seed, table=self.dir / "evaluations.jsonl")

    def evaluated(self) -> list[dict[str, Any]]:
        """The evaluate phase's records."""
        return self.read("evaluate.json", "evaluate")["records"]

    @property
    def sampler(self) -> str:
        from oneshot.study.defaults import default_sampler

        se = self.recipe.search
        return se.sampler or default_sampler(se.strategy)


def subnet_manifest(run: Run) -> tuple[Path, list[dict[str, Any]]]:
    from oneshot.deploy.extract import read_manifest

    return read_manifest(run.path("subnets", "extract"))


def write_json(path: Path, obj: Any) -> Path:
    """Write a run-folder JSON file atomically (a crash leaves the old file or the new one, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(obj, indent=2, default=float).encode())
    return path


def phase_runs(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every run of each phase, oldest first: `{phase: [{"seconds": s, "resumed": bool}, ...]}` (phases.json)."""
    p = run_dir / "phases.json"
    saved = json.loads(p.read_text()) if p.is_file() else {}
    # phases.json of older versions held one number per phase: the latest run's seconds
    return {k: v["runs"] if isinstance(v, dict) else [{"seconds": float(v), "resumed": False}]
            for k, v in saved.items()}


def phase_seconds(run_dir: Path) -> dict[str, float]:
    """Compute each phase cost in all: the seconds of its first run plus those of every resume or repeat."""
    return {k: sum(r["seconds"] for r in runs) for k, runs in phase_runs(run_dir).items()}


def record_phase(run_dir: Path, name: str, seconds: float, resumed: bool | None = None, replace: bool = False
                 ) -> None:
    """Add a run of a phase to `<run_dir>/phases.json`, where the report reads compute per phase.

    resumed: this run continued or repeated earlier work (None: it did when the phase has run here before).
    replace: this run starts the phase over (e.g. `oneshot train --overwrite`): earlier runs no longer count.
    """
    runs = phase_runs(run_dir)
    earlier = [] if replace else runs.get(name, [])
    resumed = bool(earlier) if resumed is None else resumed
    runs[name] = [*earlier, {"seconds": round(float(seconds), 3), "resumed": bool(resumed)}]
    write_json(run_dir / "phases.json", {k: {"seconds": sum(r["seconds"] for r in v), "runs": v}
                                         for k, v in runs.items()})
