"""The registry of event kinds (telemetry/kinds.py): one place per kind of event.

- every registered kind round-trips event -> payload -> decode -> event and
  event -> row -> event with equal ids, times and values;
- the payloads, rows and resends of sample events are byte for byte what they were before
  the registry (golden values recorded from the if-chains it replaced);
- a throwaway kind, registered here with its own table, is recorded, published as a
  payload, decoded, ingested by a hub and re-sent without a change to store.py or topics.py.
"""

# ruff: noqa: E501 - golden payloads and rows stay one per line

from __future__ import annotations

import importlib.util
import json
import sqlite3
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry import categories, kinds, topics
from telemetry.contacts import DURATIONS
from telemetry.delivery import _resend_rows
from telemetry.errors import PayloadError
from telemetry.events import (
    FOOTFALL_KINDS,
    CheckIn,
    Contact,
    Footfall,
    Position,
    StopVisit,
    from_epoch,
    new_id,
    to_epoch,
)
from telemetry.publisher import Publisher
from telemetry.store import PRIORITY, Store

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
NOW = datetime(2030, 1, 1, tzinfo=UTC).timestamp()  # decode's "now": times up to it pass
VAN = "van-a"


def uid(i: int) -> str:
    return f"0190a000-0000-7000-8000-{i:012d}"


def topic_of(outbox_kind: str) -> str:
    return f"vanbox/{VAN}/{kinds.named(outbox_kind).topic}"


# --- golden values: recorded from the code before the registry ----------------------


def sample_events() -> list[Any]:
    return [
        Position(time=T0, lat=52.3212345678, lon=10.2298765, id=uid(1)),
        Position(time=T0 + timedelta(seconds=5), lat=52.32, lon=10.23, mode=2, alt=71.6,
                 speed=3.3, track=359.7, hdop=1.26, sats=7, id=uid(2)),
        Position(time=T0 + timedelta(seconds=9), lat=52.4, lon=10.3, suspect=True, id=uid(3)),
        Footfall(time=T0 + timedelta(seconds=1, milliseconds=234), kind="in",
                 sensor="beam-pair", occupancy=1, id=uid(4)),
        Footfall(time=T0 + timedelta(seconds=2), kind="pass", id=uid(5)),
        Footfall(time=T0 + timedelta(seconds=3), kind="sensor_blocked", sensor="beam-pair",
                 occupancy=1, id=uid(6)),
        Footfall(time=T0 + timedelta(seconds=4), kind="out", sensor="beam-pair", occupancy=0,
                 id=uid(7)),
        # 23:00 UTC is 01:00 in Berlin: the next local day, its totals start again.
        Footfall(time=T0 + timedelta(hours=13), kind="in", sensor="beam-pair", occupancy=3,
                 id=uid(17)),
        CheckIn(time=T0 + timedelta(minutes=17), age_group="18-20", topics=("job", "housing"),
                first_visit=True, heard_from="friends", language="de",
                id="0190a000-0000-4000-8000-000000000008"),
        CheckIn(time=T0, age_group="15-17", id="0190a000-0000-4000-8000-000000000009"),
        CheckIn(time=T0, age_group="21-24", first_visit=False, id=uid(10)),  # an old id
        StopVisit(arrived=T0, name="Edemissen Markt", municipality="Edemissen", lat=52.38,
                  lon=10.26, id=uid(11)),
        StopVisit(arrived=T0 - timedelta(hours=2), name="Vechelde", municipality="Vechelde",
                  lat=52.26, lon=10.37, planned=False, left=T0 - timedelta(minutes=30),
                  id=uid(12)),
        StopVisit(arrived=T0, name="Edemissen Markt", municipality="Edemissen", lat=52.38,
                  lon=10.26, left=T0 + timedelta(hours=1), id=uid(11)),  # leaving
    ]  # fmt: skip


