"""The MQTT publisher: drains the store's outbox to the broker (paho-mqtt v2, QoS 1).

One thread (the *pump*) does everything: it runs paho's network I/O itself (its
own ``select`` over the broker socket and a wake-up socket, with paho's
``loop_read``/``loop_write``/``loop_misc``), so PUBACKs are handled where the messages are
sent, without hand-overs between threads:

- The pump reads unsent outbox rows by priority, then oldest first (counts, check-ins
  and stop visits before positions), publishes them and keeps at most ``max_inflight``
  messages unacknowledged. paho's own queue lives in memory only, so it is never handed
  more than that window; the durable queue is the outbox.
- A row is deleted from the outbox (``Store.mark_sent``) only when the PUBACK of the
  message that carried it arrives. After a disconnect everything not acknowledged is
  simply pending again and goes out on the next connection, with the same event id.
- Positions: while more than one is waiting (a backlog after an outage), the newest goes
  to ``<prefix>/<van>/location`` (retained, so the live map is current at once) and the
  older ones go oldest first in batches of ``track_batch`` to ``<prefix>/<van>/track``.
  A single fresh fix goes to ``location``. Footfall, check-ins and stop visits go one
  message each to ``footfall``, ``checkin`` and ``stop`` (not retained).
- Status: the last will is ``offline`` (retained, QoS 1) on ``<prefix>/<van>/status``;
  ``online`` (retained) is published on every connect and ``offline`` on a clean stop.
- Each connection is a fresh paho client: connect, and on any loss the pump waits an
  exponential backoff with jitter (``backoff_min`` doubling up to
  ``mqtt.reconnect_max_s``) before the next attempt; while nobody answers at all (the
  mobile link is down: timeouts, no route, no DNS) at most :data:`SILENT_RETRY_S`, so
  the box is back within seconds of the link. The broker socket gets TCP keepalive
  probes and TCP_USER_TIMEOUT (:func:`tune_socket`), so a link that dies silently
  (half-open TCP) is noticed within about 1.1 keepalives (docs/mobile-link.md has the
  measurements on the namespace test bed, deploy/netbed.py). A token bucket
  (``mqtt.rate_limit`` messages per second, one second of burst) paces every publish, so
  a backlog never floods a mobile link that has just come back.
- Every ``thin_every_s`` the outbox is kept within ``mqtt.outbox_max_rows``
  (``Store.thin_outbox``: old track points go first, counts and check-ins never).

Delivery to the hub (telemetry/tally.py): on every connect the pump subscribes (QoS 1)
to ``<prefix>/<van>/ack`` and ``<prefix>/<van>/plan``. It publishes the box's full
per-day tally (QoS 1, retained) on connect, after a resend has drained, at least every
``tally_max_s`` (a day), and when counts changed since the last full one at most every
``tally_full_s`` (30 min); in between, when the counts changed (at most every
``tally_min_s``, default 300 s), a tally of today only (not retained: the retained one
stays a full tally for a hub that subscribes), or the full one if an older day changed.
An ack goes to :meth:`telemetry.delivery.BoxDelivery.on_ack`, which re-enqueues what the
hub misses; a malformed ack is logged and ignored. A plan goes to the optional
``on_plan(payload: bytes)`` callback; its exceptions are logged, never raised.

The pump notices new outbox rows by polling ``PRAGMA data_version`` on its own read
connection every ``poll_s`` (20 ms by default, a memory read when nothing changed);
:meth:`Publisher.wake` (one byte on a socket pair) makes it look at once. Nothing raises
out of the thread: errors are logged, shown in :meth:`Publisher.stats` and retried.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import math
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from . import kinds, topics
from .config import DEFAULTS
from .delivery import BoxDelivery
from .errors import VanboxError
from .store import PRIORITY, Store
from .tally import DEFAULT_WINDOW_DAYS, RESEND_POSITION_PRIORITY

log = logging.getLogger("vanbox.publisher")

POSITION_PRIORITY = PRIORITY["position"]
OTHER_PRIORITIES = sorted({p for k, p in PRIORITY.items() if k != "position"})
QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux

ClientFactory = Callable[[str], mqtt.Client]


class PublisherError(VanboxError):
    """The publisher cannot be set up (unreadable password file, bad CA file...)."""


def default_client(client_id: str) -> mqtt.Client:
    """A fresh paho client for one connection: API v2, MQTT 3.1.1, clean session, and no
    automatic reconnect (the publisher reconnects itself, with jitter)."""
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
        reconnect_on_failure=False,
    )


def read_password(path: str) -> str:
    """The first line of ``mqtt.password_file`` (without its line end)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PublisherError(
            f"mqtt.password_file = {path!r}: cannot read it ({e.strerror or e}); put the broker"
            " password on its first line and make it readable by the vanbox user"
        ) from None
    except UnicodeDecodeError:
        raise PublisherError(f"mqtt.password_file = {path!r}: not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise PublisherError(
            f"mqtt.password_file = {path!r}: the first line is empty; put the password there"
        )
    return lines[0]


