"""The publisher's link to the broker: paho clients, credentials, TLS, socket tuning for a
mobile link, reconnect backoff, pacing, and one round of paho's network I/O.

- Each connection is a fresh paho client (:func:`default_client`: API v2, MQTT 3.1.1,
  clean session, no automatic reconnect). On any loss the publisher waits an
  exponential backoff with jitter (:func:`backoff_delay`: ``backoff_min`` doubling up to
  ``mqtt.reconnect_max_s``) before the next attempt; while nobody answers at all (the
  mobile link is down: timeouts, no route, no DNS; :func:`silent_failure`) at most
  :data:`SILENT_RETRY_S`, so the box is back within seconds of the link.
- The broker socket gets TCP keepalive probes and TCP_USER_TIMEOUT (:func:`tune_socket`),
  so a link that dies silently (half-open TCP) is noticed within about 1.1 keepalives
  (docs/mobile-link.md has the measurements on the namespace test bed, deploy/netbed.py).
- A token bucket (:class:`TokenBucket`: ``mqtt.rate_limit`` messages per second, one
  second of burst) paces every publish, so a backlog never floods a mobile link that has
  just come back.
- :func:`pump_io` runs paho's network I/O in the caller's thread (its own ``select`` over
  the broker socket and a wake-up socket, with paho's ``loop_read``/``loop_write``/
  ``loop_misc``), so PUBACKs are handled where the messages are sent.

The publisher (telemetry/publisher.py) reads :func:`tune_socket`, :data:`SILENT_RETRY_S`
and :data:`TCP_CONNECT_S` through its own module, where the test bed's baseline
(deploy/netbed/netbed_van.py) replaces them.
"""

from __future__ import annotations

import errno
import random
import select
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from .errors import VanboxError

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


def configure_client(
    client: mqtt.Client,
    *,
    will_topic: str,
    will: str,
    username: str,
    password: str | None,
    tls: ssl.SSLContext | None,
    max_inflight: int,
    connect_timeout: float,
) -> None:
    """Set up a fresh client for one connection: the last will (retained, QoS 1), the
    credentials and TLS if any; paho may hold ``max_inflight`` messages unacknowledged
    (plus a few for status and tally) and queues none beyond that; ``publish()`` only
    queues, the caller writes the whole burst at once (:func:`pump_io`)."""
    client.will_set(will_topic, will, qos=1, retain=True)
    if username:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls)
    client.on_socket_register_write = lambda _c, _u, _s: None
    client.max_inflight_messages_set(max_inflight + 4)
    client.max_queued_messages_set(0)
    client.connect_timeout = connect_timeout


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


class WakeUp:
    """A socket pair: :meth:`set` (from any thread) wakes up a :func:`pump_io` waiting on
    :attr:`reader`."""

    def __init__(self) -> None:
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)

    def set(self) -> None:
        try:
            self._writer.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken (buffer full) or closed


def pump_io(
    client: mqtt.Client | None, wake: socket.socket, timeout: float, on_lost: Callable[[], None]
) -> None:
    """Wait up to ``timeout`` for the broker socket of ``client`` (None: no connection) or
    a byte on ``wake`` (non-blocking; drained here), then let paho read, write and keep the
    connection alive (its callbacks run here); ``on_lost()`` each time paho reports the
    connection lost."""
    sock = client.socket() if client is not None else None
    rl: list = [wake]
    wl: list = []
    pending = False
    if client is not None and sock is not None:
        rl.append(sock)
        if client.want_write():
            wl.append(sock)
        pending = bool(getattr(sock, "pending", None) and sock.pending())
    r, w, _ = select.select(rl, wl, [], 0.0 if pending else max(0.0, timeout))
    if wake in r:
        try:
            while wake.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
    if client is None or sock is None:
        return
    ok = MQTTErrorCode.MQTT_ERR_SUCCESS
    if sock in r or pending:
        if client.loop_read() != ok:
            on_lost()
        elif QUICKACK is not None:
            # Acknowledge at once: brokers with Nagle on (mosquitto's default) hold
            # back further PUBACKs until our TCP ACK, which Linux delays up to 40 ms.
            try:
                sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            except OSError:
                pass
    if client.want_write() and client.loop_write() != ok:
        on_lost()
    if client.loop_misc() != ok:
        on_lost()
