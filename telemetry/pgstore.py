"""The hub's store on PostgreSQL (``hub.database = "postgresql://..."``), through psycopg 3
with a connection pool (psycopg_pool).

:class:`PgStore` has the interface the hub, the reports and the staff pages use of
:class:`telemetry.store.Store`: ``reader()``, ``transaction()``, ``ingest_many``,
``record_many``, ``count``, ``last_position``, ``today``, ``counter``, ``local``,
``day_of``. The connections it hands out look like ``sqlite3`` connections (``execute``,
``executemany``, ``cursor()``, rows by index and by name), and every statement is
translated from SQLite's SQL by :mod:`telemetry.sql_dialect`, so the same query text runs
on both back ends.

- ``reader()`` borrows a pooled connection for each statement (autocommit, one snapshot
  per statement like SQLite's readers) and returns the rows fetched: no connection is
  held by a thread between requests.
- ``transaction()`` is one PostgreSQL transaction that first takes a transaction-level
  advisory lock: writers outside the ingest are serialized as by SQLite's
  ``BEGIN IMMEDIATE`` (staff changes, plans, reconciliation keep their read-modify-write
  semantics, also across several hub processes).
- ``ingest_many`` does not take that lock: received events are idempotent upserts
  (``INSERT ... ON CONFLICT``), so several ingest workers write side by side; a deadlock
  or serialization failure between them is retried.

The schema: the SQLite migrations translated (``sql_dialect.translate_schema``), or the
hand-written PostgreSQL version in ``migrations_pg/`` where one exists (triggers), after
``migrations_pg/functions.sql`` (what SQLite has and PostgreSQL lacks). The applied
number is in ``vanbox_schema``.
"""

from __future__ import annotations

import threading
import time
import zoneinfo
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors as pgerrors
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool

from . import kinds, topics
from .errors import StoreError
from .events import Event, to_epoch, utcnow
from .sql_dialect import numbered_args, translate, translate_schema
from .store import Store, migrations

_WRITE_LOCK = 0x76616E62  # "vanb": the advisory lock of serialized transactions
_MIGRATE_LOCK = 0x76616E6D
INGEST_RETRIES = 5
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


def _configure(conn: psycopg.Connection) -> None:
    conn.adapters.register_loader("numeric", _NumericLoader)
    # The reports' GROUP BY over a fleet's aggregates is costed above jit_above_cost, and
    # compiling it took longer than running it (benchmarks/bench_pg.py: fleet week p95
    # 568 -> 272 ms, month 797 -> 543 ms without JIT).
    conn.execute("SET jit = off")


def redacted(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    u = urlsplit(url)
    if u.password is None:
        return url
    host = u.hostname or ""
    netloc = f"{u.username}:***@{host}" + (f":{u.port}" if u.port else "")
    return urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))


