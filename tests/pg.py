"""A throwaway PostgreSQL cluster for the tests, never the server on 127.0.0.1:5432.

:class:`Cluster` runs Debian's ``initdb`` and ``pg_ctl`` as the ``postgres`` user in a
temporary folder (owned by ``postgres``) on a free port, with its unix socket in that
folder, and stops it with ``pg_ctl stop -m fast``. :meth:`Cluster.database` creates an
empty database and :meth:`Cluster.drop` drops it. The fixtures ``pg_cluster`` (one per
test session) and ``pg_url`` (a fresh database per test) are used by importing them
into a test module (``from pg import pg_cluster, pg_url`` with tests/ on ``sys.path``).

It skips with the reason when PostgreSQL's binaries, psycopg or root are missing
(``apt-get install postgresql``).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.localnet import free_port

_names = itertools.count(1)


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


def skip_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return (
            "psycopg / psycopg-pool are not installed (pip install 'psycopg[binary]' psycopg-pool)"
        )
    if pg_bin() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if os.geteuid() != 0:
        return "the throwaway PostgreSQL cluster is started as the postgres user: run as root"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user (apt-get install postgresql)"
    return None


class Cluster:
    """One private PostgreSQL cluster (trust authentication on 127.0.0.1 only)."""

    def __init__(self, *, durable: bool = False) -> None:
        """``durable``: fsync and synchronous commits on (benchmarks); off for tests."""
        self.bin = pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="vanbox-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run(
            self.bin / "initdb",
            "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
            " -c max_connections=100 -c shared_buffers=256MB"
        )
        if not durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"

        self._run(
            self.bin / "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
            "-l", str(self.dir / "postgres.log"), "-o", opts,
        )  # fmt: skip

    def _run(self, *argv) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *map(str, argv)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.dir)
        if r.returncode != 0:
            log = self.dir / "postgres.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr[-2000:]}\n{tail}")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(sql)

    def database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}{os.getpid()}_{next(_names)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        try:
            self._run(self.bin / "pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.data))
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    c = Cluster()
    yield c
    c.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database of the session's cluster, dropped after the test."""
    url = pg_cluster.database()
    yield url
    pg_cluster.drop(url)
