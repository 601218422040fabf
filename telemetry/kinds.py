"""Event kinds: the one place that says, per kind of event, how it is stored and sent.

Every kind of event (a GPS fix, a count at the door, a check-in, a stop visit) is one
:class:`EventKind` in a registry: its event class, the topic its payload goes to, its
outbox kind and priority, its table and columns, how to build a row from the event and
the event back from a row, and how to encode and decode its payload (with the encoders
and bounded decoders of :mod:`telemetry.topics`, which stay the wire format's one home).

The store (recording, the hub's ingest), ``topics.decode`` and the box's resending
(:mod:`telemetry.delivery`) look a kind up here instead of asking an event for its type.
A new kind of event is one :func:`register` call with its ``EventKind`` (plus its
dataclass, its migration and its encoder and decoder, in topics.py or, like the
counselling contacts, in a module of its own: telemetry/contacts.py, imported at the end
of this module). The reconciliation tally (telemetry/tally.py) and the retention
(telemetry/retention.py) read the registry too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol

from . import topics
from .events import CheckIn, Footfall, Position, StopVisit, from_epoch, to_epoch

RESEND_POSITION_PRIORITY = 2  # re-sent track points: after live ones, never "location"

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


# --- the registry ---------------------------------------------------------------------

# Topics that carry no single event kind: never an event kind's topic.
RESERVED_TOPICS = ("status", "track", *topics.CONTROL_KINDS, topics.BRIDGE_KIND)

_BY_NAME: dict[str, EventKind] = {}
_BY_CLASS: dict[type, EventKind] = {}
_BY_TOPIC: dict[str, EventKind] = {}


def register(kind: EventKind) -> EventKind:
    """Add ``kind``; its name, event class, topic and tally kinds must be new."""
    taken = (
        kind.name in _BY_NAME
        or kind.event in _BY_CLASS
        or kind.topic in _BY_TOPIC
        or kind.topic in RESERVED_TOPICS
        or any(for_tally(t) is not None for t in kind.tally)
    )
    if taken:
        raise ValueError(f"event kind {kind.name!r}: its name, class, topic or tally is taken")
    _BY_NAME[kind.name] = kind
    _BY_CLASS[kind.event] = kind
    _BY_TOPIC[kind.topic] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests register throwaway kinds)."""
    kind = _BY_NAME.pop(name)
    del _BY_CLASS[kind.event]
    del _BY_TOPIC[kind.topic]


def registered() -> tuple[EventKind, ...]:
    return tuple(_BY_NAME.values())


def of(ev: Any) -> EventKind:
    """The kind of event ``ev``; TypeError if it is none."""
    kind = _BY_CLASS.get(type(ev))
    if kind is None:
        raise TypeError(f"not an event: {ev!r}")
    return kind


def named(name: str) -> EventKind | None:
    return _BY_NAME.get(name)


def for_topic(topic: str) -> EventKind | None:
    return _BY_TOPIC.get(topic)


def for_tally(tally_kind: str) -> tuple[EventKind, str] | None:
    """The kind a tally kind counts, with its extra SQL condition."""
    for kind in _BY_NAME.values():
        if tally_kind in kind.tally:
            return kind, kind.tally[tally_kind]
    return None


# --- positions ------------------------------------------------------------------------


def _position_values(ev: Position, rec: Recorder) -> tuple[Any, ...]:
    return (
        ev.id, ev.van, to_epoch(ev.time), rec.day_of(ev.time), ev.lat, ev.lon, ev.mode,
        ev.alt, ev.speed, ev.track, ev.hdop, ev.sats, int(ev.suspect),
    )  # fmt: skip


def _position_from_row(r: Row) -> Position:
    eid, van, ts, _day, lat, lon, mode, alt, speed, track, hdop, sats, suspect = r
    return Position(
        time=from_epoch(ts), lat=lat, lon=lon, mode=mode, alt=alt, speed=speed, track=track,
        hdop=hdop, sats=sats, suspect=bool(suspect), id=eid, van=van,
    )  # fmt: skip


def _position_payload(ev: Position, conn: sqlite3.Connection, rec: Recorder) -> Payload | None:
    # Suspect fixes are kept for the record but never published as the position.
    return None if ev.suspect else topics.location_payload(ev, rec.tid)


POSITION = register(
    EventKind(
        name="position",
        event=Position,
        topic="location",
        priority=1,
        table="positions",
        columns=(
            "id",
            "van",
            "ts",
            "day",
            "lat",
            "lon",
            "mode",
            "alt",
            "speed",
            "track",
            "hdop",
            "sats",
            "suspect",
        ),  # fmt: skip
        values=_position_values,
        from_row=_position_from_row,
        encode=_position_payload,
        decode=topics._position,
        published="suspect = 0",
        tally={"position": ""},
        prune_by="ts",
        resend_priority=RESEND_POSITION_PRIORITY,
    )
)


# --- footfall -------------------------------------------------------------------------


def footfall_today(conn: sqlite3.Connection, van: str, day: str) -> dict[str, int]:
    """The running totals of ``day`` (local) so far, as a footfall payload's ``today``."""
    counts = dict(
        conn.execute(
            "SELECT kind, count(*) FROM footfall WHERE van = ? AND day = ?"
            " AND kind IN ('in', 'out', 'pass') GROUP BY kind",
            (van, day),
        ).fetchall()
    )
    last = conn.execute(
        "SELECT occupancy FROM footfall WHERE van = ? AND day = ? ORDER BY ts DESC, id DESC"
        " LIMIT 1",
        (van, day),
    ).fetchone()
    return {
        "in": counts.get("in", 0),
        "out": counts.get("out", 0),
        "pass": counts.get("pass", 0),
        "occupancy": last[0] if last else 0,
    }


