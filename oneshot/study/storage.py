"""Optuna storages from URLs: a local SQLite file, a journal file, a shared database, or memory.

Storage is a URL so that the same search runs on one machine or as many workers sharing one study; the storage
object is opened once and passed explicitly to every study of a search. `$VAR` / `${VAR}` in a URL are expanded
here, when the storage is opened (`storage: ${ONESHOT_STORAGE}` keeps a password out of every saved file).

A storage that fails (a read-only SQLite file or folder, a database server that stopped) is reported as one
`StorageError` line naming the URL with its password masked and the cause; `storage_failure` tells such failures
from other errors and whether they may pass (a connection lost), for the search's retry.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage

from oneshot.redact import expand_env, redact

__all__ = ["open_storage", "redact", "StorageError", "storage_failure", "retry_seconds", "RETRY_SECONDS"]

# How long a search waits for a storage whose connection was lost (a database server restarting) before giving up;
# ONESHOT_STORAGE_RETRY_SECONDS overrides it (0: fail at once).
RETRY_SECONDS = 60.0

# Causes that may pass: the server went away or is restarting (PostgreSQL / MySQL driver messages, lower case).
_TRANSIENT = ("connection refused", "server closed the connection", "terminating connection", "could not connect",
              "connection reset", "connection timed out", "the database system is starting up",
              "the database system is shutting down", "no connection to the server", "connection is closed",
              "consuming input failed", "lost connection", "server has gone away", "connection to server",
              "connection failed", "broken pipe")


class StorageError(ValueError):
    """A storage that cannot be used: one line naming the URL (password masked) and the cause."""

    def __init__(self, url: str, cause: str, transient: bool = False, doing: str = "") -> None:
        self.url, self.cause, self.transient = url, cause, transient
        super().__init__(f"cannot {doing} storage {url}: {cause}" if doing else f"storage {url}: {cause}")


def retry_seconds() -> float:
    """The retry window for a lost storage connection (`ONESHOT_STORAGE_RETRY_SECONDS`, default `RETRY_SECONDS`)."""
    text = os.environ.get("ONESHOT_STORAGE_RETRY_SECONDS", "")
    try:
        return max(0.0, float(text)) if text.strip() else RETRY_SECONDS
    except ValueError:
        raise ValueError(f"ONESHOT_STORAGE_RETRY_SECONDS must be a number of seconds, got {text!r}") from None


def storage_failure(exc: BaseException, url: str) -> StorageError | None:
    """`exc` as a `StorageError` for `url` (already masked) when it is a storage failure (a database error anywhere
    in its chain, or Optuna's StorageInternalError); None for any other error."""
    if isinstance(exc, StorageError):
        return exc
    chain, seen = [], set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    db = [x for x in chain if _is_database_error(x)]
    if not db:
        return None
    root = getattr(db[0], "orig", None) or db[-1]
    root = getattr(root, "orig", None) or root
    lines = [ln.strip() for ln in str(root).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(root).__name__
    low = " ".join(str(x).lower() for x in (root, *db))
    if "readonly" in low or "read-only" in low or "read only" in low:
        return StorageError(url, f"read-only: {text} (give a writable folder or --storage)")
    folder = _sqlite_folder(url)
    if folder is not None and folder.is_dir() and not os.access(folder, os.W_OK):
        # SQLite writes a journal beside the database: a read-only folder fails as "unable to open database file"
        return StorageError(url, f"read-only: the folder {str(folder)!r} is not writable ({text}); give a writable "
                                 "folder or --storage")
    transient = any(t in low for t in _TRANSIENT) or any(getattr(x, "connection_invalidated", False) for x in db)
    return StorageError(url, text, transient)


def _sqlite_folder(url: str) -> Path | None:
    """The folder of a `sqlite:///PATH` database (None for other URLs and SQLite's `file:` URI form)."""
    if not url.startswith("sqlite:///") or url[len("sqlite:///"):].startswith("file:"):
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0]).parent


def _is_database_error(exc: BaseException) -> bool:
    """A SQLAlchemy, DB-API (sqlite3, psycopg) or Optuna storage error, told apart without importing drivers."""
    names = {c.__module__.split(".")[0] + "." + c.__name__ for c in type(exc).__mro__}
    return bool(names & {"optuna.StorageInternalError", "sqlalchemy.SQLAlchemyError", "sqlite3.Error",
                         "psycopg.Error", "psycopg2.Error"})


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
    if "$" in storage:  # a reference such as ${ONESHOT_STORAGE}: the password lives in the environment only
        storage = expand_env(storage, f"storage {redact(storage)}")
    if storage in ("memory", ":memory:"):
        return optuna.storages.InMemoryStorage(), "memory"
    if storage.startswith("journal:"):
        path = re.sub(r"^journal:(//)?", "", storage)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(path)), storage
    kwargs: dict[str, Any] = {}
    if storage.startswith("sqlite:///"):
        if not storage[len("sqlite:///"):].startswith("file:"):  # a `file:...?uri=true` form is SQLite's to open
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
            failure = storage_failure(exc, redact(storage))
            if failure is not None:
                raise StorageError(failure.url, failure.cause, failure.transient, doing="open") from None
            first = str(getattr(exc, "orig", exc)).strip().splitlines()
            raise ValueError(f"cannot open storage {redact(storage)}: {first[0] if first else type(exc).__name__}"
                             ) from None
    raise AssertionError("unreachable")
