"""The hub's store on PostgreSQL (``hub.database = "postgresql://..."``), through psycopg 3
with a connection pool (psycopg_pool).

:class:`PgStore` has the interface the hub, the reports and the staff pages use of
:class:`telemetry.store.Store`: ``reader()``, ``transaction()``, ``ingest_many``,
``record_many``, ``count``, ``last_position``, ``today``, ``counter``, ``local``,
``day_of``. The connections it hands out (:mod:`telemetry.pg_connections`) look like
``sqlite3`` connections (``execute``, ``executemany``, ``cursor()``, rows by index and by
name), and every statement is translated from SQLite's SQL by
:mod:`telemetry.sql_dialect`, so the same query text runs on both back ends.

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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors as pgerrors
from psycopg_pool import ConnectionPool

from . import kinds
from .errors import StoreError
from .events import Event
from .pg_connections import PgConn, PgReader, PgSnapshot, configure
from .sql_dialect import translate_schema
from .store import Store, migrations

_WRITE_LOCK = 0x76616E62  # "vanb": the advisory lock of serialized transactions
# "vanf": taken by an ingest batch just before it writes its positions (last), held to
# its commit: positions' rowids then commit in order, so a feed's watermark (rowid >
# mark, hub/owntracks.py) never passes a row another worker is still writing
FEED_LOCK = 0x76616E66
_MIGRATE_LOCK = 0x76616E6D
INGEST_RETRIES = 5


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

    row_lock = " FOR UPDATE"  # ingest is not serialized with the daily job here

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
                configure=configure,
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

    @contextmanager
    def snapshot(self) -> Iterator[PgSnapshot]:
        """This thread's reads in one ``REPEATABLE READ READ ONLY`` transaction on one
        pooled connection, as ``Store.snapshot``: ``reader()`` returns it until the end.
        Nested calls share the outer one."""
        snap = getattr(self._local, "snap", None)
        if snap is not None and snap.raw is not None:
            yield snap
            return
        if snap is None:
            snap = self._local.snap = PgSnapshot(self)  # one per thread: caches key on it
        try:
            with self.pool.connection() as c:
                c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                snap.raw = c
                try:
                    yield snap
                finally:
                    snap.raw = None
                    if not c.broken:
                        c.execute("ROLLBACK")  # nothing written: this only ends the snapshot
        except psycopg.OperationalError as e:
            raise StoreError(f"{self.path}: PostgreSQL: {e}") from OSError(str(e))

    def reader(self) -> PgReader | PgSnapshot:
        """This thread's reader (it holds no connection between statements), or its
        snapshot while one is open (:meth:`snapshot`)."""
        snap = getattr(self._local, "snap", None)
        if snap is not None and snap.raw is not None:
            return snap
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

    # record, record_many and add_listener: Store's, through this transaction()

    def ingest_many(self, events: Iterable[Event]) -> int:
        """Upsert received events by id (as ``Store.ingest_many``): known ids change
        nothing, a stop visit's later ``left`` is taken. Returns the rows new or changed.
        Not serialized with other writers (a deadlock between workers is retried), except
        that batches with positions write them one after another (:data:`FEED_LOCK`)."""
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
        # (a stable sort: a stop visit's later version stays after its earlier one), the
        # positions last, under FEED_LOCK (they touch only the days already locked).
        runs = [(k, sorted(by_kind[k.name], key=lambda r: r[0]))
                for k in kinds.registered() if k.name in by_kind]  # fmt: skip
        runs.sort(key=lambda run: run[0].name == "position")
        for attempt in range(INGEST_RETRIES):
            try:
                n = 0
                with self._tx(serialize=False) as conn:
                    self._lock_days(conn, sorted(days))
                    for k, rows in runs:
                        if k.name == "position":
                            conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (FEED_LOCK,))
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
