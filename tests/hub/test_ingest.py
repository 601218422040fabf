"""The hub against a real mosquitto: two simulated vans publish through the real
publisher, the hub is stopped for a while and restarted, and every event is stored
exactly once. Plus duplicates, arrival order, malformed payloads and store failures."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest import Hub
from telemetry import topics
from telemetry.errors import StoreError
from telemetry.events import CheckIn, Footfall, Position, StopVisit
from telemetry.publisher import Publisher
from telemetry.store import Store

pytestmark = pytest.mark.mqtt

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def mqtt_cfg(broker, **extra) -> dict:
    return {"host": "127.0.0.1", "port": broker.port, "keepalive": 10, "rate_limit": 5000.0,
            **extra}  # fmt: skip


def ids(store: Store, table: str, van: str) -> list[str]:
    rows = store.reader().execute(f"SELECT id FROM {table} WHERE van = ? ORDER BY id", (van,))
    return [r[0] for r in rows]


def van_events(i: int, base: datetime) -> list:
    """A morning in one van: a drive, an arrival, visitors, a check-in."""
    evs: list = []
    for k in range(12):
        evs.append(Position(time=base + timedelta(seconds=10 * k), lat=52.3 + 0.001 * k + i,
                            lon=10.2 + 0.001 * k, speed=8.0, hdop=1.2, sats=9))  # fmt: skip
    for k in range(6):
        evs.append(Footfall(time=base + timedelta(minutes=5 + k), kind="in", occupancy=k + 1))
    evs.append(CheckIn(time=base + timedelta(minutes=20), age_group="18-20", topics=("job",)))
    return evs


@pytest.fixture
def hub_store(tmp_path):
    s = Store(tmp_path / "hub.db")
    yield s
    s.close()


def test_two_vans_hub_down_and_restarted_every_event_stored_once(broker, tmp_path, hub_store):
    vans = {}
    for i, van in enumerate(("van-a", "van-b")):
        st = Store(tmp_path / f"{van}.db", van=van, tid=f"V{i}")
        pub = Publisher(st, mqtt_cfg(broker, client_id=f"box-{van}"), van=van, tid=f"V{i}")
        vans[van] = (st, pub)
        pub.start()
    cfg = mqtt_cfg(broker)
    hub = Hub(hub_store, cfg, client_id="test-hub", prefix="vanbox")
    hub.start()
    assert hub.wait_connected(10)
    recorded: dict[str, list] = {v: [] for v in vans}
    stops: dict[str, StopVisit] = {}
    try:
        # While the hub is up.
        for i, (van, (st, pub)) in enumerate(vans.items()):
            stops[van] = StopVisit(arrived=T0, name=f"Stop {i}", municipality="Peine",
                                   lat=52.32, lon=10.23)  # fmt: skip
            recorded[van] += st.record_many(van_events(i, T0) + [stops[van]])
            pub.wake()
        wait_for(lambda: hub_store.count("footfall") == 12 and hub_store.count("checkins") == 2,
                 "the first events at the hub")  # fmt: skip
        hub.stop()

        # The hub is down: the vans go on; the broker queues for the hub's session.
        for i, (van, (st, pub)) in enumerate(vans.items()):
            later = T0 + timedelta(hours=2)
            left = StopVisit(**{**stops[van].__dict__, "left": later})
            recorded[van] += st.record_many(van_events(i, later) + [left])
            pub.wake()
        for van, (st, _pub) in vans.items():
            wait_for(lambda st=st: st.outbox_depth() == 0, f"{van} to deliver to the broker")
        before = hub_store.count("positions")

        # Back up with the same client id: the queued messages arrive.
        hub2 = Hub(hub_store, cfg, client_id="test-hub", prefix="vanbox")
        hub2.start()
        try:
            want = sum(1 for evs in recorded.values() for e in evs if isinstance(e, Footfall))
            wait_for(lambda: hub_store.count("footfall") == want, "the backlog at the hub")
            wait_for(
                lambda: all(len(ids(hub_store, "positions", v)) == 24 for v in vans),
                "all positions",
            )
            wait_for(lambda: hub_store.reader().execute(
                'SELECT count(*) FROM stop_visits WHERE "left" IS NOT NULL').fetchone()[0] == 2,
                "the stop visits' departures")  # fmt: skip
        finally:
            hub2.stop()
    finally:
        for _st, pub in vans.values():
            pub.stop()
    assert before < 48  # the second half really came from the broker's queue
    for van, evs in recorded.items():
        for table, cls in (("positions", Position), ("footfall", Footfall),
                           ("checkins", CheckIn), ("stop_visits", StopVisit)):  # fmt: skip
            want = sorted({e.id for e in evs if isinstance(e, cls)})
            assert ids(hub_store, table, van) == want, (van, table)
        visit = (
            hub_store.reader()
            .execute('SELECT arrived, "left" FROM stop_visits WHERE van = ?', (van,))
            .fetchone()
        )
        assert visit[1] == (T0 + timedelta(hours=2)).timestamp()
        status = (
            hub_store.reader()
            .execute("SELECT status, last_seen FROM van_status WHERE van = ?", (van,))
            .fetchone()
        )
        assert status[0] == "online"
        newest = max(e.time for e in evs if isinstance(e, Position | Footfall))
        assert status[1] >= newest.timestamp()
    # The retained location came again after the restart and changed nothing.
    assert hub2.stats.duplicates >= 1
    assert hub2.stats.malformed == 0


def publisher_client(broker, client_id: str = "crafted") -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    return c


def publish(c: mqtt.Client, topic: str, payload: str | bytes, retain: bool = False) -> None:
    c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)


def test_duplicates_order_malformed_and_status(broker, hub_store):
    hub = Hub(hub_store, mqtt_cfg(broker), client_id="hub-2")
    hub.start()
    assert hub.wait_connected(10)
    c = publisher_client(broker)
    try:
        arrive = StopVisit(arrived=T0, name="Markt", municipality="Peine", lat=52.32, lon=10.23)
        leave = StopVisit(**{**arrive.__dict__, "left": T0 + timedelta(hours=3)})
        ff = Footfall(time=T0, kind="pass")
        p1 = Position(time=T0, lat=52.31, lon=10.22)
        p2 = Position(time=T0 + timedelta(seconds=30), lat=52.32, lon=10.23)
        t = lambda kind: topics.topic("vanbox", "van-c", kind)  # noqa: E731
        publish(c, t("status"), "online", retain=True)
        # Departure first, arrival after it: the departure must stay.
        publish(c, t("stop"), topics.dumps(topics.stop_payload(leave)))
        publish(c, t("stop"), topics.dumps(topics.stop_payload(arrive)))
        # The same count three times, the same fixes in location and in a track.
        for _ in range(3):
            publish(c, t("footfall"), topics.dumps(topics.footfall_payload(ff, {"in": 0})))
        loc = [topics.location_payload(p, "VC") for p in (p1, p2)]
        publish(c, t("location"), topics.dumps(loc[1]), retain=True)
        publish(c, t("track"), topics.dumps(topics.track_payload(loc, "VC")))
        # Malformed: not JSON, not UTF-8, a bad status, a missing id, an unknown kind.
        publish(c, t("footfall"), "{not json")
        publish(c, t("checkin"), b"\xff\xfe")
        publish(c, t("status"), "sleeping")
        publish(c, t("location"), json.dumps({"_type": "location", "lat": 52.3, "lon": 10.2,
                                              "tst": 1}))  # fmt: skip
        publish(c, "vanbox/van-c/selfie", "{}")
        publish(c, t("status"), "offline", retain=True)
        wait_for(lambda: hub.stats.received >= 14, "all 14 messages at the hub")
        wait_for(lambda: (hub_store.reader().execute(
            "SELECT status FROM van_status WHERE van = 'van-c'").fetchone() or [None])[0]
            == "offline", "the offline status")  # fmt: skip
    finally:
        c.loop_stop()
        c.disconnect()
        hub.stop()
    r = hub_store.reader()
    assert [tuple(x) for x in r.execute('SELECT "left" FROM stop_visits')] == [
        (leave.left.timestamp(),)
    ]
    assert ids(hub_store, "footfall", "van-c") == [ff.id]
    assert ids(hub_store, "positions", "van-c") == sorted([p1.id, p2.id])
    assert hub.stats.malformed == 5
    row = r.execute(
        "SELECT status, status_since, messages, malformed FROM van_status WHERE van = 'van-c'"
    ).fetchone()
    assert row[0] == "offline" and row[1] is not None
    assert row[2] == 14 and row[3] == 5
    assert hub_store.counter("hub_malformed") == 5
    # Arrival order did not matter and duplicates changed nothing: stored 5 distinct rows.
    assert hub.stats.stored == 4  # stop (with its departure), count, two fixes


class FlakyStore:
    """A hub store whose first writes fail (a full disk): the hub must not acknowledge."""

    def __init__(self, store: Store, failures: int) -> None:
        self._store = store
        self.failures = failures

    def ingest_many(self, events):
        if self.failures > 0:
            self.failures -= 1
            raise StoreError("database or disk is full")
        return self._store.ingest_many(events)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_store_failure_is_retried_not_lost(broker, hub_store):
    flaky = FlakyStore(hub_store, failures=2)
    hub = Hub(flaky, mqtt_cfg(broker), client_id="hub-3")  # type: ignore[arg-type]
    hub.start()
    assert hub.wait_connected(10)
    c = publisher_client(broker)
    try:
        ff = Footfall(time=T0, kind="in", occupancy=1)
        publish(c, "vanbox/van-d/footfall", topics.dumps(topics.footfall_payload(ff, {})))
        wait_for(lambda: hub_store.count("footfall") == 1, "the count after two failed writes")
    finally:
        c.loop_stop()
        c.disconnect()
        hub.stop()
    assert flaky.failures == 0
    assert hub.stats.store_errors == 2


def test_hub_refuses_a_random_client_id(hub_store):
    from telemetry.errors import ConfigError

    with pytest.raises(ConfigError, match="fixed client id"):
        Hub(hub_store, {}, client_id="")


def test_vanbox_hub_names_a_missing_config(tmp_path, capsys):
    from firmware.cli import main

    assert main(["hub", "--config", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert "vanbox hub: error:" in err and "nope.toml: no such file" in err
