"""Home Assistant MQTT discovery: the configs, their templates against real payloads,
and the hub sending them for new vans and again when Home Assistant comes online."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import jinja2
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest import Hub
from telemetry import topics
from telemetry.events import Footfall, Position
from telemetry.homeassistant import HomeAssistantDiscovery, discovery_messages
from telemetry.store import Store

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def render(template: str, payload: str):
    return jinja2.Environment().from_string(template).render(value_json=json.loads(payload))


def test_discovery_configs_and_their_templates():
    msgs = dict(discovery_messages("vanbox", "van-a", "JUNGregio-Mobil"))
    assert set(msgs) == {
        "homeassistant/device_tracker/vanbox_van-a/location/config",
        *(f"homeassistant/sensor/vanbox_van-a/{k}/config" for k in ("in", "out", "pass",
                                                                     "occupancy")),
    }  # fmt: skip
    tracker = json.loads(msgs["homeassistant/device_tracker/vanbox_van-a/location/config"])
    assert tracker["json_attributes_topic"] == "vanbox/van-a/location"
    assert tracker["availability_topic"] == "vanbox/van-a/status"
    assert tracker["source_type"] == "gps" and tracker["device"]["name"] == "JUNGregio-Mobil"
    loc = topics.dumps(topics.location_payload(
        Position(time=T0, lat=52.3215, lon=10.2335, hdop=1.4), "JR"))  # fmt: skip
    attrs = json.loads(render(tracker["json_attributes_template"], loc))
    assert attrs == {"latitude": 52.3215, "longitude": 10.2335, "gps_accuracy": 7}
    ff = topics.dumps(topics.footfall_payload(
        Footfall(time=T0, kind="in", occupancy=3),
        {"in": 12, "out": 9, "pass": 0, "occupancy": 3}))  # fmt: skip
    got = {}
    for key in ("in", "out", "pass", "occupancy"):
        cfg = json.loads(msgs[f"homeassistant/sensor/vanbox_van-a/{key}/config"])
        assert cfg["state_topic"] == "vanbox/van-a/footfall"
        assert cfg["unique_id"] == f"vanbox_van-a_{key}"
        got[key] = render(cfg["value_template"], ff)
    assert got == {"in": "12", "out": "9", "pass": "0", "occupancy": "3"}


class Listener:
    def __init__(self, port: int) -> None:
        self.got: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ha-listener")
        self.c.on_message = self._msg
        self.subscribed = threading.Event()
        self.c.on_connect = lambda c, *a: c.subscribe("homeassistant/+/+/+/config", 1)
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _msg(self, c, u, m) -> None:
        with self.lock:
            self.got.append((m.topic, m.payload.decode()))

    def take(self) -> list[tuple[str, str]]:
        with self.lock:
            out, self.got = self.got, []
        return out

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def wait_for(cond, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.mark.mqtt
def test_hub_announces_new_vans_and_again_when_home_assistant_comes_online(broker, tmp_path):
    st = Store(tmp_path / "hub.db")
    listener = Listener(broker.port)
    ha = HomeAssistantDiscovery("vanbox", names={"van-a": "JUNGregio-Mobil"})
    hub = Hub(st, {"host": "127.0.0.1", "port": broker.port}, client_id="hub-ha",
              homeassistant=ha)  # fmt: skip
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fake-van")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        hub.start()
        assert hub.wait_connected(10)
        assert listener.subscribed.wait(10)
        pub.publish("vanbox/van-a/status", "online", qos=1, retain=True).wait_for_publish(5)
        wait_for(lambda: len(listener.got) >= 5, "van-a's discovery")
        first = listener.take()
        assert {t.split("/")[2] for t, _ in first} == {"vanbox_van-a"}
        assert len(first) == 5
        # More messages from a known van: nothing is re-sent.
        pub.publish("vanbox/van-a/status", "online", qos=1).wait_for_publish(5)
        # Home Assistant restarts and says so: everything again.
        pub.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        wait_for(lambda: len(listener.got) >= 5, "the configs again after HA's birth message")
        again = listener.take()
        assert sorted(again) == sorted(first)
        # "offline" from Home Assistant sends nothing; a new van sends only its own.
        pub.publish("homeassistant/status", "offline", qos=1).wait_for_publish(5)
        pub.publish("vanbox/van-b/status", "online", qos=1).wait_for_publish(5)
        # (one connection, in order: a re-sent van-a config would arrive before these)
        wait_for(lambda: len(listener.got) >= 5, "van-b's discovery")
        rest = listener.take()
        assert {t.split("/")[2] for t, _ in rest} == {"vanbox_van-b"} and len(rest) == 5
    finally:
        hub.stop()
        pub.loop_stop()
        pub.disconnect()
        listener.stop()
        st.close()


def test_a_bridged_van_is_available_only_while_box_and_bridge_say_so():
    direct = json.loads(dict(discovery_messages("vanbox", "van-a"))[
        "homeassistant/sensor/vanbox_van-a/in/config"])  # fmt: skip
    assert direct["availability_topic"] == "vanbox/van-a/status"
    assert "availability_mode" not in direct and "availability" not in direct
    bridged = json.loads(dict(discovery_messages("vanbox", "van-a", bridged=True))[
        "homeassistant/sensor/vanbox_van-a/in/config"])  # fmt: skip
    assert "availability_topic" not in bridged
    assert bridged["availability_mode"] == "all"
    assert bridged["availability"] == [
        {"topic": "vanbox/van-a/status", "payload_available": "online",
         "payload_not_available": "offline"},
        {"topic": "vanbox/van-a/bridge", "payload_available": "1",
         "payload_not_available": "0"},
    ]  # fmt: skip


class FakeClient:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict]] = []

    def publish(self, topic, payload, qos=0, retain=False):
        self.published.append((topic, json.loads(payload)))

    def ack(self, mid, qos) -> None:
        pass


def test_the_hub_announces_a_van_again_when_it_learns_of_its_bridge(tmp_path):
    from hub.ingest import Item

    st = Store(tmp_path / "hub.db")
    ha = HomeAssistantDiscovery("vanbox")
    hub = Hub(st, {}, client_id="h", homeassistant=ha)
    hub._client = FakeClient()  # type: ignore[assignment]
    try:
        item = lambda kind, body: Item(f"vanbox/van-b/{kind}", body, 1, 1, True,  # noqa: E731
                                        time.time(), 0)  # fmt: skip
        hub._handle([item("status", b"online")])
        first = [p for t, p in hub._client.published]
        assert len(first) == 5 and all("availability_topic" in p for p in first)
        hub._handle([item("bridge", b"1")])
        again = [p for t, p in hub._client.published[5:]]
        assert len(again) == 5 and all(p["availability_mode"] == "all" for p in again)
        hub._handle([item("bridge", b"0"), item("bridge", b"1")])
        assert len(hub._client.published) == 10  # once is enough
    finally:
        st.close()
