"""The MQTT publisher: drains the store's outbox to the broker (paho-mqtt v2, QoS 1).

One thread (the *pump*) does everything: it runs paho's network I/O itself
(:func:`telemetry.mqtt_link.pump_io`), so PUBACKs are handled where the messages are
sent, without hand-overs between threads:

- The pump takes messages from the outbox (telemetry/publish_queue.py: by priority,
  positions batched), publishes them and keeps at most ``max_inflight`` messages
  unacknowledged, paced by a token bucket (``mqtt.rate_limit``).
- A row is deleted from the outbox (``Store.mark_sent_relaxed``) only when the PUBACK of
  the message that carried it arrives, in one transaction per batch, at most every
  ``ack_flush_s``. After a disconnect everything not acknowledged is simply pending
  again and goes out on the next connection, with the same event id.
- Status: the last will is ``offline`` (retained, QoS 1) on ``<prefix>/<van>/status``;
  ``online`` (retained) is published on every connect and ``offline`` on a clean stop.
- Each connection is a fresh paho client; on any loss the pump reconnects after a
  backoff, a short one while the mobile link is down, and the broker socket is tuned
  to notice a silently dead link (telemetry/mqtt_link.py).
- Every ``thin_every_s`` the outbox is kept within ``mqtt.outbox_max_rows``
  (``Store.thin_outbox``: old track points go first, counts and check-ins never).
- Delivery to the hub: the tally, the hub's acks and plans (telemetry/hub_exchange.py).

The pump notices new outbox rows by polling ``PRAGMA data_version`` on its own read
connection every ``poll_s`` (20 ms by default, a memory read when nothing changed);
:meth:`Publisher.wake` (one byte on a socket pair) makes it look at once. Nothing raises
out of the thread: errors are logged, shown in :meth:`Publisher.stats` and retried.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from . import kinds, topics
from .config import DEFAULTS
from .hub_exchange import HubExchange

# The pump reads tune_socket, SILENT_RETRY_S and TCP_CONNECT_S through this module: the
# test bed's baseline (deploy/netbed/netbed_van.py) replaces them here.
from .mqtt_link import (
    SILENT_RETRY_S,
    TCP_CONNECT_S,
    ClientFactory,
    TokenBucket,
    WakeUp,
    backoff_delay,
    configure_client,
    default_client,
    pump_io,
    read_password,
    silent_failure,
    tls_context,
    tune_socket,
)

# Re-exported: callers and tests import them from here.
from .mqtt_link import PublisherError as PublisherError
from .mqtt_link import user_timeout_s as user_timeout_s
from .publish_queue import OutboxLedger, PublishQueue
from .publish_session import Session
from .store import Store

log = logging.getLogger("vanbox.publisher")


class Publisher:
    """Publishes the outbox of ``store`` to the broker of ``mqtt_cfg`` (the ``[mqtt]``
    section of the configuration) as van ``van`` with OwnTracks tracker id ``tid``.

    ``client_factory(client_id)`` makes a fresh paho client (API v2, no automatic
    reconnect) for each connection; the default is :func:`default_client`.
    Raises :class:`PublisherError` at once if the password or CA file is unusable.
    """

    def __init__(
        self,
        store: Store,
        mqtt_cfg: dict[str, Any],
        *,
        van: str,
        tid: str,
        client_factory: ClientFactory | None = None,
        track_batch: int = 50,
        max_inflight: int = 50,
        backoff_min: float = 0.5,
        backoff_max: float | None = None,
        thin_every_s: float = 60.0,
        poll_s: float = 0.02,
        connect_timeout: float = 10.0,
        stop_drain_s: float = 1.0,
        on_plan: Callable[[bytes], None] | None = None,
        reconcile: bool = True,
        tally_min_s: float | None = None,
        tally_max_s: float = 86_400.0,
        tally_full_s: float = 1800.0,
        resend_backoff_s: float = 600.0,
        ack_flush_s: float = 0.25,
    ) -> None:
        cfg = {**DEFAULTS["mqtt"], **mqtt_cfg}
        if track_batch < 1 or max_inflight < 1:
            raise ValueError("track_batch and max_inflight must be at least 1")
        self.store = store
        self.van = van
        self.tid = tid
        self.cfg = cfg
        self.host: str = cfg["host"]
        self.port = int(cfg["port"])
        self.keepalive = int(cfg["keepalive"])
        self.prefix: str = cfg["topic_prefix"]
        self.client_id: str = cfg["client_id"] or f"vanbox-{van}"
        self.outbox_max_rows = int(cfg["outbox_max_rows"])
        self.rate_limit = float(cfg["rate_limit"])
        self.track_batch = int(track_batch)
        self.max_inflight = int(max_inflight)
        self.backoff_min = float(backoff_min)
        self.backoff_max = float(
            backoff_max if backoff_max is not None else cfg.get("reconnect_max_s", 60.0)
        )
        self.thin_every_s = float(thin_every_s)
        self.poll_s = float(poll_s)
        self.connect_timeout = float(connect_timeout)
        self.stop_drain_s = float(stop_drain_s)
        self.ack_flush_s = float(ack_flush_s)
        self.username: str = cfg["username"]
        self.password: str | None = (
            read_password(cfg["password_file"]) if cfg["password_file"] else None
        )
        self._ssl = tls_context(cfg["ca_file"]) if cfg["tls"] else None
        self._factory = client_factory or default_client
        self._refill_at = max(1, self.max_inflight // 4)
        self.status_topic = topics.topic(self.prefix, van, "status")
        names = (*topics.KINDS, *(k.topic for k in kinds.registered()))
        self._topic = {k: topics.topic(self.prefix, van, k) for k in names}
        self.hub = HubExchange.for_box(
            store,
            cfg,
            self._topic,
            on_plan,
            reconcile=reconcile,
            resend_backoff_s=resend_backoff_s,
            tally_min_s=tally_min_s,
            tally_max_s=tally_max_s,
            tally_full_s=tally_full_s,
        )
        self.delivery = self.hub.delivery
        self._rng = random.Random()
        self._bucket = TokenBucket(self.rate_limit)
        self._wake = WakeUp()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._acks: collections.deque[tuple[int, int, bool]] = collections.deque()
        self._gen = 0
        self._conn: Session | None = None
        self._attempt = 0
        self._next_attempt = 0.0
        self._next_thin = 0.0
        self._next_refresh = 0.0
        self._ever_connected = False
        self._ledger = OutboxLedger(store, ack_flush_s)
        # figures for stats()
        self._reconnects = 0
        self._last_error: str | None = None

    # --- public -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="vanbox-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly: wait briefly for in-flight PUBACKs, publish ``offline``
        (retained), disconnect."""
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Look at the outbox now (call after recording an event; safe from any thread)."""
        self._wake.set()

    def request_tally(self, *, full: bool = False) -> None:
        """Publish a tally at the next chance as if its interval had passed: the full one
        (retained) with ``full``, else the changed days, if any (safe from any thread; the
        benchmark replays a day's tallies in compressed time with it)."""
        self.hub.request(full=full)
        self.wake()

    @property
    def connected(self) -> bool:
        c = self._conn
        return bool(c and c.connected and not c.lost)

    def stats(self) -> dict[str, Any]:
        c = self._conn
        led = self._ledger
        oldest = led.oldest
        return {
            "connected": self.connected,
            "broker": f"{self.host}:{self.port}",
            "sent": led.sent,
            "acked": led.acked,
            "rows_acked": led.rows_acked,
            "inflight": len(c.inflight) if c else 0,
            "reconnects": self._reconnects,
            "last_error": self._last_error,
            "outbox_depth": max(0, led.depth - len(led.pending)),
            "oldest_age_s": None if oldest is None else round(max(0.0, time.time() - oldest), 1),
            "thinned": led.thinned,
            "tallies": self.hub.tallies,
            "acks_received": self.hub.acks_in,
            "bad_acks": self.hub.bad_acks,
            "resent": self.delivery.resent if self.delivery else 0,
            "plans_received": self.hub.plans_in,
        }

    # --- paho callbacks (called by paho inside loop_read/loop_misc, in the pump) -----

    def _on_connect(self, gen: int, rc: Any) -> None:
        c = self._conn
        if c is None or c.gen != gen:
            return
        if c.connack(rc, self.status_topic, self.hub.subscriptions):
            if self._ever_connected:
                self._reconnects += 1
            self._ever_connected = True
            log.info("connected to %s:%d", self.host, self.port)

    def _on_disconnect(self, gen: int, rc: Any) -> None:
        c = self._conn
        if c is not None and c.gen == gen:
            c.disconnected(rc, stopping=self._stopping.is_set())

    def _on_publish(self, gen: int, mid: int, rc: Any) -> None:
        self._acks.append((gen, mid, bool(getattr(rc, "is_failure", False))))

    def _on_message(self, gen: int, msg: mqtt.MQTTMessage) -> None:
        """An ack or a plan for this van (nothing else is subscribed)."""
        c = self._conn
        if c is None or c.gen != gen:
            return
        if self.hub.on_message(msg.topic, msg.payload):
            c.more = True  # the hub asked for rows again

    def _maybe_tally(self, c: Session, now: float) -> None:
        """Publish the tally when it is due (telemetry/hub_exchange.py): the full one,
        retained, on connect, after a resend and daily; in between, when counts changed
        (at most every ``tally_min_s``), only the days that changed, not retained."""
        if self.delivery is None or not c.connected or c.lost:
            return
        led, delivery = self._ledger, self.delivery
        mark = led.rows_acked + led.thinned + delivery.resent  # changes with the counts
        full = self.hub.tally_wanted(now, mark, idle=c.idle)
        if full is None or self._bucket.available() < 1:
            return
        self._drain_acks()
        self._flush_acked(force=True)
        got = delivery.next_tally(full=full)
        self.hub.asked(now, led.rows_acked + led.thinned + delivery.resent)
        if got is None:
            return  # nothing changed in the counts
        payload, full = got
        if c.publish(self._topic["tally"], payload, retain=full) is not None:
            self._bucket.take()
            self.hub.published(now, full=full)

    # --- the pump -------------------------------------------------------------------

    def _run(self) -> None:
        log.info("publishing to %s:%d as %s", self.host, self.port, self.client_id)
        while not self._stopping.is_set():
            try:
                self._io(self._step())
            except Exception as e:  # noqa: BLE001 - the thread must survive anything
                log.exception("publisher error; retrying")
                self._last_error = f"{type(e).__name__}: {e}"
                try:
                    self._close(reconnect=True)
                except Exception:  # noqa: BLE001
                    self._conn = None
                self._stopping.wait(1.0)
        try:
            self._shutdown()
        except Exception:  # noqa: BLE001
            log.exception("error while stopping the publisher")

    def _step(self) -> float:
        """One round of work; returns how long to sleep unless woken."""
        now = time.monotonic()
        self._drain_acks()
        self._flush_acked(force=False)
        if now >= self._next_thin:
            self._next_thin = now + self.thin_every_s
            self._ledger.thin(self.outbox_max_rows)
        if now >= self._next_refresh:
            self._next_refresh = now + 1.0
            self._ledger.refresh()
        c = self._conn
        if c is None:
            if now < self._next_attempt:
                return min(self._next_attempt - now, 1.0)
            self._open()
            return self.poll_s
        if c.lost:
            self._close(reconnect=True)
            return min(max(0.0, self._next_attempt - time.monotonic()), 1.0)
        if not c.connected:
            if now - c.opened > self.connect_timeout:
                self._last_error = f"no CONNACK from {self.host}:{self.port} in time"
                self._close(reconnect=True)
            return self.poll_s
        wait = c.fill(self.max_inflight, self._refill_at, self.poll_s)
        self._maybe_tally(c, now)
        return wait

    def _io(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the broker socket or a wake-up, then let paho read,
        write and keep the connection alive (its callbacks run here)."""
        c = self._conn
        if c is None:
            pump_io(None, self._wake.reader, timeout, on_lost=lambda: None)
        else:
            pump_io(c.client, self._wake.reader, timeout, on_lost=c.set_lost)
        self._drain_acks()

    def _open(self) -> None:
        self._gen += 1
        gen = self._gen
        client = self._factory(self.client_id)
        client.on_connect = lambda _c, _u, _f, rc, _p: self._on_connect(gen, rc)
        client.on_disconnect = lambda _c, _u, _f, rc, _p: self._on_disconnect(gen, rc)
        client.on_publish = lambda _c, _u, mid, rc, _p: self._on_publish(gen, mid, rc)
        client.on_message = lambda _c, _u, msg: self._on_message(gen, msg)
        configure_client(
            client,
            will_topic=self.status_topic,
            will=topics.OFFLINE,
            username=self.username,
            password=self.password,
            tls=self._ssl,
            max_inflight=self.max_inflight,
            connect_timeout=min(self.connect_timeout, TCP_CONNECT_S),
        )
        queue = PublishQueue(self.store, self._topic, self.tid, self.track_batch)
        self._conn = Session(gen, client, queue, self._ledger, self._bucket, self._report)
        try:
            client.connect(self.host, self.port, self.keepalive)
        except (OSError, ValueError) as e:
            again = self._last_error == (err := f"cannot connect to {self.host}:{self.port}: {e}")
            self._last_error = err
            # a new reason once in the journal (on the SD card), not every few seconds
            log.log(logging.DEBUG if again else logging.INFO, "%s", err)
            # Nobody answered: the link is down; look again soon, so the box is back
            # within seconds of the link (a refusing broker gets the full backoff).
            self._close(reconnect=True, cap=SILENT_RETRY_S if silent_failure(e) else None)
            return
        sock = client.socket()
        if sock is not None:
            tune_socket(sock, self.keepalive)  # type: ignore[arg-type]

    def _close(self, *, reconnect: bool, cap: float | None = None) -> None:
        """Drop the connection; rows not acknowledged are pending again."""
        c = self._conn
        if c is None:
            return
        try:
            self._drain_acks()
            self._flush_acked(force=True)
        finally:
            self._conn = None
            c.close()
        if c.connected:
            if c.acks or time.monotonic() - c.connected_at >= 10.0:
                self._attempt = 0  # it worked for a while: start the backoff afresh
            if reconnect:
                log.warning("connection to %s:%d lost (%s)", self.host, self.port,
                            self._last_error)  # fmt: skip
        if reconnect:
            cap = self.backoff_max if cap is None else min(cap, self.backoff_max)
            delay = backoff_delay(self._attempt, self.backoff_min, cap, self._rng)
            self._attempt += 1
            self._next_attempt = time.monotonic() + delay

    def _drain_acks(self) -> None:
        c = self._conn
        while self._acks:
            gen, mid, failed = self._acks.popleft()
            if c is not None and gen == c.gen:
                c.settle(mid, failed)

    def _flush_acked(self, *, force: bool) -> None:
        c = self._conn
        self._ledger.flush(force=force, idle=c is None or c.idle)

    def _report(self, error: str) -> None:
        self._last_error = error

    # --- stopping -------------------------------------------------------------------

    def _shutdown(self) -> None:
        c = self._conn
        if c is not None and c.connected and not c.lost:
            deadline = time.monotonic() + self.stop_drain_s
            while c.inflight and not c.lost and time.monotonic() < deadline:
                self._io(0.05)
            self._flush_acked(force=True)
            info = c.client.publish(self.status_topic, topics.OFFLINE, qos=1, retain=True)
            deadline = time.monotonic() + 2.0
            while not info.is_published() and not c.lost and time.monotonic() < deadline:
                self._io(0.05)
        self._close(reconnect=False)
        log.info("publisher stopped")