GOLDEN_OUTBOX = [  # (kind, priority, payload) in outbox order (priority, then seq)
    ("footfall", 0, '{"id":"0190a000-0000-7000-8000-000000000004","tst":1780308001.234,"kind":"in","sensor":"beam-pair","occupancy":1,"today":{"in":1,"out":0,"pass":0,"occupancy":1}}'),
    ("footfall", 0, '{"id":"0190a000-0000-7000-8000-000000000005","tst":1780308002.0,"kind":"pass","sensor":"door","occupancy":0,"today":{"in":1,"out":0,"pass":1,"occupancy":0}}'),
    ("footfall", 0, '{"id":"0190a000-0000-7000-8000-000000000006","tst":1780308003.0,"kind":"sensor_blocked","sensor":"beam-pair","occupancy":1,"today":{"in":1,"out":0,"pass":1,"occupancy":1}}'),
    ("footfall", 0, '{"id":"0190a000-0000-7000-8000-000000000007","tst":1780308004.0,"kind":"out","sensor":"beam-pair","occupancy":0,"today":{"in":1,"out":1,"pass":1,"occupancy":0}}'),
    ("footfall", 0, '{"id":"0190a000-0000-7000-8000-000000000017","tst":1780354800.0,"kind":"in","sensor":"beam-pair","occupancy":3,"today":{"in":1,"out":0,"pass":0,"occupancy":3}}'),
    ("checkin", 0, '{"id":"0190a000-0000-4000-8000-000000000008","tst":1780308000,"age_group":"18-20","topics":["job","housing"],"first_visit":true,"heard_from":"friends","lang":"de"}'),
    ("checkin", 0, '{"id":"0190a000-0000-4000-8000-000000000009","tst":1780308000,"age_group":"15-17","topics":[],"first_visit":null,"heard_from":null,"lang":null}'),
    ("checkin", 0, '{"id":"cc956b87-3d34-41c9-9d2a-7e0b9ca0a4ba","tst":1780308000,"age_group":"21-24","topics":[],"first_visit":false,"heard_from":null,"lang":null}'),
    ("stop", 0, '{"id":"0190a000-0000-7000-8000-000000000011","name":"Edemissen Markt","municipality":"Edemissen","lat":52.38,"lon":10.26,"planned":true,"arrived":1780308000,"left":null}'),
    ("stop", 0, '{"id":"0190a000-0000-7000-8000-000000000012","name":"Vechelde","municipality":"Vechelde","lat":52.26,"lon":10.37,"planned":false,"arrived":1780300800,"left":1780306200}'),
    ("stop", 0, '{"id":"0190a000-0000-7000-8000-000000000011","name":"Edemissen Markt","municipality":"Edemissen","lat":52.38,"lon":10.26,"planned":true,"arrived":1780308000,"left":1780311600}'),
    ("position", 1, '{"_type":"location","id":"0190a000-0000-7000-8000-000000000001","tid":"VA","tst":1780308000,"lat":52.321235,"lon":10.229876,"mode":3}'),
    ("position", 1, '{"_type":"location","id":"0190a000-0000-7000-8000-000000000002","tid":"VA","tst":1780308005,"lat":52.32,"lon":10.23,"mode":2,"acc":6,"hdop":1.3,"alt":72,"vel":12,"cog":0,"sats":7}'),
]  # fmt: skip

