"""The store: schema, one transaction per event and outbox row, ordering, thinning."""

import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from telemetry.errors import StoreError
from telemetry.events import CheckIn, Footfall, Position, StopVisit, new_id
from telemetry.store import Store, migrations

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin


def pos(i: int, **kw) -> Position:
    return Position(time=T0 + timedelta(seconds=i), lat=52.3 + i * 1e-4, lon=10.2, **kw)


def test_wal_and_migrations(store):
    mode = store.reader().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert store.schema_version == len(migrations()) >= 1
    tables = set(store.db.table_names())
    assert {"positions", "footfall", "checkins", "stop_visits", "outbox", "meta"} <= tables


def test_reopen_does_not_migrate_twice(tmp_path):
    s = Store(tmp_path / "a.db", van="v")
    s.record(pos(1))
    s.close()
    s2 = Store(tmp_path / "a.db", van="v")
    assert s2.count("positions") == 1
    assert s2.schema_version == len(migrations())
    s2.close()


def test_ids_are_unique_and_time_ordered():
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert ids == sorted(ids)


def test_record_fills_van_and_writes_event_and_outbox_together(store):
    ev = store.record(Footfall(time=T0, kind="in", sensor="beam-pair", occupancy=1))
    assert ev.van == "testvan"
    rows = store.pending()
    assert [r.event_id for r in rows] == [ev.id]
    payload = json.loads(rows[0].payload)
    assert payload["today"] == {"in": 1, "out": 0, "pass": 0, "occupancy": 1}


def test_failed_transaction_leaves_neither_row(store, monkeypatch):
    original = store._payload

    def boom(conn, ev):
        original(conn, ev)
        raise RuntimeError("power cut between the two inserts")

    monkeypatch.setattr(store, "_payload", boom)
    with pytest.raises(RuntimeError):
        store.record(pos(1))
    assert store.count("positions") == 0
    assert store.outbox_depth() == 0


def test_counts_before_positions_then_oldest_first(store):
    store.record(pos(1))
    c = store.record(CheckIn(time=T0, age_group="18-20", topics=("job",)))
    store.record(pos(2))
    f = store.record(Footfall(time=T0, kind="pass"))
    kinds = [(r.kind, r.event_id) for r in store.pending()]
    assert kinds[:2] == [("checkin", c.id), ("footfall", f.id)]
    assert [k for k, _ in kinds[2:]] == ["position", "position"]


def test_suspect_positions_are_stored_but_not_sent(store):
    store.record(pos(1, suspect=True))
    assert store.count("positions") == 1
    assert store.outbox_depth() == 0
    assert store.last_position() is None
    assert store.last_position(include_suspect=True).suspect


def test_mark_sent_removes_rows_and_counts(store):
    for i in range(5):
        store.record(pos(i))
    rows = store.pending(limit=3)
    assert store.mark_sent([r.seq for r in rows]) == 3
    assert store.outbox_depth() == 2
    assert store.counter("outbox_sent") == 3
    assert store.mark_sent([rows[0].seq]) == 0  # a late duplicate PUBACK changes nothing


def test_thinning_drops_positions_never_counts(store):
    for i in range(100):
        store.record(pos(i))
        if i % 10 == 0:
            store.record(Footfall(time=T0, kind="pass"))
    assert store.outbox_depth() == 110
    removed = store.thin_outbox(60)
    assert removed == 50
    kinds = [r.kind for r in store.pending(limit=1000)]
    assert kinds.count("footfall") == 10
    assert kinds.count("position") == 50
    # Even below what counts alone need, counts are never dropped.
    store.thin_outbox(1)
    assert [r.kind for r in store.pending(limit=1000)] == ["footfall"] * 10
    assert store.count("positions") == 100  # the events themselves stay


def test_today_totals_use_the_local_day(store):
    late = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)  # 23:30 in Berlin, same local day
    after = datetime(2026, 6, 1, 22, 30, tzinfo=UTC)  # 00:30 in Berlin, the next day
    store.record(Footfall(time=late, kind="in", occupancy=1))
    store.record(Footfall(time=after, kind="in", occupancy=1))
    store.record(Footfall(time=after + timedelta(minutes=1), kind="out", occupancy=0))
    assert store.today(late)["in"] == 1
    t = store.today(after)
    assert (t["in"], t["out"], t["occupancy"]) == (1, 1, 0)


def test_checkin_time_is_rounded_to_the_hour(store):
    ev = store.record(CheckIn(time=T0 + timedelta(minutes=37, seconds=5), age_group="15-17"))
    assert ev.time == T0
    row = store.reader().execute("SELECT ts, hour, topics FROM checkins").fetchone()
    assert row["ts"] == T0.timestamp()
    assert row["hour"] == 12
    assert json.loads(row["topics"]) == []


def test_ingest_is_idempotent_and_takes_a_later_left_time(tmp_path):
    hub = Store(tmp_path / "hub.db")
    v = StopVisit(arrived=T0, name="Ilsede", municipality="Ilsede", lat=52.26, lon=10.18,
                  van="van-a")  # fmt: skip
    f = Footfall(time=T0, kind="in", van="van-a")
    assert hub.ingest_many([v, f]) == 2
    assert hub.ingest_many([v, f]) == 0
    left = replace(v, left=T0 + timedelta(hours=2))
    assert hub.ingest_many([left]) == 1
    assert hub.ingest_many([v]) == 0  # an old redelivery without 'left' does not undo it
    row = hub.reader().execute('SELECT "left" FROM stop_visits').fetchone()
    assert row[0] == left.left.timestamp()
    assert hub.outbox_depth() == 0
    with pytest.raises(StoreError, match="no van id"):
        hub.ingest_many([Footfall(time=T0, kind="in")])
    hub.close()


