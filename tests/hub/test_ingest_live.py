"""Issue 12, live: a real mosquitto and a real hub. A poison message, then a normal event
from another van: stored within 5 s. The hub restarted: no redelivery loop (the poison
message is acknowledged, so it does not come again, and the dead-letter count does not
grow, not even for a retained poison message that every new subscription gets again)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest import Hub
from telemetry import deadletter, topics
from telemetry.events import Footfall
from telemetry.store import Store

pytestmark = pytest.mark.mqtt


def wait_for(cond, what: str, timeout: float = 10.0) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - t0


def sender(broker) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="poisoner")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    return c


def footfall(van: str) -> tuple[str, str]:
    ev = Footfall(time=datetime.now(UTC), kind="in", occupancy=1)
    return topics.dumps(topics.footfall_payload(ev, {"in": 1})), ev.id


def test_poison_then_a_good_event_and_no_redelivery_after_a_restart(broker, tmp_path):
    store = Store(tmp_path / "hub.db")
    cfg = {"host": "127.0.0.1", "port": broker.port, "keepalive": 10}
    hub = Hub(store, cfg, client_id="live-hub")
    hub.start()
    c = sender(broker)
    try:
        assert hub.wait_connected(10)
        # The first example, and a retained poison location (the location topic
        # is retained: every new subscription gets it again).
        c.publish("vanbox/evil/location", '{"id":"p","tst":1e20,"lat":52.3,"lon":10.2}',
                  qos=1).wait_for_publish(5)  # fmt: skip
        c.publish("vanbox/evil/track", '{"a":' * 5000 + "1" + "}" * 5000,
                  qos=1).wait_for_publish(5)  # fmt: skip
        c.publish("vanbox/evil/location", json.dumps({"id": "\ud800", "tst": 1e20}),
                  qos=1, retain=True).wait_for_publish(5)  # fmt: skip
        body, good_id = footfall("good-van")
        t0 = time.monotonic()
        c.publish("vanbox/good-van/footfall", body, qos=1).wait_for_publish(5)
        wait_for(lambda: store.count("footfall") == 1, "the good event", timeout=5)
        took = time.monotonic() - t0
        print(f"\ngood event stored {took:.2f} s after it was sent behind 3 poison messages")
        assert store.reader().execute("SELECT id FROM footfall").fetchone()[0] == good_id
        wait_for(lambda: hub.stats.dead_letters == 3, "the dead letters counted")
        assert deadletter.count(store) == 3
        assert "nested deeper" in deadletter.recent(store)[1].reason
        assert hub.health()[0]
        hub.stop()

        # Restarted with the same session: nothing comes again but the retained message,
        # which is not kept aside a second time.
        hub2 = Hub(store, cfg, client_id="live-hub")
        hub2.start()
        try:
            assert hub2.wait_connected(10)
            body2, id2 = footfall("good-van")
            c.publish("vanbox/good-van/footfall", body2, qos=1).wait_for_publish(5)
            wait_for(lambda: store.count("footfall") == 2, "the second good event", timeout=5)
            wait_for(lambda: hub2.stats.malformed == 1, "the retained poison again")
            time.sleep(1.0)  # time for anything redelivered to arrive
            assert hub2.stats.received == 2  # the retained poison and the good event
            assert hub2.stats.malformed == 1 and hub2.stats.dead_letters == 0
            assert deadletter.count(store) == 3
            assert hub2.health()[0]
        finally:
            hub2.stop()
    finally:
        c.loop_stop()
        c.disconnect()
        hub.stop()
        store.close()
