"""Delivery to the hub, the box's side of the work: resending what the hub misses, and
which days the hub has confirmed (for retention and status).

The wire format of tallies and acks, and the counting both sides share, are in
:mod:`telemetry.tally`; the hub's side is :mod:`hub.reconcile`. The box's
:class:`BoxDelivery` answers an ack by putting the events of each missing (day, kind)
back into the outbox from its tables, with the same ids and payloads as the first time,
with a back-off so a stale or repeated ack never makes a loop.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from . import kinds, topics
from .events import from_epoch
from .store import Store
from .tally import (
    DEFAULT_WINDOW_DAYS,
    KINDS,
    MAX_DAYS,
    Tally,
    day_counts,
    day_start,
    decode,
    encode,
    first_day,
)

log = logging.getLogger("vanbox.delivery")


# --- resending ----------------------------------------------------------------------


def _resend_rows(
    conn: sqlite3.Connection, store: Store, day: str, kind: str
) -> list[tuple[str, str, int, str]]:
    """(event_id, outbox kind, priority, payload) for every event of ``day`` and tally
    ``kind`` not in the outbox, rebuilt as the first time (telemetry/kinds.py)."""
    found = kinds.for_tally(kind)
    if found is None:
        return []
    ek, cond = found
    prio = ek.priority if ek.resend_priority is None else ek.resend_priority
    return [
        (eid, ek.name, prio, topics.dumps(payload))
        for eid, payload in ek.resend(conn, store, store.van, day, cond)
    ]


class BoxDelivery:
    """The box's side of reconciliation for ``store`` (see the module docstring).

    The publisher calls :meth:`tally_payload` when a tally is due and :meth:`on_ack`
    with every ack it receives; both run in the publisher's thread.
    """

    def __init__(
        self,
        store: Store,
        *,
        window_days: int = DEFAULT_WINDOW_DAYS,
        backoff_s: float = 600.0,
        backoff_max_s: float = 86_400.0,
        clock=time.time,
    ) -> None:
        if not 1 <= window_days <= MAX_DAYS:
            raise ValueError(f"window_days must be 1..{MAX_DAYS}")
        self.store = store
        self.window_days = int(window_days)
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.clock = clock
        self.last_days: dict[str, dict[str, int]] | None = None
        self.resent = 0  # rows re-enqueued since start
        try:  # retention keeps what the hub has not confirmed from now on
            with store.transaction() as conn:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('delivery_tracked', 1)"
                    " ON CONFLICT(key) DO UPDATE SET value = 1"
                )
        except sqlite3.Error as e:  # a read-only or full disk: the box's health says so
            log.error("cannot note delivery tracking in the database: %s", e)

    def counts(self, now: float | None = None) -> dict[str, dict[str, int]]:
        now = self.clock() if now is None else now
        since = first_day(self.store, now, self.window_days)
        # On this thread's read connection: counting never holds up the writers.
        conn = self.store.reader()
        return day_counts(conn, self.store.van, since, day_start(self.store, since))

    def tally_payload(self, now: float | None = None, *, full: bool = True) -> str | None:
        """The tally: every day of the window (``full``), else only the days whose counts
        changed since the last tally (None if none did). See :meth:`next_tally`."""
        got = self.next_tally(now, full=full)
        return None if got is None else got[0]

    def next_tally(self, now: float | None = None, *, full: bool = True) -> tuple[str, bool] | None:
        """(payload, is it the full tally). Asked for the changed days only, it is still
        the full tally when a day before today changed (a backlog or a resend went out):
        the retained tally a (re)subscribing hub reads must show older days as they are.
        None when nothing changed."""
        now = self.clock() if now is None else now
        days = self.counts(now)
        last, self.last_days = self.last_days, days
        if not full and last is not None:
            changed = {d: c for d, c in days.items() if last.get(d) != c}
            changed |= {d: dict.fromkeys(KINDS, 0) for d in last if d not in days}
            if not changed:
                return None
            today = self.store.local(from_epoch(now)).date().isoformat()
            if set(changed) <= {today}:
                return encode(changed, tst=now, outbox=self.store.outbox_depth()), False
        return encode(days, tst=now, outbox=self.store.outbox_depth()), True

    def on_ack(self, payload: bytes | str, now: float | None = None) -> int:
        """Remember the hub's counts and re-enqueue what it misses (with the back-off).
        Returns the number of outbox rows added. Raises PayloadError on a bad ack."""
        now = self.clock() if now is None else now
        ack = decode(payload, "ack", ack=True)
        since = first_day(self.store, now, self.window_days)
        added = 0
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO delivery_box (day, kind, hub_count, acked_at) VALUES (?,?,?,?)"
                " ON CONFLICT(day, kind) DO UPDATE SET hub_count = excluded.hub_count,"
                " acked_at = excluded.acked_at",
                [(day, k, n, now) for day, c in ack.days.items() for k, n in c.items()],
            )
            wanted = {day: ks for day, ks in (ack.missing or {}).items() if day >= since}
            if not wanted:
                return 0
            mine = day_counts(conn, self.store.van, min(wanted), day_start(self.store, min(wanted)))
            for day, ks in sorted(wanted.items()):
                for kind in ks:
                    added += self._maybe_resend(conn, day, kind, ack, mine, now)
        if added:
            self.resent += added
            log.info("hub asked for %d events again: re-enqueued", added)
        return added

    def _maybe_resend(
        self,
        conn: sqlite3.Connection,
        day: str,
        kind: str,
        ack: Tally,
        mine: dict[str, dict[str, int]],
        now: float,
    ) -> int:
        n_box = mine.get(day, {}).get(kind, 0)
        n_hub = ack.days.get(day, {}).get(kind, 0)
        if n_hub >= n_box:
            return 0  # a stale ack: the hub has caught up meanwhile
        row = conn.execute(
            "SELECT resent_at, resent_count, backoff_s FROM delivery_box"
            " WHERE day = ? AND kind = ?",
            (day, kind),
        ).fetchone()
        at, gap_then, backoff = row if row else (None, None, None)
        gap = n_box - n_hub
        if at is not None and now < at + (backoff or self.backoff_s):
            return 0  # re-sent not long ago: wait out the back-off, even if counts moved
        # Keyed on the gap (what the hub lacks), not on the box's count, which grows all
        # day: a resend that did not close the gap doubles the wait; progress starts afresh.
        if at is None or backoff is None or gap < (gap_then or 0):
            backoff = self.backoff_s
        else:
            backoff = min(backoff * 2, self.backoff_max_s)
        rows = _resend_rows(conn, self.store, day, kind)
        conn.executemany(
            "INSERT INTO outbox (event_id, kind, priority, payload, created) VALUES (?,?,?,?,?)",
            [(e, k, p, pl, now) for e, k, p, pl in rows],
        )
        conn.execute(
            "INSERT INTO delivery_box (day, kind, resent_at, resent_count, backoff_s)"
            " VALUES (?,?,?,?,?) ON CONFLICT(day, kind) DO UPDATE SET"
            " resent_at = excluded.resent_at, resent_count = excluded.resent_count,"
            " backoff_s = excluded.backoff_s",
            (day, kind, now, gap, backoff),
        )
        return len(rows)


def unconfirmed_days(store: Store, before: str) -> list[str]:
    """Local days before ``before`` whose events the hub has not confirmed: it holds fewer
    than the box has sent of some kind, or something of the day is still queued."""
    with store._lock:
        conn = store._conn
        days: set[str] = set()
        for table in ("footfall", "checkins", "positions"):
            # Days that have raw events at all (the only ones retention would delete).
            days |= {
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT day FROM {table} WHERE van = ? AND day < ?",
                    (store.van, before),
                )
            }
        if not days:
            return []
        first = min(days)
        sent = day_counts(conn, store.van, first, day_start(store, first))
        hub = {
            (d, k): n
            for d, k, n in conn.execute(
                "SELECT day, kind, hub_count FROM delivery_box WHERE day >= ?", (first,)
            )
        }
        queued = {
            r[0]
            for t, k in (
                ("footfall", "footfall"),
                ("checkins", "checkin"),
                ("positions", "position"),
            )  # fmt: skip
            for r in conn.execute(
                f"SELECT DISTINCT day FROM {t} WHERE van = ? AND day < ? AND id IN"
                " (SELECT event_id FROM outbox WHERE kind = ?)",
                (store.van, before, k),
            )
        }
    out = []
    for day in sorted(days):
        c = sent.get(day, {})
        if day in queued or any(hub.get((day, k), 0) < n for k, n in c.items() if n):
            out.append(day)
    return out


# --- the hub's view (hub/reconcile.py writes it, kiosk/fleet_status.py shows it) ------


def fleet_delivery(store: Store) -> dict[str, dict[str, Any]]:
    """Per van: the outbox depth it last reported, when, and per day of its last tally
    whether the hub holds everything (counted now, so a finished resend shows at once)."""
    db = store.reader()
    out: dict[str, dict[str, Any]] = {}
    for van, tst, outbox, received in db.execute(
        "SELECT van, tst, outbox, received FROM delivery_vans ORDER BY van"
    ):
        out[van] = {"outbox": outbox, "tally_tst": tst, "tally_received": received, "days": {}}
    box: dict[str, dict[str, dict[str, int]]] = {}
    for van, day, kind, n in db.execute(
        "SELECT van, day, kind, box_count FROM delivery_hub ORDER BY van, day"
    ):
        box.setdefault(van, {}).setdefault(day, {})[kind] = n
    for van, days in box.items():
        first = min(days)
        have = day_counts(db, van, first, day_start(store, first))
        entry = out.setdefault(
            van, {"outbox": None, "tally_tst": None, "tally_received": None, "days": {}}
        )
        for day, counts in days.items():
            lacking = [k for k, n in counts.items() if have.get(day, {}).get(k, 0) < n]
            entry["days"][day] = {
                "complete": not lacking,
                "missing": lacking,
                "box": counts,
                "hub": {k: have.get(day, {}).get(k, 0) for k in counts},
            }
    return out
