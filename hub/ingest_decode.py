"""The hub worker's first step: a batch of received MQTT messages decoded into a
:class:`~hub.ingest_batch.Batch`.

Every payload is checked once, with bounds, by :func:`telemetry.topics.decode` (the
boundary). A message that does not decode (malformed, out of bounds, or any exception
while decoding it) becomes a dead letter of the batch (with its reason) and is counted;
events refused one by one inside a good message too. Per van the batch notes what the
messages say about it (:class:`~hub.ingest_batch.Seen`): its status (``online`` /
``offline`` from its retained status topic and, for a bridged van, its bridge's
notification topic), the newest event or arrival time as "last seen", message and
malformed counts. The hub hears its own ``ack``, ``plan`` and ``totals`` messages back
through its subscription and skips them; Home Assistant's ``online`` on its status topic
only marks the batch (discovery is announced again).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from telemetry import topics
from telemetry.errors import PayloadError
from telemetry.events import to_epoch

from .ingest_batch import Batch, Dead, Decoded, HubStats, Item, Seen

HA_STATUS_TOPIC = "homeassistant/status"
# The hub publishes these; it hears them back and ignores them ("totals": Home
# Assistant's retained per-van counts, telemetry/homeassistant.py).
OWN_KINDS = ("ack", "plan", "totals")


def van_of(topic: str, prefix: str) -> str:
    """The van a topic belongs to ("" if it is not ``<prefix>/<van>/<anything>`` with
    a valid van id)."""
    pre = prefix.split("/")
    parts = topic.split("/")
    ok = len(parts) == len(pre) + 2 and parts[: len(pre)] == pre
    return parts[-2] if ok and topics.VAN_RE.match(parts[-2]) else ""


def decode_batch(
    items: list[Item], prefix: str, stats: HubStats, van_of_topic: Callable[[str], str]
) -> Batch:
    """Decode ``items`` (topics under ``prefix``; ``van_of_topic`` names a topic's van,
    usually :func:`van_of`) into a batch, counting in ``stats`` what was received, ignored
    and malformed."""
    b = Batch()
    now = time.time()
    for it in items:
        stats.received += 1
        if it.topic == HA_STATUS_TOPIC:
            b.ha_online = b.ha_online or it.payload == b"online"
            continue
        van = van_of_topic(it.topic)
        if van and it.topic.rsplit("/", 1)[-1] in OWN_KINDS:
            stats.ignored += 1
            continue
        d = Decoded(it, van)
        b.msgs.append(d)
        seen = b.vans.setdefault(van, Seen()) if van else None
        if seen is not None:
            seen.messages += 1
        try:
            msg = topics.decode(it.topic, it.payload, prefix, now=now)
        except Exception as e:  # noqa: BLE001 - whatever it is, it is this message's
            reason = str(e) if isinstance(e, PayloadError) else f"{type(e).__name__}: {e}"
            d.dead.append(Dead(reason, it.payload))
            b.malformed += 1
            stats.malformed += 1
            stats.last_malformed = reason[:300]
            if seen is not None:
                seen.malformed += 1
            continue
        assert seen is not None  # decode() accepted the topic, so it names a van
        if msg.kind == topics.BRIDGE_KIND:
            seen.bridge = msg.status
            b.bridged.add(van)
        elif msg.status is not None:
            seen.status = msg.status
        if not it.retain:
            # Any live message is contact: a tally or a backlog of old events too
            # (their event times would make a van that is sending look silent).
            seen.last_seen = max(seen.last_seen or 0.0, it.arrived)
        if msg.control is not None:
            b.control.append((msg.van, msg.kind, msg.control))
        for r in msg.rejected:
            d.dead.append(Dead(r.reason, r.payload))
            seen.malformed += 1
        for ev in msg.events:
            # A van's clock may run ahead; "last seen" is never in the future.
            t = min(to_epoch(ev.time), it.arrived)
            seen.last_seen = max(seen.last_seen or 0.0, t)
        d.events.extend(msg.events)
    return b
