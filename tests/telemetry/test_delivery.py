"""Delivery to the hub, not only to the broker (issue 11.1): a box keeps every event
until the hub has it; the hub ends up with every event of the box, exactly once.

Real mosquitto on a private port, the real Hub with its Reconciler in this process, and
the box's publisher as a separate process (tests/telemetry/_delivery_child.py) on the
box's database, into which the test records events. Each case compares the event ids of
box and hub: none missing, none twice.

(a) the box ran before the hub ever subscribed;
(b) the hub's database was restored from an older copy;
(c) the hub was down while the broker dropped what exceeded max_queued_messages;
(d) the broker lost its persistence file.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from hub.ingest import Hub
from hub.reconcile import Reconciler
from telemetry.events import CheckIn, Footfall, Position, StopVisit, utcnow
from telemetry.store import Store

pytestmark = pytest.mark.mqtt

CHILD = Path(__file__).with_name("_delivery_child.py")
ROOT = Path(__file__).resolve().parents[2]
VAN = "delvan"
TABLES = {
    "footfall": "SELECT id FROM footfall WHERE van = ?",
    "checkins": "SELECT id FROM checkins WHERE van = ?",
    "stop_visits": "SELECT id || '/' || coalesce(\"left\", '') FROM stop_visits WHERE van = ?",
    "positions": "SELECT id FROM positions WHERE van = ? AND suspect = 0",
}


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def record(store: Store, days: int, per_day: int, start: int = 0) -> int:
    """Record a few service days (counts, check-ins, a stop visit, track points, one
    suspect fix that is never published). Returns the number of events."""
    now = utcnow().replace(microsecond=0)
    n = 0
    for d in range(days):
        base = now - timedelta(days=days - 1 - d, hours=2)
        evs: list = []
        for k in range(per_day):
            t = base + timedelta(seconds=30 * k + start)
            evs.append(Footfall(time=t, kind=("in", "out", "pass")[k % 3], sensor="beam-pair"))
            evs.append(Position(time=t, lat=52.3 + 0.0001 * k, lon=10.2, hdop=1.0, sats=8))
            if k % 4 == 0:
                evs.append(CheckIn(time=t, age_group="18-20", topics=("job",)))
        evs.append(Position(time=base, lat=52.4, lon=10.3, suspect=True))
        sv = StopVisit(arrived=base, name=f"Halt {d}", municipality="Ilsede", lat=52.26,
                       lon=10.18)  # fmt: skip
        evs.append(sv)
        store.record_many(evs)
        store.record(StopVisit(**{**sv.__dict__, "left": base + timedelta(minutes=40)}))
        n += len(evs) + 1
    return n


def ids_in(conn: sqlite3.Connection, van: str) -> dict[str, list[str]]:
    return {t: sorted(r[0] for r in conn.execute(sql, (van,))) for t, sql in TABLES.items()}


def box_ids(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        return ids_in(conn, VAN)
    finally:
        conn.close()


def hub_ids(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        return ids_in(conn, VAN)
    finally:
        conn.close()


def assert_same(box_db: Path, hub_db: Path) -> None:
    box, hub = box_ids(box_db), hub_ids(hub_db)
    for t in TABLES:
        assert len(set(hub[t])) == len(hub[t]), f"{t}: an event twice on the hub"
        missing = set(box[t]) - set(hub[t])
        extra = set(hub[t]) - set(box[t])
        assert not missing and not extra, f"{t}: {len(missing)} missing, {len(extra)} extra"


def converged(box_db: Path, hub_db: Path) -> bool:
    return box_ids(box_db) == hub_ids(hub_db)


class BoxProc:
    """The box's publisher on ``db`` in a child process (``_delivery_child.py``)."""

    def __init__(self, db: Path, port: int, van: str = VAN) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), "--db", str(db), "--port", str(port), "--van", van],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def make_hub(path: Path, port: int) -> tuple[Store, Hub, Reconciler]:
    store = Store(path)
    rec = Reconciler(store, backoff_s=1.0)
    cfg = {"host": "127.0.0.1", "port": port, "keepalive": 10}
    hub = Hub(store, cfg, client_id="test-hub", on_control=rec)
    hub.start()
    assert hub.wait_connected(10)
    return store, hub, rec