GOLDEN_ROWS = {  # table -> rows (SELECT * ORDER BY id)
    "positions": [
        [uid(1), VAN, 1780308000.0, "2026-06-01", 52.3212345678, 10.2298765, 3, None, None, None, None, None, 0],
        [uid(2), VAN, 1780308005.0, "2026-06-01", 52.32, 10.23, 2, 71.6, 3.3, 359.7, 1.26, 7, 0],
        [uid(3), VAN, 1780308009.0, "2026-06-01", 52.4, 10.3, 3, None, None, None, None, None, 1],
    ],
    "footfall": [
        [uid(4), VAN, 1780308001.234, "2026-06-01", 12, "in", "beam-pair", 1],
        [uid(5), VAN, 1780308002.0, "2026-06-01", 12, "pass", "door", 0],
        [uid(6), VAN, 1780308003.0, "2026-06-01", 12, "sensor_blocked", "beam-pair", 1],
        [uid(7), VAN, 1780308004.0, "2026-06-01", 12, "out", "beam-pair", 0],
        [uid(17), VAN, 1780354800.0, "2026-06-02", 1, "in", "beam-pair", 3],
    ],
    "checkins": [
        ["0190a000-0000-4000-8000-000000000008", VAN, 1780308000.0, "2026-06-01", 12, "18-20", '["job", "housing"]', 1, "friends", "de"],
        ["0190a000-0000-4000-8000-000000000009", VAN, 1780308000.0, "2026-06-01", 12, "15-17", "[]", None, None, None],
        ["cc956b87-3d34-41c9-9d2a-7e0b9ca0a4ba", VAN, 1780308000.0, "2026-06-01", 12, "21-24", "[]", 0, None, None],
    ],
    "stop_visits": [
        [uid(11), VAN, 1780308000.0, 1780311600.0, "2026-06-01", "Edemissen Markt", "Edemissen", 52.38, 10.26, 1],
        [uid(12), VAN, 1780300800.0, 1780306200.0, "2026-06-01", "Vechelde", "Vechelde", 52.26, 10.37, 0],
    ],
}  # fmt: skip


@pytest.fixture
def van_store(tmp_path) -> Iterator[Store]:
    s = Store(tmp_path / "box.db", van=VAN, tid="VA")
    yield s
    s.close()


def rows_of(store: Store, table: str) -> list[list[Any]]:
    return [list(r) for r in store._conn.execute(f"SELECT * FROM {table} ORDER BY id")]


def test_payloads_rows_and_priorities_are_as_before(van_store):
    for ev in sample_events():
        van_store.record(ev)
    got = [(r.kind, r.priority, r.payload) for r in van_store.pending(100)]
    assert got == GOLDEN_OUTBOX
    for table, rows in GOLDEN_ROWS.items():
        assert rows_of(van_store, table) == rows, table
    assert PRIORITY == {"position": 1, "footfall": 0, "checkin": 0, "stop": 0, "contact": 0}
    assert van_store.today(T0) == {"in": 1, "out": 1, "pass": 1, "occupancy": 0, "checkins": 3}
    assert van_store.last_position() == replace(sample_events()[1], van=VAN)
    assert van_store.last_position(include_suspect=True).id == uid(3)


def test_resends_rebuild_the_first_payloads(van_store):
    """Whatever is not queued is re-sent with its first payload (footfall: the day's
    running totals as they were), in time order; queued events and suspect fixes never."""
    for ev in sample_events():
        van_store.record(ev)
    first = {(r.event_id, r.payload) for r in van_store.pending(100)}
    queued = uid(5)  # still in the outbox: counted in the totals, not re-sent
    van_store.mark_sent([r.seq for r in van_store.pending(100) if r.event_id != queued])
    conn = van_store._conn
    got = {
        k: [(e, ok, p) for e, ok, p, _ in _resend_rows(conn, van_store, "2026-06-01", k)]
        for k in ("footfall", "checkin", "stop", "stop_left", "position", "no-such-kind")
    }
    assert got == {
        "footfall": [(uid(i), "footfall", 0) for i in (4, 6, 7)],
        "checkin": [
            ("0190a000-0000-4000-8000-000000000008", "checkin", 0),
            ("0190a000-0000-4000-8000-000000000009", "checkin", 0),
            ("cc956b87-3d34-41c9-9d2a-7e0b9ca0a4ba", "checkin", 0),
        ],
        "stop": [(uid(12), "stop", 0), (uid(11), "stop", 0)],
        "stop_left": [(uid(12), "stop", 0), (uid(11), "stop", 0)],
        "position": [(uid(1), "position", 2), (uid(2), "position", 2)],
        "no-such-kind": [],
    }
    resent = {
        (e, p)
        for k in ("footfall", "checkin", "stop", "position")
        for day in ("2026-06-01", "2026-06-02")
        for e, _, _, p in _resend_rows(conn, van_store, day, k)
    }
    assert resent <= first  # the same payloads, byte for byte
    assert (uid(17), GOLDEN_OUTBOX[4][2]) in resent  # its own day's totals
    # A stop visit still open is re-sent as a "stop", never as a "stop_left".
    van_store.record(StopVisit(arrived=T0, name="Peine", municipality="Peine", lat=52.3,
                               lon=10.2, id=uid(13)))  # fmt: skip
    van_store.mark_sent([r.seq for r in van_store.pending(100) if r.event_id == uid(13)])
    assert uid(13) in {r[0] for r in _resend_rows(conn, van_store, "2026-06-01", "stop")}
    assert uid(13) not in {r[0] for r in _resend_rows(conn, van_store, "2026-06-01", "stop_left")}