def tls_context(ca_file: str) -> ssl.SSLContext:
    """A verifying TLS client context (TLS 1.2 or later); ``ca_file`` empty = system CAs."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file or None)
    except FileNotFoundError:
        raise PublisherError(
            f"mqtt.ca_file = {ca_file!r}: no such file; give the path of the broker's CA"
            " certificate (PEM), or leave it empty to use the system's CAs"
        ) from None
    except (OSError, ssl.SSLError) as e:
        raise PublisherError(
            f"mqtt.ca_file = {ca_file!r}: cannot load it as a PEM CA certificate ({e})"
        ) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# A mobile link dies silently (packets vanish, no RST): the kernel's TCP timers notice it
# long before paho's keepalive does (up to 2 keepalives after the last packet in) or
# the default TCP retransmission limit (about 15 minutes).
SILENT_RETRY_S = 4.0  # retry at least this often while the broker does not answer at all
TCP_CONNECT_S = 6.0  # one connection attempt (TCP and TLS): SYNs at 0, 1 and 3 s


def user_timeout_s(keepalive: float) -> float:
    """TCP_USER_TIMEOUT for a keepalive (``mqtt.keepalive``): data unacknowledged this
    long, or no answer to TCP keepalive probes for this long, kills the connection. Half
    the keepalive, at least 10 s (a bad link's retransmission back-off must not end a
    healthy connection) and at most the keepalive: a dead link is noticed within
    about 1.1 keepalives, below the 1.5 after which the broker gives up on the box."""
    return max(0.5 * keepalive, min(float(keepalive), 10.0))


def tune_socket(sock: socket.socket, keepalive: float) -> None:
    """TCP keepalive probes after half a keepalive of silence and TCP_USER_TIMEOUT (see
    :func:`user_timeout_s`) on the broker connection. Linux options; elsewhere a no-op."""
    ut = user_timeout_s(keepalive)
    opts = [
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", None), max(1, int(keepalive / 2))),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", None), max(1, int(keepalive / 10))),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", None), 5),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", None), int(ut * 1000)),
    ]
    for level, opt, value in opts:
        if opt is None:
            continue
        try:
            sock.setsockopt(level, opt, value)
        except OSError:
            pass


def silent_failure(e: BaseException) -> bool:
    """A connection attempt nobody answered (timeout, no route, no DNS): the link is
    down, not the broker; retrying costs a few SYNs, so it is retried every few seconds."""
    if isinstance(e, socket.gaierror | TimeoutError | socket.timeout):
        return True
    return isinstance(e, OSError) and e.errno in {
        errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN,
        errno.EHOSTDOWN,
    }  # fmt: skip


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: a random delay in [d/2, d], d = min(cap, base*2^n)."""
    d = min(cap, base * (2 ** min(attempt, 30)))
    return d / 2 + rng.uniform(0, d / 2)


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = max(1.0, float(rate if burst is None else burst))
        self._clock = clock
        self._tokens = self.burst
        self._t = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
        self._t = now

    def available(self) -> int:
        self._refill()
        return int(self._tokens)

    def take(self, n: int = 1) -> None:
        self._tokens -= n

    def wait_time(self) -> float:
        """Seconds until one whole token is there."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate)


@dataclass
class _Msg:
    topic: str
    payload: str
    retain: bool
    seqs: list[int]
    location_seq: int | None = None  # the row sent to ``location``, if this is one


@dataclass
class _Conn:
    """The state of one connection; thrown away with it."""

    gen: int
    client: mqtt.Client
    opened: float
    connected: bool = False
    connected_at: float = 0.0
    acks: int = 0
    lost: bool = False
    inflight: dict[int, _Msg] = field(default_factory=dict)
    cursor: dict[int, int] = field(default_factory=dict)  # priority -> last seq handed out
    extra: set[int] = field(default_factory=set)  # positions sent ahead of the cursor
    more: bool = True  # the last look at the outbox may have left rows behind


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
        self.on_plan = on_plan
        # mqtt.reconcile_days / mqtt.tally_interval_s (validated in telemetry/config.py;
        # the defaults here serve callers that pass a partial mqtt section).
        self.delivery: BoxDelivery | None = (
            BoxDelivery(
                store,
                window_days=int(cfg.get("reconcile_days", DEFAULT_WINDOW_DAYS)),
                backoff_s=resend_backoff_s,
            )
            if reconcile
            else None
        )
        self.tally_min_s = float(
            tally_min_s if tally_min_s is not None else cfg.get("tally_interval_s", 300.0)
        )
        self.tally_max_s = float(tally_max_s)
        self.tally_full_s = float(tally_full_s)
        self._tally_due = False
        self._tally_at = -math.inf
        self._full_at = -math.inf
        self._full_mark = -1
        self._tally_mark = -1
        self._resend_waiting = False
        self._tallies = 0
        self._acks_in = 0
        self._bad_acks = 0
        self._plans_in = 0

        self._rng = random.Random()
        self._bucket = TokenBucket(self.rate_limit)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._acks: collections.deque[tuple[int, int, bool]] = collections.deque()
        self._gen = 0
        self._conn: _Conn | None = None
        self._attempt = 0
        self._next_attempt = 0.0
        self._next_thin = 0.0
        self._next_refresh = 0.0
        self._ever_connected = False
        self._acked_rows: list[int] = []
        self._acked_since = 0.0
        self._location_acked = 0  # highest outbox seq whose location message was acked
        self._data_version: int | None = None
        # figures for stats()
        self._sent = 0
        self._acked = 0
        self._rows_acked = 0
        self._reconnects = 0
        self._thinned = 0
        self._last_error: str | None = None
        self._depth = 0
        self._oldest: float | None = None

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
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken (buffer full) or closed

    def request_tally(self, *, full: bool = False) -> None:
        """Publish a tally at the next chance as if its interval had passed: the full one
        (retained) with ``full``, else the changed days, if any (safe from any thread; the
        benchmark replays a day's tallies in compressed time with it)."""
        if full:
            self._tally_due = True
        else:
            self._tally_at = -math.inf
        self.wake()

    @property
    def connected(self) -> bool:
        c = self._conn
        return bool(c and c.connected and not c.lost)

    def stats(self) -> dict[str, Any]:
        c = self._conn
        oldest = self._oldest
        return {
            "connected": self.connected,
            "broker": f"{self.host}:{self.port}",
            "sent": self._sent,
            "acked": self._acked,
            "rows_acked": self._rows_acked,
            "inflight": len(c.inflight) if c else 0,
            "reconnects": self._reconnects,
            "last_error": self._last_error,
            "outbox_depth": max(0, self._depth - len(self._acked_rows)),
            "oldest_age_s": None if oldest is None else round(max(0.0, time.time() - oldest), 1),
            "thinned": self._thinned,
            "tallies": self._tallies,
            "acks_received": self._acks_in,
            "bad_acks": self._bad_acks,
            "resent": self.delivery.resent if self.delivery else 0,
            "plans_received": self._plans_in,
        }

    # --- paho callbacks (called by paho inside loop_read/loop_misc, in the pump) -----

    def _on_connect(self, gen: int, client: mqtt.Client, rc: Any) -> None:
        c = self._conn
        if c is None or c.gen != gen:
            return
        if rc.is_failure:
            self._last_error = f"broker refused the connection: {rc}"
            c.lost = True
        else:
            client.publish(self.status_topic, topics.ONLINE, qos=1, retain=True)
            subs = [(self._topic["plan"], 1)]
            if self.delivery is not None:
                subs.append((self._topic["ack"], 1))
                self._tally_due = True
            client.subscribe(subs)
            c.connected = True
            c.connected_at = time.monotonic()
            if self._ever_connected:
                self._reconnects += 1
            self._ever_connected = True
            log.info("connected to %s:%d", self.host, self.port)

    def _on_disconnect(self, gen: int, rc: Any) -> None:
        c = self._conn
        if c is not None and c.gen == gen:
            if self._stopping.is_set() or c.lost:
                pass  # the reason is known already (refused, or our own stop)
            elif c.connected:
                self._last_error = f"disconnected: {rc}"
            else:
                self._last_error = f"connection closed before CONNACK: {rc}"
            c.lost = True

    def _on_publish(self, gen: int, mid: int, rc: Any) -> None:
        self._acks.append((gen, mid, bool(getattr(rc, "is_failure", False))))

    def _on_message(self, gen: int, msg: mqtt.MQTTMessage) -> None:
        """An ack or a plan for this van (nothing else is subscribed)."""
        c = self._conn
        if c is None or c.gen != gen:
            return
        if msg.topic == self._topic["plan"]:
            self._plans_in += 1
            if self.on_plan is not None:
                try:
                    self.on_plan(bytes(msg.payload))
                except Exception:  # noqa: BLE001 - a plan handler must not stop publishing
                    log.exception("the plan handler failed")
            return
        if msg.topic != self._topic["ack"] or self.delivery is None:
            return
        self._acks_in += 1
        try:
            added = self.delivery.on_ack(msg.payload)
        except VanboxError as e:  # PayloadError: malformed, StoreError: cannot write
            self._bad_acks += 1
            log.warning("ack from the hub ignored: %s", e)
            return
        except Exception:  # noqa: BLE001 - e.g. sqlite3.Error
            self._bad_acks += 1
            log.exception("cannot handle the hub's ack")
            return
        if added:
            self._resend_waiting = True
            c.more = True

    def _maybe_tally(self, c: _Conn, now: float) -> None:
        """Publish the tally when it is due (see the module docstring): the full one,
        retained, on connect, after a resend and daily; in between, when counts changed
        (at most every ``tally_min_s``), only the days that changed, not retained."""
        if self.delivery is None or not c.connected or c.lost:
            return
        mark = self._rows_acked + self._thinned + self.delivery.resent
        if self._resend_waiting and not c.inflight and not c.more:
            self._tally_due = True
            self._resend_waiting = False
        full = (
            self._tally_due
            or now - self._full_at >= self.tally_max_s
            or (mark != self._full_mark and now - self._full_at >= self.tally_full_s)
        )
        if not full and (mark == self._tally_mark or now - self._tally_at < self.tally_min_s):
            return
        if self._bucket.available() < 1:
            return
        self._drain_acks()
        self._flush_acked(force=True)
        got = self.delivery.next_tally(full=full)
        self._tally_mark = self._rows_acked + self._thinned + self.delivery.resent
        self._tally_at = now
        if got is None:
            return  # nothing changed in the counts
        payload, full = got
        info = c.client.publish(self._topic["tally"], payload, qos=1, retain=full)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._last_error = f"publish failed: {mqtt.error_string(info.rc)}"
            c.lost = True
            return
        self._bucket.take()
        if full:
            self._tally_due = False
            self._full_at = now
            self._full_mark = self._tally_mark
        self._tallies += 1

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
            removed = self.store.thin_outbox(self.outbox_max_rows)
            if removed:
                self._thinned += removed
                log.warning("outbox over %d rows: thinned %d old track points",
                            self.outbox_max_rows, removed)  # fmt: skip
        if now >= self._next_refresh:
            self._next_refresh = now + 1.0
            self._refresh_figures()
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
        wait = self._fill(c)
        self._maybe_tally(c, now)
        return wait

    def _io(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the broker socket or a wake-up, then let paho read,
        write and keep the connection alive (its callbacks run here)."""
        c = self._conn
        sock = c.client.socket() if c is not None else None
        rl: list = [self._wake_r]
        wl: list = []
        pending = False
        if sock is not None:
            rl.append(sock)
            if c.client.want_write():
                wl.append(sock)
            pending = bool(getattr(sock, "pending", None) and sock.pending())
        r, w, _ = select.select(rl, wl, [], 0.0 if pending else max(0.0, timeout))
        if self._wake_r in r:
            try:
                while self._wake_r.recv(4096):
                    pass
            except (BlockingIOError, OSError):
                pass
        if c is None or sock is None:
            return
        cl = c.client
        ok = MQTTErrorCode.MQTT_ERR_SUCCESS
        if sock in r or pending:
            if cl.loop_read() != ok:
                c.lost = True
            elif QUICKACK is not None:
                # Acknowledge at once: brokers with Nagle on (mosquitto's default) hold
                # back further PUBACKs until our TCP ACK, which Linux delays up to 40 ms.
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
                except OSError:
                    pass
        if cl.want_write() and cl.loop_write() != ok:
            c.lost = True
        if cl.loop_misc() != ok:
            c.lost = True
        self._drain_acks()

    def _open(self) -> None:
        self._gen += 1
        gen = self._gen
        client = self._factory(self.client_id)
        client.on_connect = lambda cl, _u, _f, rc, _p: self._on_connect(gen, cl, rc)
        client.on_disconnect = lambda _c, _u, _f, rc, _p: self._on_disconnect(gen, rc)
        client.on_publish = lambda _c, _u, mid, rc, _p: self._on_publish(gen, mid, rc)
        client.on_message = lambda _c, _u, msg: self._on_message(gen, msg)
        client.will_set(self.status_topic, topics.OFFLINE, qos=1, retain=True)
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self._ssl is not None:
            client.tls_set_context(self._ssl)
        # publish() only queues; the pump writes the whole burst at once in _io
        client.on_socket_register_write = lambda _c, _u, _s: None
        client.max_inflight_messages_set(self.max_inflight + 4)
        client.max_queued_messages_set(0)
        client.connect_timeout = min(self.connect_timeout, TCP_CONNECT_S)
        self._conn = _Conn(gen, client, time.monotonic())
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
            try:
                c.client.disconnect()  # queues DISCONNECT (no will); writing it closes
                c.client.loop_write()
            except Exception:  # noqa: BLE001
                pass
            try:
                sock = c.client.socket()
                if sock is not None:
                    sock.close()
            except Exception:  # noqa: BLE001
                pass
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
            if c is None or gen != c.gen:
                continue
            m = c.inflight.pop(mid, None)
            if m is None:
                continue  # the status message
            if failed:
                self._last_error = f"broker rejected a message on {m.topic}"
                c.lost = True  # retry it on a new connection, after a backoff
                continue
            c.acks += 1
            self._acked += 1
            if not self._acked_rows:
                self._acked_since = time.monotonic()
            self._acked_rows.extend(m.seqs)
            if m.location_seq is not None:
                self._location_acked = max(self._location_acked, m.location_seq)
            c.more = True

    def _flush_acked(self, *, force: bool) -> None:
        if not self._acked_rows:
            return
        c = self._conn
        idle = self.ack_flush_s <= 0.25 and (c is None or not (c.inflight or c.more))
        # One transaction per batch of acknowledgements, at most every ``ack_flush_s``
        # (the box: 10 s, fewer WAL writes on the SD card); after a power cut the few
        # acknowledged but unmarked rows are simply sent again (same ids).
        if not (
            force
            or idle
            or len(self._acked_rows) >= 1000
            or time.monotonic() - self._acked_since >= self.ack_flush_s
        ):
            return
        rows, self._acked_rows = self._acked_rows, []
        self.store.mark_sent_relaxed(rows)
        self._rows_acked += len(rows)

    def _refresh_figures(self) -> None:
        r = self.store.reader().execute("SELECT count(*), min(created) FROM outbox").fetchone()
        self._depth, self._oldest = r[0], r[1]

    def _outbox_changed(self) -> bool:
        v = self.store.reader().execute("PRAGMA data_version").fetchone()[0]
        changed = v != self._data_version
        self._data_version = v
        return changed

    def _fill(self, c: _Conn) -> float:
        """Publish while the window and the token bucket allow."""
        if self._outbox_changed():
            c.more = True
        if not c.more:
            return self.poll_s
        free = self.max_inflight - len(c.inflight)
        if free <= 0 or (c.inflight and free < self._refill_at):
            return self.poll_s  # wait for more PUBACKs: fewer, larger refills
        allowed = min(free, self._bucket.available())
        if allowed <= 0:
            return min(self._bucket.wait_time(), self.poll_s)
        msgs = self._next_messages(c, allowed)
        if len(msgs) < allowed:
            c.more = False  # everything pending is out
        for m in msgs:
            info = c.client.publish(m.topic, m.payload, qos=1, retain=m.retain)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._last_error = f"publish failed: {mqtt.error_string(info.rc)}"
                c.lost = True
                return 0.0
            c.inflight[info.mid] = m
            self._sent += 1
            self._bucket.take()
        return 0.0 if c.more and len(c.inflight) < self.max_inflight else self.poll_s

    # --- choosing what to send ------------------------------------------------------

    def _next_messages(self, c: _Conn, n: int) -> list[_Msg]:
        db = self.store.reader()
        out: list[_Msg] = []
        for prio in OTHER_PRIORITIES:
            if len(out) >= n:
                return out
            rows = db.execute(
                "SELECT seq, kind, payload FROM outbox WHERE priority = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (prio, c.cursor.get(prio, 0), n - len(out)),
            ).fetchall()
            for seq, kind, payload in rows:
                ek = kinds.named(kind)
                if ek is None or ek.topic not in self._topic:  # a newer schema's kind:
                    log.error("outbox row %d has unknown kind %r; skipping it", seq, kind)
                    continue  # leave the row for a newer publisher
                out.append(_Msg(self._topic[ek.topic], payload, False, [seq]))
            if rows:
                c.cursor[prio] = rows[-1][0]
        if len(out) < n:
            out.extend(self._position_messages(c, n - len(out)))
        if len(out) < n:
            out.extend(self._resent_track_messages(c, n - len(out)))
        return out

    def _resent_track_messages(self, c: _Conn, n: int) -> list[_Msg]:
        """Track points re-sent for the hub: ``track`` batches only, never ``location``."""
        prio = RESEND_POSITION_PRIORITY
        rows = (
            self.store.reader()
            .execute(
                "SELECT seq, payload FROM outbox WHERE priority = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (prio, c.cursor.get(prio, 0), n * self.track_batch),
            )
            .fetchall()
        )
        out: list[_Msg] = []
        for i in range(0, len(rows), self.track_batch):
            chunk = rows[i : i + self.track_batch]
            points = [json.loads(p) for _, p in chunk]
            payload = topics.dumps(topics.track_payload(points, self.tid))
            out.append(_Msg(self._topic["track"], payload, False, [s for s, _ in chunk]))
        if rows:
            c.cursor[prio] = rows[-1][0]
        return out

    def _position_messages(self, c: _Conn, n: int) -> list[_Msg]:
        db = self.store.reader()
        cur = c.cursor.get(POSITION_PRIORITY, 0)
        newest = db.execute(
            "SELECT seq, payload FROM outbox WHERE priority = ? ORDER BY seq DESC LIMIT 1",
            (POSITION_PRIORITY,),
        ).fetchone()
        if newest is None or newest[0] <= cur:
            return []
        c.extra = {s for s in c.extra if s > cur}
        limit = n * self.track_batch + len(c.extra)
        raw = db.execute(
            "SELECT seq, payload FROM outbox WHERE priority = ? AND seq > ? AND seq < ?"
            " ORDER BY seq LIMIT ?",
            (POSITION_PRIORITY, cur, newest[0], limit),
        ).fetchall()
        complete = len(raw) < limit  # every pending fix older than the newest is in raw
        older = [r for r in raw if r[0] not in c.extra]
        out: list[_Msg] = []
        if newest[0] > cur and newest[0] not in c.extra:
            if newest[0] > self._location_acked:
                out.append(_Msg(self._topic["location"], newest[1], True, [newest[0]], newest[0]))
                c.extra.add(newest[0])
            else:
                older.append(newest)  # a newer fix already went out as the location
        while older and len(out) < n:
            chunk, older = older[: self.track_batch], older[self.track_batch :]
            points = [json.loads(p) for _, p in chunk]
            payload = topics.dumps(topics.track_payload(points, self.tid))
            out.append(_Msg(self._topic["track"], payload, False, [s for s, _ in chunk]))
            c.cursor[POSITION_PRIORITY] = chunk[-1][0]
        if complete and not older and newest[0] in c.extra:
            c.cursor[POSITION_PRIORITY] = max(c.cursor.get(POSITION_PRIORITY, 0), newest[0])
        return out

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