class PgStore(Store):
    """The hub's store on PostgreSQL. ``url``: ``postgresql://user[:pw]@host:port/db``.

    A subclass of :class:`Store` so that code asking ``isinstance(x, Store)`` takes it as
    one; it never calls ``Store.__init__`` and overrides every method that touches the
    connection, except the box's outbox methods, which run translated through ``_conn``
    (the box itself stays on SQLite)."""

    def __init__(
        self,
        url: str,
        *,
        van: str = "",
        tz: str = "Europe/Berlin",
        tid: str = "VB",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.path = redacted(url)  # what messages name (Store.path on SQLite)
        self.van = van
        self.tid = tid
        self.tz = zoneinfo.ZoneInfo(tz)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._listeners: list = []
        try:
            self.pool = ConnectionPool(
                url,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                kwargs={"autocommit": True},
                configure=_configure,
                open=False,
                name="vanbox",
            )
            self.pool.open(wait=True, timeout=timeout)
        except (psycopg.Error, Exception) as e:
            raise StoreError(f"{self.path}: cannot connect to PostgreSQL: {e}") from None
        self._conn = PgReader(self)  # retention.py and delivery.py write through it
        try:
            self._migrate()
        except psycopg.Error as e:
            self.pool.close()
            raise StoreError(f"{self.path}: cannot set up the schema: {e}") from None

    # --- schema ---------------------------------------------------------------------

    def _migrate(self) -> None:
        pg = resources.files("telemetry.migrations_pg")
        own = {f.name[:4]: f for f in pg.iterdir() if f.name[:4].isdigit()}
        with self.pool.connection() as c, c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            c.execute((pg / "functions.sql").read_text(encoding="utf-8"))
            c.execute("CREATE TABLE IF NOT EXISTS vanbox_schema (version BIGINT NOT NULL)")
            row = c.execute("SELECT max(version) FROM vanbox_schema").fetchone()
            current = row[0] or 0
            for number, name, sql in migrations():
                if number <= current:
                    continue
                f = own.get(f"{number:04d}")
                ddl = f.read_text(encoding="utf-8") if f else translate_schema(sql)
                try:
                    with c.transaction():
                        c.execute(ddl)
                except psycopg.Error as e:
                    raise StoreError(f"migration {name} failed on PostgreSQL: {e}") from None
                current = number
            c.execute("DELETE FROM vanbox_schema")
            c.execute("INSERT INTO vanbox_schema (version) VALUES (%s)", (current,))
        self._version = current

    @property
    def schema_version(self) -> int:
        return self._version

    def integrity_check(self) -> str:
        return "ok"

    # --- connections ----------------------------------------------------------------

    @contextmanager
    def _tx(self, *, serialize: bool) -> Iterator[PgConn]:
        try:
            with self.pool.connection() as c, c.transaction():
                if serialize:
                    c.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
                yield PgConn(self, c)
        except pgerrors.TransactionRollback:
            raise  # a deadlock between writers: ingest_many retries
        except psycopg.OperationalError as e:
            # The server is gone, full, shutting down, or the pool timed out: worth
            # retrying, which the hub's is_transient sees by the OSError cause (a value
            # no column takes is a DataError or IntegrityError and stays one).
            raise StoreError(f"{self.path}: PostgreSQL: {e}") from OSError(str(e))

    @contextmanager
    def transaction(self) -> Iterator[PgConn]:
        """One transaction, serialized with every other ``transaction()`` (as SQLite's
        ``BEGIN IMMEDIATE``); rolled back on any exception."""
        with self._tx(serialize=True) as conn:
            yield conn

    def reader(self) -> PgReader:
        """This thread's reader (it holds no connection between statements)."""
        r = getattr(self._local, "reader", None)
        if r is None:
            r = self._local.reader = PgReader(self)
        return r

    def close(self) -> None:
        self.pool.close()

    # --- local time helpers ---------------------------------------------------------

    def local(self, t: datetime) -> datetime:
        return t.astimezone(self.tz)

    def day_of(self, t: datetime) -> str:
        return self.local(t).date().isoformat()

    # --- writing --------------------------------------------------------------------

    def add_listener(self, fn) -> None:
        self._listeners.append(fn)

    def record(self, event: Event) -> Event:
        return self.record_many([event])[0]

    def record_many(self, events: Iterable[Event]) -> list[Event]:
        """Store events with their outbox rows (as ``Store.record_many``)."""
        out = []
        with self.transaction() as conn:
            for ev in events:
                if not ev.van:
                    ev = replace(ev, van=self.van)
                ek = kinds.of(ev)
                ek.insert(conn, ev, self, upsert=ek.upsert_on_record)
                payload = ek.encode(ev, conn, self)
                if payload is not None:
                    conn.execute(
                        "INSERT INTO outbox (event_id, kind, priority, payload, created)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (ev.id, ek.name, ek.priority, topics.dumps(payload), to_epoch(utcnow())),
                    )
                out.append(ev)
        for fn in self._listeners:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a listener must not undo a commit
                pass
        return out

    def ingest_many(self, events: Iterable[Event]) -> int:
        """Upsert received events by id (as ``Store.ingest_many``): known ids change
        nothing, a stop visit's later ``left`` is taken. Returns the rows new or changed.
        Not serialized with other writers; a deadlock between workers is retried."""
        by_kind: dict[str, list[tuple]] = {}
        days: set[tuple[str, str]] = set()
        for ev in events:
            if not ev.van:
                raise StoreError(f"event {ev.id} has no van id")
            k = kinds.of(ev)
            row = k.values(ev, self)
            by_kind.setdefault(k.name, []).append(row)
            if "day" in k.columns:
                days.add((ev.van, row[k.columns.index("day")]))
        if not by_kind:
            return 0
        # One lock order for every writer: the batch's days, then each kind's rows by id
        # (a stable sort: a stop visit's later version stays after its earlier one).
        runs = [(k, sorted(by_kind[k.name], key=lambda r: r[0]))
                for k in kinds.registered() if k.name in by_kind]  # fmt: skip
        for attempt in range(INGEST_RETRIES):
            try:
                n = 0
                with self._tx(serialize=False) as conn:
                    self._lock_days(conn, sorted(days))
                    for k, rows in runs:
                        if k.upsert:
                            sql = f"{k._insert_sql} {k.upsert}"
                        else:
                            sql = k._insert_sql.replace("INSERT", "INSERT OR IGNORE", 1)
                        n += conn.executemany(sql, rows).rowcount
                return n
            except pgerrors.TransactionRollback as e:  # deadlock, serialization failure
                if attempt == INGEST_RETRIES - 1:
                    raise StoreError(f"{self.path}: PostgreSQL: {e}") from OSError(str(e))
                time.sleep(0.01 * (attempt + 1))
        return 0  # not reached

    @staticmethod
    def _lock_days(conn: PgConn, days: list[tuple[str, str]]) -> None:
        """Lock the batch's rows of ``agg_days`` in order (the triggers update them), so
        two workers never wait for each other the other way round. A missing row is
        created as the trigger would: its events are new, so the trigger would."""
        if not days:
            return
        vans = [v for v, _ in days]
        ds = [d for _, d in days]
        conn.raw.execute(
            "INSERT INTO agg_days (van, day) SELECT * FROM unnest(%s::text[], %s::text[])"
            " ORDER BY 1, 2 ON CONFLICT DO NOTHING",
            (vans, ds),
        )
        conn.raw.execute(
            "SELECT 1 FROM agg_days WHERE (van, day) IN (SELECT * FROM"
            " unnest(%s::text[], %s::text[])) ORDER BY van, day FOR UPDATE",
            (vans, ds),
        )

    # --- reading --------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[PgReader]:
        """Store's short reads (counter, today, last_position, count) on a pooled
        connection per statement instead of the SQLite store's own under its lock."""
        yield self.reader()

    def outbox_depth(self) -> int:
        return self.count("outbox")
