"""One connection of the publisher (telemetry/publisher.py) to the broker: its fresh paho
client, the messages in flight on it until their PUBACK, and the publishing itself.

The pump makes a :class:`Session` for every connection attempt and throws it away with
the connection, so whatever was not acknowledged is simply pending again and goes out on
the next connection (a fresh :class:`~telemetry.publish_queue.PublishQueue`), with the
same event id. At most ``window`` messages are unacknowledged at a time: paho's own queue
lives in memory only and is never handed more; the durable queue is the outbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from . import topics
from .mqtt_link import TokenBucket
from .publish_queue import Message, OutboxLedger, PublishQueue


@dataclass
class Session:
    """The state of one connection (generation ``gen`` of the publisher's connections).
    ``report(error)`` records an error for the publisher's stats."""

    gen: int
    client: mqtt.Client
    queue: PublishQueue  # what to send next on this connection
    ledger: OutboxLedger
    bucket: TokenBucket
    report: Callable[[str], None]
    opened: float = field(default_factory=time.monotonic)
    connected: bool = False
    connected_at: float = 0.0
    acks: int = 0
    lost: bool = False
    inflight: dict[int, Message] = field(default_factory=dict)
    more: bool = True  # the last look at the outbox may have left rows behind

    @property
    def idle(self) -> bool:
        """Nothing in flight, nothing left in the outbox at the last look."""
        return not (self.inflight or self.more)

    def set_lost(self) -> None:
        self.lost = True

    def connack(
        self, rc: Any, status_topic: str, subscriptions: Callable[[], list[tuple[str, int]]]
    ) -> bool:
        """The broker answered the connect with ``rc``: if it accepted, publish ``online``
        (retained) on ``status_topic``, subscribe to ``subscriptions()`` and return True."""
        if rc.is_failure:
            self.report(f"broker refused the connection: {rc}")
            self.lost = True
            return False
        self.client.publish(status_topic, topics.ONLINE, qos=1, retain=True)
        self.client.subscribe(subscriptions())
        self.connected = True
        self.connected_at = time.monotonic()
        return True

    def disconnected(self, rc: Any, *, stopping: bool) -> None:
        """paho reports the connection closed with ``rc``."""
        if stopping or self.lost:
            pass  # the reason is known already (refused, or our own stop)
        elif self.connected:
            self.report(f"disconnected: {rc}")
        else:
            self.report(f"connection closed before CONNACK: {rc}")
        self.lost = True

    def publish(self, topic: str, payload: str | bytes, *, retain: bool) -> int | None:
        """Hand a QoS 1 message to paho: its message id, or None (the connection is then
        lost) if paho refused it."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.report(f"publish failed: {mqtt.error_string(info.rc)}")
            self.lost = True
            return None
        return info.mid

    def fill(self, window: int, refill_at: int, poll_s: float) -> float:
        """Publish while the window (``window`` messages in flight, refilled when at least
        ``refill_at`` are free) and the token bucket allow; returns how long the pump may
        wait for something to happen (``poll_s`` when there is nothing to do)."""
        if self.ledger.changed():
            self.more = True
        if not self.more:
            return poll_s
        free = window - len(self.inflight)
        if free <= 0 or (self.inflight and free < refill_at):
            return poll_s  # wait for more PUBACKs: fewer, larger refills
        allowed = min(free, self.bucket.available())
        if allowed <= 0:
            return min(self.bucket.wait_time(), poll_s)
        msgs = self.queue.next_messages(allowed, self.ledger.location_acked)
        if len(msgs) < allowed:
            self.more = False  # everything pending is out
        for m in msgs:
            mid = self.publish(m.topic, m.payload, retain=m.retain)
            if mid is None:
                return 0.0
            self.inflight[mid] = m
            self.ledger.sent += 1
            self.bucket.take()
        return 0.0 if self.more and len(self.inflight) < window else poll_s

    def settle(self, mid: int, failed: bool) -> None:
        """The broker's PUBACK for message ``mid`` (``failed``: it refused it)."""
        m = self.inflight.pop(mid, None)
        if m is None:
            return  # the status message or a tally
        if failed:
            self.report(f"broker rejected a message on {m.topic}")
            self.lost = True  # retry it on a new connection, after a backoff
            return
        self.acks += 1
        self.ledger.acknowledged(m)
        self.more = True

    def close(self) -> None:
        """Disconnect (no last will) and close the socket; never raises."""
        try:
            self.client.disconnect()  # queues DISCONNECT (no will); writing it closes
            self.client.loop_write()
        except Exception:  # noqa: BLE001
            pass
        try:
            sock = self.client.socket()
            if sock is not None:
                sock.close()
        except Exception:  # noqa: BLE001
            pass