def test_hub_ingest_of_the_decoded_payloads_gives_the_same_rows(van_store, tmp_path):
    for ev in sample_events():
        van_store.record(ev)
    hub = Store(tmp_path / "hub.db", tid="VA")
    try:
        events = [
            e
            for kind, _, payload in GOLDEN_OUTBOX
            for e in topics.decode(topic_of(kind), payload, now=NOW).events
        ]
        assert hub.ingest_many(events) == 13  # 12 new rows, 1 stop visit's "left" taken
        assert hub.ingest_many(events) == 0
        for table in ("footfall", "checkins", "stop_visits"):
            assert rows_of(hub, table) == GOLDEN_ROWS[table], table
        # Fixes as published (rounded, km/h): never the suspect one.
        assert rows_of(hub, "positions") == [
            [uid(1), VAN, 1780308000.0, "2026-06-01", 52.321235, 10.229876, 3, None, None,
             None, None, None, 0],
            [uid(2), VAN, 1780308005.0, "2026-06-01", 52.32, 10.23, 2, 72.0, 12 / 3.6, 0.0,
             1.3, 7, 0],
        ]  # fmt: skip
    finally:
        hub.close()


# --- every registered kind round-trips --------------------------------------------------

ids = st.uuids().map(str)
seconds = st.integers(int(T0.timestamp()) - 10 * 365 * 86400, int(NOW) - 86400)
lat6 = st.integers(-90_000_000, 90_000_000).map(lambda n: n / 1e6)
lon6 = st.integers(-180_000_000, 180_000_000).map(lambda n: n / 1e6)
names = st.text(string.ascii_letters + "äöüßÄÖÜ .-'()0123456789", min_size=1, max_size=120).filter(
    lambda s: s.strip() == s and s
)


def _maybe(s):
    return st.none() | s


