"""What an event kind is (:mod:`telemetry.kinds`): :class:`EventKind`, with the
:class:`Recorder` (the store) it records through, the row and payload types and the
signatures of its encoder, decoder and replayer; it inserts its rows and rebuilds the
payloads of events to resend."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol

Row = Sequence[Any]
Payload = dict[str, Any]


class Recorder(Protocol):
    """What a kind needs of the store that records it (:class:`telemetry.store.Store`)."""

    tid: str

    def local(self, t: datetime) -> datetime: ...

    def day_of(self, t: datetime) -> str: ...


# (event, write connection, recorder) -> payload, or None: stored, never published.
Encoder = Callable[[Any, sqlite3.Connection, Recorder], Payload | None]
# (payload dict, van, where, now) -> event; raises PayloadError (topics' bounded decoders).
Decoder = Callable[[dict[str, Any], str, str, float], Any]
# (kind, connection, recorder, van, day, extra SQL condition) -> [(event id, payload)]
Replayer = Callable[
    ["EventKind", sqlite3.Connection, Recorder, str, str, str], list[tuple[str, Payload]]
]


@dataclass(frozen=True)
class EventKind:
    """One kind of event. ``columns`` are the table's columns as written, in the order of
    ``values`` and of the rows ``from_row`` reads; they start with ``id`` and ``van``."""

    name: str  # the outbox kind (and the kind's name in reports)
    event: type  # the event class
    topic: str  # the topic kind its payload is published to and received on
    priority: int  # outbox priority: lower goes first
    table: str
    columns: tuple[str, ...]
    values: Callable[[Any, Recorder], tuple[Any, ...]]  # a row's values, in ``columns`` order
    from_row: Callable[[Row], Any]  # the event back from a row of ``columns``
    encode: Encoder
    decode: Decoder
    time_column: str = "ts"  # what resends are ordered by (then id)
    # ``ON CONFLICT(id) ...`` clause of an upsert (received events; recorded ones too with
    # ``upsert_on_record``); without it a known id is ignored.
    upsert: str | None = None
    upsert_on_record: bool = False
    published: str = ""  # SQL condition on rows that are published (others never are)
    # Tally kinds counted from this table (telemetry/tally.py) -> extra SQL condition.
    tally: Mapping[str, str] = field(default_factory=dict)
    resend_priority: int | None = None  # outbox priority of a resend (default: priority)
    replay: Replayer | None = None  # rebuilds resend payloads itself (default: encode)
    # The column by which telemetry/retention.py deletes raw rows older than the retention
    # (after folding them into the aggregates); "" keeps the rows for ever.
    prune_by: str = ""

    def __post_init__(self) -> None:
        if self.columns[:2] != ("id", "van"):
            raise ValueError(f"{self.name}: columns must start with id, van")

    @cached_property
    def _insert_sql(self) -> str:
        cols = ", ".join(_quote(c) for c in self.columns)
        marks = ",".join("?" * len(self.columns))
        return f"INSERT INTO {self.table} ({cols}) VALUES ({marks})"

    @cached_property
    def select(self) -> str:
        """The ``SELECT`` list of ``columns`` (for :attr:`from_row`)."""
        return ", ".join(_quote(c) for c in self.columns)

    def insert(self, conn: sqlite3.Connection, ev: Any, rec: Recorder, *, upsert: bool) -> int:
        """Insert ``ev``'s row; returns the number of rows changed (0 for a known id)."""
        if upsert and self.upsert:
            sql = f"{self._insert_sql} {self.upsert}"
        else:
            sql = self._insert_sql.replace("INSERT", "INSERT OR IGNORE", 1)
        return conn.execute(sql, self.values(ev, rec)).rowcount

    def resend(
        self, conn: sqlite3.Connection, rec: Recorder, van: str, day: str, cond: str = ""
    ) -> list[tuple[str, Payload]]:
        """(event id, payload) of every published event of ``van`` on ``day`` (and
        ``cond``) not in the outbox, rebuilt as when it was recorded, oldest first."""
        if self.replay is not None:
            return self.replay(self, conn, rec, van, day, cond)
        pub = f" AND {self.published}" if self.published else ""
        extra = f" AND {cond}" if cond else ""
        rows = conn.execute(
            f"SELECT {self.select} FROM {self.table} WHERE van = ? AND day = ?{pub}{extra}"
            " AND id NOT IN (SELECT event_id FROM outbox WHERE kind = ?)"
            f" ORDER BY {self.time_column}, id",
            (van, day, self.name),
        ).fetchall()
        out = []
        for row in rows:
            payload = self.encode(self.from_row(row), conn, rec)
            if payload is not None:
                out.append((row[0], payload))
        return out


def _quote(column: str) -> str:
    return f'"{column}"'  # "left" is an SQL keyword