def _footfall_values(ev: Footfall, rec: Recorder) -> tuple[Any, ...]:
    loc = rec.local(ev.time)
    return (
        ev.id, ev.van, to_epoch(ev.time), loc.date().isoformat(), loc.hour, ev.kind,
        ev.sensor, ev.occupancy,
    )  # fmt: skip


def _footfall_from_row(r: Row) -> Footfall:
    eid, van, ts, _day, _hour, kind, sensor, occupancy = r
    return Footfall(from_epoch(ts), kind, sensor, occupancy, id=eid, van=van)


def _footfall_payload(ev: Footfall, conn: sqlite3.Connection, rec: Recorder) -> Payload:
    return topics.footfall_payload(ev, footfall_today(conn, ev.van, rec.day_of(ev.time)))


def _footfall_replay(
    kind: EventKind, conn: sqlite3.Connection, rec: Recorder, van: str, day: str, cond: str
) -> list[tuple[str, Payload]]:
    """``today`` as it was when each event was recorded: the day's running totals up to
    it (queued events counted, not re-sent) and its own occupancy."""
    tally = {"in": 0, "out": 0, "pass": 0}
    extra = f" AND {cond}" if cond else ""
    rows = conn.execute(
        f"SELECT {kind.select}, id IN (SELECT event_id FROM outbox WHERE kind = ?)"
        f" FROM footfall WHERE van = ? AND day = ?{extra} ORDER BY ts, id",
        (kind.name, van, day),
    ).fetchall()
    out = []
    for *row, is_queued in rows:
        ev = _footfall_from_row(row)
        if ev.kind in tally:
            tally[ev.kind] += 1
        if not is_queued:
            out.append((ev.id, topics.footfall_payload(ev, {**tally, "occupancy": ev.occupancy})))
    return out


FOOTFALL = register(
    EventKind(
        name="footfall",
        event=Footfall,
        topic="footfall",
        priority=0,
        table="footfall",
        columns=("id", "van", "ts", "day", "hour", "kind", "sensor", "occupancy"),
        values=_footfall_values,
        from_row=_footfall_from_row,
        encode=_footfall_payload,
        decode=topics._footfall,
        tally={"footfall": ""},
        replay=_footfall_replay,
        prune_by="day",
    )
)


# --- check-ins ------------------------------------------------------------------------


def _checkin_values(ev: CheckIn, rec: Recorder) -> tuple[Any, ...]:
    loc = rec.local(ev.time)
    return (
        ev.id, ev.van, to_epoch(ev.time), loc.date().isoformat(), loc.hour, ev.age_group,
        json.dumps(list(ev.topics)), None if ev.first_visit is None else int(ev.first_visit),
        ev.heard_from, ev.language,
    )  # fmt: skip


def _checkin_from_row(r: Row) -> CheckIn:
    eid, van, ts, _day, _hour, age, tps, first, heard, lang = r
    first = None if first is None else bool(first)
    return CheckIn(from_epoch(ts), age, tuple(json.loads(tps)), first, heard, lang,
                   id=eid, van=van)  # fmt: skip


CHECKIN = register(
    EventKind(
        name="checkin",
        event=CheckIn,
        topic="checkin",
        priority=0,
        table="checkins",
        columns=(
            "id",
            "van",
            "ts",
            "day",
            "hour",
            "age_group",
            "topics",
            "first_visit",
            "heard_from",
            "language",
        ),  # fmt: skip
        values=_checkin_values,
        from_row=_checkin_from_row,
        encode=lambda ev, conn, rec: topics.checkin_payload(ev),
        decode=topics._checkin,
        tally={"checkin": ""},
        prune_by="day",
    )
)


# --- stop visits ----------------------------------------------------------------------


def _stop_values(ev: StopVisit, rec: Recorder) -> tuple[Any, ...]:
    return (
        ev.id, ev.van, to_epoch(ev.arrived), None if ev.left is None else to_epoch(ev.left),
        rec.day_of(ev.arrived), ev.name, ev.municipality, ev.lat, ev.lon, int(ev.planned),
    )  # fmt: skip


def _stop_from_row(r: Row) -> StopVisit:
    eid, van, arrived, left, _day, name, muni, lat, lon, planned = r
    return StopVisit(from_epoch(arrived), name, muni, lat, lon, bool(planned),
                     None if left is None else from_epoch(left), id=eid, van=van)  # fmt: skip


STOP = register(
    EventKind(
        name="stop",
        event=StopVisit,
        topic="stop",
        priority=0,
        table="stop_visits",
        columns=(
            "id",
            "van",
            "arrived",
            "left",
            "day",
            "name",
            "municipality",
            "lat",
            "lon",
            "planned",
        ),  # fmt: skip
        values=_stop_values,
        from_row=_stop_from_row,
        encode=lambda ev, conn, rec: topics.stop_payload(ev),
        decode=topics._stop,
        time_column="arrived",
        # Recorded again (same id) when the van leaves: the later "left" is taken.
        upsert='ON CONFLICT(id) DO UPDATE SET "left" = excluded."left"'
        ' WHERE excluded."left" IS NOT NULL AND stop_visits."left" IS NOT'
        ' excluded."left" AND stop_visits.van = excluded.van',
        upsert_on_record=True,
        tally={"stop": "", "stop_left": '"left" IS NOT NULL'},
    )
)


# --- kinds in modules of their own (each registers itself on import) -------------------

from . import contacts as contacts  # noqa: E402 - needs the registry above
