"""The built-in event kinds (:mod:`telemetry.kinds`), each registered on import: GPS
positions, footfall at the door (with the day's running totals its payload carries),
check-ins at the kiosk and stop visits."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from . import topics
from .events import CheckIn, Footfall, Position, StopVisit, from_epoch, to_epoch
from .kinds_model import EventKind, Payload, Recorder, Row
from .kinds_registry import register

RESEND_POSITION_PRIORITY = 2  # re-sent track points: after live ones, never "location"


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
