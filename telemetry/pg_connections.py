"""The connections :class:`telemetry.pgstore.PgStore` hands out, made to look like
``sqlite3`` connections: ``execute``, ``executemany``, ``cursor()``, rows by index and by
name (:class:`Row`), results fetched (:class:`Result`). Every statement is translated
from SQLite's SQL by :mod:`telemetry.sql_dialect`, so the same query text runs on both
back ends; the ``PRAGMA`` statements the code uses are answered, ignored (SQLite's
tuning) or refused.

- :class:`PgReader` runs each statement on a pooled connection of its own (autocommit,
  one snapshot per statement like SQLite's readers) and returns the rows fetched.
- :class:`PgConn` is the connection of one transaction (``PgStore.transaction``).
- :func:`configure` sets up each new pooled connection (numeric loader, no JIT).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.adapt import Loader

from .errors import StoreError
from .sql_dialect import numbered_args, translate

if TYPE_CHECKING:
    from .pgstore import PgStore

_PRAGMA_NO_OPS = frozenset(
    {"synchronous", "wal_checkpoint", "journal_mode", "busy_timeout", "query_only",
     "optimize", "cache_size", "temp_store", "mmap_size"}
)  # fmt: skip


class Row(tuple):
    """A result row by index and by column name, like ``sqlite3.Row``."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> Row:
        r = super().__new__(cls, values)
        r._names = names
        return r

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


class _NumericLoader(Loader):
    """``numeric`` (PostgreSQL's sum of bigints, avg) as SQLite gives it: int or float."""

    def load(self, data) -> int | float:
        s = bytes(data).decode("ascii")
        return float(s) if ("." in s or "e" in s or "N" in s) else int(s)


def _params(args: Any) -> Any:
    """SQLite takes True/False as 1/0; so do the PostgreSQL statements."""
    if args is None:
        return ()
    if isinstance(args, dict):
        return {k: int(v) if isinstance(v, bool) else v for k, v in args.items()}
    return tuple(int(v) if isinstance(v, bool) else v for v in args)


class Result:
    """The rows of one statement, fetched (a ``sqlite3.Cursor``'s reading side)."""

    def __init__(self, rows: list, rowcount: int, description) -> None:
        self._rows = rows
        self._i = 0
        self.rowcount = rowcount
        self.description = description
        self.lastrowid = None

    def fetchone(self):
        if self._i >= len(self._rows):
            return None
        self._i += 1
        return self._rows[self._i - 1]

    def fetchall(self) -> list:
        rest = self._rows[self._i :]
        self._i = len(self._rows)
        return rest

    def fetchmany(self, size: int = 1) -> list:
        rest = self._rows[self._i : self._i + size]
        self._i += len(rest)
        return rest

    def __iter__(self):
        return iter(self.fetchall())


def _run(conn: psycopg.Connection, sql: str, args: Any, named: bool) -> Result:
    cur = conn.cursor()
    q = translate(sql)
    cur.execute(q, numbered_args(q, _params(args)))
    if cur.description is None:
        return Result([], cur.rowcount, None)
    rows = cur.fetchall()
    if named:
        names = {d.name: i for i, d in enumerate(cur.description)}
        rows = [Row(r, names) for r in rows]
    return Result(rows, cur.rowcount, cur.description)


class _Cursor:
    """``conn.cursor()``: ``row_factory = None`` gives plain tuples."""

    def __init__(self, owner: _ConnBase) -> None:
        self._owner = owner
        self.row_factory = owner.row_factory
        self._last: Result | None = None

    def execute(self, sql: str, args: Any = ()) -> Result:
        self._last = self._owner._execute(sql, args, self.row_factory is not None)
        return self._last

    def executemany(self, sql: str, seq: Iterable) -> Result:
        return self._owner.executemany(sql, seq)

    def fetchone(self):
        return self._last.fetchone() if self._last else None

    def fetchall(self) -> list:
        return self._last.fetchall() if self._last else []


