"""The box end to end: simulated GPS through a pty and visitors on mock pins, through the
store and the publisher, to a subscriber on a private mosquitto."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from gpiozero.pins.mock import MockFactory

from firmware.box import Box
from firmware.simulator import NmeaFeeder, demo_day, demo_tour
from firmware.visitors import PinDriver, SimClock, walk
from telemetry import topics
from telemetry.config import default_config

START = datetime(2026, 6, 1, 6, 50, tzinfo=UTC)  # 08:50 in Berlin, at the depot


class Subscriber:
    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub")
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.subscribe("vanbox/#", qos=1)
        self.c.loop_start()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def of(self, kind: str) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return [m for m in self.messages if m[0].endswith("/" + kind)]

    def wait(self, pred, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def sim_box(request, tmp_path, broker):
    route = demo_day(START, stop_minutes=10)
    if getattr(request, "param", "") == "before-first-stop":
        t0 = route.stops()[0].start - timedelta(minutes=2)
    else:
        t0 = route.legs[1].start - timedelta(seconds=30)
    clock = SimClock(t0, speed=40)
    cfg = default_config(
        {
            "van": {"id": "van-t", "tid": "VT"},
            "database": {"path": str(tmp_path / "box.db")},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "keepalive": 10},
            "sensor": {"kind": "beam-pair", "pin": 17, "pin_b": 27, "debounce_ms": 10},
            "tour": {"stops": demo_tour(route, default_config().tz)},
            "stops": {"arrive_after_s": 60, "leave_after_s": 30},
        }
    )
    feeder = NmeaFeeder(route, clock, tmp_path / "gps", cold_start_s=3).start()
    pins = MockFactory()
    box = Box(cfg, clock=clock, pin_factory=pins, gps_url=str(tmp_path / "gps"), web=False)
    sub = Subscriber(broker.port)
    box.start()
    yield box, clock, PinDriver.for_config(cfg.sensor, pins), sub, route
    sub.close()
    box.stop()
    feeder.stop()


def test_fixes_and_footfall_arrive_on_the_documented_topics(sim_box):
    box, clock, driver, sub, route = sim_box
    driver.rest()
    clock.sleep(1)
    assert sub.wait(lambda: any(m[1] == b"online" for m in sub.of("status")))
    status = sub.of("status")[0]
    assert status[0] == "vanbox/van-t/status"

    # Fixes while driving arrive as retained OwnTracks locations.
    assert sub.wait(lambda: len(sub.of("location")) >= 3), "no locations"
    topic, payload, _ = sub.of("location")[-1]
    assert topic == "vanbox/van-t/location"
    loc = json.loads(payload)
    assert loc["_type"] == "location" and loc["tid"] == "VT"
    assert {"lat", "lon", "tst", "acc", "alt", "vel", "cog", "id"} <= set(loc)
    assert 52.1 < loc["lat"] < 52.5 and 10.0 < loc["lon"] < 10.5
    drive = route.legs[1]
    expect = route.at(datetime.fromtimestamp(loc["tst"], UTC))
    assert abs(loc["lat"] - expect.lat) < 1e-4 and abs(loc["lon"] - expect.lon) < 1e-4
    assert drive.start.timestamp() - 60 <= loc["tst"] <= clock.time() + 1

    # Three people walk in, one walks out: four footfall messages with running totals.
    for d in ("in", "in", "in", "out"):
        walk(driver, clock, d)
        clock.sleep(2)
    assert sub.wait(lambda: len(sub.of("footfall")) >= 4), sub.messages[-5:]
    got = [json.loads(p) for _, p, _ in sub.of("footfall")]
    assert [g["kind"] for g in got] == ["in", "in", "in", "out"]
    assert got[-1]["today"] == {"in": 3, "out": 1, "pass": 0, "occupancy": 2}
    assert [g["occupancy"] for g in got] == [1, 2, 3, 2]
    for _, p, retained in sub.of("footfall"):
        assert not retained
        msg = topics.decode("vanbox/van-t/footfall", p)
        assert msg.events[0].sensor == "beam-pair"

    # Everything acknowledged leaves the outbox; every stored footfall event was sent.
    assert sub.wait(lambda: box.store.outbox_depth() == 0)
    stored = {r[0] for r in box.store.reader().execute("SELECT id FROM footfall")}
    assert stored == {g["id"] for g in got}
    assert box.live()["mqtt"]["connected"] is True


@pytest.mark.parametrize("sim_box", ["before-first-stop"], indirect=True)
def test_stop_visit_is_detected_and_published(sim_box):
    box, clock, driver, sub, route = sim_box
    first = route.stops()[0]
    # Let the van drive to the first stop and stand there past the arrival time.
    target = first.start + timedelta(minutes=3)
    clock.sleep_until(target.timestamp())
    assert sub.wait(lambda: len(sub.of("stop")) >= 1, timeout=30), "no stop visit"
    stop = json.loads(sub.of("stop")[0][1])
    assert stop["name"] == first.stop[0] and stop["planned"] is True
    assert stop["left"] is None
    assert abs(stop["arrived"] - first.start.timestamp()) < 120


def test_watchdog_checks_see_progress_not_just_threads(tmp_path):
    from tests.conftest import free_port

    route = demo_day(START, stop_minutes=10)
    clock = SimClock(route.legs[1].start, speed=20)
    cfg = default_config(
        {
            "database": {"path": str(tmp_path / "box.db")},
            "kiosk": {"port": free_port()},
            "staff": {"passwd_file": str(tmp_path / "staff.passwd")},
        }
    )
    feeder = NmeaFeeder(route, clock, tmp_path / "gps").start()
    box = Box(cfg, clock=clock, pin_factory=MockFactory(), gps_url=str(tmp_path / "gps"),
              mqtt=False)  # fmt: skip
    box.start()
    try:
        assert box.watchdog.failed_checks() == []
        box.gps.loop_monotonic = time.monotonic() - 3600  # as if the GPS loop hung
        assert not box._gps_alive()
        box.server.close()  # the web server stops answering
        assert not box._web_alive()
    finally:
        box.stop()
        feeder.stop()


def test_a_checkin_on_a_full_disk_waits_in_memory_and_is_stored_later(tmp_path):
    import random

    from firmware.soak import Kiosk
    from tests.conftest import free_port

    port = free_port()
    cfg = default_config(
        {
            "database": {"path": str(tmp_path / "box.db")},
            "kiosk": {"port": port},
            "staff": {"passwd_file": str(tmp_path / "staff.passwd")},
            "sensor": {"kind": "none"},
        }
    )
    box = Box(cfg, pin_factory=MockFactory(), gps_url=str(tmp_path / "no-gps"), mqtt=False)
    box.start()
    try:
        import sqlite3

        from telemetry.events import Footfall, utcnow

        conn = box.store._conn
        with box.store._lock:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")  # a quota: the disk is full
        with pytest.raises(sqlite3.OperationalError, match="full"):
            for _ in range(10_000):  # fill what room the pages still have
                box.store.record(Footfall(time=utcnow(), kind="pass"))
        before = box.store.count("checkins")
        kiosk = Kiosk(port, random.Random(1))
        assert kiosk.checkin(), "the visitor should see the thank-you screen"
        assert box.store.count("checkins") == before == 0 and box.retry_depth == 1
        with box.store._lock:
            conn.execute("PRAGMA max_page_count = 1073741823")  # space again
        deadline = time.monotonic() + 10
        while box.store.count("checkins") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert box.store.count("checkins") == 1 and box.retry_depth == 0
        assert "checkin" in {r.kind for r in box.store.pending(limit=100_000)}  # to be sent
    finally:
        box.stop()
