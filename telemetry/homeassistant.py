"""Optional Home Assistant MQTT discovery: each van as a device with a GPS device
tracker and sensors for today's door counts.

- The device tracker reads the van's OwnTracks ``location`` topic as its JSON
  attributes (``latitude``, ``longitude``, ``gps_accuracy`` mapped from ``lat``, ``lon``,
  ``acc`` by a template), so Home Assistant places it on its map.
- The sensors read ``today`` from the ``footfall`` topic: visitors in, out, door passes
  (``total_increasing``: they start again at 0 every day) and people inside.
- Availability is the van's own retained ``status`` topic (``online``/``offline``).
  For a van whose box publishes through its own mosquitto bridge, the bridge's
  notification topic ``<prefix>/<van>/bridge`` (``1``/``0``, retained; the central
  broker publishes the bridge's last will ``0`` when the link or the van's power dies)
  counts too, with ``availability_mode: all``: the van is available only while both say
  so. The hub learns that a van is bridged from its first bridge message and announces
  the van again (a van without a bridge never sends one, and ``all`` would keep it
  unavailable for ever).

Discovery configs are sent when the hub connects, when it first hears of a van, and
again whenever Home Assistant announces itself on ``homeassistant/status`` with
``online`` (its birth message after a restart). They are not retained, so a van that is
taken out of service disappears from Home Assistant with its next restart.

Note for the broker: the hub's account needs ``readwrite homeassistant/#`` (see
``deploy/mosquitto/central.acl``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

from . import topics

DISCOVERY_PREFIX = "homeassistant"
STATUS_TOPIC = f"{DISCOVERY_PREFIX}/status"

# key in the footfall payload's "today", entity name, state class, icon
COUNTERS = (
    ("in", "Visitors today", "total_increasing", "mdi:account-arrow-right"),
    ("out", "Left today", "total_increasing", "mdi:account-arrow-left"),
    ("pass", "Door passes today", "total_increasing", "mdi:door-open"),
    ("occupancy", "People inside", "measurement", "mdi:account-group"),
)

LOCATION_TEMPLATE = (
    '{{ {"latitude": value_json.lat, "longitude": value_json.lon,'
    ' "gps_accuracy": value_json.acc | default(0)} | tojson }}'
)


def node_id(van: str) -> str:
    """A discovery node id from a van id (Home Assistant allows ``[a-zA-Z0-9_-]``)."""
    return "vanbox_" + re.sub(r"[^a-zA-Z0-9_-]", "_", van)


def availability(prefix: str, van: str, bridged: bool = False) -> dict[str, Any]:
    """The availability part of a discovery config (see the module's notes)."""
    status = {
        "topic": topics.topic(prefix, van, "status"),
        "payload_available": topics.ONLINE,
        "payload_not_available": topics.OFFLINE,
    }
    if not bridged:  # the short form, one topic
        return {
            "availability_topic": status["topic"],
            "payload_available": topics.ONLINE,
            "payload_not_available": topics.OFFLINE,
        }
    bridge = {
        "topic": topics.topic(prefix, van, topics.BRIDGE_KIND),
        "payload_available": "1",
        "payload_not_available": "0",
    }
    return {"availability": [status, bridge], "availability_mode": "all"}


def discovery_messages(
    prefix: str, van: str, name: str | None = None, *, bridged: bool = False
) -> list[tuple[str, str]]:
    """The discovery (topic, JSON payload) pairs for one van."""
    node = node_id(van)
    device = {
        "identifiers": [node],
        "name": name or f"vanbox {van}",
        "manufacturer": "vanbox",
        "model": "outreach van",
    }
    common: dict[str, Any] = {
        **availability(prefix, van, bridged),
        "device": device,
        "qos": 1,
    }
    out = [
        (
            f"{DISCOVERY_PREFIX}/device_tracker/{node}/location/config",
            {
                "name": "Location",
                "unique_id": f"{node}_location",
                "json_attributes_topic": topics.topic(prefix, van, "location"),
                "json_attributes_template": LOCATION_TEMPLATE,
                "source_type": "gps",
                "icon": "mdi:van-utility",
                **common,
            },
        )
    ]
    for key, label, state_class, icon in COUNTERS:
        out.append(
            (
                f"{DISCOVERY_PREFIX}/sensor/{node}/{key}/config",
                {
                    "name": label,
                    "unique_id": f"{node}_{key}",
                    "state_topic": topics.topic(prefix, van, "footfall"),
                    "value_template": "{{ value_json.today." + key + " }}",
                    "state_class": state_class,
                    "unit_of_measurement": "people",
                    "icon": icon,
                    **common,
                },
            )
        )
    return [(t, topics.dumps(p)) for t, p in out]


class HomeAssistantDiscovery:
    """Announces vans to Home Assistant through a connected paho client.

    ``names`` maps van ids to display names (others are shown as ``vanbox <id>``);
    ``vans`` are announced from the start (the hub passes the vans it already knows).
    """

    def __init__(
        self,
        prefix: str,
        vans: Iterable[str] = (),
        names: dict[str, str] | None = None,
        bridged: Iterable[str] = (),
    ) -> None:
        self.prefix = prefix
        self.names = dict(names or {})
        self._vans: set[str] = set(vans)
        self._bridged: set[str] = set(bridged)
        self._announced: set[str] = set()
        self._lock = threading.Lock()
        self.sent = 0  # discovery messages published so far

    def _send(self, client, vans: Iterable[str]) -> None:
        for van in sorted(vans):
            bridged = van in self._bridged
            for topic, payload in discovery_messages(
                self.prefix, van, self.names.get(van), bridged=bridged
            ):
                client.publish(topic, payload, qos=1, retain=False)
                self.sent += 1

    def announce_all(self, client) -> None:
        """Send every known van's configs (on connect, and when HA comes online)."""
        with self._lock:
            vans = set(self._vans)
            self._announced |= vans
        self._send(client, vans)

    def announce_new(self, client, vans: Iterable[str]) -> None:
        """Send the configs of vans not announced yet."""
        with self._lock:
            new = set(vans) - self._announced
            self._vans |= new
            self._announced |= new
        if new:
            self._send(client, new)

    def set_bridged(self, client, van: str) -> None:
        """The van publishes through a bridge: announce it again with both availability
        topics (once; nothing happens for a van already known as bridged)."""
        with self._lock:
            if van in self._bridged:
                return
            self._bridged.add(van)
            again = van in self._announced
        if again:
            self._send(client, [van])