class _ConnBase:
    row_factory: object | None = Row
    in_transaction = False

    def __init__(self, store: PgStore) -> None:
        self._store = store
        self.total_changes = 0

    def cursor(self) -> _Cursor:
        return _Cursor(self)

    def reader(self) -> _ConnBase:
        """Code that takes "a store or a connection" asks either for ``reader()``."""
        return self

    def execute(self, sql: str, args: Any = ()) -> Result:
        return self._execute(sql, args, self.row_factory is not None)

    def _pragma(self, sql: str) -> Result | None:
        word = sql.strip().split()
        if not word or word[0].upper() != "PRAGMA":
            return None
        name = word[1].split("=")[0].split("(")[0].lower()
        if name == "data_version":  # changes whenever another transaction commits
            return self._execute("SELECT pg_current_snapshot()::text", (), False)
        if name == "user_version":
            return Result([(self._store.schema_version,)], 1, None)
        if name in ("integrity_check", "quick_check"):
            return Result([("ok",)], 1, None)
        if name in _PRAGMA_NO_OPS:  # SQLite's tuning: the server's business here
            return Result([], -1, None)
        raise StoreError(f"{sql.strip()!r} has no PostgreSQL equivalent")

    def _execute(self, sql: str, args: Any, named: bool) -> Result:
        raise NotImplementedError

    def executemany(self, sql: str, seq: Iterable) -> Result:
        raise NotImplementedError


class PgReader(_ConnBase):
    """Each statement on a pooled connection of its own (autocommit)."""

    def _execute(self, sql: str, args: Any, named: bool) -> Result:
        pragma = self._pragma(sql)
        if pragma is not None:
            return pragma
        with self._store.pool.connection() as c:
            return _run(c, sql, args, named)

    def executemany(self, sql: str, seq: Iterable) -> Result:
        with self._store.transaction() as conn:
            return conn.executemany(sql, seq)


class PgSnapshot(_ConnBase):
    """The reads of one ``PgStore.snapshot()``: every statement on the connection that
    holds the snapshot (``raw``, set while it is open); rows by name, as the reader's."""

    in_transaction = True

    def __init__(self, store: PgStore) -> None:
        super().__init__(store)
        self.raw: psycopg.Connection | None = None

    def _execute(self, sql: str, args: Any, named: bool) -> Result:
        pragma = self._pragma(sql)
        if pragma is not None:
            return pragma
        if self.raw is None:
            raise StoreError("the snapshot has ended; read through store.reader()")
        return _run(self.raw, sql, args, named)

    def executemany(self, sql: str, seq: Iterable) -> Result:
        with self._store.transaction() as conn:  # a write: not in the read-only snapshot
            return conn.executemany(sql, seq)


class PgConn(_ConnBase):
    """The connection of one transaction (``PgStore.transaction``); rows as tuples."""

    row_factory = None
    in_transaction = True

    def __init__(self, store: PgStore, conn: psycopg.Connection) -> None:
        super().__init__(store)
        self.raw = conn

    def _execute(self, sql: str, args: Any, named: bool) -> Result:
        pragma = self._pragma(sql)
        if pragma is not None:
            return pragma
        r = _run(self.raw, sql, args, named)
        self.total_changes += max(r.rowcount, 0) if r.description is None else 0
        return r

    def executemany(self, sql: str, seq: Iterable) -> Result:
        rows = [_params(a) for a in seq]
        if not rows:
            return Result([], 0, None)
        q = translate(sql)
        with self.raw.cursor() as cur:
            cur.executemany(q, [numbered_args(q, r) for r in rows])
            n = cur.rowcount
        self.total_changes += max(n, 0)
        return Result([], n, None)


def configure(conn: psycopg.Connection) -> None:
    """Set up a new pooled connection (the pool's ``configure``)."""
    conn.adapters.register_loader("numeric", _NumericLoader)
    # The reports' GROUP BY over a fleet's aggregates is costed above jit_above_cost, and
    # compiling it took longer than running it (benchmarks/bench_pg.py: fleet week p95
    # 568 -> 272 ms, month 797 -> 543 ms without JIT).
    conn.execute("SET jit = off")
