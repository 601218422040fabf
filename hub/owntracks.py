"""The hub's OwnTracks view of each van: every stored position once, as an individual
OwnTracks ``location`` message, so the OwnTracks Recorder (and Frontend) show the full
history, the backlog a van sends as ``track`` batches included.

Topics (``hub.owntracks.topic``, default ``owntracks/vanbox/{van}``; the Recorder reads
``owntracks/<user>/<device>``, so user ``vanbox``, device = the van id):

    <topic>         {"_type": "location", ...}    each stored position once, not retained
    <topic>/info    {"_type": "card", ...}        the van's name, retained
    <topic>/event   {"_type": "transition", ...}  arriving at and leaving a stop

The field rules of the OwnTracks JSON format (https://owntracks.org/booklet/tech/json/)
that :func:`location`, :func:`card` and :func:`transition` follow (and
tests/hub/test_owntracks.py checks, table-driven): ``tst`` and ``wtst`` are integer UNIX
seconds; ``lat``/``lon`` are numbers; ``acc``, ``alt``, ``vel`` (km/h) and ``cog`` are
integers; ``tid`` is a short tracker id; a transition has ``event`` ``enter`` or
``leave``, ``t`` ``c`` (a circular region) or ``b`` (beacon) and ``desc`` (the region's
name, always set here: the Recorder crashes on a transition without it).

Each position goes out once: after each stored batch the view sends the positions
stored since its watermark (the rowid of the last one sent, table ``feed_marks``),
oldest first, and moves the watermark; a backlog that arrives late goes out when it
arrives. Stop visits go out as an ``enter`` transition when they are stored and a
``leave`` when the van leaves (remembered in ``feed_sent``).

``hub.owntracks.public = true`` applies the public privacy rules
(telemetry/privacy.py) for a topic that anyone may read: only vans staff made public,
only the position the public live map shows at that moment (at a public stop in service
hours, coarsened while driving between two, else nothing), retained, and cleared (an
empty retained message) as soon as there is nothing public to show; no history, no
transitions. The hub subscribes only to ``<prefix>/+/#``; config validation keeps the
OwnTracks topic outside it, so the hub never hears its own messages.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telemetry import registry
from telemetry.events import from_epoch
from telemetry.store import Store
from telemetry.topics import UERE_M, dumps

log = logging.getLogger("vanbox.hub.owntracks")

FEED = "owntracks"
BATCH = 5000  # positions per round (one round after each stored batch)

Publish = Callable[..., bool]  # (topic, payload, *, retain) -> sent


@dataclass(frozen=True)
class StoredPosition:
    rowid: int
    van: str
    ts: float
    lat: float
    lon: float
    alt: float | None
    speed: float | None  # m/s
    track: float | None
    hdop: float | None


@dataclass(frozen=True)
class Visit:
    id: str
    van: str
    arrived: float
    left: float | None
    name: str
    lat: float
    lon: float


# --- payloads --------------------------------------------------------------------------


def tid_of(van: str, tid: str = "") -> str:
    """The tracker id: the registry's, else the van id's last two letters or digits."""
    if tid:
        return tid
    alnum = [c for c in van if c.isalnum()]
    return "".join(alnum[-2:]).upper() or "VB"


def location(p: StoredPosition, tid: str, topic: str | None = None) -> dict[str, Any]:
    """An OwnTracks ``location`` message (with ``topic``: as Traccar's OwnTracks port
    wants it, the device id)."""
    d: dict[str, Any] = {
        "_type": "location",
        "tid": tid,
        "tst": int(p.ts),
        "lat": round(p.lat, 6),
        "lon": round(p.lon, 6),
    }
    if p.hdop is not None:
        d["acc"] = max(1, round(p.hdop * UERE_M))
    if p.alt is not None:
        d["alt"] = round(p.alt)
    if p.speed is not None:
        d["vel"] = round(p.speed * 3.6)
    if p.track is not None:
        d["cog"] = round(p.track) % 360
    if topic is not None:
        d["topic"] = topic
    return d


def card(name: str, tid: str) -> dict[str, Any]:
    return {"_type": "card", "name": name, "tid": tid}


def transition(v: Visit, event: str, tid: str) -> dict[str, Any]:
    if event not in ("enter", "leave"):
        raise ValueError(f"transition event {event!r}: use enter or leave")
    t = v.arrived if event == "enter" else v.left
    if t is None:
        raise ValueError("a leave transition needs the time the van left")
    return {
        "_type": "transition",
        "tid": tid,
        "tst": int(t),
        "wtst": int(v.arrived),
        "lat": round(v.lat, 6),
        "lon": round(v.lon, 6),
        "acc": 0,
        "event": event,
        "t": "c",
        "desc": v.name or "Halt",
    }


# --- watermarks ------------------------------------------------------------------------


def get_mark(conn: sqlite3.Connection, feed: str) -> int:
    r = conn.execute("SELECT mark FROM feed_marks WHERE feed = ?", (feed,)).fetchone()
    return int(r[0]) if r else 0


def set_mark(store: Store, feed: str, mark: int) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO feed_marks (feed, mark, updated) VALUES (?, ?, ?)"
            " ON CONFLICT(feed) DO UPDATE SET mark = excluded.mark,"
            " updated = excluded.updated",
            (feed, mark, time.time()),
        )


def positions_after(
    conn: sqlite3.Connection, mark: int, limit: int
) -> tuple[list[StoredPosition], int]:
    """The next ``limit`` stored positions after ``mark`` (by rowid), in time order
    (suspect fixes left out, as on the public map and in the reports), and the rowid to
    move the watermark to once they are handed on (``mark`` itself: nothing new).

    Rowids must commit in order, or the watermark passes a row still being written: on
    SQLite writers take turns, and on PostgreSQL the ingest workers write their positions
    one batch after another (``telemetry.pgstore.FEED_LOCK``)."""
    rows = conn.execute(
        "SELECT rowid, van, ts, lat, lon, alt, speed, track, hdop, suspect FROM positions"
        " WHERE rowid > ? ORDER BY rowid LIMIT ?",
        (mark, limit),
    ).fetchall()
    if not rows:
        top = conn.execute("SELECT coalesce(max(rowid), 0) FROM positions").fetchone()[0]
        if top < mark:
            # Retention emptied the table and rowids start again below the mark.
            return positions_after(conn, 0, limit)
        return [], mark
    out = [StoredPosition(*r[:9]) for r in rows if not r[9]]
    out.sort(key=lambda p: (p.ts, p.rowid))
    return out, rows[-1][0]


# --- the view ------------------------------------------------------------------------


class OwnTracksView:
    """Republishes the store's positions and stop visits as OwnTracks messages through
    ``publish`` (the hub's: QoS 1, False while disconnected). Call it after each stored
    batch with the vans it touched (the hub's ``on_batch``)."""

    def __init__(
        self,
        store: Store,
        publish: Publish,
        *,
        topic: str = "owntracks/vanbox/{van}",
        public: bool = False,
        config: Any = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if public and config is None:
            raise ValueError("the public OwnTracks view needs the config (privacy rules)")
        self.store = store
        self.publish = publish
        self.topic = topic
        self.public = public
        self.config = config
        self.now = now
        self._cards: dict[str, tuple[str, str]] = {}  # van -> (name, tid) sent
        # public: the vans with a retained position; and those seen since the start (a
        # van not seen yet is cleared once if it has nothing public: after a restart)
        self._shown: set[str] = set()
        self._seen: set[str] = set()
        self.sent = 0

    def topic_of(self, van: str) -> str:
        return self.topic.format(van=van)

    def __call__(self, vans: set[str]) -> None:
        try:
            if self.public:
                self._public(vans)
            else:
                self._staff()
        except Exception:  # noqa: BLE001 - a feed must not stop the ingest
            log.exception("OwnTracks view failed")

    def _van_facts(self, conn: sqlite3.Connection) -> dict[str, registry.Van]:
        return {v.id: v for v in registry.all_vans(conn)}

    def _card(self, van: str, info: registry.Van | None) -> bool:
        name = (info.name if info else "") or van
        tid = tid_of(van, info.tid if info else "")
        if self._cards.get(van) == (name, tid):
            return True
        if not self.publish(f"{self.topic_of(van)}/info", dumps(card(name, tid)), retain=True):
            return False
        self._cards[van] = (name, tid)
        return True

    def _staff(self) -> None:
        """One round: up to BATCH positions (a long history, e.g. when the view is first
        switched on, goes out BATCH per stored batch, so the ingest is not held up)."""
        conn = self.store.reader()
        facts = self._van_facts(conn)
        mark = get_mark(conn, FEED)
        batch, end = positions_after(conn, mark, BATCH)
        if end != mark:
            unsent = self._send_positions(batch, facts)
            if unsent is not None:
                # Disconnected meanwhile: from the first one not sent, next time (those
                # after it in rowid order that went out may go out twice).
                set_mark(self.store, FEED, unsent - 1)
                return
            set_mark(self.store, FEED, end)
        self._transitions(conn, facts)

    def _send_positions(
        self, batch: list[StoredPosition], facts: dict[str, registry.Van]
    ) -> int | None:
        """Publish ``batch``; None when all went out, else the smallest rowid not sent."""
        for i, p in enumerate(batch):
            info = facts.get(p.van)
            tid = tid_of(p.van, info.tid if info else "")
            if not self._card(p.van, info) or not self.publish(
                self.topic_of(p.van), dumps(location(p, tid)), retain=False
            ):
                return min(q.rowid for q in batch[i:])
            self.sent += 1
        return None

    def _transitions(self, conn: sqlite3.Connection, facts: dict[str, registry.Van]) -> None:
        """Each stop visit's ``enter`` and ``leave`` once, in time order."""
        rows = conn.execute(
            'SELECT v.id, v.van, v.arrived, v."left", v.name, v.lat, v.lon,'
            " EXISTS (SELECT 1 FROM feed_sent s WHERE s.feed = ?1 AND s.item = v.id || ':enter'),"
            " EXISTS (SELECT 1 FROM feed_sent s WHERE s.feed = ?1 AND s.item = v.id || ':leave')"
            " FROM stop_visits v",
            (FEED,),
        ).fetchall()
        events: list[tuple[float, Visit, str]] = []
        for r in rows:
            v = Visit(*r[:7])
            if not r[7]:
                events.append((v.arrived, v, "enter"))
            if v.left is not None and not r[8]:
                events.append((v.left, v, "leave"))
        sent: list[str] = []
        for _, v, event in sorted(events, key=lambda e: (e[0], e[2] == "enter")):
            info = facts.get(v.van)
            tid = tid_of(v.van, info.tid if info else "")
            payload = dumps(transition(v, event, tid))
            if not self._card(v.van, info) or not self.publish(
                f"{self.topic_of(v.van)}/event", payload, retain=False
            ):
                break
            sent.append(f"{v.id}:{event}")
        if sent:
            now = time.time()
            with self.store.transaction() as w:
                w.executemany(
                    "INSERT OR IGNORE INTO feed_sent (feed, item, sent) VALUES (?, ?, ?)",
                    [(FEED, item, now) for item in sent],
                )

    def _public(self, vans: set[str]) -> None:
        """Only what the public map shows, for the published vans, right now."""
        from telemetry.privacy import load_state, public_view

        conn = self.store.reader()
        facts = self._van_facts(conn)
        now = from_epoch(self.now())
        for van in sorted(vans):
            info = facts.get(van)
            pos = None
            if info is not None and info.public:
                pos = public_view(self.config, load_state(self.store, van), now).get("position")
            if pos is None:
                # Nothing public (any more): no retained position may stay behind.
                if (van in self._shown or van not in self._seen) and self.publish(
                    self.topic_of(van), "", retain=True
                ):
                    self._shown.discard(van)
                    self._seen.add(van)
                continue
            if not self._card(van, info):
                continue
            msg: dict[str, Any] = {
                "_type": "location",
                "tid": tid_of(van, info.tid),
                "tst": int(_epoch(now)),
                "lat": pos["lat"],
                "lon": pos["lon"],
            }
            if pos.get("coarse"):
                msg["acc"] = int(pos.get("radius_m", 0))
            if self.publish(self.topic_of(van), dumps(msg), retain=True):
                self.sent += 1
                self._shown.add(van)
                self._seen.add(van)


def _epoch(t: datetime) -> float:
    return t.timestamp()
