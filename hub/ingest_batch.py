"""What one batch of received MQTT messages holds in the hub, and how it is written.

:class:`Batch` is the hub worker's decoded batch: per message (:class:`Decoded`) the
events to store and the dead letters, per van what the batch says about it (:class:`Seen`),
and the control messages for the hub's handlers. :func:`write` stores it: the events in
one transaction, split message by message and event by event when a value is refused
(only what cannot be stored becomes a dead letter), then dead letters, van status and
counters in one transaction. :func:`is_transient` tells the errors worth retrying (disk,
lock, I/O) from the ones that never go away.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field

from telemetry import deadletter
from telemetry.errors import StoreError
from telemetry.events import Event
from telemetry.store import Store

log = logging.getLogger("vanbox.hub")

RETRY_UNHEALTHY_S = 60.0  # health fails when one batch has been retrying this long
DEAD_WINDOW_S = 600.0  # ... or when more than DEAD_MAX dead letters came in this window
DEAD_MAX = 100
LAST_REASONS = 10


def is_transient(e: BaseException) -> bool:
    """Whether retrying a failed write can help: the disk, a lock, I/O. A value that no
    column takes (IntegrityError, DataError, OverflowError, ValueError, ...) never can."""
    if isinstance(e, sqlite3.OperationalError | OSError):
        return True
    if isinstance(e, StoreError):
        cause = e.__cause__ or e.__context__
        return cause is None or is_transient(cause)
    return False


@dataclass
class HubStats:
    """What the hub has done since it started (read them from any thread)."""

    received: int = 0
    stored: int = 0  # rows new or changed by ingest
    events: int = 0  # events decoded (stored + duplicates)
    malformed: int = 0  # messages refused as a whole at the boundary
    batches: int = 0
    store_errors: int = 0  # transient write failures (retried)
    connects: int = 0
    last_malformed: str = ""
    dead_letters: int = 0  # messages, points or events kept aside as dead letters
    ignored: int = 0  # the hub's own ack/plan messages heard back
    last_dead: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_REASONS))

    @property
    def duplicates(self) -> int:
        return self.events - self.stored

    @property
    def last_reasons(self) -> list[str]:
        """The newest dead-letter reasons, newest last."""
        return list(self.last_dead)


@dataclass
class Seen:
    """What one batch says about one van."""

    status: str | None = None  # the van's own status topic
    bridge: str | None = None  # its bridge's state (online/offline)
    last_seen: float | None = None
    messages: int = 0
    malformed: int = 0


@dataclass(frozen=True)
class Item:
    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    arrived: float
    generation: int


@dataclass(frozen=True)
class Dead:
    reason: str
    payload: bytes | str


@dataclass
class Decoded:
    """One message of a batch: the events to store and what is kept aside."""

    item: Item
    van: str
    events: list[Event] = field(default_factory=list)
    dead: list[Dead] = field(default_factory=list)


@dataclass
class Batch:
    msgs: list[Decoded] = field(default_factory=list)
    control: list = field(default_factory=list)  # (van, kind, data) of control topics
    vans: dict[str, Seen] = field(default_factory=dict)
    malformed: int = 0
    ha_online: bool = False
    bridged: set[str] = field(default_factory=set)
    repeated: set[int] = field(default_factory=set)  # id() of dead letters kept before

    @property
    def events(self) -> list[Event]:
        return [ev for m in self.msgs for ev in m.events]


STATUS_SQL = """
INSERT INTO van_status (van, status, status_since, last_seen, messages, malformed,
                        box_status, bridge)
VALUES (:van, 'unknown', :since, :seen, :messages, :malformed, :status, :bridge)
ON CONFLICT(van) DO UPDATE SET
    box_status = coalesce(:status, van_status.box_status),
    bridge = coalesce(:bridge, van_status.bridge),
    last_seen = CASE
        WHEN :seen IS NULL THEN van_status.last_seen
        WHEN van_status.last_seen IS NULL THEN :seen
        ELSE max(van_status.last_seen, :seen) END,
    messages = van_status.messages + :messages,
    malformed = van_status.malformed + :malformed
