"""Fewer writes to the SD card, the same promises (benchmarks/bench_sd_writes.py has the
figures): the heartbeat writes only when nothing else did, track points taken while
driving are committed together, and the box's publisher deletes acknowledged rows in
batches."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from firmware import box_record
from firmware.box import Box
from firmware.box_record import Outcome
from telemetry.config import default_config
from telemetry.events import CheckIn, Footfall, Position, utcnow


class FakeClock:
    def __init__(self) -> None:
        self.t = time.time()

    def time(self) -> float:
        return self.t


def cfg_for(db: Path):
    return default_config({"database": {"path": str(db)}, "sensor": {"kind": "none"}})


@pytest.fixture
def box(tmp_path):
    b = Box(cfg_for(tmp_path / "box.db"), clock=FakeClock(), gps_url=str(tmp_path / "no-gps"),
            mqtt=False, web=False)  # fmt: skip
    yield b
    b.store.close()


def count_transactions(store, monkeypatch) -> list[int]:
    n: list[int] = []
    real = store.transaction

    def counting():
        n.append(1)
        return real()

    monkeypatch.setattr(store, "transaction", counting)
    return n


def driving(k: int = 0, speed: float = 12.0) -> Position:
    return Position(time=utcnow() + timedelta(seconds=k), lat=52.3, lon=10.2 + k * 1e-3,
                    speed=speed)  # fmt: skip


# --- the heartbeat --------------------------------------------------------------------


@pytest.mark.parametrize(("ago", "writes"), [(None, 1), (1.0, 0), (59.0, 0), (61.0, 1)])
def test_heartbeat_writes_only_when_no_event_was_written_lately(box, monkeypatch, ago, writes):
    rec = box.recorder
    rec.heartbeat(force=True)  # a state to start from
    rec.db_state = box_record.DbState(True, "", time.monotonic() - 10)  # due again
    rec.written_at = None if ago is None else time.monotonic() - ago
    n = count_transactions(box.store, monkeypatch)
    st = rec.heartbeat()
    assert st.ok and time.monotonic() - st.at < 1
    assert len(n) == writes


def test_heartbeat_still_writes_while_the_disk_is_in_trouble(box, monkeypatch):
    rec = box.recorder
    rec.written_at = time.monotonic()
    rec.db_state = box_record.DbState(True, "the disk is full", time.monotonic() - 10,
                                      degraded=True)  # fmt: skip
    n = count_transactions(box.store, monkeypatch)
    rec.heartbeat()
    assert len(n) == 1  # a degraded disk is looked at for real every time


def test_an_event_write_counts_as_proof(box):
    assert box.recorder.written_at is None
    assert box.record(CheckIn(time=utcnow(), age_group="18-20")) is Outcome.STORED
    assert time.monotonic() - box.recorder.written_at < 1


# --- track points in fewer transactions -----------------------------------------------


def test_driving_fixes_wait_and_go_in_together(box, monkeypatch):
    n = count_transactions(box.store, monkeypatch)
    for k in range(3):
        box.clock.t += 10 if k else 0
        box.record_position(driving(k))
    assert box.store.count("positions") == 0 and n == []  # 20 s: still waiting
    box.clock.t += 9.9
    box.flush_track()
    assert box.store.count("positions") == 0
    box.clock.t += 0.2  # 30 s after the first
    box.flush_track()
    assert box.store.count("positions") == 3 and len(n) == 1


def test_any_other_event_takes_the_waiting_points_along(box, monkeypatch):
    box.record_position(driving(0))
    box.record_position(driving(1))
    n = count_transactions(box.store, monkeypatch)
    assert box.record(Footfall(time=utcnow(), kind="in", occupancy=1)) is Outcome.STORED
    assert box.store.count("positions") == 2 and box.store.count("footfall") == 1
    assert len(n) == 1  # one commit for all three
    seqs = [r[0] for r in box.store.reader().execute("SELECT kind FROM outbox ORDER BY seq")]
    assert seqs == ["position", "position", "footfall"]  # in the order they happened


def test_a_parked_fix_goes_in_at_once(box):
    box.record_position(driving(0, speed=0.0))
    assert box.store.count("positions") == 1


def test_stop_commits_what_waits(tmp_path):
    b = Box(cfg_for(tmp_path / "box.db"), clock=FakeClock(), gps_url=str(tmp_path / "no-gps"),
            mqtt=False, web=False)  # fmt: skip
    b.record_position(driving(0))
    b.stop()
    from telemetry.store import Store

    s = Store(tmp_path / "box.db")
    assert s.count("positions") == 1
    s.close()


def test_batching_off(tmp_path):
    b = Box(cfg_for(tmp_path / "box.db"), gps_url=str(tmp_path / "no-gps"), mqtt=False,
            web=False, track_commit_s=0)  # fmt: skip
    b.record_position(driving(0))
    assert b.store.count("positions") == 1
    b.store.close()


def test_record_many_sorts_out_a_bad_event(box):
    bad = Position(time=utcnow(), lat=52.3, lon=10.2, sats=10**25)  # no column takes it
    good = [driving(1), CheckIn(time=utcnow(), age_group="18-20")]
    out = box.recorder.record_many([good[0], bad, good[1]])
    assert out == [Outcome.STORED, Outcome.DEAD, Outcome.STORED]
    assert box.store.count("positions") == 1 and box.store.count("checkins") == 1


# --- acknowledged rows deleted in batches (the box's publisher) ------------------------


@pytest.mark.mqtt
@pytest.mark.parametrize("flush_s", [0.25, 3.0])
def test_acknowledged_rows_leave_the_outbox_in_batches(store, broker, flush_s):
    from telemetry.publisher import Publisher

    pub = Publisher(store, {"host": "127.0.0.1", "port": broker.port, "keepalive": 10},
                    van="testvan", tid="TV", reconcile=False, ack_flush_s=flush_s)  # fmt: skip
    pub.start()
    try:
        for _ in range(3):
            store.record(Footfall(time=utcnow(), kind="pass"))
            pub.wake()
        deadline = time.monotonic() + 10
        while pub.stats()["acked"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        acked_at = time.monotonic()
        assert pub.stats()["acked"] >= 3
        while store.outbox_depth() and time.monotonic() < deadline:
            time.sleep(0.02)
        took = time.monotonic() - acked_at
        assert store.outbox_depth() == 0
        if flush_s > 1:
            assert flush_s - 1.0 <= took <= flush_s + 1.0
        else:
            assert took < 1.0
    finally:
        pub.stop()
