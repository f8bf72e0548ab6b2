"""What a run prints: progress bars on a terminal, plain lines in a log, and Lightning without its per-Trainer noise.

Every bar in oneshot comes from `progress_bar` and every Trainer takes `trainer_console(progress)` and fits inside
`quiet_lightning()`, so a pipeline piped to a file reads as one line per step instead of `\\r` bar fragments and
the same banners once per phase.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm

__all__ = ["interactive", "progress_bar", "PlainProgress", "quiet_lightning", "trainer_console", "EpochLines",
           "EpochBar", "fit_interruptibly", "clip", "clip_message", "out_of_memory", "ECHO_CHARS"]

# Echoed input (an arch line, a file name read from a file) is cut to about this many characters in messages: an
# error about a 10 MB line must still be one readable line.
ECHO_CHARS = 200

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


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` cut to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


_LONG_TOKEN = re.compile(r"\S{%d,}" % (ECHO_CHARS + 1))


def clip_message(text: str, total: int = 4 * ECHO_CHARS) -> str:
    """An error message on one line, with every echoed piece of input longer than `ECHO_CHARS` cut (a 10 MB arch
    line) and the whole kept under about `total` characters."""
    text = " ".join(text.split("\n"))
    text = _LONG_TOKEN.sub(lambda m: clip(m.group()), text)
    return clip(text, total)


# What lowers the memory a command needs, per command; recipe phases name the recipe keys (`--set KEY=VALUE`).
_MEMORY_SETTINGS = {
    "evaluate": "--batch-size (holdout images per forward pass) or --calib-batch-size (images per BN calibration "
                "batch)",
    "extract": "the calibration batch size (extract_subnets(calib_batch_size=...)) or --calib-batches",
    "train": "data.batch_size in the recipe (--set data.batch_size=32)",
    "retrain": "data.batch_size of the checkpoint's data, or fewer subnets at a time",
    "proxies": "--batch-size",
    "latency": "--batch-size",
    "run": "evaluate.batch_size, evaluate.calib_batch_size or data.batch_size (e.g. --set evaluate.batch_size=32)",
}


def out_of_memory(command: str, exc: BaseException) -> str | None:
    """One line saying which memory ran out and which setting lowers it, when `exc` is an out-of-memory error
    (torch.OutOfMemoryError on a GPU; MemoryError or the CPU allocator's RuntimeError in host memory); else None."""
    name = type(exc).__name__
    text = str(exc)
    if name == "OutOfMemoryError" or (isinstance(exc, RuntimeError) and "out of memory" in text.lower()):
        what = "GPU memory" if "cuda" in text.lower() or name == "OutOfMemoryError" else "device memory"
    elif isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "can't allocate memory" in text):
        what = "host memory (RAM, or the process's address-space limit, ulimit -v)"
    else:
        return None
    key = command if command in _MEMORY_SETTINGS else "run"
    first = clip(text.strip().splitlines()[0], 120) if text.strip() else name
    return f"out of {what} ({first}); lower {_MEMORY_SETTINGS[key]}"


def __getattr__(name: str) -> Any:
    # EpochLines and EpochBar live in oneshot.console_callbacks: they subclass Lightning's callbacks, and importing
    # Lightning takes seconds that a search or a table read never needs.
    if name in ("EpochLines", "EpochBar"):
        from oneshot import console_callbacks

        return getattr(console_callbacks, name)
    raise AttributeError(f"module 'oneshot.console' has no attribute {name!r}")
