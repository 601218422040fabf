"""``[hub.forward]``: every stored position once to a Traccar server and/or a webhook.

Traccar cannot subscribe to MQTT, but its OwnTracks port (5144) decodes OwnTracks JSON
sent by HTTP POST. Its decoder (org.traccar.protocol.OwnTracksProtocolDecoder) wants:
``_type`` ``location`` (anything else is answered 200 and dropped); the device id in
``topic`` (``/`` turned into ``-``), else ``tid``, naming a device Traccar knows (else
400); ``tst`` in UNIX seconds; ``lat``, ``lon`` numbers; ``vel`` (km/h), ``alt``, ``cog``,
``acc`` integers. Each position is POSTed alone as such a message, with ``topic`` =
``hub.forward.topic`` for its van (default ``vanbox/{van}``: the Traccar device
``vanbox-<van>``) and, for a webhook, ``van`` too.

One thread per receiver reads the positions stored since its own watermark
(``feed_marks``, feed ``forward:traccar`` or ``forward:webhook``), in batches, each in
time order, and POSTs them one after the other. Anything but a 2xx answer (Traccar down,
a device not created yet: 400, a proxy's 502) is retried with backoff (0.5 s doubling to
``retry_max_s``), never skipped: a receiver that was down gets everything when it is
back, resuming from the watermark even after a hub restart. The ingest never waits: it
only wakes the threads after each batch (:meth:`Forwarder.wake`, the hub's ``on_batch``).
A hub stopped in the middle of a batch may send up to one batch again.
"""

from __future__ import annotations

import http.client
import logging
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hub.owntracks import StoredPosition, get_mark, location, positions_after, set_mark, tid_of
from telemetry import registry
from telemetry.errors import VanboxError
from telemetry.store import Store
from telemetry.topics import dumps

log = logging.getLogger("vanbox.hub.forward")

BATCH = 200
POLL_S = 5.0  # look for new positions at least this often (wake() is quicker)


class ForwardError(VanboxError):
    """A receiver did not take a position (the forwarder retries)."""


@dataclass(frozen=True)
class Target:
    kind: str  # "traccar" or "webhook"
    url: str

    @property
    def feed(self) -> str:
        return f"forward:{self.kind}"


@dataclass
class ForwardStats:
    sent: int = 0
    failures: int = 0
    last_error: str = ""
    behind: dict[str, int] = field(default_factory=dict)


def targets_from_config(fw: dict) -> list[Target]:
    """The receivers named in ``[hub.forward]`` (none: forwarding is off)."""
    out = []
    if fw.get("traccar_url"):
        out.append(Target("traccar", fw["traccar_url"]))
    if fw.get("webhook_url"):
        out.append(Target("webhook", fw["webhook_url"]))
    return out


class Poster:
    """POSTs JSON bodies to one URL over one kept-alive HTTP connection."""

    def __init__(self, url: str, timeout_s: float) -> None:
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ForwardError(f"not an http(s) URL: {url!r}")
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port
        self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=self.timeout_s)
        return self._conn

    def post(self, body: str) -> None:
        data = body.encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        try:
            conn = self._connection()
            conn.request("POST", self.path, body=data, headers=headers)
            r = conn.getresponse()
            text = r.read(300)
            if r.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise ForwardError(f"{type(e).__name__}: {e}") from None
        if not 200 <= r.status < 300:
            raise ForwardError(f"HTTP {r.status}: {text.decode('utf-8', 'replace')[:200]}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Forwarder:
    """One sender thread per target; see the module's notes."""

    def __init__(
        self,
        store: Store,
        targets: list[Target],
        *,
        topic: str = "vanbox/{van}",
        timeout_s: float = 10.0,
        retry_max_s: float = 300.0,
        batch: int = BATCH,
        poll_s: float = POLL_S,
    ) -> None:
        self.store = store
        self.targets = list(targets)
        self.topic = topic
        self.timeout_s = timeout_s
        self.retry_max_s = retry_max_s
        self.batch = batch
        self.poll_s = poll_s
        self.stats = ForwardStats()
        self._stop = threading.Event()
        self._wake = {t.feed: threading.Event() for t in self.targets}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, store: Store, fw: dict) -> Forwarder | None:
        targets = targets_from_config(fw)
        if not targets:
            return None
        return cls(store, targets, topic=fw["topic"], timeout_s=float(fw["timeout_s"]),
                   retry_max_s=float(fw["retry_max_s"]))  # fmt: skip

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        for t in self.targets:
            th = threading.Thread(target=self._run, args=(t,), name=f"vanbox-{t.feed}",
                                  daemon=True)  # fmt: skip
            th.start()
            self._threads.append(th)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for e in self._wake.values():
            e.set()
        for th in self._threads:
            th.join(timeout)

    def wake(self, vans: set[str] | None = None) -> None:
        """New positions may be stored (the hub's ``on_batch``): look now. Never waits."""
        for e in self._wake.values():
            e.set()

    __call__ = wake

    def idle(self) -> bool:
        """Has every target sent everything stored so far?"""
        conn = self.store.reader()
        for t in self.targets:
            mark = get_mark(conn, t.feed)
            if positions_after(conn, mark, 1)[1] != mark:
                return False
        return True

    # --- the sender thread ------------------------------------------------------------

    def _body(self, t: Target, p: StoredPosition, tids: dict[str, str]) -> str:
        msg = location(p, tids.get(p.van) or tid_of(p.van), self.topic.format(van=p.van))
        if t.kind == "webhook":
            msg["van"] = p.van
        return dumps(msg)

    def _run(self, t: Target) -> None:
        poster = Poster(t.url, self.timeout_s)
        wake = self._wake[t.feed]
        try:
            while not self._stop.is_set():
                try:
                    more = self._round(t, poster)
                except Exception:  # noqa: BLE001 - the thread must not die
                    log.exception("forwarding to %s failed", t.kind)
                    more = False
                    self._stop.wait(1.0)
                if not more:
                    wake.wait(self.poll_s)
                    wake.clear()
        finally:
            poster.close()

    def _round(self, t: Target, poster: Poster) -> bool:
        """Send the next batch. True if there may be more right away."""
        conn = self.store.reader()
        mark = get_mark(conn, t.feed)
        batch, end = positions_after(conn, mark, self.batch)
        if end == mark:
            return False
        tids = {v.id: v.tid for v in registry.all_vans(conn) if v.tid}
        for i, p in enumerate(batch):
            if self._stop.is_set() or not self._deliver(t, poster, self._body(t, p, tids)):
                # stopping: resume from the first position not sent
                set_mark(self.store, t.feed, min(q.rowid for q in batch[i:]) - 1)
                return False
        set_mark(self.store, t.feed, end)
        return True

    def _deliver(self, t: Target, poster: Poster, body: str) -> bool:
        """POST until the receiver takes it; False only when the forwarder stops."""
        delay = 0.5
        while True:
            try:
                poster.post(body)
                with self._lock:
                    self.stats.sent += 1
                return True
            except ForwardError as e:
                with self._lock:
                    self.stats.failures += 1
                    self.stats.last_error = f"{t.kind}: {e}"
                log.warning("%s at %s did not take a position (%s); retrying in %.1f s",
                            t.kind, t.url, e, delay)  # fmt: skip
            if self._stop.wait(delay):
                return False
            delay = min(delay * 2, self.retry_max_s)
