"""What the publisher sends next: outbox rows turned into MQTT messages, one connection's
cursor at a time.

- Unsent outbox rows go by priority, then oldest first (counts, check-ins and stop visits
  before positions, re-sent track points last). paho's own queue lives in memory only,
  so the publisher never hands it more than its in-flight window; the durable queue is
  the outbox. Each connection starts with a fresh :class:`PublishQueue`, so after a
  disconnect everything not acknowledged is simply pending again and goes out on the
  next connection, with the same event id.
- Footfall, check-ins, stop visits and the other registered kinds go one message each to
  their topic (``footfall``, ``checkin``, ``stop``...; not retained).
- Positions: while more than one is waiting (a backlog after an outage), the newest goes
  to ``<prefix>/<van>/location`` (retained, so the live map is current at once) and the
  older ones go oldest first in batches of ``track_batch`` to ``<prefix>/<van>/track``.
  A single fresh fix goes to ``location``. Track points re-sent for the hub
  (telemetry/tally.py) go only to ``track``, in the same batches.
- A row is deleted from the outbox only when the PUBACK of the message that carried it
  arrives (:attr:`Message.seqs`; the publisher marks them with ``Store.mark_sent_relaxed``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from . import kinds, topics
from .store import PRIORITY, Store
from .tally import RESEND_POSITION_PRIORITY

log = logging.getLogger("vanbox.publisher")

POSITION_PRIORITY = PRIORITY["position"]
OTHER_PRIORITIES = sorted({p for k, p in PRIORITY.items() if k != "position"})


@dataclass
class Message:
    """One MQTT message and the outbox rows it carries."""

    topic: str
    payload: str
    retain: bool
    seqs: list[int]
    location_seq: int | None = None  # the row sent to ``location``, if this is one


@dataclass
class PublishQueue:
    """The outbox rows not yet handed out on one connection, as messages: ``topic`` maps
    each topic kind (``location``, ``track``, ``footfall``...) to its full topic, ``tid``
    is the OwnTracks tracker id in track batches of up to ``track_batch`` points."""

    store: Store
    topic: dict[str, str]
    tid: str
    track_batch: int
    cursor: dict[int, int] = field(default_factory=dict)  # priority -> last seq handed out
    extra: set[int] = field(default_factory=set)  # positions sent ahead of the cursor

    def next_messages(self, n: int, location_acked: int) -> list[Message]:
        """Up to ``n`` messages, most urgent first. ``location_acked`` is the highest
        outbox seq whose ``location`` message the broker acknowledged (on any connection):
        a fix no newer than that goes to ``track`` only."""
        db = self.store.reader()
        out: list[Message] = []
        for prio in OTHER_PRIORITIES:
            if len(out) >= n:
                return out
            rows = db.execute(
                "SELECT seq, kind, payload FROM outbox WHERE priority = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (prio, self.cursor.get(prio, 0), n - len(out)),
            ).fetchall()
            for seq, kind, payload in rows:
                ek = kinds.named(kind)
                if ek is None or ek.topic not in self.topic:  # a newer schema's kind:
                    log.error("outbox row %d has unknown kind %r; skipping it", seq, kind)
                    continue  # leave the row for a newer publisher
                out.append(Message(self.topic[ek.topic], payload, False, [seq]))
            if rows:
                self.cursor[prio] = rows[-1][0]
        if len(out) < n:
            out.extend(self._position_messages(n - len(out), location_acked))
        if len(out) < n:
            out.extend(self._resent_track_messages(n - len(out)))
        return out

    def _track_message(self, chunk: list[tuple[int, str]]) -> Message:
        """One ``track`` batch of ``(seq, payload)`` position rows."""
        points = [json.loads(p) for _, p in chunk]
        payload = topics.dumps(topics.track_payload(points, self.tid))
        return Message(self.topic["track"], payload, False, [s for s, _ in chunk])

    def _resent_track_messages(self, n: int) -> list[Message]:
        """Track points re-sent for the hub: ``track`` batches only, never ``location``."""
        prio = RESEND_POSITION_PRIORITY
        rows = (
            self.store.reader()
            .execute(
                "SELECT seq, payload FROM outbox WHERE priority = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (prio, self.cursor.get(prio, 0), n * self.track_batch),
            )
            .fetchall()
        )
        out = [
            self._track_message(rows[i : i + self.track_batch])
            for i in range(0, len(rows), self.track_batch)
        ]
        if rows:
            self.cursor[prio] = rows[-1][0]
        return out

    def _position_messages(self, n: int, location_acked: int) -> list[Message]:
        db = self.store.reader()
        cur = self.cursor.get(POSITION_PRIORITY, 0)
        newest = db.execute(
            "SELECT seq, payload FROM outbox WHERE priority = ? ORDER BY seq DESC LIMIT 1",
            (POSITION_PRIORITY,),
        ).fetchone()
        if newest is None or newest[0] <= cur:
            return []
        self.extra = {s for s in self.extra if s > cur}
        limit = n * self.track_batch + len(self.extra)
        raw = db.execute(
            "SELECT seq, payload FROM outbox WHERE priority = ? AND seq > ? AND seq < ?"
            " ORDER BY seq LIMIT ?",
            (POSITION_PRIORITY, cur, newest[0], limit),
        ).fetchall()
        complete = len(raw) < limit  # every pending fix older than the newest is in raw
        older = [r for r in raw if r[0] not in self.extra]
        out: list[Message] = []
        if newest[0] > cur and newest[0] not in self.extra:
            if newest[0] > location_acked:
                loc = Message(self.topic["location"], newest[1], True, [newest[0]], newest[0])
                out.append(loc)
                self.extra.add(newest[0])
            else:
                older.append(newest)  # a newer fix already went out as the location
        while older and len(out) < n:
            chunk, older = older[: self.track_batch], older[self.track_batch :]
            out.append(self._track_message(chunk))
            self.cursor[POSITION_PRIORITY] = chunk[-1][0]
        if complete and not older and newest[0] in self.extra:
            self.cursor[POSITION_PRIORITY] = max(self.cursor.get(POSITION_PRIORITY, 0), newest[0])
        return out


class OutboxLedger:
    """The publisher's accounts with the outbox of ``store``: acknowledged rows waiting to
    be deleted (one transaction per batch, at most every ``flush_s``), what was sent,
    acknowledged and thinned, and the outbox's figures for ``Publisher.stats()``. Written
    by the publisher's thread only."""

    def __init__(self, store: Store, flush_s: float) -> None:
        self.store = store
        self.flush_s = float(flush_s)
        self.pending: list[int] = []  # rows acknowledged but not yet deleted
        self._since = 0.0  # when the first of them was acknowledged
        self.location_acked = 0  # highest outbox seq whose location message was acked
        self._data_version: int | None = None
        self.sent = 0  # messages handed to paho
        self.acked = 0  # messages acknowledged
        self.rows_acked = 0  # rows deleted after their acknowledgement
        self.thinned = 0
        self.depth = 0  # outbox rows at the last refresh()
        self.oldest: float | None = None  # ``created`` of the oldest of them

    def acknowledged(self, m: Message) -> None:
        """The broker acknowledged ``m``: its rows are to be deleted."""
        self.acked += 1
        if not self.pending:
            self._since = time.monotonic()
        self.pending.extend(m.seqs)
        if m.location_seq is not None:
            self.location_acked = max(self.location_acked, m.location_seq)

    def flush(self, *, force: bool, idle: bool) -> None:
        """Delete the acknowledged rows when ``force``d, when ``idle`` (nothing in flight
        or pending) unless batching for longer than 0.25 s, after 1000 of them or
        ``flush_s`` after the first."""
        if not self.pending:
            return
        # One transaction per batch of acknowledgements, at most every ``flush_s``
        # (the box: 10 s, fewer WAL writes on the SD card); after a power cut the few
        # acknowledged but unmarked rows are simply sent again (same ids).
        if not (
            force
            or (idle and self.flush_s <= 0.25)
            or len(self.pending) >= 1000
            or time.monotonic() - self._since >= self.flush_s
        ):
            return
        rows, self.pending = self.pending, []
        self.store.mark_sent_relaxed(rows)
        self.rows_acked += len(rows)

    def thin(self, max_rows: int) -> None:
        """Keep the outbox within ``max_rows`` (``Store.thin_outbox``)."""
        removed = self.store.thin_outbox(max_rows)
        if removed:
            self.thinned += removed
            log.warning("outbox over %d rows: thinned %d old track points", max_rows, removed)

    def refresh(self) -> None:
        """Read the outbox's depth and oldest row again."""
        r = self.store.reader().execute("SELECT count(*), min(created) FROM outbox").fetchone()
        self.depth, self.oldest = r[0], r[1]

    def changed(self) -> bool:
        """Whether anyone wrote to the database since the last look (``PRAGMA
        data_version`` on the reader connection: a memory read when nothing changed)."""
        v = self.store.reader().execute("PRAGMA data_version").fetchone()[0]
        changed = v != self._data_version
        self._data_version = v
        return changed