positions = st.builds(
    Position,
    time=seconds.map(from_epoch),
    lat=lat6,
    lon=lon6,
    mode=st.sampled_from([2, 3]),
    alt=_maybe(st.integers(-1000, 20_000).map(float)),
    speed=_maybe(st.integers(0, 1000).map(lambda k: k / 3.6)),  # km/h on the wire
    track=_maybe(st.integers(0, 359).map(float)),
    hdop=_maybe(st.integers(0, 999).map(lambda n: n / 10)),
    sats=_maybe(st.integers(0, 99)),
    id=ids,
    van=st.just(VAN),
).filter(lambda p: (p.lat, p.lon) != (0, 0))
footfalls = st.builds(
    Footfall,
    time=st.tuples(seconds, st.integers(0, 999)).map(lambda t: from_epoch(t[0] + t[1] / 1000)),
    kind=st.sampled_from(FOOTFALL_KINDS),
    sensor=st.sampled_from(categories.SENSORS),
    occupancy=st.integers(0, 10_000),
    id=ids,
    van=st.just(VAN),
)
checkins = st.builds(
    CheckIn,
    time=seconds.map(from_epoch),
    age_group=st.sampled_from(categories.AGE_GROUPS),
    topics=st.lists(st.sampled_from(categories.TOPICS), unique=True).map(tuple),
    first_visit=_maybe(st.booleans()),
    heard_from=_maybe(st.sampled_from(categories.HEARD_FROM)),
    language=_maybe(st.sampled_from(categories.LANGUAGES)),
    id=ids,
    van=st.just(VAN),
)
stops = st.builds(
    lambda arrived, stay, **kw: StopVisit(
        arrived=from_epoch(arrived),
        left=None if stay is None else from_epoch(arrived + stay),
        **kw,
    ),
    arrived=seconds,
    stay=_maybe(st.integers(0, 86_400)),
    name=names,
    municipality=names,
    lat=lat6,
    lon=lon6,
    planned=st.booleans(),
    id=ids,
    van=st.just(VAN),
).filter(lambda s: (s.lat, s.lon) != (0, 0))
contacts = st.builds(
    Contact,
    time=seconds.map(lambda s: from_epoch(s - s % 3600)),
    kind=st.sampled_from(["kurz", "beratung", "hausbesuch", "gruppe"]),
    topics=st.lists(st.sampled_from(categories.TOPICS), min_size=1, unique=True).map(tuple),
    duration=st.sampled_from(list(DURATIONS)),
    age_group=st.sampled_from(categories.AGE_GROUPS),
    municipality=st.sampled_from(["Peine", "Ilsede", "outside"]),
    first_contact=st.booleans(),
    referrals=st.lists(st.sampled_from(["jobcenter", "jba", "schule"]), unique=True).map(tuple),
    outcome=st.sampled_from(["geklaert", "vermittelt"]),
    persons=st.integers(1, 50),
    id=ids,
    van=st.just(VAN),
)
STRATEGIES = {Position: positions, Footfall: footfalls, CheckIn: checkins, StopVisit: stops,
              Contact: contacts}  # fmt: skip
RT = settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def test_every_built_in_kind_has_a_round_trip_strategy():
    assert {k.event for k in kinds.registered()} == set(STRATEGIES)


@pytest.fixture(scope="module")
def mem_store() -> Iterator[Store]:
    s = Store(":memory:", van=VAN, tid="VA")
    yield s
    s.close()


@RT
@given(ev=st.one_of(*STRATEGIES.values()))
def test_event_payload_decode_round_trip(ev, mem_store):
    kind = kinds.of(ev)
    payload = kind.encode(ev, mem_store._conn, mem_store)
    assert payload is not None
    msg = topics.decode(topic_of(kind.name), topics.dumps(payload), now=NOW)
    assert msg.events == (ev,)
    assert msg.kind == kind.topic


@RT
@given(ev=st.one_of(*STRATEGIES.values()), micro=st.integers(0, 999_999))
def test_event_row_event_round_trip(ev, micro, mem_store):
    kind = kinds.of(ev)
    if isinstance(ev, Position | Footfall):  # stored to the microsecond
        ev = replace(ev, time=ev.time.replace(microsecond=micro))
    if isinstance(ev, Position):
        ev = replace(ev, suspect=micro % 2 == 1, lat=ev.lat + 1e-9, lon=ev.lon - 3e-10)
    with mem_store.transaction() as conn:
        assert kind.insert(conn, ev, mem_store, upsert=True) == 1
        row = conn.execute(
            f"SELECT {kind.select} FROM {kind.table} WHERE id = ?", (ev.id,)
        ).fetchone()
        conn.execute(f"DELETE FROM {kind.table} WHERE id = ?", (ev.id,))
    assert kind.from_row(row) == ev


