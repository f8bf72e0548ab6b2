"""What a run prints: progress bars on a terminal, plain lines in a log, and Lightning without its per-Trainer noise.

Every bar in oneshot comes from `progress_bar` and every Trainer takes `trainer_console(progress)` and fits inside
`quiet_lightning()`, so a pipeline piped to a file reads as one line per step instead of `\\r` bar fragments and
the same banners once per phase.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm

__all__ = ["interactive", "progress_bar", "PlainProgress", "quiet_lightning", "trainer_console", "EpochLines",
           "EpochBar", "fit_interruptibly"]


def __getattr__(name: str) -> Any:
    """`EpochLines` and `EpochBar` live in `oneshot.console_callbacks` (they subclass Lightning's callbacks, seconds
    to import): still importable from here by name, loaded on first use."""
    if name in ("EpochLines", "EpochBar"):
        from oneshot import console_callbacks

        return getattr(console_callbacks, name)
    raise AttributeError(f"module 'oneshot.console' has no attribute {name!r}")


# Loggers behind Lightning's info messages ("GPU available: ...", "TPU available: ...", "💡 Tip: ...",
# "`Trainer.fit` stopped: ..."); its warnings go through `warnings.warn` and are untouched.
_LIGHTNING_INFO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


def interactive() -> bool:
    """True when stdout is a terminal: only there does a `\\r`-redrawn bar read as one line."""
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class PlainProgress:
    """A tqdm stand-in for logs: `desc: n/total unit` lines at every tenth of the total and at the end, no `\\r`.

    Supports what oneshot's loops use: iteration, `update`, assigning `n`, `set_postfix`, `refresh`, `close` and
    use as a context manager.
    """

    def __init__(self, iterable: Iterable[Any] | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", steps: int = 10) -> None:
        self.iterable, self.desc, self.unit, self.steps = iterable, desc, unit, steps
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.n, self.postfix = total, 0, ""
        self._shown, self._printed_n = -1, -1  # the last tenth (0..steps) and count printed
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        for x in self.iterable or ():
            yield x
            self.update(1)
        self.close()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        self.refresh()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())
        if refresh:
            self.refresh()

    def refresh(self) -> None:
        """Print a line when the count has reached a new tenth of the total (unknown totals print on close)."""
        if not self.total or self._closed:
            return
        step = min(self.steps, self.n * self.steps // self.total)
        if step > self._shown and self.n > 0:
            self._shown = step
            self._line()

    def close(self) -> None:
        if self._closed:
            return
        if self.n > 0 and self.n != self._printed_n:  # the final count, unless the last line already said it
            self._line()
        self._closed = True

    def _line(self) -> None:
        self._printed_n = self.n
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        print(f"{self.desc}: {count} {self.unit}{f' ({self.postfix})' if self.postfix else ''}", flush=True)


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", enabled: bool = True) -> Any:
    """A tqdm bar on a terminal, `PlainProgress` lines when stdout is piped, nothing when not `enabled`."""
    if enabled and not interactive():
        return PlainProgress(iterable, total=total, desc=desc, unit=unit)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's info banners and tips for the block, restoring the loggers' levels afterwards."""
    loggers = [logging.getLogger(name) for name in _LIGHTNING_INFO_LOGGERS]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, before):
            lg.setLevel(level)


def trainer_console(progress: bool, desc: str = "train") -> dict[str, Any]:
    """`L.Trainer` keyword arguments for how a fit reports: `EpochBar` on a terminal, `EpochLines` in a log, never
    the model summary (it repeats for every phase and subnet). Merge `callbacks` with your own."""
    from oneshot.console_callbacks import EpochBar, EpochLines  # Lightning's import takes seconds: only here

    bar = progress and interactive()
    return {"enable_progress_bar": bar, "enable_model_summary": False,
            "callbacks": [EpochBar(desc)] if bar else [EpochLines(desc)] if progress else []}


def fit_interruptibly(trainer: Any, method: str = "fit", *args: Any, **kwargs: Any) -> Any:
    """`trainer.fit(...)` (or `validate`, `test`) where Ctrl-C raises KeyboardInterrupt as in every other phase.

    Lightning catches the KeyboardInterrupt itself, shuts down, ignores further SIGINTs and exits the process with
    `sys.exit(1)` (lightning.pytorch.trainer.call._call_and_handle_interrupt), so the command could never say that
    it was interrupted. Its SystemExit from an interrupted trainer (`trainer.interrupted`) becomes the
    KeyboardInterrupt again, with Ctrl-C's default handler back.
    """
    try:
        return getattr(trainer, method)(*args, **kwargs)
    except SystemExit:
        if not getattr(trainer, "interrupted", False):
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt from None
