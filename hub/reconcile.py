"""Delivery to the hub, the hub's side: compare each van's tally, acknowledge, ask again.

The box publishes its per-day tally retained on ``<prefix>/<van>/tally`` (the format is
in telemetry/tally.py). The hub gets it live, and again on every (re)subscribe as a
retained message, so a hub that was not subscribed yet, a hub restored from an old
backup, a hub that was down longer than the broker queues for it, or a broker that lost
its persistence file all start a reconciliation as soon as the hub is connected.

For every (day, kind) of the tally the hub counts what it holds of that van
(:func:`telemetry.tally.day_counts`, the same query as the box's) and publishes the ack
``<prefix>/<van>/ack`` (QoS 1, retained): its counts, ``re`` (the tally's ``tst``) and
``missing`` = the (day, kind) it holds fewer of. It asks for the same (day, kind) again
only after a back-off (``backoff_s``, 10 min, doubling up to a day) unless the box's
count changed; so thinned track points or a box that cannot resend never make a request
loop. Tallies run after the batch they arrived in is stored (Hub's ``on_control``), so
events sent before a tally are counted before it is compared.

A tally that fails any check (telemetry.tally.decode: dates, kinds, counts 0..10**7, at
most 400 days) is a dead letter (source ``mqtt``) and changes nothing.

``delivery_hub`` (migration 0005) keeps the last comparison per van, day and kind and
``delivery_vans`` the outbox depth each van last reported;
:func:`telemetry.delivery.fleet_delivery` reads them for the hub's ``/status`` page
(kiosk/fleet_status.py).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from telemetry import deadletter, topics
from telemetry.delivery import fleet_delivery as fleet_delivery  # the status page reads it
from telemetry.errors import PayloadError
from telemetry.store import Store
from telemetry.tally import Tally, day_counts, day_start, decode, encode

log = logging.getLogger("vanbox.reconcile")


@dataclass(frozen=True)
class Outcome:
    """What one tally gave: the ack's payload and what the hub asks for."""

    van: str
    ack: str
    missing: dict[str, list[str]]
    published: bool


class Reconciler:
    """``on_control`` hook for :class:`hub.ingest.Hub`: handles every van's tally."""

    def __init__(
        self,
        store: Store,
        *,
        prefix: str = "vanbox",
        backoff_s: float = 600.0,
        backoff_max_s: float = 86_400.0,
        clock=time.time,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.clock = clock
        self.tallies = 0
        self.rejected = 0
        self.asked = 0  # (day, kind) requests sent

    def __call__(self, hub: Any, items: list[tuple[str, str, dict]]) -> None:
        last: dict[str, dict] = {}
        for van, kind, data in items:
            if kind == "tally":
                last[van] = data  # only the newest tally of a van in a batch matters
        for van, data in last.items():
            t = topics.topic(self.prefix, van, "tally")
            try:
                tally = decode(data, t)
            except PayloadError as e:
                self.rejected += 1
                raw = json.dumps(data, ensure_ascii=False, default=str)[: deadletter.PAYLOAD_MAX]
                deadletter.add(self.store, "mqtt", str(e), payload=raw, van=van, topic=t)
                continue
            self.handle(van, tally, publish=hub.publish)

    def handle(self, van: str, tally: Tally, *, publish=None) -> Outcome:
        """Compare one decoded tally, publish the ack with ``publish(topic, payload,
        retain=True)`` and record the comparison."""
        now = self.clock()
        days = tally.days
        mine: dict[str, dict[str, int]] = {}
        if days:
            first = min(days)
            mine = day_counts(self.store.reader(), van, first, day_start(self.store, first))
        prev = {
            (d, k): (at, count, backoff)
            for d, k, at, count, backoff in self.store.reader().execute(
                "SELECT day, kind, asked_at, asked_count, backoff_s FROM delivery_hub"
                " WHERE van = ?",
                (van,),
            )
        }
        rows = []
        missing: dict[str, list[str]] = {}
        for day, counts in sorted(days.items()):
            for kind in tally.kinds:
                n_box = counts.get(kind, 0)
                n_hub = mine.get(day, {}).get(kind, 0)
                at, gap_then, backoff = prev.get((day, kind), (None, None, None))
                gap = n_box - n_hub
                if gap <= 0:
                    at = gap_then = backoff = None
                elif at is not None and now < at + (backoff or 0):
                    pass  # asked not long ago: wait, however the box's count moved since
                else:
                    # Keyed on the gap, not on the box's count: today's counts change on
                    # every tally, and a gap that a resend did not close must not be asked
                    # for again at every tally. Progress (a smaller gap) starts afresh.
                    stuck = at is not None and backoff and gap >= (gap_then or 0)
                    backoff = min(backoff * 2, self.backoff_max_s) if stuck else self.backoff_s
                    at, gap_then = now, gap
                    missing.setdefault(day, []).append(kind)
                if n_box or n_hub:
                    rows.append((van, day, kind, n_box, n_hub, now, at, gap_then, backoff))
        hub_days = {d: mine.get(d, dict.fromkeys(tally.kinds, 0)) for d in days}
        ack = encode(hub_days, tst=now, re_tst=tally.tst, missing=missing, only=tally.kinds)
        published = True
        if publish is not None:
            published = bool(publish(topics.topic(self.prefix, van, "ack"), ack, retain=True))
        if not published:
            # Not asked after all: keep the old request state, ask on the next tally.
            rows = [
                r[:6] + prev.get((r[1], r[2]), (None, None, None))
                if r[1] in missing and r[2] in missing[r[1]]
                else r
                for r in rows
            ]
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO delivery_hub (van, day, kind, box_count, hub_count, tallied_at,"
                " asked_at, asked_count, backoff_s) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(van, day, kind) DO UPDATE SET box_count = excluded.box_count,"
                " hub_count = excluded.hub_count, tallied_at = excluded.tallied_at,"
                " asked_at = excluded.asked_at, asked_count = excluded.asked_count,"
                " backoff_s = excluded.backoff_s",
                rows,
            )
            conn.execute(
                "INSERT INTO delivery_vans (van, tst, outbox, received) VALUES (?,?,?,?)"
                " ON CONFLICT(van) DO UPDATE SET tst = excluded.tst, outbox = excluded.outbox,"
                " received = excluded.received",
                (van, tally.tst, tally.outbox, now),
            )
        self.tallies += 1
        if published and missing:
            n = sum(len(v) for v in missing.values())
            self.asked += n
            some = ", ".join(f"{d} {'/'.join(k)}" for d, k in list(missing.items())[:5])
            log.info("van %s: asking again for %d (day, kind): %s", van, n, some)
        return Outcome(van, ack, missing, published)
