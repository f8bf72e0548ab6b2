"""A throwaway PostgreSQL server on loopback, so shared-storage tests run against the real thing.

Set ONESHOT_TEST_POSTGRES_URL to use a server you already have; set ONESHOT_TEST_POSTGRES=require (CI does) to fail
instead of skip when no server can be started.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Unavailable(RuntimeError):
    """No PostgreSQL server or driver here: the caller skips (or fails, when one is required)."""


def _bin_dir() -> Path:
    """The folder of initdb/pg_ctl: on PATH, or Debian's versioned folder."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not dirs:
        raise Unavailable("no PostgreSQL server binaries (initdb); on Debian: apt-get install postgresql")
    return Path(dirs[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of an empty database on a fresh server; stop and delete it afterwards."""
    if os.environ.get("ONESHOT_TEST_POSTGRES_URL"):
        yield os.environ["ONESHOT_TEST_POSTGRES_URL"]
        return
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise Unavailable("no PostgreSQL driver: pip install 'psycopg[binary]'") from exc
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="oneshot-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the packaged 'postgres' user
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise Unavailable("running as root and there is no 'postgres' user to run the server") from exc
        os.chown(root, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = root / "data"

    def run(*args: str) -> None:
        subprocess.run(prefix + list(args), check=True, capture_output=True, timeout=120)

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "oneshot", "--no-sync")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50")
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "oneshot", "oneshot")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        raise Unavailable(f"could not start PostgreSQL: {detail.decode(errors='replace')[-500:]}") from exc
    try:
        yield f"postgresql+psycopg://oneshot@127.0.0.1:{port}/oneshot"
    finally:
        subprocess.run(prefix + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(url: str, name: str) -> str:
    """The URL of a new, empty database `name` on the server of `url` (each test gets its own)."""
    import psycopg

    base, _, _ = url.rpartition("/")
    # CREATE DATABASE cannot run inside a transaction, hence autocommit.
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"
