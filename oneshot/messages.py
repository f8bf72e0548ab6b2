"""Error messages at the command boundary: one line, echoed input cut short, out-of-memory said plainly.

Standard library only: a command that fails on bad input reports it without importing Lightning or torch.
"""

from __future__ import annotations

import re

__all__ = ["clip", "clip_message", "out_of_memory", "ECHO_CHARS"]

# Echoed input (an arch line, a file name read from a file) is cut to about this many characters in messages: an
# error about a 10 MB line must still be one readable line.
ECHO_CHARS = 200


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
