"""Counselling contacts reach the hub exactly once, like every other event (issue 13.1).

Real mosquitto on a private port, the real Hub with its Reconciler in this process, the
box's real Publisher as a separate process (tests/telemetry/_delivery_child.py) on the
box's database, into which the test records contacts (WAL). Each case compares the
contacts of box and hub row by row: none missing, none twice.

- the box records contacts while the hub is down, and while no broker is reachable;
- the hub's database is restored from an older copy: the reconciliation tally finds the
  lost contacts and the box sends them again;
- a contact staff recorded on the hub for the van does not hide one the hub lost.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from telemetry.contacts import validate
from telemetry.events import Contact, new_hub_contact_id, utcnow
from telemetry.store import Store
from tests.telemetry.test_delivery import BoxProc, make_hub, outbox_empty, stop_hub

pytestmark = pytest.mark.mqtt

ROOT = Path(__file__).resolve().parents[2]
VAN = "convan"
FIELDS = {
    "kind": "beratung", "topics": ["job"], "duration": "15-30", "age_group": "18-20",
    "municipality": "Ilsede", "first_contact": True, "persons": 1, "referrals": ["jba"],
    "outcome": "vermittelt",
}  # fmt: skip
SELECT = "SELECT * FROM contacts WHERE van = ? AND substr(id, 15, 1) = '4' ORDER BY id"


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def contacts_of(db: Path, sql: str = SELECT) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, (VAN,)).fetchall()
    finally:
        conn.close()


def same(box_db: Path, hub_db: Path) -> bool:
    return contacts_of(box_db) == contacts_of(hub_db)


def assert_once_each(box_db: Path, hub_db: Path, n: int) -> None:
    box, hub = contacts_of(box_db), contacts_of(hub_db)
    ids = [r[0] for r in hub]
    assert len(ids) == len(set(ids)) == n, "a contact twice or missing on the hub"
    assert hub == box  # every column as the box recorded it


def record(store: Store, n: int, **over) -> list[Contact]:
    fields = validate({**FIELDS, **over})
    return store.record_many([Contact(utcnow(), **fields) for _ in range(n)])


@pytest.fixture
def box(tmp_path):
    s = Store(tmp_path / "box.db", van=VAN, tid="CV")
    yield s
    s.close()


def test_contacts_recorded_while_the_hub_and_the_broker_are_down(broker, tmp_path, box):
    hub_db = tmp_path / "hub.db"
    hstore, hub, _ = make_hub(hub_db, broker.port)  # the broker keeps the hub's session
    stop_hub(hstore, hub)
    broker.stop()
    proc = BoxProc(box.path, broker.port, VAN)  # the box: no broker reachable
    try:
        record(box, 3)
        record(box, 2, kind="gruppe", persons=7, referrals=[])
        time.sleep(0.5)
        assert box.outbox_depth() == 5  # kept, waiting for the broker
        broker.start()
        wait_for(outbox_empty(box.path), "the broker to take every contact")
        hstore, hub, rec = make_hub(hub_db, broker.port)
        try:
            wait_for(lambda: same(box.path, hub_db), "the hub to get every contact")
            time.sleep(1.0)  # redeliveries and tallies would show up as duplicates now
            assert_once_each(box.path, hub_db, 5)
            persons = contacts_of(hub_db, "SELECT sum(persons) FROM contacts WHERE van = ?")
            assert persons == [(3 + 14,)]
        finally:
            stop_hub(hstore, hub)
    finally:
        proc.stop()


def test_resend_after_the_hub_database_is_restored(broker, tmp_path, box):
    hub_db = tmp_path / "hub.db"
    hstore, hub, _ = make_hub(hub_db, broker.port)
    proc = BoxProc(box.path, broker.port, VAN)
    try:
        record(box, 2)
        wait_for(lambda: same(box.path, hub_db), "the first contacts on the hub")
        backup = tmp_path / "hub-backup.db"
        src, dst = sqlite3.connect(hub_db), sqlite3.connect(backup)
        src.backup(dst)
        src.close()
        dst.close()
        record(box, 3, municipality="outside", first_contact=False)
        wait_for(lambda: same(box.path, hub_db), "the later contacts on the hub")
        stop_hub(hstore, hub)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{hub_db}{suffix}").unlink(missing_ok=True)
        backup.rename(hub_db)
        assert len(contacts_of(hub_db)) == 2  # the restore really lost 3 contacts
        # Staff record 3 contacts for this van on the restored hub, the same day: the hub
        # holds 5 of the van's contacts again, but only 2 of the box's 5.
        h = Store(hub_db)
        own = [Contact(utcnow(), **validate(FIELDS), van=VAN, id=new_hub_contact_id())
               for _ in range(3)]  # fmt: skip
        assert h.ingest_many(own + own) == 3
        h.close()
        hstore, hub, rec = make_hub(hub_db, broker.port)
        wait_for(lambda: same(box.path, hub_db), "the restored hub to catch up")
        time.sleep(1.0)
        assert_once_each(box.path, hub_db, 5)
        assert rec.asked >= 1  # the reconciliation tally asked for them
        every = contacts_of(hub_db, "SELECT count(*) FROM contacts WHERE van = ?")
        assert every == [(8,)]  # the box's 5 and the hub's own 3
    finally:
        stop_hub(hstore, hub)
        proc.stop()
