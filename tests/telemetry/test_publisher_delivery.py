"""The publisher's part in delivery to the hub, against a real mosquitto: the retained
tally (on connect, on change, after a resend), acks and plans subscribed on every
connect, a malformed ack ignored, a failing plan handler survived, re-sent track points
never published as the retained location."""

from __future__ import annotations

import importlib.util
import json
import time
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from telemetry.events import Footfall, Position, utcnow
from telemetry.publisher import Publisher
from telemetry.store import Store
from telemetry.tally import decode, encode

_spec = importlib.util.spec_from_file_location(
    "_box_child", Path(__file__).with_name("_box_child.py")
)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)
Subscriber, retained = helpers.Subscriber, helpers.retained

pytestmark = pytest.mark.mqtt
VAN = "pdvan"


def cfg(port: int) -> dict:
    return {"host": "127.0.0.1", "port": port, "keepalive": 10, "rate_limit": 2000.0}


def wait(pred, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def send(port: int, topic: str, payload: str | bytes, retain: bool = True) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def tallies(sub) -> list:
    return [decode(p) for t, p, _ in list(sub.messages) if t.endswith("/tally")]


def test_tally_on_connect_and_on_change_counts_what_the_broker_took(store, broker):
    sub = Subscriber(broker.port)
    t = utcnow()
    store.record_many([Footfall(time=t, kind="in") for _ in range(3)])
    pub = Publisher(store, cfg(broker.port), van=VAN, tid="PD", tally_min_s=0.2,
                    tally_full_s=0.5)  # fmt: skip
    pub.start()
    try:
        assert wait(lambda: store.outbox_depth() == 0)
        day = store.day_of(t)
        assert wait(lambda: any(x.days.get(day, {}).get("footfall") == 3 for x in tallies(sub)))
        store.record(Footfall(time=t, kind="out"))
        assert wait(lambda: any(x.days.get(day, {}).get("footfall") == 4 for x in tallies(sub)))
        # Never a count of an event still queued: every tally <= what was sent by then.
        assert all(x.days.get(day, {}).get("footfall", 0) <= 4 for x in tallies(sub))

        def retained_count() -> int | None:
            kept = retained(broker.port, f"vanbox/{VAN}/tally", timeout=1.0)
            return None if kept is None else decode(kept).days.get(day, {}).get("footfall")

        # The retained tally is a full one, at most tally_full_s behind.
        assert wait(lambda: retained_count() == 4)
    finally:
        pub.stop()
        sub.close()


def test_tally_is_not_repeated_faster_than_the_minimum_interval(store, broker):
    sub = Subscriber(broker.port)
    pub = Publisher(store, cfg(broker.port), van=VAN, tid="PD", tally_min_s=3600)
    pub.start()
    try:
        assert wait(lambda: len(tallies(sub)) == 1)  # on connect
        for _ in range(20):
            store.record(Footfall(time=utcnow(), kind="in"))
            time.sleep(0.02)
        assert wait(lambda: store.outbox_depth() == 0)
        time.sleep(0.5)
        assert len(tallies(sub)) == 1
    finally:
        pub.stop()
        sub.close()


def test_an_ack_brings_a_resend_and_then_a_tally(store, broker):
    sub = Subscriber(broker.port)
    t = utcnow() - timedelta(hours=1)
    if store.day_of(t) != store.day_of(t + timedelta(minutes=3)):
        t -= timedelta(minutes=5)  # all 2 minutes of points on one local day (near midnight)
    store.record_many(
        [Footfall(time=t, kind="in") for _ in range(4)]
        + [
            Position(time=t + timedelta(seconds=k), lat=52.3, lon=10.2 + k * 1e-4)
            for k in range(120)
        ]  # fmt: skip
    )
    store.mark_sent(r.seq for r in store.pending(10_000))  # "sent" before the hub listened
    newest = Position(time=utcnow(), lat=52.31, lon=10.25)
    pub = Publisher(store, cfg(broker.port), van=VAN, tid="PD", tally_min_s=3600)
    pub.start()
    try:
        store.record(newest)
        assert wait(lambda: len(tallies(sub)) >= 1 and store.outbox_depth() == 0)
        day = store.day_of(t)
        ask = encode({day: {}}, tst=time.time(), re_tst=time.time(),
                     missing={day: ["footfall", "position"]})  # fmt: skip
        send(broker.port, f"vanbox/{VAN}/ack", ask)
        # 4 counts and 120 track points (and the newest, if it is of the same day)
        n = 124 + (store.day_of(newest.time) == day)
        assert wait(lambda: pub.stats()["resent"] == n)
        assert wait(lambda: len(sub.ids()) >= 125)
        assert wait(lambda: len(tallies(sub)) >= 2)  # after the resend, despite 3600 s
        # The re-sent track points went to ``track``; the location is still the newest.
        loc = json.loads(retained(broker.port, f"vanbox/{VAN}/location"))
        assert loc["id"] == newest.id
        topics_seen = {t.rsplit("/", 1)[1] for t, _, _ in sub.messages}
        assert "track" in topics_seen
        # The same ack again (retained, a reconnect): within the back-off, nothing.
        send(broker.port, f"vanbox/{VAN}/ack", ask)
        time.sleep(0.5)
        assert pub.stats()["resent"] == n
    finally:
        pub.stop()
        sub.close()


def test_malformed_acks_and_a_failing_plan_handler_change_nothing(store, broker):
    plans: list[bytes] = []

    def on_plan(payload: bytes) -> None:
        plans.append(payload)
        raise RuntimeError("a broken plan handler")

    send(broker.port, f"vanbox/{VAN}/plan", b'{"version": 3}')  # retained before connect
    pub = Publisher(store, cfg(broker.port), van=VAN, tid="PD", on_plan=on_plan)
    pub.start()
    sub = None
    try:
        assert wait(lambda: plans == [b'{"version": 3}'])
        for bad in (b"\xff\xfe", b"[]", b'{"v":1,"tst":1e30,"days":{}}', b'{"v":1}'):
            send(broker.port, f"vanbox/{VAN}/ack", bad, retain=False)
        assert wait(lambda: pub.stats()["bad_acks"] == 4)
        sub = Subscriber(broker.port)
        ev = store.record(Footfall(time=utcnow(), kind="in"))
        assert sub.wait_for(lambda s: ev.id in s.ids(), 10)
        assert wait(lambda: store.outbox_depth() == 0)
        assert pub.connected and pub.is_alive()
        assert pub.stats()["plans_received"] == 1
    finally:
        pub.stop()
        if sub is not None:
            sub.close()


def test_subscriptions_are_renewed_on_every_connect(tmp_path, broker):
    store = Store(tmp_path / "b.db", van=VAN, tid="PD")
    plans: list[bytes] = []
    pub = Publisher(store, cfg(broker.port), van=VAN, tid="PD", on_plan=plans.append,
                    backoff_min=0.05, backoff_max=0.2)  # fmt: skip
    pub.start()
    try:
        assert wait(lambda: pub.connected)
        broker.stop()
        broker.start()
        assert wait(lambda: pub.connected and pub.stats()["reconnects"] >= 1)
        send(broker.port, f"vanbox/{VAN}/plan", b'{"version": 4}')
        assert wait(lambda: plans == [b'{"version": 4}'])
    finally:
        pub.stop()
        store.close()
