"""Open the store a configuration names: a path is SQLite (the default, one county), a
``postgresql://`` URL is PostgreSQL (:mod:`telemetry.pgstore`, for a hub of many vans)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import StoreError

SCHEMES = ("postgresql", "postgres")


def _db_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error, StoreError)
    return (sqlite3.Error, StoreError, psycopg.Error)


# What a database call may raise on either back end (``except DB_ERRORS``, where code
# catches ``sqlite3.Error`` today, e.g. kiosk/auth_lockout.py's "cannot count a failed login").
DB_ERRORS = _db_errors()
_DBNAME = re.compile(r"[A-Za-z0-9_.$-]{1,63}")


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and "://" in target


def check_url(url: str) -> str:
    """``url`` if it names a PostgreSQL database (``postgresql://user@host:port/db``),
    else StoreError saying what is wrong (the password never appears in it)."""
    what = "hub.database"
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as e:
        raise StoreError(f"{what}: not a valid URL ({e})") from None
    if u.scheme.lower() not in SCHEMES:
        raise StoreError(f"{what}: use a file path or a postgresql:// URL, not {u.scheme}://")
    if any(c.isspace() for c in url) or not u.hostname:
        raise StoreError(f"{what}: a postgresql:// URL needs a host: postgresql://user@host/db")
    if port is not None and not 1 <= port <= 65535:
        raise StoreError(f"{what}: port {port} is not 1 to 65535")
    if not _DBNAME.fullmatch(u.path.lstrip("/")):
        raise StoreError(f"{what}: name the database after the host: postgresql://user@host/db")
    return url


def open_store(target: str | Path, **kw: Any):
    """:class:`telemetry.store.Store` for a path, :class:`telemetry.pgstore.PgStore` for
    a ``postgresql://user@host:port/db`` URL. ``kw``: ``van``, ``tz``, ``tid`` (and for
    PostgreSQL the pool's ``min_size``, ``max_size``, ``timeout``)."""
    if is_url(target):
        check_url(str(target))
        try:
            from .pgstore import PgStore
        except ImportError as e:
            raise StoreError(
                f"hub.database is a PostgreSQL URL but psycopg is missing ({e.name}):"
                " pip install 'psycopg[binary]>=3.1' 'psycopg-pool>=3.2'"
            ) from None
        return PgStore(str(target), **kw)
    from .store import Store

    pool_only = {"min_size", "max_size", "timeout"}
    return Store(target, **{k: v for k, v in kw.items() if k not in pool_only})
