"""The hub: a box without sensors. It subscribes to every van and stores what they send.

``Hub(store, mqtt_cfg, client_id=..., prefix=...)`` connects to the broker with a
*persistent session* (MQTT 3.1.1, ``clean_session=False``, a fixed client id) and a QoS 1
subscription to ``<prefix>/+/#``. While the hub is down the broker queues every QoS 1
message for it; after a restart they arrive, so nothing published in between is lost.

Messages are decoded with :func:`telemetry.topics.decode` (the boundary: every payload is
checked there once, with bounds) and upserted by event id with
:meth:`Store.ingest_many`: redeliveries and duplicates change nothing, and arrival order
does not matter. Acknowledgements are manual: a message's PUBACK goes out only *after*
it is stored or kept as a dead letter, so a hub that dies mid-batch gets the message
again instead of losing it (at-least-once delivery plus the event id = exactly-once
effect).

One message can never stop the ingest:

- a message that does not decode (malformed, out of bounds, or any exception while
  decoding it) becomes a dead letter (:mod:`telemetry.deadletter`, source ``mqtt``, with
  topic, van and reason), is logged once, counted, and acknowledged;
- a batch that fails to store with a non-transient error (a value no column takes) is
  split: message by message, then event by event, so only the offending events become
  dead letters and the rest is stored;
- only operational errors (disk full, database locked, I/O: ``sqlite3.OperationalError``,
  ``OSError``, :class:`StoreError`) are retried, with backoff, and not acknowledged
  meanwhile;
- the worker thread catches everything else around a batch (log line, the batch's
  messages kept as dead letters) and goes on. :meth:`Hub.health` says when it is not
  working: thread dead, a batch retrying for over a minute, or dead letters piling up.

Each van's status (online or offline, "last seen", message and malformed counts: see
:mod:`hub.ingest_decode`) is kept in the ``van_status`` table. The hub hears its own
``ack``, ``plan`` and ``totals`` messages back through its subscription and ignores them.

Threads: paho's network thread only queues messages; one worker thread decodes, writes
in batches (as many as have arrived, up to ``max_batch``) and acknowledges.

Several such hubs can share the ingest over MQTT 5 shared subscriptions: see
hub/workers.py (``vanbox hub --workers N``).

The parts: :mod:`hub.ingest_decode` (a batch of messages decoded, per van what it says),
:mod:`hub.ingest_batch` (the batch written, split and dead-lettered; what is transient),
:mod:`hub.ingest_health` (:meth:`Hub.health`), :mod:`hub.mqtt_login` (TLS and
credentials). This module has the MQTT client, the worker thread and the acknowledgements.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from telemetry import topics
from telemetry.errors import ConfigError, VanboxError
from telemetry.store import Store

from .ingest_batch import (
    Batch,
    HubStats,
    Item,
    is_transient,
    keep_all,
    write,
)
from .ingest_decode import HA_STATUS_TOPIC as HA_STATUS_TOPIC
from .ingest_decode import OWN_KINDS as OWN_KINDS
from .ingest_decode import decode_batch, van_of
from .ingest_health import IngestHealth
from .mqtt_login import client_tls as client_tls

log = logging.getLogger("vanbox.hub")

__all__ = ["Hub", "HubStats", "Item", "client_tls", "is_transient"]


class Hub(IngestHealth):
    """Subscribe to every van under ``prefix`` and store their events in ``store``.

    ``mqtt_cfg`` is the config's ``mqtt`` section (host, port, tls, ca_file, username,
    password_file, keepalive). ``on_batch`` (optional) is called from the worker thread
    after each committed batch with the set of vans it touched (the Home Assistant
    discovery and the tests use it). ``on_control`` gets the batch's control messages
    (``tally`` from the boxes) as ``(van, kind, data)`` after they are acknowledged.
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
        self._q: queue.Queue[Item] = queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._gen = 0
        self._worker: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._init_health()
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

    def _session_options(self) -> dict:
        """The MQTT version and session of the client: a persistent MQTT 3.1.1 session."""
        return {"clean_session": False, "protocol": mqtt.MQTTv311}

    def _make_client(self) -> mqtt.Client:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            manual_ack=True,
            **self._session_options(),
        )
        client_tls(c, self.cfg)
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
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
        self._connect_async(self._client)
        self._client.loop_start()

    def _connect_async(self, client: mqtt.Client) -> None:
        client.connect_async(
            self.cfg.get("host", "localhost"),
            int(self.cfg.get("port", 1883)),
            keepalive=int(self.cfg.get("keepalive", 60)),
        )

    def subscriptions(self) -> list[tuple[str, int]]:
        """The topic filters this hub subscribes to (QoS 1): every van's topics."""
        subs = [(topics.subscription(self.prefix), 1)]
        if self.homeassistant is not None:
            subs.append((HA_STATUS_TOPIC, 1))
        return subs

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait until the hub is connected and subscribed (its SUBACK has come)."""
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
        subs = self.subscriptions()
        if not subs:  # a publish-only connection (hub/workers.py)
            self._connected.set()
        else:
            client.subscribe(subs)
        log.info(
            "hub connected as %s (session %s), subscribed to %s",
            self.client_id,
            "resumed" if flags.session_present else "new",
            ", ".join(t for t, _ in subs),
        )
        # Connected means subscribed: see _on_subscribe.
        if self.homeassistant is not None:
            self.homeassistant.announce_all(client)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("broker refused the hub's subscription: %s", ", ".join(refused))
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("hub lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            t = msg.topic
        except UnicodeDecodeError:  # a broker should refuse it; the worker dead-letters it
            t = bytes(msg._topic).decode("utf-8", "backslashreplace")
        self._q.put(Item(t, msg.payload, msg.mid, msg.qos, msg.retain, time.time(), self._gen))

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
            try:
                self._handle(items)
            except Exception:  # noqa: BLE001 - the last net: the thread must never die
                log.exception("hub: unexpected error around a batch of %d messages", len(items))

    def _handle(self, items: list[Item]) -> None:
        """Decode, store (or keep as dead letters), acknowledge, then tell the listeners."""
        try:
            b = self._decode(items)
            if not self._store(b):
                return  # stopping while a write is retried: not acknowledged
        except Exception as e:  # noqa: BLE001 - a bug or a surprise: keep the batch aside
            log.exception("hub: a batch of %d messages failed; kept as dead letters", len(items))
            if not self._keep_all(items, f"hub error: {type(e).__name__}: {e}"):
                return
            b = None
        self._ack(items)
        if b is not None:
            self._after(b)

    def _decode(self, items: list[Item]) -> Batch:
        return decode_batch(items, self.prefix, self.stats, self._van_of)

    def _van_of(self, topic: str) -> str:
        """The van a topic belongs to ("" if it is not ``<prefix>/<van>/<anything>`` with
        a valid van id)."""
        return van_of(topic, self.prefix)

    def _store(self, b: Batch) -> bool:
        """Write the batch, retrying transient errors with backoff. False if the hub was
        stopped meanwhile (then nothing is acknowledged)."""
        delay = 0.5
        while True:
            try:
                stored = self._write(b)
                break
            except Exception as e:
                if not is_transient(e):
                    raise
                # Not acknowledged: the broker keeps the messages for the next attempt.
                self._last_error = f"{type(e).__name__}: {e}"
                if self._retry_since is None:
                    self._retry_since = time.monotonic()
                self.stats.store_errors += 1
                log.error(
                    "cannot store %d events (%s); retrying in %.1f s", len(b.events), e, delay
                )
                if self._stop.wait(delay):
                    self._retry_since = None
                    return False
                delay = min(delay * 2, 30.0)
        self._retry_since = None
        self.stats.batches += 1
        self.stats.events += len(b.events)
        self.stats.stored += stored
        dead = [(d, x) for d in b.msgs for x in d.dead if id(x) not in b.repeated]
        for d, x in dead:
            log.warning("dead letter (mqtt, %s): %s", d.item.topic[:200], x.reason[:300])
        if dead:
            self._note_dead(len(dead), [x.reason for _, x in dead])
        return True

    def _write(self, b: Batch) -> int:
        return write(self.store, b)

    def _keep_all(self, items: list[Item], reason: str) -> bool:
        """The last resort: every message of a failed batch as a dead letter. False (and
        not acknowledged) if even that cannot be written."""
        if not keep_all(self.store, items, reason, self._van_of):
            self._unkept += len(items)
            return False
        self._note_dead(len(items), [reason] * len(items))
        return True

    def _ack(self, items: list[Item]) -> None:
        client = self._client
        if client is None:
            return
        for it in items:
            # After a reconnect the broker sends unacknowledged messages again (and they
            # are stored again, changing nothing); acks of the old connection's packet
            # ids are not sent on the new one.
            if it.qos > 0 and it.generation == self._gen:
                client.ack(it.mid, it.qos)

    def _after(self, b: Batch) -> None:
        client = self._client
        if b.control and self.on_control is not None:
            try:
                self.on_control(self, b.control)
            except Exception:  # noqa: BLE001 - a handler must not stop the ingest
                log.exception("control handler failed")
        vans = set(b.vans)
        if self.homeassistant is not None and client is not None:
            try:
                for van in b.bridged:
                    self.homeassistant.set_bridged(client, van)
                if b.ha_online:
                    self.homeassistant.announce_all(client)
                self.homeassistant.announce_new(client, vans)
            except Exception:  # noqa: BLE001 - discovery must not stop the ingest
                log.exception("Home Assistant discovery failed")
        if self.on_batch is not None:
            try:
                self.on_batch(vans)
            except Exception:  # noqa: BLE001 - a listener must not stop the ingest
                log.exception("on_batch listener failed")
