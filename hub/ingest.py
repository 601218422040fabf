"""The hub: a box without sensors. It subscribes to every van and stores what they send.

``Hub(store, mqtt_cfg, client_id=..., prefix=...)`` connects to the broker with a
*persistent session* (MQTT 3.1.1, ``clean_session=False``, a fixed client id) and a QoS 1
subscription to ``<prefix>/+/#``. While the hub is down the broker queues every QoS 1
message for it; after a restart they arrive, so nothing published in between is lost.

Messages are decoded with :func:`telemetry.topics.decode` and upserted by event id with
:meth:`Store.ingest_many`: redeliveries and duplicates change nothing, and arrival order
does not matter. Acknowledgements are manual: a message's PUBACK goes out only *after*
the batch it belongs to is committed, so a hub that dies mid-batch gets the message
again instead of losing it (at-least-once delivery plus the event id = exactly-once
effect).

Each van's status (``online``/``offline`` from its retained status topic, when that
changed, the newest event time as "last seen", message and malformed counts) is kept in
the ``van_status`` table. Malformed payloads are logged and counted, never fatal.

Threads: paho's network thread only queues messages; one worker thread decodes, writes
in batches (as many as have arrived, up to ``max_batch``) and acknowledges.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from telemetry import topics
from telemetry.errors import ConfigError, PayloadError, VanboxError
from telemetry.events import to_epoch
from telemetry.store import Store

log = logging.getLogger("vanbox.hub")

HA_STATUS_TOPIC = "homeassistant/status"


@dataclass
class HubStats:
    """What the hub has done since it started (read them from any thread)."""

    received: int = 0
    stored: int = 0  # rows new or changed by ingest
    events: int = 0  # events decoded (stored + duplicates)
    malformed: int = 0
    batches: int = 0
    store_errors: int = 0
    connects: int = 0
    last_malformed: str = ""

    @property
    def duplicates(self) -> int:
        return self.events - self.stored


@dataclass
class _Seen:
    """What one batch says about one van."""

    status: str | None = None
    last_seen: float | None = None
    messages: int = 0
    malformed: int = 0


@dataclass(frozen=True)
class _Item:
    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    arrived: float
    generation: int


@dataclass
class _Batch:
    events: list = field(default_factory=list)
    control: list = field(default_factory=list)  # (van, kind, data) of control topics
    vans: dict[str, _Seen] = field(default_factory=dict)
    malformed: int = 0
    ha_online: bool = False


_STATUS_SQL = """
INSERT INTO van_status (van, status, status_since, last_seen, messages, malformed)
VALUES (:van, coalesce(:status, 'unknown'), :since, :seen, :messages, :malformed)
ON CONFLICT(van) DO UPDATE SET
    status_since = CASE
        WHEN :status IS NOT NULL AND :status IS NOT van_status.status THEN :since
        ELSE van_status.status_since END,
    status = coalesce(:status, van_status.status),
    last_seen = CASE
        WHEN :seen IS NULL THEN van_status.last_seen
        WHEN van_status.last_seen IS NULL THEN :seen
        ELSE max(van_status.last_seen, :seen) END,
    messages = van_status.messages + :messages,
    malformed = van_status.malformed + :malformed