def test_suspect_fixes_have_no_payload(mem_store):
    ev = Position(time=T0, lat=52.3, lon=10.2, suspect=True, van=VAN)
    assert kinds.POSITION.encode(ev, mem_store._conn, mem_store) is None
    ok = replace(ev, suspect=False)
    assert kinds.POSITION.encode(ok, mem_store._conn, mem_store)["id"] == ev.id


# --- adding a kind touches no store or topics code -----------------------------------


@dataclass(frozen=True)
class Note:
    """A throwaway kind: a street-work note with referrals."""

    time: datetime
    minutes: int
    referrals: tuple[str, ...] = ()
    id: str = field(default_factory=new_id)
    van: str = ""


REFERRALS = ("jobcenter", "schuldnerberatung", "jugendamt")


def _note_decode(d: dict[str, Any], van: str, where: str, now: float) -> Note:
    refs = d.get("refs") or []
    if not isinstance(refs, list) or not set(refs) <= set(REFERRALS):
        raise PayloadError(f"{where}: 'refs' must be referral codes")
    return Note(
        time=topics._time(d, "tst", now, where=where),
        minutes=topics._num(d, "min", 1, 600, where=where, integer=True, required=True),
        referrals=tuple(refs),
        id=topics._id(d, where),
        van=van,
    )


NOTE = kinds.EventKind(
    name="note",
    event=Note,
    topic="note",
    priority=0,
    table="notes",
    columns=("id", "van", "ts", "day", "minutes", "referrals"),
    values=lambda ev, rec: (
        ev.id,
        ev.van,
        to_epoch(ev.time),
        rec.day_of(ev.time),
        ev.minutes,
        json.dumps(list(ev.referrals)),
    ),  # fmt: skip
    from_row=lambda r: Note(
        from_epoch(r[2]), r[4], tuple(json.loads(r[5])), id=r[0], van=r[1]
    ),  # fmt: skip
    encode=lambda ev, conn, rec: {
        "id": ev.id,
        "tst": int(to_epoch(ev.time)),
        "min": ev.minutes,
        "refs": list(ev.referrals),
    },  # fmt: skip
    decode=_note_decode,
    tally={"note": ""},
)
NOTES_SQL = (
    "CREATE TABLE notes (id TEXT PRIMARY KEY, van TEXT NOT NULL, ts REAL NOT NULL,"
    " day TEXT NOT NULL, minutes INTEGER NOT NULL, referrals TEXT NOT NULL)"
)


@pytest.fixture
def note_kind() -> Iterator[kinds.EventKind]:
    kinds.register(NOTE)
    try:
        yield NOTE
    finally:
        kinds.unregister("note")


def test_a_new_kind_is_one_registry_entry(note_kind, tmp_path):
    box = Store(tmp_path / "box.db", van=VAN, tid="VA")
    hub = Store(tmp_path / "hub.db", tid="VA")
    try:
        for s in (box, hub):
            s._conn.execute(NOTES_SQL)
        ev = box.record(Note(T0, 25, ("jobcenter", "jugendamt")))
        assert ev.van == VAN and box.count("notes") == 1
        (row,) = box.pending()
        assert (row.kind, row.priority, row.event_id) == ("note", 0, ev.id)
        assert json.loads(row.payload) == {
            "id": ev.id, "tst": 1780308000, "min": 25, "refs": ["jobcenter", "jugendamt"]
        }  # fmt: skip
        # Published on its own topic, decoded at the hub's boundary, ingested once.
        t = topics.topic("vanbox", VAN, "note")
        assert topics.parse_topic(t, "vanbox") == (VAN, "note")
        msg = topics.decode(t, row.payload.encode(), now=NOW)
        assert msg.events == (ev,)
        assert hub.ingest_many(msg.events) == 1
        assert hub.ingest_many(msg.events) == 0
        assert rows_of(hub, "notes") == rows_of(box, "notes")
        with pytest.raises(PayloadError, match="min"):
            topics.decode(t, row.payload.replace('"min":25', '"min":601'), now=NOW)
        # The hub asks for it again: re-sent from its table with the same payload.
        assert _resend_rows(box._conn, box, "2026-06-01", "note") == []  # still queued
        box.mark_sent([row.seq])
        assert _resend_rows(box._conn, box, "2026-06-01", "note") == [
            (ev.id, "note", 0, row.payload)
        ]
    finally:
        box.close()
        hub.close()
    # Unregistered, it is no kind and no topic any more.
    kinds.unregister("note")
    try:
        with pytest.raises(TypeError, match="not an event"):
            kinds.of(ev)
        with pytest.raises(PayloadError, match="unknown topic kind"):
            topics.decode(t, row.payload, now=NOW)
        with pytest.raises(ValueError, match="unknown topic kind"):
            topics.topic("vanbox", VAN, "note")
    finally:
        kinds.register(NOTE)  # for the fixture's teardown


