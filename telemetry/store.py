"""The store: one SQLite file (WAL), the single durable record of the box and the hub.

Every event is written together with its outbox row in one transaction, so a power cut
at any moment either keeps both or neither. ``synchronous=FULL`` makes a committed
transaction survive the power cut too (on an SD card that costs one fsync per event,
which is cheap at the van's event rates).

The schema is created and migrated on open from the numbered ``migrations/NNNN_*.sql``
files; ``PRAGMA user_version`` holds the number of the last one applied.

Threads: the box writes from its GPS, sensor and web threads. Writes go through one
connection guarded by a lock; :meth:`Store.reader` hands each thread its own read
connection, which WAL lets run beside the writer.
"""

from __future__ import annotations

import sqlite3
import threading
import zoneinfo
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from pathlib import Path

import sqlite_utils

from . import kinds, topics
from .errors import StoreError
from .events import Event, Position, checkin_id, to_epoch, utcnow

# Outbox priority per kind of the built-in kinds (telemetry/kinds.py has them all).
PRIORITY = {k.name: k.priority for k in kinds.registered()}


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    event_id: str
    kind: str  # footfall | checkin | stop | position (telemetry/kinds.py)
    priority: int
    payload: str  # JSON text, ready to publish
    created: float


def migrations() -> list[tuple[int, str, str]]:
    """The numbered migrations shipped with the package: (number, name, sql)."""
    out = []
    for f in resources.files("telemetry.migrations").iterdir():
        name = f.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), name, f.read_text(encoding="utf-8")))
    out.sort()
    numbers = [n for n, _, _ in out]
    if numbers != list(range(1, len(numbers) + 1)):
        raise StoreError(f"migrations must be numbered 1..n without gaps, found {numbers}")
    return out


def _sql_checkin_id(old: object) -> object:
    return checkin_id(old) if isinstance(old, str) else old


