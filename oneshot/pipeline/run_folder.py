"""A recipe's run folder: where each phase of `oneshot run` writes its results and later phases read them."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from functools import cached_property
from pathlib import Path
from typing import Any

from oneshot.recipe import Recipe

__all__ = ["Run", "RunLock", "RunFolderBusy", "LOCK_NAME", "record_phase", "write_json", "phase_seconds", "phase_runs",
           "subnet_manifest"]


class Run:
    """A recipe's run folder: each phase writes its results here, and later phases (or later calls) read them."""

    def __init__(self, recipe: Recipe, progress: bool = True, data_path: str | None = None) -> None:
        self.recipe, self.progress = recipe, progress
        self.dir = recipe.run_dir
        # Where the checkpoint's data lives now, when it moved (`--data-path`): its split digest is still checked.
        self.data_overrides = {"path": data_path} if data_path else {}

    @cached_property
    def ckpt(self) -> Path:
        """The supernet checkpoint of this run (asked when a phase needs it: the trainer's module loads Lightning,
        seconds that a phase refused for a missing input need not pay)."""
        from oneshot.training.trainer import checkpoint_path

        return checkpoint_path(self.recipe)

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
        from oneshot.score.evaluate import datamodule_for

        dm = datamodule_for(self.loaded[1]["data"], self.data_overrides)
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

    @cached_property
    def latency(self) -> Any:
        """The latency model when a search budget names latency (timed once on the recipe's target device and kept
        in <run>/latency.jsonl, so the calibrate and search phases share one set of timings), else None."""
        se = self.recipe.search
        if "latency" not in dict(se.budgets or {}):
            return None
        from oneshot.score.latency import LatencyModel

        return LatencyModel.measure(self.space, **{"table": self.dir / "latency.jsonl", **se.latency})

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
    from oneshot.deploy.manifest import read_manifest

    return read_manifest(run.path("subnets", "extract"))


def write_json(path: Path, obj: Any) -> Path:
    """Write a run-folder JSON file atomically (a crash leaves the old file or the new one, never half)."""
    from supernets.files import atomic_write_bytes  # here, not at the top: `supernets` loads torch, and the lock
    # (RunLock) is taken by commands before they import the engine, so that a busy folder is refused at once

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


# --------------------------------------------------------------------------- one process per run folder
LOCK_NAME = ".oneshot.lock"
# Temporaries of an atomic checkpoint save (supernets.files.atomic_write_bytes: `.<name>.` + mkstemp's 8 characters)
_CKPT_TEMP = re.compile(r"^\..+\.ckpt\.[A-Za-z0-9_]{8}$")

try:
    import fcntl
except ImportError:  # Windows: no lock (one process per run folder is then the user's to keep)
    fcntl = None  # type: ignore[assignment]


class RunFolderBusy(ValueError):
    """Another live process holds the run folder (a one-line error at the command boundary)."""


class RunLock:
    """Exclusive use of a run folder by one command: `with RunLock(folder, "oneshot run"): ...`.

    Two commands training one checkpoint, or retraining the same subnets, at once would waste the work twice and
    mix their results, so the second is refused, naming the owner. The lock is an `flock` on `<folder>/.oneshot.lock`,
    which also holds the owner's pid, host, command and start time: the kernel drops the lock when its process dies,
    so a lock left by a killed process is taken over (with a line saying so). A lock file naming another host is
    never taken over (over a network file system its process may still run): the message says which file to delete.
    Re-entrant within one process (`oneshot run` holds it while its train phase runs). DDP ranks other than 0 (which
    re-run the same command) do not take it: rank 0 holds it for them. While the lock is held no other trainer can
    be writing here, so stale checkpoint temporaries of an interrupted save are removed.
    """

    _held: dict[str, int] = {}  # resolved folder -> nesting depth, in this process

    def __init__(self, folder: str | os.PathLike, command: str) -> None:
        self.folder, self.command = Path(folder), command
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self._key = ""

    def __enter__(self) -> "RunLock":
        if fcntl is None or int(os.environ.get("LOCAL_RANK", "0") or 0) > 0:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        self._key = str(self.folder.resolve())
        if self._key in RunLock._held:
            RunLock._held[self._key] += 1
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunFolderBusy(f"run folder {str(self.folder)!r} is in use by {_describe(_owner(self.path))}; "
                                    "wait for it to finish, or stop it") from None
            try:  # the holder we waited on may have removed the file: lock the one that is there now
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        old = _owner_of_fd(fd)
        here = socket.gethostname()
        if old.get("host") not in (None, here):
            os.close(fd)
            raise RunFolderBusy(f"run folder {str(self.folder)!r} is locked by {_describe(old)}, another machine: "
                                f"if that process has stopped, delete {str(self.path)!r}")
        if old.get("pid") is not None:
            print(f"note: run folder {str(self.folder)!r}: taking over the lock of {_describe(old)}, which is no "
                  "longer running", file=sys.stderr, flush=True)
        me = {"pid": os.getpid(), "host": here, "command": self.command,
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        RunLock._held[self._key] = 1
        _remove_checkpoint_temporaries(self.folder)
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._key or self._key not in RunLock._held:
            return
        RunLock._held[self._key] -= 1
        if RunLock._held[self._key] > 0 or self._fd is None:
            return
        del RunLock._held[self._key]
        try:
            self.path.unlink(missing_ok=True)  # while still locked: a waiter then finds the file gone and retries
        finally:
            os.close(self._fd)
            self._fd = None


def _owner_of_fd(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _owner(path: Path) -> dict[str, Any]:
    """Who holds a lock file (its writer may not have filled it yet: then it is unknown)."""
    for _ in range(20):
        try:
            data = json.loads(path.read_bytes() or b"{}")
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and data.get("pid") is not None:
            return data
        time.sleep(0.05)
    return {}


def _describe(owner: dict[str, Any]) -> str:
    if owner.get("pid") is None:
        return "another process"
    return (f"`{owner.get('command', 'oneshot')}` (pid {owner['pid']} on {owner.get('host', '?')}, since "
            f"{owner.get('started', '?')})")


def _remove_checkpoint_temporaries(folder: Path) -> None:
    """Delete `.supernet.ckpt.XXXXXXXX` files a killed save left (only called under the run folder's lock)."""
    stale = [p for p in folder.iterdir() if _CKPT_TEMP.match(p.name) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    if stale:
        print(f"note: removed {len(stale)} temporary file(s) of an interrupted checkpoint save: "
              f"{', '.join(p.name for p in stale)}", file=sys.stderr, flush=True)
