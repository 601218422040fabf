"""Optional Home Assistant MQTT discovery: each van as a device with a GPS device
tracker and sensors for today's door counts.

Rules from Home Assistant's MQTT documentation
(https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery and the sensor and
device tracker pages) that the payloads follow, and tests/telemetry/test_homeassistant.py
checks:

- The discovery topic is ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``;
  node and object ids use only ``[a-zA-Z0-9_-]``.
- An empty payload on a config topic removes the entity. A retired van (registry state
  ``retired``) gets empty payloads for all its configs, and so do counters that do not
  fit the van's sensor (a beam pair has no "door passes"; a door or a single beam has no
  direction and no occupancy).
- ``availability`` (a list of ``{topic, payload_available, payload_not_available}``)
  must not be used together with ``availability_topic``; ``availability_mode`` is one of
  ``all``, ``any``, ``latest``. Here the list is the van's retained ``status``
  (``online``/``offline``) and its bridge's retained notification ``bridge`` (``1``/``0``,
  only vans that publish through van-bridge.conf send it), with ``latest``: the newest
  message on either decides, so the bridge's last will ``0`` makes the van unavailable
  and a van without a bridge depends on its status alone.
- A sensor shows ``unknown`` until its ``state_topic`` delivers a value; a retained
  state topic delivers one at once after Home Assistant restarts. The state topic is
  therefore ``<prefix>/<van>/totals``, retained, published by the hub after each batch
  (``{"day", "sensor", "in", "out", "pass", "occupancy"}``): the footfall messages are
  not retained.
- ``state_class`` is ``measurement``, ``total`` or ``total_increasing`` (the day's counts
  start again at 0 each day, which ``total_increasing`` treats as a reset).
- Templates are Jinja and must render against the real payload (the tests render them).

Discovery configs are sent when the hub connects, when it first hears of a van (or of
its sensor), and again whenever Home Assistant announces itself on
``homeassistant/status`` with ``online`` (its birth message after a restart). They are
not retained; after an HA restart the birth message brings them back. Entities of a van
that stops sending stay ``unavailable`` (its status is ``offline``) until the van is
retired in the hub's registry.

Note for the broker: the hub's account needs ``readwrite homeassistant/#`` and
``write vanbox/+/totals`` (see ``deploy/mosquitto/central.acl``).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from typing import Any

from . import topics
from .events import from_epoch

DISCOVERY_PREFIX = "homeassistant"
STATUS_TOPIC = f"{DISCOVERY_PREFIX}/status"
TOTALS_KIND = "totals"  # <prefix>/<van>/totals, retained, written by the hub only

# key in the totals payload, entity name, state class, icon
COUNTERS = (
    ("in", "Visitors today", "total_increasing", "mdi:account-arrow-right"),
    ("out", "Left today", "total_increasing", "mdi:account-arrow-left"),
    ("pass", "Door passes today", "total_increasing", "mdi:door-open"),
    ("occupancy", "People inside", "measurement", "mdi:account-group"),
)
# Which counters a sensor kind (footfall.sensor) produces.
SENSOR_COUNTERS: dict[str, tuple[str, ...]] = {
    "door": ("pass",),
    "beam": ("pass",),
    "beam-pair": ("in", "out", "occupancy"),
}

LOCATION_TEMPLATE = (
    '{{ {"latitude": value_json.lat, "longitude": value_json.lon,'
    ' "gps_accuracy": value_json.acc | default(0)} | tojson }}'
)


def node_id(van: str) -> str:
    """A discovery node id from a van id (Home Assistant allows ``[a-zA-Z0-9_-]``)."""
    return "vanbox_" + re.sub(r"[^a-zA-Z0-9_-]", "_", van)


def totals_topic(prefix: str, van: str) -> str:
    return f"{prefix}/{van}/{TOTALS_KIND}"


def availability(prefix: str, van: str, bridged: bool = False) -> dict[str, Any]:
    """The availability part of a discovery config (see the module's notes). The list
    is the same for every van (``bridged`` is kept for callers of the old form)."""
    status = {
        "topic": topics.topic(prefix, van, "status"),
        "payload_available": topics.ONLINE,
        "payload_not_available": topics.OFFLINE,
    }
    bridge = {
        "topic": topics.topic(prefix, van, topics.BRIDGE_KIND),
        "payload_available": "1",
        "payload_not_available": "0",
    }
    return {"availability": [status, bridge], "availability_mode": "latest"}


def config_topics(van: str) -> list[str]:
    """Every discovery config topic a van can have (the tracker and all counters)."""
    node = node_id(van)
    return [f"{DISCOVERY_PREFIX}/device_tracker/{node}/location/config"] + [
        f"{DISCOVERY_PREFIX}/sensor/{node}/{key}/config" for key, *_ in COUNTERS
    ]


def discovery_messages(
    prefix: str,
    van: str,
    name: str | None = None,
    *,
    bridged: bool = False,
    sensor: str | None = None,
    retired: bool = False,
) -> list[tuple[str, str]]:
    """The discovery (topic, payload) pairs for one van: a config for the tracker and
    for each counter that fits ``sensor`` (None: not known yet, no counters), an empty
    payload (remove) for the others, and for everything when the van is ``retired``."""
    tracker_topic, *counter_topics = config_topics(van)
    if retired:
        return [(t, "") for t in [tracker_topic, *counter_topics]]
    node = node_id(van)
    device = {
        "identifiers": [node],
        "name": name or f"vanbox {van}",
        "manufacturer": "vanbox",
        "model": "outreach van",
    }
    common: dict[str, Any] = {**availability(prefix, van, bridged), "device": device, "qos": 1}
    out: list[tuple[str, str]] = [
        (
            tracker_topic,
            topics.dumps(
                {
                    "name": "Location",
                    "unique_id": f"{node}_location",
                    "json_attributes_topic": topics.topic(prefix, van, "location"),
                    "json_attributes_template": LOCATION_TEMPLATE,
                    "source_type": "gps",
                    "icon": "mdi:van-utility",
                    **common,
                }
            ),
        )
    ]
    fits = SENSOR_COUNTERS.get(sensor or "", ())
    for (key, label, state_class, icon), topic in zip(COUNTERS, counter_topics, strict=True):
        if key not in fits:
            out.append((topic, ""))
            continue
        payload = {
            "name": label,
            "unique_id": f"{node}_{key}",
            "state_topic": totals_topic(prefix, van),
            "value_template": "{{ value_json['" + key + "'] }}",
            "state_class": state_class,
            "unit_of_measurement": "people",
            "icon": icon,
            **common,
        }
        out.append((topic, topics.dumps(payload)))
    return out


# --- what the hub reads from its store ---------------------------------------------------


def van_sensor(conn: sqlite3.Connection, van: str) -> str | None:
    """The sensor kind of the van's newest footfall event (None: none yet)."""
    r = conn.execute(
        "SELECT sensor FROM footfall WHERE van = ? AND kind IN ('in', 'out', 'pass')"
        " ORDER BY ts DESC LIMIT 1",
        (van,),
    ).fetchone()
    return r[0] if r is not None and r[0] in SENSOR_COUNTERS else None


def totals_payload(conn: sqlite3.Connection, van: str, day: str) -> dict[str, Any]:
    """The van's running totals of ``day`` (local), as the retained totals message."""
    from .kinds import footfall_today

    return {"day": day, "sensor": van_sensor(conn, van), **footfall_today(conn, van, day)}


def _retired(conn: sqlite3.Connection) -> set[str]:
    has = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vans'"
    ).fetchone()
    if has is None:
        return set()
    return {r[0] for r in conn.execute("SELECT id FROM vans WHERE state = 'retired'")}


