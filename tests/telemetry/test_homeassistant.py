"""Home Assistant MQTT discovery: the configs checked against Home Assistant's documented
discovery rules (table-driven), their templates against real payloads, the retained
totals topic, retired vans, and the hub sending all of it through a real broker.

The rules (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery,
https://www.home-assistant.io/integrations/sensor.mqtt/,
https://www.home-assistant.io/integrations/device_tracker.mqtt/):

- R1 topic ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``, ids in
  ``[a-zA-Z0-9_-]``;
- R2 an empty payload removes the entity; otherwise the payload is a JSON object;
- R3 ``availability`` and ``availability_topic`` must not be used together; each
  ``availability`` entry needs ``topic``; ``availability_mode`` is all, any or latest;
- R4 ``unique_id`` is required for a device entry and unique; ``device`` needs
  ``identifiers`` (or ``connections``);
- R5 ``qos`` is 0, 1 or 2;
- R6 a sensor's ``state_class`` is measurement, total or total_increasing; its
  ``state_topic`` is required, and is "unknown" after a restart unless retained;
- R7 a device tracker's ``source_type`` is gps, router, bluetooth or bluetooth_le;
- R8 templates are Jinja2 and must render against the real payload.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime

import jinja2
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest import Hub
from telemetry import registry, topics
from telemetry.events import Footfall, Position
from telemetry.homeassistant import (
    SENSOR_COUNTERS,
    HomeAssistantDiscovery,
    discovery_messages,
    totals_payload,
    totals_topic,
)
from telemetry.store import Store

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TOPIC_RE = re.compile(
    r"^homeassistant/(?P<component>[a-z_]+)/(?:(?P<node>[a-zA-Z0-9_-]+)/)?"
    r"(?P<object>[a-zA-Z0-9_-]+)/config$"
)


def render(template: str, payload: str):
    return jinja2.Environment().from_string(template).render(value_json=json.loads(payload))


def check_rules(msgs: list[tuple[str, str]], samples: dict[str, str]) -> list[str]:
    """The rule violations in ``msgs`` (empty: all fine). ``samples`` maps a state or
    attributes topic to a real payload the templates must render against."""
    bad: list[str] = []
    ids: list[str] = []
    for topic, payload in msgs:
        m = TOPIC_RE.match(topic)
        if not m:
            bad.append(f"R1 {topic}")
            continue
        if payload == "":
            continue  # R2: removal
        cfg = json.loads(payload)
        if not isinstance(cfg, dict):
            bad.append(f"R2 {topic}")
            continue
        if "availability" in cfg and "availability_topic" in cfg:
            bad.append(f"R3 both {topic}")
        for a in cfg.get("availability", []):
            if not a.get("topic"):
                bad.append(f"R3 entry {topic}")
        if cfg.get("availability_mode", "latest") not in ("all", "any", "latest"):
            bad.append(f"R3 mode {topic}")
        if not cfg.get("unique_id") or not cfg.get("device", {}).get("identifiers"):
            bad.append(f"R4 {topic}")
        ids.append(cfg.get("unique_id", ""))
        if cfg.get("qos", 0) not in (0, 1, 2):
            bad.append(f"R5 {topic}")
        if m["component"] == "sensor":
            if cfg.get("state_class") not in ("measurement", "total", "total_increasing"):
                bad.append(f"R6 state_class {topic}")
            if not cfg.get("state_topic"):
                bad.append(f"R6 state_topic {topic}")
            elif cfg["state_topic"] in samples:
                try:
                    value = render(cfg["value_template"], samples[cfg["state_topic"]])
                    if not re.fullmatch(r"\d+", value):
                        bad.append(f"R8 value {topic}: {value!r}")
                except jinja2.TemplateError as e:
                    bad.append(f"R8 {topic}: {e}")
        if m["component"] == "device_tracker":
            if cfg.get("source_type") not in ("gps", "router", "bluetooth", "bluetooth_le"):
                bad.append(f"R7 {topic}")
            src = cfg.get("json_attributes_topic")
            if src in samples:
                attrs = json.loads(render(cfg["json_attributes_template"], samples[src]))
                if not {"latitude", "longitude"} <= set(attrs):
                    bad.append(f"R8 attrs {topic}")
    if len(ids) != len(set(ids)):
        bad.append("R4 unique_id repeated")
    return bad


TOTALS = {"day": "2026-11-23", "sensor": "beam-pair", "in": 12, "out": 9, "pass": 0,
          "occupancy": 3}  # fmt: skip
SAMPLES = {
    "vanbox/van-a/totals": topics.dumps(TOTALS),
    "vanbox/van-a/location": topics.dumps(
        topics.location_payload(Position(time=T0, lat=52.3215, lon=10.2335, hdop=1.4), "JR")
    ),
}


@pytest.mark.parametrize(
    ("sensor", "retired", "configs"),
    [
        ("beam-pair", False, {"location", "in", "out", "occupancy"}),
        ("door", False, {"location", "pass"}),
        ("beam", False, {"location", "pass"}),
        (None, False, {"location"}),  # no footfall yet: no counters
        ("beam-pair", True, set()),  # retired: everything removed
        ("door", True, set()),
    ],
)
def test_discovery_follows_home_assistants_rules(sensor, retired, configs):
    msgs = discovery_messages("vanbox", "van-a", "JUNGregio-Mobil", sensor=sensor,
                              retired=retired)  # fmt: skip
    assert check_rules(msgs, SAMPLES) == []
    # every config topic is sent, so entities that do not fit are removed (R2)
    assert len(msgs) == 5
    sent = {t.split("/")[3] for t, p in msgs if p}
    assert sent == configs
    for _, p in msgs:
        if p:
            cfg = json.loads(p)
            assert cfg["availability_mode"] == "latest"
            assert [a["topic"] for a in cfg["availability"]] == [
                "vanbox/van-a/status",
                "vanbox/van-a/bridge",
            ]


@pytest.mark.parametrize(
    ("mutate", "rule"),
    [
        (lambda c: c.update(availability_topic="vanbox/van-a/status"), "R3 both"),
        (lambda c: c.update(availability_mode="most"), "R3 mode"),
        (lambda c: c.update(unique_id=""), "R4"),
        (lambda c: c.update(qos=3), "R5"),
        (lambda c: c.update(state_class="daily"), "R6 state_class"),
        (lambda c: c.update(value_template="{{ value_json.today.in }}"), "R8"),  # old form
        (lambda c: c.update(value_template="{{ value_json['in'] "), "R8"),
        (lambda c: c.pop("state_topic"), "R6 state_topic"),
    ],
)
def test_the_rule_checker_catches_each_broken_rule(mutate, rule):
    """The checker itself bites: one broken field, one violation found."""
    msgs = discovery_messages("vanbox", "van-a", sensor="beam-pair")
    topic, payload = next((t, p) for t, p in msgs if t.endswith("/in/config"))
    cfg = json.loads(payload)
    mutate(cfg)
    bad = check_rules([(topic, json.dumps(cfg))], SAMPLES)
    assert any(b.startswith(rule) for b in bad), bad
    assert check_rules([("homeassistant/sensor/a b/config", "{}")], {}) == [
        "R1 homeassistant/sensor/a b/config"
    ]


def test_sensor_counters_cover_every_sensor_kind():
    from telemetry.config import SENSOR_KINDS

    assert set(SENSOR_COUNTERS) == set(SENSOR_KINDS) - {"none"}


def record(st: Store, van: str, kind: str, sensor: str, occupancy: int, minute: int) -> None:
    st.record(Footfall(time=T0.replace(minute=minute), kind=kind, sensor=sensor,
                       occupancy=occupancy, van=van))  # fmt: skip


def test_totals_payload_from_the_store_renders_in_each_sensor(tmp_path):
    st = Store(tmp_path / "hub.db", van="van-a")
    try:
        for i, (kind, occ) in enumerate([("in", 1), ("in", 2), ("out", 1), ("in", 2)]):
            record(st, "van-a", kind, "beam-pair", occ, i)
        conn = st.reader()
        t = totals_payload(conn, "van-a", "2026-11-23")
        assert t == {"day": "2026-11-23", "sensor": "beam-pair", "in": 3, "out": 1, "pass": 0,
                     "occupancy": 2}  # fmt: skip
        msgs = dict(discovery_messages("vanbox", "van-a", sensor=t["sensor"]))
        got = {
            k: render(json.loads(msgs[f"homeassistant/sensor/vanbox_van-a/{k}/config"])
                      ["value_template"], topics.dumps(t))
            for k in ("in", "out", "occupancy")
        }  # fmt: skip
        assert got == {"in": "3", "out": "1", "occupancy": "2"}
        assert totals_payload(conn, "van-b", "2026-11-23")["sensor"] is None
    finally:
        st.close()


class Listener:
    def __init__(self, port: int, topic: str = "homeassistant/+/+/+/config", cid: str = "ha"):
        self.got: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid)
        self.c.on_message = self._msg
        self.subscribed = threading.Event()
        self.c.on_connect = lambda c, *a: c.subscribe(topic, 1)
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _msg(self, c, u, m) -> None:
        with self.lock:
            self.got.append((m.topic, m.payload.decode(), bool(m.retain)))

    def take(self) -> list[tuple[str, str, bool]]:
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


def footfall(kind: str, occ: int, n: int, sensor: str = "beam-pair") -> bytes:
    e = Footfall(time=datetime.now(UTC), kind=kind, sensor=sensor, occupancy=occ)
    return topics.dumps(topics.footfall_payload(e, {"in": n, "out": 0, "pass": 0,
                                                    "occupancy": occ})).encode()  # fmt: skip


@pytest.mark.mqtt
def test_hub_announces_publishes_retained_totals_and_removes_a_retired_van(broker, tmp_path):
    st = Store(tmp_path / "hub.db")
    listener = Listener(broker.port)
    ha = HomeAssistantDiscovery("vanbox", names={"van-a": "JUNGregio-Mobil"}, store=st)
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
        assert [t.split("/")[3] for t, p, _ in first if p] == ["location"]  # sensor unknown
        # the first counts: the sensor is known now, its counters are announced
        for i in range(1, 4):
            pub.publish("vanbox/van-a/footfall", footfall("in", i, i), qos=1).wait_for_publish(5)
        wait_for(lambda: len([x for x in listener.got if x[1]]) >= 4, "the counters")
        cfgs = {t.split("/")[3] for t, p, _ in listener.take() if p}
        assert cfgs == {"location", "in", "out", "occupancy"}
        # Home Assistant restarts: it reads the retained totals at once (no "unknown")
        wait_for(lambda: hub.stats.events >= 3, "the counts stored")
        # (a client subscribed while the hub publishes gets it with retain=0: so a new
        # client each time, until the broker's retained copy holds all three counts)
        deadline = time.monotonic() + 15
        while True:
            later = Listener(broker.port, "vanbox/+/totals", cid="ha-restarted")
            wait_for(lambda later=later: later.got, "the retained totals")
            t, p, retained = later.got[0]
            later.stop()
            if json.loads(p)["in"] == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert t == totals_topic("vanbox", "van-a") and retained
        assert json.loads(p)["in"] == 3 and json.loads(p)["occupancy"] == 3
        assert hub.stats.malformed == 0  # its own totals topic is not a van's message
        # the van is retired: its next message removes all of its entities
        registry.register(st, ["van-a"])  # (the hub's Registrar does this in `vanbox hub`)
        registry.retire(st, "van-a")
        pub.publish("vanbox/van-a/status", "online", qos=1).wait_for_publish(5)
        wait_for(lambda: len(listener.got) >= 5, "the removal")
        gone = listener.take()
        assert len(gone) == 5 and all(p == "" for _, p, _ in gone)
        # and again when Home Assistant comes online (it may have missed them)
        pub.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        wait_for(lambda: len(listener.got) >= 5, "the removal again")
        assert all(p == "" for _, p, _ in listener.take())
    finally:
        hub.stop()
        pub.loop_stop()
        pub.disconnect()
        listener.stop()
        st.close()


class FakeClient:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, bool]] = []

    def publish(self, topic, payload, qos=0, retain=False):
        self.published.append((topic, payload, retain))

    def ack(self, mid, qos) -> None:
        pass


def test_a_bridge_message_needs_no_new_announcement(tmp_path):
    """The availability list always names the bridge topic (``latest``): learning of a
    bridge sends nothing again; a door van gets only its "pass" counter."""
    from hub.ingest import Item

    st = Store(tmp_path / "hub.db")
    ha = HomeAssistantDiscovery("vanbox", store=st)
    hub = Hub(st, {}, client_id="h", homeassistant=ha)
    hub._client = FakeClient()  # type: ignore[assignment]
    try:
        item = lambda kind, body: Item(f"vanbox/van-b/{kind}", body, 1, 1, True,  # noqa: E731
                                        time.time(), 0)  # fmt: skip
        hub._handle([item("status", b"online")])
        configs = [x for x in hub._client.published if x[0].startswith("homeassistant/")]
        assert len(configs) == 5
        hub._handle([item("bridge", b"1")])
        configs = [x for x in hub._client.published if x[0].startswith("homeassistant/")]
        assert len(configs) == 5
        hub._handle([item("footfall", footfall("pass", 0, 1, sensor="door"))])
        new = [x for x in hub._client.published if x[0].startswith("homeassistant/")][5:]
        assert {t.split("/")[3] for t, p, _ in new if p} == {"location", "pass"}
        assert {t.split("/")[3] for t, p, _ in new if not p} == {"in", "out", "occupancy"}
        totals = [x for x in hub._client.published if x[0] == "vanbox/van-b/totals"]
        assert totals and all(r for _, _, r in totals)
        assert json.loads(totals[-1][1])["pass"] == 1
    finally:
        st.close()


def test_the_docs_acl_lines_for_home_assistant_are_the_shipped_ones():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    docs = (root / "docs" / "interop.md").read_text()
    block = re.search(r"<!-- test: acl-homeassistant -->\n```\n(.*?)```", docs, re.S).group(1)
    acl = (root / "deploy" / "mosquitto" / "central.acl").read_text()
    assert block.strip() in acl
    # what the configs read is what the login may read
    for topic in ("vanbox/+/location", "vanbox/+/status", "vanbox/+/bridge", "vanbox/+/totals"):
        assert f"topic read {topic}" in block
