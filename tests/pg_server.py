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


def skip_or_fail(exc: Unavailable) -> None:
    """What a fixture does without a server: skip, or fail when ONESHOT_TEST_POSTGRES=require (CI)."""
    import pytest

    if os.environ.get("ONESHOT_TEST_POSTGRES") == "require":
        pytest.fail(f"PostgreSQL required but unavailable: {exc}")
    pytest.skip(str(exc))


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


class Cluster:
    """A running throwaway server: `url` to connect, `stop()` and `start()` it again on the same port and data."""

    def __init__(self, bin_dir: Path, root: Path, prefix: list[str], port: int) -> None:
        self.bin_dir, self.root, self.prefix, self.port = bin_dir, root, prefix, port
        self.url = f"postgresql+psycopg://oneshot@127.0.0.1:{port}/oneshot"

    def run(self, *args: str) -> None:
        subprocess.run(self.prefix + list(args), check=True, capture_output=True, timeout=120)

    def start_command(self) -> list[str]:
        return self.prefix + [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                              str(self.root / "log"), "-w", "start", "-o", f"-p {self.port} -k {self.root} "
                              "-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"]

    def stop_command(self, mode: str = "fast") -> list[str]:
        return self.prefix + [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", mode, "-w", "stop"]

    def start(self) -> None:
        subprocess.run(self.start_command(), check=True, capture_output=True, timeout=120)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self.stop_command(mode), capture_output=True, timeout=60)


@contextmanager
def postgres_cluster() -> Iterator[Cluster]:
    """Yield a fresh server that the caller may stop and start (`Cluster`); stop and delete it afterwards. Not
    available with ONESHOT_TEST_POSTGRES_URL (a server we do not own is never stopped)."""
    if os.environ.get("ONESHOT_TEST_POSTGRES_URL"):
        raise Unavailable("ONESHOT_TEST_POSTGRES_URL names a server this test may not stop")
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
    cluster = Cluster(bin_dir, root, prefix, _free_port())
    try:
        cluster.run(str(bin_dir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "oneshot", "--no-sync")
        cluster.start()
        cluster.run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "oneshot", "oneshot")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        raise Unavailable(f"could not start PostgreSQL: {detail.decode(errors='replace')[-500:]}") from exc
    try:
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of an empty database on a fresh server; stop and delete it afterwards."""
    if os.environ.get("ONESHOT_TEST_POSTGRES_URL"):
        yield os.environ["ONESHOT_TEST_POSTGRES_URL"]
        return
    with postgres_cluster() as cluster:
        yield cluster.url


def fresh_database(url: str, name: str) -> str:
    """The URL of a new, empty database `name` on the server of `url` (each test gets its own)."""
    import psycopg

    base, _, _ = url.rpartition("/")
    # CREATE DATABASE cannot run inside a transaction, hence autocommit.
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"