class HomeAssistantDiscovery:
    """Announces vans to Home Assistant through a connected paho client.

    ``names`` maps van ids to display names (others are shown as ``vanbox <id>``);
    ``vans`` are announced from the start (the hub passes the vans it already knows).
    With ``store`` (the hub's), each van's sensor kind, its registry state (retired or
    not) and its totals are read from it: :meth:`announce_new`, called after each
    stored batch, publishes the touched vans' totals (retained) and announces again a van
    whose sensor became known or that was retired meanwhile.
    """

    def __init__(
        self,
        prefix: str,
        vans: Iterable[str] = (),
        names: dict[str, str] | None = None,
        bridged: Iterable[str] = (),
        *,
        store: Any = None,
    ) -> None:
        self.prefix = prefix
        self.names = dict(names or {})
        self.store = store
        self._vans: set[str] = set(vans)
        self._bridged: set[str] = set(bridged)
        self._announced: dict[str, tuple[str | None, bool]] = {}  # van -> (sensor, retired)
        self._lock = threading.Lock()
        self.sent = 0  # discovery messages published so far
        self.totals_sent = 0

    def _conn(self) -> sqlite3.Connection | None:
        return self.store.reader() if self.store is not None else None

    def _facts(self, vans: Iterable[str]) -> dict[str, tuple[str | None, bool]]:
        conn = self._conn()
        if conn is None:
            return {v: (None, False) for v in vans}
        retired = _retired(conn)
        return {v: (van_sensor(conn, v), v in retired) for v in vans}

    def _send(self, client, facts: dict[str, tuple[str | None, bool]]) -> None:
        for van in sorted(facts):
            sensor, retired = facts[van]
            for topic, payload in discovery_messages(
                self.prefix,
                van,
                self.names.get(van),
                bridged=van in self._bridged,
                sensor=sensor,
                retired=retired,
            ):
                client.publish(topic, payload, qos=1, retain=False)
                self.sent += 1
            if retired:  # and its retained totals go too
                client.publish(totals_topic(self.prefix, van), b"", qos=1, retain=True)

    def announce_all(self, client) -> None:
        """Send every known van's configs (on connect, and when HA comes online)."""
        with self._lock:
            vans = set(self._vans)
        facts = self._facts(vans)
        with self._lock:
            self._announced.update(facts)
        self._send(client, facts)

    def announce_new(self, client, vans: Iterable[str]) -> None:
        """After a stored batch: send the configs of vans not announced yet, or whose
        sensor or retirement changed, and publish the touched vans' totals."""
        vans = set(vans)
        with self._lock:
            self._vans |= vans
            known = set(self._vans)
        facts = self._facts(known)
        with self._lock:
            changed = {v: f for v, f in facts.items() if self._announced.get(v) != f}
            self._announced.update(changed)
        if changed:
            self._send(client, changed)
        self.publish_totals(client, [v for v in sorted(vans) if not facts[v][1]])

    def publish_totals(self, client, vans: Iterable[str], now: float | None = None) -> None:
        """Each van's running totals of today, retained (nothing without a store)."""
        conn = self._conn()
        if conn is None:
            return
        day = self.store.day_of(from_epoch(now if now is not None else time.time()))
        for van in vans:
            payload = topics.dumps(totals_payload(conn, van, day))
            client.publish(totals_topic(self.prefix, van), payload, qos=1, retain=True)
            self.totals_sent += 1

    def set_bridged(self, client, van: str) -> None:
        """The van publishes through a bridge. Its availability list always names the
        bridge topic (``latest``), so nothing needs announcing again."""
        with self._lock:
            self._bridged.add(van)
