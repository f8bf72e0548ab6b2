"""Optuna storages from URLs: a local SQLite file, a journal file, a shared database, or memory.

Storage is a URL so that the same search runs on one machine or as many workers sharing one study; the storage
object is opened once and passed explicitly to every study of a search.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage

__all__ = ["open_storage", "redact"]


def open_storage(storage: str | BaseStorage | None, run_dir: str | Path | None = None) -> tuple[BaseStorage, str]:
    """An Optuna storage and its URL from a URL, a storage object, or None (SQLite file in `run_dir`)."""
    if isinstance(storage, BaseStorage):
        return storage, type(storage).__name__
    if storage is None:
        if run_dir is None:
            raise ValueError("give a storage URL or a run_dir for the default SQLite file")
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{Path(run_dir) / 'study.db'}"
    if not isinstance(storage, str):
        raise TypeError(f"storage must be a URL string or an Optuna storage, got {type(storage).__name__}")
    if storage in ("memory", ":memory:"):
        return optuna.storages.InMemoryStorage(), "memory"
    if storage.startswith("journal:"):
        path = re.sub(r"^journal:(//)?", "", storage)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(path)), storage
    kwargs: dict[str, Any] = {}
    if storage.startswith("sqlite:///"):
        Path(storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # Workers share the file: wait for its lock instead of failing after SQLite's default 5 s.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    # Workers started together on a fresh database race to create its schema; the loser sees "table ... already
    # exists" (PostgreSQL: a duplicate key in its catalog) once the winner is done, and opening it again succeeds.
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(storage, **kwargs), storage
        except ImportError as exc:
            hint = " (pip install 'oneshot[postgres]')" if storage.startswith("postgres") else ""
            raise ValueError(f"storage {redact(storage)} needs a database driver that is not installed{hint}: "
                             f"{exc}") from exc
        except Exception as exc:  # sqlalchemy.exc.OperationalError / IntegrityError, not imported here on purpose
            text = str(exc).lower()
            if attempt < 4 and ("already exists" in text or "unique constraint" in text):
                time.sleep(0.2 * (attempt + 1))
                continue
            first = str(getattr(exc, "orig", exc)).strip().splitlines()
            raise ValueError(f"cannot open storage {redact(storage)}: {first[0] if first else type(exc).__name__}"
                             ) from exc
    raise AssertionError("unreachable")


# user:password@host, the password possibly empty-usered (`://:pw@`) or holding `@` or `/` unescaped: everything
# between the first `:` of the userinfo and the last `@` before a host with no `@`, `/`, `?` or `#`.
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#]*):.*@(?P<host>[^@/?#]*(?:[/?#].*)?)$",
                       re.DOTALL)
_QUERY = re.compile(r"(?P<key>[?&;](?:password|passwd|pwd|pass|secret|token)=)[^&;#]*", re.IGNORECASE)


def redact(url: str) -> str:
    """A storage URL with its password replaced by `***` (in the userinfo and in `?password=`), safe to print."""
    url = _QUERY.sub(r"\g<key>***", url)
    m = _USERINFO.match(url)
    # Redacting a query password first leaves `***` in the query, never an `@`: the userinfo match is unaffected.
    return f"{m['head']}:***@{m['host']}" if m else url