class Store:
    """The SQLite store of one box (``van``) or of the hub (events carry their own van)."""

    # Appended to a SELECT inside a transaction that must hold the rows it read until it
    # commits: nothing on SQLite (one writer at a time), " FOR UPDATE" on PostgreSQL.
    row_lock = ""

    def __init__(
        self, path: str | Path, *, van: str = "", tz: str = "Europe/Berlin", tid: str = "VB"
    ) -> None:
        self.path = Path(path)
        self.van = van
        self.tid = tid
        self.tz = zoneinfo.ZoneInfo(tz)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._listeners: list = []
        if str(path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the folder for {path}: {e.strerror}") from None
        try:
            self._conn = self._connect()
            self.db = sqlite_utils.Database(self._conn)
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{path}: cannot open the database: {e}") from None

    # --- connection and schema ------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30
        )
        conn.execute("PRAGMA busy_timeout = 30000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(self.path) != ":memory:" and mode.lower() != "wal":
            raise StoreError(f"{self.path}: could not switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        # Migration 0005 maps old check-in ids with it (the same mapping as CheckIn's).
        conn.create_function("vanbox_checkin_id", 1, _sql_checkin_id, deterministic=True)
        return conn

    def _migrate(self) -> None:
        with self._lock:
            current = self._conn.execute("PRAGMA user_version").fetchone()[0]
            for number, name, sql in migrations():
                if number <= current:
                    continue
                try:
                    self._conn.executescript(
                        f"BEGIN IMMEDIATE;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;"
                    )
                except sqlite3.DatabaseError as e:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise StoreError(f"migration {name} failed: {e}") from None

    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` on the write connection, under the lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                # SQLite rolls back by itself on some errors (SQLITE_FULL, IOERR):
                # then there is nothing to roll back, and the original error matters.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's reader inside one read transaction: every read until the end sees
        the database as it was at the first one (WAL), so a page's ten reports cannot see
        a day both raw and folded when the daily job commits in between. Nested calls
        share the outer one. Writers are not held up."""
        conn = self.reader()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")  # nothing written: this only ends the snapshot

    def reader(self) -> sqlite3.Connection:
        """This thread's own read connection (rows as ``sqlite3.Row``)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for c in self._readers:
                try:
                    c.close()
                except sqlite3.Error:
                    pass
            self._readers.clear()
            self._conn.close()

    def integrity_check(self) -> str:
        with self._lock:
            return self._conn.execute("PRAGMA integrity_check").fetchone()[0]

    # --- local time helpers ---------------------------------------------------------

    def local(self, t: datetime) -> datetime:
        return t.astimezone(self.tz)

    def day_of(self, t: datetime) -> str:
        return self.local(t).date().isoformat()

    # --- recording (box) ------------------------------------------------------------

    def record(self, event: Event) -> Event:
        """Store one event with its outbox row, in one transaction. Returns the event
        with ``van`` filled in."""
        return self.record_many([event])[0]

    def add_listener(self, fn) -> None:
        """Call ``fn()`` after every commit of new events (the publisher's wake-up, so a
        count goes out at once instead of at its next poll)."""
        self._listeners.append(fn)

    def record_many(self, events: Iterable[Event]) -> list[Event]:
        out = self._record_many(events)
        for fn in self._listeners:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a listener must not undo a commit
                pass
        return out

    def _record_many(self, events: Iterable[Event]) -> list[Event]:
        out = []
        with self.transaction() as conn:
            for ev in events:
                if not ev.van:
                    ev = replace(ev, van=self.van)
                ek = kinds.of(ev)
                self._insert(conn, ev, upsert=ek.upsert_on_record)
                kind, payload = self._payload(conn, ev)
                if payload is not None:
                    conn.execute(
                        "INSERT INTO outbox (event_id, kind, priority, payload, created)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (ev.id, kind, ek.priority, topics.dumps(payload), to_epoch(utcnow())),
                    )
                out.append(ev)
        return out

    def _payload(self, conn: sqlite3.Connection, ev: Event) -> tuple[str, dict | None]:
        """(outbox kind, payload) of ``ev``; no payload for what is never published."""
        ek = kinds.of(ev)
        return ek.name, ek.encode(ev, conn, self)

    def _insert(self, conn: sqlite3.Connection, ev: Event, *, upsert: bool) -> int:
        """Insert one event row; returns the number of rows changed (0 for a known id)."""
        return kinds.of(ev).insert(conn, ev, self, upsert=upsert)

    # --- ingesting (hub) ------------------------------------------------------------

    def ingest_many(self, events: Iterable[Event]) -> int:
        """Upsert received events by id, without outbox rows. Redeliveries and
        duplicates change nothing; a stop visit's later ``left`` time is taken.
        Returns how many rows were new or changed."""
        n = 0
        with self.transaction() as conn:
            for ev in events:
                if not ev.van:
                    raise StoreError(f"event {ev.id} has no van id")
                n += self._insert(conn, ev, upsert=True)
        return n

    # --- outbox (publisher) ---------------------------------------------------------

    def pending(self, limit: int = 100, *, after: int = 0) -> list[OutboxRow]:
        """Unsent rows, counts and check-ins before positions, oldest first.
        ``after`` leaves out every row with ``seq <= after``, of any priority."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, event_id, kind, priority, payload, created FROM outbox"
                " WHERE seq > ? ORDER BY priority, seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def mark_sent(self, seqs: Iterable[int]) -> int:
        """The broker acknowledged these rows: remove them. Returns how many were there."""
        seqs = list(seqs)
        if not seqs:
            return 0
        with self.transaction() as conn:
            n = 0
            for i in range(0, len(seqs), 500):
                chunk = seqs[i : i + 500]
                marks = ",".join("?" * len(chunk))
                n += conn.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk).rowcount
            self._bump(conn, "outbox_sent", n)
        return n

    def mark_sent_relaxed(self, seqs: Iterable[int]) -> int:
        """:meth:`mark_sent` without waiting for the disk (``synchronous = NORMAL`` for
        this one transaction). WAL keeps the file consistent either way; a power cut
        right after may only bring these rows back, and they are sent again with the same
        event ids. The next ordinary (FULL) commit makes the deletion durable too."""
        with self._lock:
            self._conn.execute("PRAGMA synchronous = NORMAL")
            try:
                return self.mark_sent(seqs)
            finally:
                self._conn.execute("PRAGMA synchronous = FULL")

    def outbox_depth(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def outbox_oldest(self) -> float | None:
        """Creation time (Unix seconds) of the oldest unsent row."""
        with self._lock:
            return self._conn.execute("SELECT min(created) FROM outbox").fetchone()[0]

    def thin_outbox(self, max_rows: int) -> int:
        """Keep the outbox within ``max_rows``: drop every second of the oldest unsent
        positions, then the oldest positions outright. Counts, check-ins and stop visits
        are never dropped. Returns the number of rows removed (the events stay stored)."""
        with self.transaction() as conn:
            depth = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
            excess = depth - max_rows
            if excess <= 0:
                return 0
            ids = conn.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM (SELECT seq, row_number()"
                " OVER (ORDER BY seq) AS rn FROM outbox WHERE kind = 'position')"
                " WHERE rn % 2 = 0 ORDER BY seq LIMIT ?) RETURNING event_id",
                (excess,),
            ).fetchall()
            if len(ids) < excess:
                ids += conn.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox"
                    " WHERE kind = 'position' ORDER BY seq LIMIT ?) RETURNING event_id",
                    (excess - len(ids),),
                ).fetchall()
            removed = len(ids)
            self._bump(conn, "outbox_thinned", removed)
            self._note_thinned(conn, [r[0] for r in ids])
            return removed

    def _note_thinned(self, conn: sqlite3.Connection, ids: list[str]) -> None:
        """Count thinned (never sent) track points per day, so the tally to the hub
        leaves them out (telemetry/tally.py)."""
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            conn.execute(
                "INSERT INTO delivery_thinned (day, kind, n) SELECT day, 'position', count(*)"
                f" FROM positions WHERE id IN ({marks}) GROUP BY day"
                " ON CONFLICT(day, kind) DO UPDATE SET n = n + excluded.n",
                chunk,
            )

    # --- counters and summaries -----------------------------------------------------

    def _bump(self, conn: sqlite3.Connection, key: str, n: int) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (key, n),
        )

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for the short reads below (the store's own, under its lock;
        :class:`telemetry.pgstore.PgStore` lends one from its pool)."""
        with self._lock:
            yield self._conn

    def counter(self, key: str) -> int:
        with self._reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def today(self, when: datetime | None = None, van: str | None = None) -> dict[str, int]:
        """Today's running totals (local day): in, out, pass, occupancy, checkins."""
        when = when or utcnow()
        van = self.van if van is None else van
        day = self.day_of(when)
        with self._reading() as conn:
            t = kinds.footfall_today(conn, van, day)
            t["checkins"] = conn.execute(
                "SELECT count(*) FROM checkins WHERE van = ? AND day = ?", (van, day)
            ).fetchone()[0]
        return t

    def last_position(
        self, van: str | None = None, *, include_suspect: bool = False
    ) -> Position | None:
        van = self.van if van is None else van
        sql = f"SELECT {kinds.POSITION.select} FROM positions WHERE van = ?"
        if not include_suspect:
            sql += " AND suspect = 0"
        sql += " ORDER BY ts DESC LIMIT 1"
        with self._reading() as conn:
            r = conn.execute(sql, (van,)).fetchone()
        return None if r is None else kinds.POSITION.from_row(r)

    def count(self, table: str, van: str | None = None) -> int:
        if table != "outbox" and table not in {k.table for k in kinds.registered()}:
            raise ValueError(f"no such table {table!r}")
        with self._reading() as conn:
            if van is None or table == "outbox":
                return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            return conn.execute(f"SELECT count(*) FROM {table} WHERE van = ?", (van,)).fetchone()[0]