"""


def client_tls(client: mqtt.Client, mqtt_cfg: dict[str, Any]) -> None:
    """Apply ``mqtt.tls``, ``ca_file``, ``username`` and ``password_file`` to a client."""
    if mqtt_cfg.get("tls"):
        ca = mqtt_cfg.get("ca_file") or None
        client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    user = mqtt_cfg.get("username") or ""
    if user:
        password = None
        pw_file = mqtt_cfg.get("password_file") or ""
        if pw_file:
            try:
                password = Path(pw_file).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ConfigError(
                    f"mqtt.password_file = {pw_file!r}: cannot read ({e.strerror})"
                ) from None
        client.username_pw_set(user, password)


class Hub:
    """Subscribe to every van under ``prefix`` and store their events in ``store``.

    ``mqtt_cfg`` is the config's ``mqtt`` section (host, port, tls, ca_file, username,
    password_file, keepalive). ``on_batch`` (optional) is called from the worker thread
    after each committed batch with the set of vans it touched (the Home Assistant
    discovery and the tests use it).
    """

    def __init__(
        self,
        store: Store,
        mqtt_cfg: dict[str, Any],
        *,
        client_id: str,
        prefix: str = "vanbox",
        max_batch: int = 2000,
        on_batch: Callable[[set[str]], None] | None = None,
        on_control: Callable[[Hub, list[tuple[str, str, dict]]], None] | None = None,
        homeassistant: Any = None,
    ) -> None:
        if not client_id:
            raise ConfigError("hub.client_id: a persistent session needs a fixed client id")
        self.store = store
        self.cfg = dict(mqtt_cfg)
        self.client_id = client_id
        self.prefix = prefix
        self.max_batch = max_batch
        self.on_batch = on_batch
        self.on_control = on_control
        self.homeassistant = homeassistant
        self.stats = HubStats()
        self._q: queue.Queue[_Item] = queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._gen = 0
        self._worker: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._check_schema()

    # --- lifecycle ------------------------------------------------------------------

    def _check_schema(self) -> None:
        row = (
            self.store.reader()
            .execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'van_status'")
            .fetchone()
        )
        if row is None:
            raise VanboxError(f"{self.store.path}: no van_status table (migration 0003 missing)")

    def _make_client(self) -> mqtt.Client:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        client_tls(c, self.cfg)
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        return c

    def start(self) -> None:
        """Connect (in the background, retrying until the broker answers) and start the
        worker. Returns at once; see :meth:`wait_connected`."""
        if self._worker is not None:
            return
        self._stop.clear()
        self._client = self._make_client()
        self._worker = threading.Thread(target=self._work, name="hub-ingest", daemon=True)
        self._worker.start()
        self._client.connect_async(
            self.cfg.get("host", "localhost"),
            int(self.cfg.get("port", 1883)),
            keepalive=int(self.cfg.get("keepalive", 60)),
        )
        self._client.loop_start()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        """Store and acknowledge what has arrived, then disconnect (the broker keeps the
        session and queues what comes next)."""
        if self._worker is None:
            return
        self._stop.set()
        self._worker.join(timeout)
        client = self._client
        if client is not None:
            try:
                client.disconnect()
            finally:
                client.loop_stop()
        self._worker = None
        self._client = None
        self._connected.clear()

    def __enter__(self) -> Hub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- paho callbacks (network thread) --------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the hub: %s", reason_code)
            return
        self._gen += 1
        self.stats.connects += 1
        subs = [(topics.subscription(self.prefix), 1)]
        if self.homeassistant is not None:
            subs.append((HA_STATUS_TOPIC, 1))
        client.subscribe(subs)
        log.info(
            "hub connected as %s (session %s), subscribed to %s",
            self.client_id,
            "resumed" if flags.session_present else "new",
            ", ".join(t for t, _ in subs),
        )
        self._connected.set()
        if self.homeassistant is not None:
            self.homeassistant.announce_all(client)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("hub lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        self._q.put(
            _Item(msg.topic, msg.payload, msg.mid, msg.qos, msg.retain, time.time(), self._gen)
        )

    def publish(self, topic: str, payload: str, *, retain: bool = False) -> bool:
        """Publish (QoS 1) on the hub's connection: acknowledgements and plans to a van.
        False when the hub is not connected (the caller tries again later)."""
        client = self._client
        if client is None or not self._connected.is_set():
            return False
        return client.publish(topic, payload, qos=1, retain=retain).rc == mqtt.MQTT_ERR_SUCCESS

    # --- worker thread --------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                first = self._q.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            items = [first]
            while len(items) < self.max_batch:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            self._handle(items)

    def _decode(self, items: list[_Item]) -> _Batch:
        b = _Batch()
        for it in items:
            self.stats.received += 1
            if it.topic == HA_STATUS_TOPIC:
                b.ha_online = b.ha_online or it.payload == b"online"
                continue
            van = self._van_of(it.topic)
            seen = b.vans.setdefault(van, _Seen()) if van else None
            if seen is not None:
                seen.messages += 1
            try:
                msg = topics.decode(it.topic, it.payload, self.prefix)
            except PayloadError as e:
                self._malformed(seen, e, b)
                continue
            assert seen is not None  # decode() accepted the topic, so it names a van
            if msg.status is not None:
                seen.status = msg.status
                if not it.retain:
                    seen.last_seen = max(seen.last_seen or 0.0, it.arrived)
            if msg.control is not None:
                b.control.append((msg.van, msg.kind, msg.control))
            for ev in msg.events:
                # A van's clock may run ahead; "last seen" is never in the future.
                t = min(to_epoch(ev.time), it.arrived)
                seen.last_seen = max(seen.last_seen or 0.0, t)
            b.events.extend(msg.events)
        return b

    def _van_of(self, topic: str) -> str:
        """The van a topic belongs to ("" if it is not ``<prefix>/<van>/<anything>``)."""
        pre = self.prefix.split("/")
        parts = topic.split("/")
        ok = len(parts) == len(pre) + 2 and parts[: len(pre)] == pre
        return parts[-2] if ok else ""

    def _malformed(self, seen: _Seen | None, e: PayloadError, b: _Batch) -> None:
        self.stats.malformed += 1
        self.stats.last_malformed = str(e)
        b.malformed += 1
        if seen is not None:
            seen.malformed += 1
        log.warning("malformed message ignored: %s", e)

    def _write(self, b: _Batch) -> int:
        stored = self.store.ingest_many(b.events) if b.events else 0
        now = time.time()
        with self.store.transaction() as conn:
            for van, s in b.vans.items():
                conn.execute(
                    _STATUS_SQL,
                    {
                        "van": van,
                        "status": s.status,
                        "since": now,
                        "seen": s.last_seen,
                        "messages": s.messages,
                        "malformed": s.malformed,
                    },
                )
            for key, n in (("hub_events", len(b.events)), ("hub_malformed", b.malformed)):
                if n:
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key)"
                        " DO UPDATE SET value = value + excluded.value",
                        (key, n),
                    )
        return stored

    def _handle(self, items: list[_Item]) -> None:
        b = self._decode(items)
        delay = 0.5
        while True:
            try:
                stored = self._write(b)
                break
            except (VanboxError, sqlite3.Error) as e:
                # Not acknowledged: the broker keeps the messages for the next attempt.
                self.stats.store_errors += 1
                log.error(
                    "cannot store %d events (%s); retrying in %.0f s", len(b.events), e, delay
                )
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 30.0)
        self.stats.batches += 1
        self.stats.events += len(b.events)
        self.stats.stored += stored
        client = self._client
        if client is not None:
            for it in items:
                # After a reconnect the broker sends unacknowledged messages again (and
                # they are stored again, changing nothing); acks of the old connection's
                # packet ids are not sent on the new one.
                if it.qos > 0 and it.generation == self._gen:
                    client.ack(it.mid, it.qos)
        if b.control and self.on_control is not None:
            try:
                self.on_control(self, b.control)
            except Exception:  # noqa: BLE001 - a handler must not stop the ingest
                log.exception("control handler failed")
        vans = set(b.vans)
        if self.homeassistant is not None and client is not None:
            if b.ha_online:
                self.homeassistant.announce_all(client)
            self.homeassistant.announce_new(client, vans)
        if self.on_batch is not None:
            try:
                self.on_batch(vans)
            except Exception:  # noqa: BLE001 - a listener must not stop the ingest
                log.exception("on_batch listener failed")