def stop_hub(store: Store, hub: Hub) -> None:
    hub.stop()
    store.close()


def outbox_empty(db: Path) -> Callable[[], bool]:
    def check() -> bool:
        conn = sqlite3.connect(db)
        try:
            return conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        finally:
            conn.close()

    return check


@pytest.fixture
def box(tmp_path):
    s = Store(tmp_path / "box.db", van=VAN, tid="DV")
    yield s
    s.close()


def test_a_box_ran_before_the_hub_ever_subscribed(broker, tmp_path, box):
    proc = BoxProc(box.path, broker.port)
    try:
        n = record(box, days=3, per_day=12)
        wait_for(outbox_empty(box.path), "the broker to take every event")
        hub_db = tmp_path / "hub.db"
        hstore, hub, rec = make_hub(hub_db, broker.port)
        try:
            wait_for(lambda: converged(box.path, hub_db), "the hub to get every event")
            assert_same(box.path, hub_db)
            assert rec.tallies >= 1 and rec.asked >= 1
            assert n == 90
        finally:
            stop_hub(hstore, hub)
    finally:
        proc.stop()


def test_b_hub_database_restored_from_an_older_copy(broker, tmp_path, box):
    hub_db = tmp_path / "hub.db"
    hstore, hub, _ = make_hub(hub_db, broker.port)
    proc = BoxProc(box.path, broker.port)
    try:
        record(box, days=2, per_day=8)
        wait_for(lambda: converged(box.path, hub_db), "the first events on the hub")
        backup = tmp_path / "hub-backup.db"
        src = sqlite3.connect(hub_db)
        dst = sqlite3.connect(backup)
        src.backup(dst)
        src.close()
        dst.close()
        record(box, days=2, per_day=8, start=7)
        wait_for(lambda: converged(box.path, hub_db), "the later events on the hub")
        stop_hub(hstore, hub)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{hub_db}{suffix}").unlink(missing_ok=True)
        backup.rename(hub_db)
        assert not converged(box.path, hub_db)  # the restore really lost events
        hstore, hub, rec = make_hub(hub_db, broker.port)
        wait_for(lambda: converged(box.path, hub_db), "the restored hub to catch up")
        assert_same(box.path, hub_db)
        assert rec.asked >= 1
    finally:
        stop_hub(hstore, hub)
        proc.stop()


def test_c_hub_down_while_the_broker_drops_beyond_its_queue(broker_factory, tmp_path, box):
    broker = broker_factory("max_queued_messages 5\n")
    hub_db = tmp_path / "hub.db"
    hstore, hub, _ = make_hub(hub_db, broker.port)  # the broker now keeps its session
    stop_hub(hstore, hub)
    proc = BoxProc(box.path, broker.port)
    try:
        record(box, days=3, per_day=10)
        wait_for(outbox_empty(box.path), "the broker to take every event")
        hstore, hub, rec = make_hub(hub_db, broker.port)
        try:
            wait_for(lambda: converged(box.path, hub_db), "the hub to get every event")
            assert_same(box.path, hub_db)
            assert rec.asked >= 1  # the broker's queue alone did not bring them
        finally:
            stop_hub(hstore, hub)
    finally:
        proc.stop()


def test_d_broker_lost_its_persistence_file(broker_factory, tmp_path, box):
    broker = broker_factory(persistence=True)
    hub_db = tmp_path / "hub.db"
    hstore, hub, _ = make_hub(hub_db, broker.port)
    stop_hub(hstore, hub)
    proc = BoxProc(box.path, broker.port)
    try:
        record(box, days=2, per_day=10)
        wait_for(outbox_empty(box.path), "the broker to take every event")
        broker.stop()
        db_file = broker.dir / "mosquitto.db"
        assert db_file.exists()  # the queued events were in it
        db_file.unlink()
        broker.start()
        hstore, hub, rec = make_hub(hub_db, broker.port)
        try:
            wait_for(lambda: converged(box.path, hub_db), "the hub to get every event")
            assert_same(box.path, hub_db)
            assert rec.asked >= 1
        finally:
            stop_hub(hstore, hub)
    finally:
        proc.stop()
