"""The box's record path and health (issue 12 points 4 and 6).

- An event that can never be stored is dead-lettered and never blocks those behind it;
  only disk errors wait in the retry queue; if even the dead letter fails it is dropped.
- ``/healthz`` is fed by real work: a read-only partition (a real tmpfs remounted ro) or
  a corrupt file makes it 503 with the reason, and the kiosk asks the visitor to see the
  team instead of thanking them; ``vanbox run`` and ``vanbox doctor`` say what to do.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from firmware import box_health, box_record
from firmware.box import Box
from firmware.box_record import Outcome, is_disk_error
from firmware.doctor_db import check_database
from kiosk import create_app
from kiosk.status import register_check
from telemetry import deadletter
from telemetry.config import default_config
from telemetry.errors import StoreError, VanboxError
from telemetry.events import CheckIn, Footfall, Position, utcnow
from telemetry.store import Store
from tests.firmware.test_doctor import probes


def cfg_for(db: Path, **more):
    return default_config({"database": {"path": str(db)}, "sensor": {"kind": "none"}, **more})


def poison() -> Position:
    """A position no column takes: 25 digits of satellites (OverflowError in sqlite3)."""
    return Position(time=utcnow(), lat=52.3, lon=10.2, mode=3, sats=10**25)


def checkin() -> CheckIn:
    return CheckIn(time=utcnow(), age_group="18-20", topics=("job",))


@pytest.fixture
def box(tmp_path):
    b = Box(cfg_for(tmp_path / "box.db"), gps_url=str(tmp_path / "no-gps"), mqtt=False,
            web=False)  # fmt: skip
    yield b
    b.store.close()


def fill_disk(store: Store) -> sqlite3.OperationalError:
    """A quota on the file: the next writes fail with SQLITE_FULL, as on a full disk."""
    with store._lock:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(sqlite3.OperationalError, match="full") as info:
        for _ in range(10_000):
            store.record(Footfall(time=utcnow(), kind="pass"))
    return info.value


def free_disk(store: Store) -> None:
    with store._lock:
        store._conn.execute("PRAGMA max_page_count = 1073741823")


# --- the record path -----------------------------------------------------------------


@pytest.mark.parametrize(
    "error, disk",
    [
        (sqlite3.OperationalError("database or disk is full"), True),
        (sqlite3.OperationalError("attempt to write a readonly database"), True),
        (sqlite3.DatabaseError("database disk image is malformed"), True),
        (OSError(5, "Input/output error"), True),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), False),
        (sqlite3.IntegrityError("NOT NULL constraint failed"), False),
        (sqlite3.DataError("string or blob too big"), False),
        (sqlite3.InterfaceError("bad parameter"), False),
        (ValueError("Out of range float values are not JSON compliant"), False),
        (TypeError("not an event"), False),
        (RuntimeError("something new"), False),  # unknown: never retried forever
    ],
)
def test_disk_errors_are_retried_event_errors_are_not(error, disk):
    assert is_disk_error(error) is disk
    try:  # a StoreError counts as what caused it
        raise StoreError("cannot write") from error
    except StoreError as wrapped:
        assert is_disk_error(wrapped) is disk


def test_an_event_no_column_takes_is_dead_lettered_and_the_next_checkin_stored(box):
    assert box.record(poison()) is Outcome.DEAD
    assert box.retry_depth == 0
    [dl] = deadletter.recent(box.store)
    assert dl.source == "record" and "OverflowError" in dl.reason and dl.topic == "position"
    assert box.record(checkin()) is Outcome.STORED
    assert box.store.count("checkins") == 1


def test_a_poisoned_event_in_the_retry_queue_does_not_hold_back_later_checkins(box):
    fill_disk(box.store)
    assert box.record(Footfall(time=utcnow(), kind="in", occupancy=1)) is Outcome.QUEUED
    assert box.record(poison()) is Outcome.QUEUED  # behind the waiting one: order is kept
    for _ in range(3):
        assert box.record(checkin()) is Outcome.QUEUED
    assert box.retry_depth == 5
    assert box.recorder.retry_once() == 0 and box.retry_depth == 5  # disk still full
    free_disk(box.store)
    assert box.recorder.retry_once() == 5
    assert box.retry_depth == 0
    assert box.store.count("checkins") == 3
    assert deadletter.count(box.store, "record") == 1
    assert box.record(checkin()) is Outcome.STORED  # and nothing waits in front any more


def test_if_even_the_dead_letter_fails_the_event_is_dropped_not_retried(box, monkeypatch):
    def broken(*a, **kw):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(deadletter, "add", broken)
    assert box.record(poison()) is Outcome.DROPPED
    assert box.retry_depth == 0 and box.recorder.dropped == 1
    # the same in the retry queue: one pass, and it is gone
    fill_disk(box.store)
    box.record(checkin())
    box.record(poison())
    free_disk(box.store)
    box.recorder.retry_once()
    assert box.retry_depth == 0 and box.store.count("checkins") == 1
    assert box.recorder.dropped == 2


def test_full_disk_is_healthy_but_a_growing_queue_is_not(box, monkeypatch):
    full = fill_disk(box.store)
    st = box.recorder._state_for(full, 0.0)  # what a heartbeat on the full disk reports
    assert st.ok and st.degraded and "full" in st.reason
    assert box.record(checkin()) is Outcome.QUEUED
    ok, failed = box.healthy()
    assert ok, failed
    monkeypatch.setattr(box_health, "RETRY_HEALTH_MAX", 3)
    check = box_health.retry_check(box.recorder, limit=3)
    box.record(checkin())
    assert check()[0]  # 2 waiting: below the limit
    box.record(checkin())
    assert not check()[0] and "3 events" in check()[1]  # 3: at the limit
    free_disk(box.store)


def test_a_jump_of_dead_letters_fails_health(box):
    check = box_health.deadletter_check(box.store, jump=3)
    for _ in range(3):
        box.record(poison())
    assert check()[0]  # 3: not more than the jump
    box.record(poison())
    ok, reason = check()
    assert not ok and "4 events dead-lettered" in reason


def test_a_stalled_gps_loop_fails_health(box):
    class Reader:
        loop_monotonic = 0.0

        def is_alive(self):
            return True

    import time

    r = Reader()
    check = box_health.gps_check(lambda: r, stall_s=60)
    r.loop_monotonic = time.monotonic() - 59
    assert check()[0]
    r.loop_monotonic = time.monotonic() - 61
    assert not check()[0]


# --- real broken disks: a read-only tmpfs, a byte-flipped file --------------------------


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=20)


@pytest.fixture
def tmpfs():
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs and remount it read-only")
    d = Path(tempfile.mkdtemp(prefix="vanbox-ro-"))
    try:
        _mount("-t", "tmpfs", "-o", "size=32m", "tmpfs", str(d))
    except (subprocess.CalledProcessError, OSError) as e:
        pytest.skip(f"mount is not allowed here: {e}")
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=20)
    d.rmdir()


def left_after_a_power_cut(db: Path) -> None:
    """A database with its -wal and -shm still there, as after a power cut."""
    st = Store(db, van="jr-1")
    st.record(Footfall(time=utcnow(), kind="in", occupancy=1))
    snap = {p: p.read_bytes() for p in db.parent.iterdir()}
    st.close()
    for p, b in snap.items():
        p.write_bytes(b)
    assert (db.parent / "box.db-wal").exists()


def kiosk_of(box: Box, cfg):
    app = create_app({"TESTING": True, "SECRET_KEY": "k" * 40}, config=cfg, store=box.store)
    app.extensions["vanbox_record"] = box.record
    for name, fn in box.health_checks().items():
        register_check(app, name, fn)
    return app


def post_checkin(client) -> tuple[int, str]:
    html = client.get("/de/checkin").get_data(as_text=True)
    form = {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', html).group(1),
        "flow": re.search(r'name="flow" value="([^"]+)"', html).group(1),
        "step": "visit", "age": "18-20", "topic": ["job"], "first_visit": "no",
    }  # fmt: skip
    r = client.post("/de/checkin", data=form)
    return r.status_code, r.get_data(as_text=True)


def test_read_only_partition_fails_health_and_nothing_is_thanked(tmpfs, tmp_path):
    db = tmpfs / "box.db"
    left_after_a_power_cut(db)
    _mount("-o", "remount,ro", str(tmpfs))
    cfg = cfg_for(db, staff={"passwd_file": str(tmp_path / "staff.passwd")})
    # vanbox run: one clear line that says what to do
    with pytest.raises(VanboxError, match=r"read-only: remount the data partition rw"):
        Box(cfg)
    f = check_database(cfg, probes())
    assert f.status == "fail" and "read-only" in f.message and "remount,rw" in f.fix
    # a box that opened it anyway (sqlite reads a WAL database on a ro partition)
    store = Store(db, van="jr-1")
    box = Box(cfg, store=store, gps_url=str(tmp_path / "no-gps"), mqtt=False, web=False)
    try:
        client = kiosk_of(box, cfg).test_client()
        r = client.get("/healthz")
        assert r.status_code == 503
        assert "read-only" in r.get_json()["failed"]["database"]
        code, html = post_checkin(client)
        assert code == 503 and "Bitte wende dich an das Team" in html and "Danke" not in html
        assert store.count("checkins") == 0
        assert box.watchdog is None and not box.healthy()[0]
    finally:
        store.close()


def test_the_same_box_is_healthy_and_thanks_on_a_writable_partition(tmpfs, tmp_path):
    """The control: the tmpfs itself is fine; only the ro remount above breaks it."""
    db = tmpfs / "box.db"
    left_after_a_power_cut(db)
    cfg = cfg_for(db, staff={"passwd_file": str(tmp_path / "staff.passwd")})
    box = Box(cfg, gps_url=str(tmp_path / "no-gps"), mqtt=False, web=False)
    try:
        client = kiosk_of(box, cfg).test_client()
        assert client.get("/healthz").status_code == 200
        code, html = post_checkin(client)
        assert code == 303 and box.store.count("checkins") == 1
    finally:
        box.store.close()


def corrupt_footfall_table(db: Path) -> None:
    """Byte-flip the root page of the footfall table (the file still opens)."""
    st = Store(db, van="jr-1")
    for _ in range(200):
        st.record(Footfall(time=utcnow(), kind="pass"))
    root = (
        st.reader()
        .execute("SELECT rootpage FROM sqlite_master WHERE name = 'footfall'")
        .fetchone()[0]
    )
    size = st.reader().execute("PRAGMA page_size").fetchone()[0]
    st.close()
    with open(db, "r+b") as fh:
        fh.seek((root - 1) * size)
        fh.write(bytes(b ^ 0xFF for b in fh.read(size)))
        fh.seek((root - 1) * size)


def test_corrupt_file_fails_health_start_and_doctor_say_so(tmp_path):
    db = tmp_path / "box.db"
    corrupt_footfall_table(db)
    cfg = cfg_for(db, staff={"passwd_file": str(tmp_path / "staff.passwd")})
    with pytest.raises(VanboxError, match=r"is corrupt: .*move the file aside.*creates a new"):
        Box(cfg)
    f = check_database(cfg, probes())
    assert f.status == "fail" and "is corrupt" in f.message and "backup" in f.fix
    store = Store(db, van="jr-1")  # a box that opened it before it went bad
    box = Box(cfg, store=store, gps_url=str(tmp_path / "no-gps"), mqtt=False, web=False)
    try:
        client = kiosk_of(box, cfg).test_client()
        assert box.record(Footfall(time=utcnow(), kind="pass")) is Outcome.QUEUED
        r = client.get("/healthz")
        assert r.status_code == 503 and "corrupt" in r.get_json()["failed"]["database"]
        code, html = post_checkin(client)
        assert code == 503 and "Danke" not in html
    finally:
        store.close()


def test_cli_run_prints_one_line_for_a_corrupt_database(tmp_path, capsys):
    from firmware.cli import main

    db = tmp_path / "box.db"
    corrupt_footfall_table(db)
    conf = tmp_path / "vanbox.toml"
    conf.write_text(f'[database]\npath = "{db}"\n[sensor]\nkind = "none"\n', encoding="utf-8")
    assert main(["run", "--config", str(conf)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is corrupt" in err[0] and "Traceback" not in err[0]


def fill(d: Path) -> Path:
    filler = d / "filler"
    with open(filler, "wb") as fh, pytest.raises(OSError, match="No space"):
        while True:
            fh.write(b"x" * 65536)
            fh.flush()
    return filler


def test_the_box_starts_on_a_full_disk_and_keeps_events_in_memory(tmpfs, tmp_path):
    from firmware import disk_reserve

    db = tmpfs / "box.db"
    cfg = cfg_for(db)
    first = Box(cfg, gps_url=str(tmp_path / "no-gps"), mqtt=False, web=False)
    first.record(Footfall(time=utcnow(), kind="in", occupancy=1))
    first.store.close()
    reserve = disk_reserve.reserve_path(db)
    assert reserve.stat().st_size == disk_reserve.RESERVE_BYTES  # made while there was room
    filler = fill(tmpfs)
    box = Box(cfg, gps_url=str(tmp_path / "no-gps"), mqtt=False, web=False)  # starts
    try:
        assert not reserve.exists()  # given back to open the store
        outcomes = {box.record(checkin()) for _ in range(200)}
        assert outcomes <= {Outcome.STORED, Outcome.QUEUED} and Outcome.QUEUED in outcomes
        assert box.healthy()[0], box.healthy()  # a full disk is degraded, not broken
        waiting = box.retry_depth
        filler.unlink()
        assert box.recorder.retry_once() == waiting and box.retry_depth == 0
        assert box.store.count("checkins") == 200
    finally:
        box.store.close()


def test_without_a_reserve_a_full_disk_is_one_clear_line(tmpfs, tmp_path):
    db = tmpfs / "box.db"
    st = Store(db, van="jr-1")
    st.close()
    fill(tmpfs)
    with pytest.raises(VanboxError, match=r"disk holding .* is full: free space"):
        Box(cfg_for(db), gps_url=str(tmp_path / "no-gps"), mqtt=False, web=False)


def test_heartbeat_is_a_real_write_at_most_every_few_seconds(box, monkeypatch):
    writes = []
    real = box.store.transaction

    def counting():
        writes.append(1)
        return real()

    monkeypatch.setattr(box.store, "transaction", counting)
    box.recorder.heartbeat(force=True)
    for _ in range(50):
        box.recorder.heartbeat()
    assert len(writes) == 1
    value = (
        box.store.reader()
        .execute("SELECT value FROM meta WHERE key = ?", (box_record.HEARTBEAT_KEY,))
        .fetchone()[0]
    )
    assert value > 0


def test_the_watchdog_uses_the_same_checks(tmp_path):
    from firmware.box_record import DbState

    box = Box(cfg_for(tmp_path / "box.db"), gps_url=str(tmp_path / "no-gps"), mqtt=False,
              web=False)  # fmt: skip
    box.start()
    try:
        assert {"database", "retry", "deadletters", "gps"} <= set(box.watchdog.checks)
        assert box.watchdog.failed_checks() == []
        box.recorder.write_state = DbState(False, "database x is read-only: remount", 0.0)
        box.recorder.queue.append(checkin())  # an event waits after a hard write error
        assert box.watchdog.failed_checks() == ["database"]
        assert box.watchdog.tick() is False  # no heartbeat for systemd
    finally:
        box.recorder.queue.clear()
        box.stop()


def test_a_checkin_queued_while_a_full_queue_is_written_is_not_lost(tmp_path, monkeypatch):
    """Review finding: while the retry writes its snapshot, a check-in queued by another
    thread pushed the full queue over its limit, an old fix was dropped from the front,
    and the retry then popped "the first N" - the new check-in among them, unstored,
    although the kiosk had thanked for it. The written events are removed by identity."""
    from firmware import box_record
    from firmware.box_record import Outcome, Recorder
    from telemetry.events import CheckIn, Position, utcnow
    from telemetry.store import Store

    monkeypatch.setattr(box_record, "RETRY_MAX", 5)
    s = Store(tmp_path / "b.db", van="v1")
    try:
        r = Recorder(s)
        t = utcnow()
        for i in range(5):  # the disk was full: five fixes wait
            r._enqueue(Position(time=t, lat=52.3, lon=10.2 + i * 1e-4))
        ci = CheckIn(time=t, age_group="18-20")
        real = s.record_many
        outcome = []

        def record_many(batch):
            n = real(batch)  # the disk is back: the fixes are written, and meanwhile ...
            outcome.append(r.record(ci))  # ... the kiosk records a check-in (queued)
            return n

        monkeypatch.setattr(s, "record_many", record_many)
        r.retry_once()
        assert outcome == [Outcome.QUEUED]
        assert [type(e).__name__ for e in r.queue] == ["CheckIn"]  # still waiting, not lost
        monkeypatch.setattr(s, "record_many", real)
        r.retry_once()
        assert s.count("checkins") == 1 and not r.queue
    finally:
        s.close()