def test_unopenable_database_is_a_store_error(tmp_path):
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(bad)


def test_integrity_check_ok(store):
    store.record(pos(1))
    assert store.integrity_check() == "ok"
    assert isinstance(store.reader(), sqlite3.Connection)


def test_a_full_disk_raises_the_real_error_and_loses_nothing_committed(store):
    """SQLITE_FULL rolls the transaction back by itself; the store must report that
    error (not a failed ROLLBACK) and be usable again once there is space."""
    for i in range(50):
        store.record(pos(i))
    conn = store._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(sqlite3.OperationalError, match="full"):
        for _ in range(50, 5000):
            store.record(Footfall(time=T0, kind="in"))
    full_count = store.count("footfall")
    assert store.count("footfall") == store.outbox_depth() - 50  # event and outbox together
    conn.execute("PRAGMA max_page_count = 1073741823")
    store.record(Footfall(time=T0, kind="in"))
    assert store.count("footfall") == full_count + 1
    assert store.count("positions") == 50
    assert store.integrity_check() == "ok"


def test_listeners_are_called_after_each_commit(store):
    calls = []
    store.add_listener(lambda: calls.append(store.outbox_depth()))
    store.add_listener(lambda: 1 / 0)  # a broken listener does not undo the commit
    store.record(pos(1))
    store.record_many([pos(2), pos(3)])
    assert calls == [1, 3]
    assert store.count("positions") == 3


# --- issue 12.5: check-in ids carry no time -------------------------------------------


def test_new_checkin_ids_are_random_uuid4(store):
    import uuid

    ids = [store.record(CheckIn(time=T0, age_group="18-20")).id for _ in range(50)]
    for i in ids:
        u = uuid.UUID(i)
        assert u.version == 4 and u.variant == uuid.RFC_4122
        assert i[14] == "4"  # the version nibble: no UUIDv7 millisecond clock in it
    assert len(set(ids)) == 50
    # Other events keep their time-ordered UUIDv7.
    assert store.record(pos(1)).id[14] == "7"


def _old_database(path, old_ids: list[str], *, outbox: bool) -> None:
    """A database as release 0004 left it, with UUIDv7 check-in ids."""
    conn = sqlite3.connect(path)
    for number, _name, sql in migrations()[:4]:
        conn.executescript(sql + f"\n;PRAGMA user_version = {number};")
    for i, old in enumerate(old_ids):
        conn.execute(
            "INSERT INTO checkins (id, van, ts, day, hour, age_group, topics) VALUES"
            " (?, 'v', ?, '2026-06-01', 12, '18-20', '[]')",
            (old, T0.timestamp() + 3600 * i),
        )
        if outbox:
            payload = json.dumps({"id": old, "tst": int(T0.timestamp()), "age_group": "18-20",
                                  "topics": [], "first_visit": None, "heard_from": None,
                                  "lang": None}, separators=(",", ":"))  # fmt: skip
            conn.execute(
                "INSERT INTO outbox (event_id, kind, priority, payload, created)"
                " VALUES (?, 'checkin', 0, ?, 0)",
                (old, payload),
            )
    conn.commit()
    conn.close()


def test_migration_maps_old_checkin_ids_alike_on_box_and_hub(tmp_path):
    import uuid

    from telemetry import topics
    from telemetry.events import checkin_id

    old = [new_id() for _ in range(3)]
    assert all(i[14] == "7" for i in old)
    _old_database(tmp_path / "box.db", old, outbox=True)
    _old_database(tmp_path / "hub.db", old, outbox=False)
    box, hub = Store(tmp_path / "box.db", van="v"), Store(tmp_path / "hub.db")
    try:
        q = "SELECT id FROM checkins ORDER BY ts"
        box_ids = [r[0] for r in box.reader().execute(q)]
        hub_ids = [r[0] for r in hub.reader().execute(q)]
        assert box_ids == hub_ids == [checkin_id(i) for i in old]
        assert all(uuid.UUID(i).version == 4 for i in box_ids)
        assert not set(box_ids) & set(old)
        rows = box.pending()
        assert [r.event_id for r in rows] == box_ids
        assert [json.loads(r.payload)["id"] for r in rows] == box_ids
        # A check-in re-sent with its old id (a box not migrated yet) is stored once.
        m = topics.decode("vanbox/v/checkin", rows[0].payload.replace(box_ids[0], old[0]))
        assert m.events[0].id == box_ids[0]
        assert hub.ingest_many(m.events) == 0
        assert hub.count("checkins") == 3
    finally:
        box.close()
        hub.close()


def test_checkin_id_mapping_is_deterministic_and_leaves_uuid4_alone():
    from telemetry.events import checkin_id, new_checkin_id

    old = new_id()
    assert checkin_id(old) == checkin_id(old) == checkin_id(old.upper())
    assert checkin_id(old)[14] == "4"
    v4 = new_checkin_id()
    assert checkin_id(v4) == v4
    assert checkin_id("not-an-id") == "not-an-id"
