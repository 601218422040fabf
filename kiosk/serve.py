"""The one web server of box and hub: waitress, tuned to survive idle and slow clients.

``make_server(app, host=..., port=..., role="box"|"hub", threads=...)`` returns a
waitress server (``.run()``, ``.close()``, ``.effective_port``) with these rules:

- ``poll()`` instead of ``select()``: ``select()`` cannot watch a file descriptor above
  1023, so about 1,000 open connections used to crash the whole process.
- At start the soft limit of open files (RLIMIT_NOFILE) is raised to the hard limit,
  and the connection limit is kept below it (with a reserve for the database, MQTT and
  logs), so ``accept()`` never fails with EMFILE.
- At the connection limit the server does not stop accepting (which made the box
  unreachable with about 120 slow clients): it closes the connections that have been
  idle longest, that is, those with no request being served, oldest activity first
  (those still sending a response to a client that does not read it go last). A
  request being served is never cut off.
- A keep-alive connection idle for ``channel_timeout`` seconds is closed, and so is a
  request whose headers and body have not arrived within ``request_timeout`` seconds of
  its first byte (a client sending one byte at a time, "slowloris").
- Up to 64 waiting connections are taken in per turn of the event loop, not one, so a
  crowd is in within a second instead of queueing real requests behind it.
- Reading a request never takes a worker thread: waitress buffers it in its event loop
  and hands only complete requests to the threads.

Limits per role (the hub is an internet server; the box serves a touchscreen and staff
on its own network): see :data:`LIMITS`. waitress's event loop visits every open
connection on each turn (about 6 us each here), so the limits are kept where a turn
stays short: 2,000 on the hub (a few ms per turn), 500 on the box. Connections beyond
them do not stop the server: the idle ones are shed. Put a reverse proxy (nginx) in
front of the hub for TLS (and set ``hub.trusted_proxy``); it is not needed for the hub
to stay up.
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

log = logging.getLogger("vanbox.serve")

FD_RESERVE = 128  # files kept free for SQLite, MQTT, logs and the like
EVICT_TO = 0.95  # at the limit, close idle connections until this share is left
ACCEPT_BATCH = 64  # connections accepted per turn of the event loop


@dataclass(frozen=True)
class Limits:
    connection_limit: int
    channel_timeout: int  # seconds a keep-alive connection may idle
    request_timeout: float  # seconds from a request's first byte to its last
    cleanup_interval: int  # seconds between sweeps for timed-out connections
    backlog: int


LIMITS: dict[str, Limits] = {
    "box": Limits(
        connection_limit=500,
        channel_timeout=30,
        request_timeout=20.0,
        cleanup_interval=2,
        backlog=1024,
    ),
    "hub": Limits(
        connection_limit=2000,
        channel_timeout=30,
        request_timeout=20.0,
        cleanup_interval=2,
        backlog=2048,
    ),
}


def raise_nofile_limit() -> int:
    """Raise the soft limit of open files to the hard limit; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as e:  # pragma: no cover - depends on the system
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, e)
    elif hard == resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY:
        target = max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # pragma: no cover
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_limit(wanted: int, fd_soft_limit: int) -> int:
    """``wanted``, but never more than the open-files limit minus the reserve."""
    return max(16, min(wanted, fd_soft_limit - FD_RESERVE))


class _Channel(HTTPChannel):
    """waitress's channel that remembers when the request being read started."""

    partial_since: float | None = None

    def received(self, data: bytes) -> bool:
        result = super().received(data)
        if self.request is None:
            self.partial_since = None
        elif self.partial_since is None:
            self.partial_since = time.time()
        return result


class _Server(TcpWSGIServer):
    """waitress's TCP server that sheds idle connections instead of refusing new ones."""

    channel_class = _Channel
    request_timeout: float = 20.0
    evicted = 0
    timed_out = 0

    def _idle(self) -> list[Any]:
        return [
            ch
            for ch in self.active_channels.values()
            if not ch.requests and not ch.will_close and not getattr(ch, "close_when_flushed", 0)
        ]

    def readable(self) -> bool:
        if self.accepting and len(self._map) >= self.adj.connection_limit:
            self._evict(len(self._map) - int(self.adj.connection_limit * EVICT_TO))
        return super().readable()

    def _evict(self, n: int) -> None:
        if n <= 0:
            return
        # Connections still sending a response to a client that does not read go last.
        idle = sorted(self._idle(), key=lambda ch: (ch.total_outbufs_len > 0, ch.last_activity))
        idle = idle[:n]
        for ch in idle:
            ch.will_close = True  # closed by the event loop on its next turn
        self.evicted += len(idle)
        if idle:
            log.info("connection limit %d reached: closed %d idle connections",
                     self.adj.connection_limit, len(idle))  # fmt: skip

    def handle_accept(self) -> None:
        """Accept up to ACCEPT_BATCH waiting connections per turn of the loop, not one:
        each turn costs time in proportion to the open connections, so one at a time
        made a crowd of them take O(n^2) to come in, with real requests queued behind."""
        for _ in range(ACCEPT_BATCH):
            if len(self._map) >= self.adj.connection_limit:
                return  # the next turn sheds idle connections first (readable)
            before = len(self._map)
            super().handle_accept()
            if len(self._map) == before:  # nothing waiting (or a failed accept)
                return

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        cutoff = now - self.request_timeout
        for ch in list(self.active_channels.values()):
            since = getattr(ch, "partial_since", None)
            if since is not None and since < cutoff and not ch.requests and not ch.will_close:
                ch.will_close = True
                self.timed_out += 1


def make_server(
    app: Any,
    *,
    host: str,
    port: int,
    role: str = "box",
    threads: int = 6,
    ident: str = "vanbox",
    limits: Limits | None = None,
    trusted_proxy: str = "",
) -> _Server:
    """The waitress server for ``app`` on ``host:port`` (port 0: any free port).

    ``trusted_proxy``: the address of a reverse proxy (nginx) in front; its
    ``X-Forwarded-Proto``/``-For``/``-Host`` are believed, so a page served over HTTPS
    there counts as HTTPS here (and the session cookie gets ``Secure``).
    Raises ``OSError`` if it cannot listen there (the caller turns it into one line).
    """
    if role not in LIMITS:
        raise ValueError(f"role must be one of {tuple(LIMITS)}")
    lim = limits or LIMITS[role]
    soft = raise_nofile_limit()
    limit = connection_limit(lim.connection_limit, soft)
    proxy: dict[str, Any] = {}
    if trusted_proxy:
        proxy = {
            "trusted_proxy": trusted_proxy,
            "trusted_proxy_count": 1,
            "trusted_proxy_headers": {"x-forwarded-proto", "x-forwarded-for", "x-forwarded-host"},
            "clear_untrusted_proxy_headers": True,
        }
    adj = Adjustments(
        host=host,
        port=port,
        threads=max(1, threads),
        ident=ident,
        asyncore_use_poll=True,
        connection_limit=limit,
        channel_timeout=lim.channel_timeout,
        cleanup_interval=lim.cleanup_interval,
        backlog=lim.backlog,
        expose_tracebacks=False,
        **proxy,
    )
    if len(adj.listen) > 1:
        log.info("%s resolves to %d addresses; listening on the first", host, len(adj.listen))
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    server = _Server(app, None, True, None, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])
    server.request_timeout = lim.request_timeout
    return server