@pytest.mark.mqtt
def test_a_new_kind_is_published_on_its_own_topic(note_kind, tmp_path, broker):
    spec = importlib.util.spec_from_file_location(
        "_box_child", Path(__file__).with_name("_box_child.py")
    )
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    box = Store(tmp_path / "box.db", van=VAN, tid="VA")
    box._conn.execute(NOTES_SQL)
    sub = helpers.Subscriber(broker.port)
    ev = box.record(Note(T0, 40, ("schuldnerberatung",)))
    pub = Publisher(box, {"host": "127.0.0.1", "port": broker.port, "keepalive": 10},
                    van=VAN, tid="VA")  # fmt: skip
    t = f"vanbox/{VAN}/note"
    pub.start()
    try:
        assert sub.wait_for(lambda s: any(m[0] == t for m in s.messages), timeout=15)
        deadline = time.monotonic() + 10
        while box.outbox_depth() and time.monotonic() < deadline:  # marked sent on PUBACK
            time.sleep(0.02)
        assert box.outbox_depth() == 0
        (payload,) = [p for topic, p, _ in sub.messages if topic == t]
        assert topics.decode(t, payload, now=NOW).events == (ev,)
    finally:
        pub.stop()
        sub.close()
        box.close()


@pytest.mark.parametrize(
    "change",
    [
        {"name": "stop"},
        {"event": CheckIn},
        {"topic": "location"},
        {"topic": "track"},
        {"topic": "tally"},
        {"topic": "status"},
        {"tally": {"stop_left": ""}},
    ],
)
def test_a_kind_cannot_take_what_another_has(change, note_kind):
    kinds.unregister("note")
    try:
        with pytest.raises(ValueError, match="taken"):
            kinds.register(replace(NOTE, **change))
        assert kinds.named("note") is None
    finally:
        kinds.register(NOTE)


def test_lookups(note_kind):
    assert kinds.of(Position(time=T0, lat=1, lon=1)) is kinds.POSITION
    assert kinds.for_topic("location") is kinds.POSITION
    assert kinds.for_topic("track") is None
    assert kinds.for_tally("stop_left") == (kinds.STOP, '"left" IS NOT NULL')
    assert kinds.for_tally("note") == (NOTE, "")
    assert kinds.named("note") is NOTE
    with pytest.raises(TypeError, match="not an event"):
        kinds.of(object())
    with pytest.raises(ValueError, match="columns"):
        replace(NOTE, columns=("van", "id"))


def test_store_refuses_an_unregistered_kind(van_store):
    with pytest.raises(TypeError, match="not an event"):
        van_store.record(Note(T0, 5))
    assert van_store.outbox_depth() == 0
    with pytest.raises(sqlite3.Error):
        van_store._conn.execute("SELECT * FROM notes")  # the throwaway table is its own