"""
# What the van's own status and its bridge say together: a van whose bridge is down is
# offline whatever its (retained) status topic still says.
EFFECTIVE_SQL = """
UPDATE van_status SET
    status = CASE WHEN bridge = 'offline' THEN 'offline'
                  ELSE coalesce(box_status, status) END,
    status_since = CASE
        WHEN (CASE WHEN bridge = 'offline' THEN 'offline'
                   ELSE coalesce(box_status, status) END) IS NOT status THEN :since
        ELSE status_since END
WHERE van = :van
"""


def kept_before(conn: sqlite3.Connection, topic: str, x: Dead) -> bool:
    payload = (
        x.payload.encode("utf-8", "backslashreplace") if isinstance(x.payload, str) else x.payload
    )
    row = conn.execute(
        "SELECT 1 FROM dead_letters WHERE source = 'mqtt' AND topic = ? AND reason = ?"
        " AND payload = ? LIMIT 1",
        (topic, x.reason[: deadletter.REASON_MAX], bytes(payload[: deadletter.PAYLOAD_MAX])),
    )
    return row.fetchone() is not None


def write(store: Store, b: Batch) -> int:
    """Store a batch: its events (split if refused), its dead letters, each van's status
    and the counters. Transient errors go up (the caller retries the whole batch)."""
    stored = _ingest(store, b)
    now = time.time()
    b.repeated.clear()
    with store.transaction() as conn:
        for d in b.msgs:
            for x in d.dead:
                if d.item.retain and kept_before(conn, d.item.topic, x):
                    # A retained message comes again with every subscription (every
                    # hub start): it is kept aside once, not once per start.
                    b.repeated.add(id(x))
                    continue
                deadletter.add_in(
                    conn, "mqtt", x.reason, payload=x.payload, van=d.van, topic=d.item.topic
                )
        for van, s in b.vans.items():
            args = {
                "van": van,
                "status": s.status,
                "bridge": s.bridge,
                "since": now,
                "seen": s.last_seen,
                "messages": s.messages,
                "malformed": s.malformed,
            }
            conn.execute(STATUS_SQL, args)
            conn.execute(EFFECTIVE_SQL, {"van": van, "since": now})
        for key, n in (("hub_events", len(b.events)), ("hub_malformed", b.malformed)):
            if n:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key)"
                    " DO UPDATE SET value = value + excluded.value",
                    (key, n),
                )
    return stored


def _ingest(store: Store, b: Batch) -> int:
    """Store the batch's events in one transaction; if a value is refused, message by
    message, and within a refused message event by event: only what cannot be
    stored becomes a dead letter. Transient errors go up (the batch is retried)."""
    events = b.events
    if not events:
        return 0
    try:
        return store.ingest_many(events)
    except Exception as e:
        if is_transient(e):
            raise
        log.warning("a batch of %d events was refused (%s); splitting it", len(events), e)
    return sum(_ingest_message(store, d) for d in b.msgs if d.events)


def _ingest_message(store: Store, d: Decoded) -> int:
    try:
        return store.ingest_many(d.events)
    except Exception as e:
        if is_transient(e):
            raise
        if len(d.events) == 1:
            d.dead.append(Dead(f"cannot store: {type(e).__name__}: {e}", d.item.payload))
            d.events = []
            return 0
    n, kept = 0, []
    for ev in d.events:
        try:
            n += store.ingest_many([ev])
            kept.append(ev)
        except Exception as e:
            if is_transient(e):
                raise
            d.dead.append(Dead(f"cannot store: {type(e).__name__}: {e}", repr(ev)))
    d.events = kept
    return n


def keep_all(store: Store, items: list[Item], reason: str, van_of) -> bool:
    """The last resort: every message of a failed batch as a dead letter. False (and
    not acknowledged) if even that cannot be written."""
    try:
        with store.transaction() as conn:
            for it in items:
                deadletter.add_in(
                    conn,
                    "mqtt",
                    reason,
                    payload=it.payload,
                    van=van_of(it.topic),
                    topic=it.topic,
                )
    except Exception:  # noqa: BLE001
        log.exception("hub: cannot keep %d messages as dead letters either", len(items))
        return False
    return True
