"""Retention: fold raw events into daily aggregates, then delete the old raw events.

The daily job (``vanbox prune``) does, in this order:

1. **Fold** every complete local day (before today) whose aggregates are missing or stale
   (``agg_days.state = 0``) into the ``aggregates`` table: the same metrics the reports
   compute from raw rows (:func:`telemetry.reports.raw_metrics`), computed and written in
   one transaction per batch of days, so a row arriving meanwhile waits for the next run.
   Then the fleet rollup (:mod:`telemetry.rollup`: the aggregates summed over all vans
   per day, month and year, for the whole fleet's report pages) is brought up to date
   for every period a fold touched.
2. **Prune**: delete the raw rows of every event kind with a ``prune_by`` column in the
   registry (telemetry/kinds.py: positions, footfall events and check-ins) of the days
   before ``today - retention_days`` (local days) and mark those days ``state = 2``: from
   then on the reports read them from the aggregates only. Stop visits and the staff's
   counselling contacts stay (stops name what the reports group by; contacts are the
   funders' anonymous record over the years); unplanned stop visits older than the
   retention lose their exact place: their coordinates are rounded to 0.01 degrees
   (about 1 km), as they may be home visits.
   The outbox is never touched: an unsent row stays until the broker has it.
   On a box that publishes (its publisher keeps the hub's acks, telemetry/delivery.py),
   raw events of days the hub has not confirmed complete are kept while the hub can still
   ask for them: inside the reconciliation window (``mqtt.reconcile_days``) or while
   something of the day is still queued in the outbox. An unconfirmed day older than
   that is deleted as any other (nothing would ever ask for it, and raw events must not
   outlive the retention for ever); the summary counts both.

Late rows for a day that was already pruned (a hub receiving a van's very old backlog)
are ignored by the reports and deleted by the next run; they are older than the
retention anyway.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from . import kinds, rollup
from .delivery import unconfirmed_days
from .events import to_epoch
from .metrics import DEFAULT_CREW
from .reports import raw_metrics
from .store import Store
from .tally import DEFAULT_WINDOW_DAYS, first_day

log = logging.getLogger("vanbox.retention")

FOLD_BATCH_DAYS = 7  # days per write transaction: the box's writers wait meanwhile


@dataclass(frozen=True)
class PruneResult:
    folded_days: int
    pruned_days: int
    positions: int
    footfall: int
    checkins: int
    cutoff: str  # first local day kept
    kept: tuple[str, ...] = ()  # older days kept: the hub has not confirmed them yet
    unconfirmed_deleted: int = 0  # older days deleted although the hub never confirmed them

    def summary(self) -> str:
        text = (
            f"folded {self.folded_days} day(s); deleted {self.positions} positions,"
            f" {self.footfall} footfall events and {self.checkins} check-ins from"
            f" {self.pruned_days} day(s) before {self.cutoff}"
        )
        if self.kept:
            text += (
                f"; kept {len(self.kept)} older day(s) the hub has not confirmed yet"
                f" ({self.kept[0]}{' .. ' + self.kept[-1] if len(self.kept) > 1 else ''})"
            )
        if self.unconfirmed_deleted:
            text += (
                f"; {self.unconfirmed_deleted} day(s) beyond the reconciliation window were"
                " never confirmed by the hub and were deleted all the same"
            )
        return text


def pruned_kinds() -> tuple[kinds.EventKind, ...]:
    """The registered kinds whose raw rows the retention deletes."""
    return tuple(k for k in kinds.registered() if k.prune_by)


def tracks_delivery(store: Store) -> bool:
    """Whether this is a box whose publisher tracks the hub's acks (MQTT enabled)."""
    if not store.van:
        return False
    with store._lock:
        row = store._conn.execute(
            "SELECT value FROM meta WHERE key = 'delivery_tracked'"
        ).fetchone()
    return bool(row and row[0])


def fold(
    store: Store, now: datetime, *, before: str | None = None, crew: int = DEFAULT_CREW
) -> int:
    """Fold every stale complete day (local day < today, or < ``before``) into the
    aggregates, visits without the ``crew``'s own door passes (``cfg.reports["crew"]``;
    a folded day keeps the crew it was folded with). Returns the (van, day) pairs folded."""
    limit = before or store.local(now).date().isoformat()
    with store._lock:
        todo = store._conn.execute(
            "SELECT van, day FROM agg_days WHERE state = 0 AND day < ? ORDER BY van, day",
            (limit,),
        ).fetchall()
    by_van: dict[str, list[str]] = defaultdict(list)
    for van, day in todo:
        by_van[van].append(day)
    n = 0
    for van, days in by_van.items():
        for i in range(0, len(days), FOLD_BATCH_DAYS):
            batch = days[i : i + FOLD_BATCH_DAYS]
            with store.transaction() as conn:
                marks = ",".join("?" * len(batch))
                # Still stale inside the transaction? On SQLite nothing else writes
                # meanwhile; on PostgreSQL ingest is not serialized with this, so the days'
                # rows are locked (in the order ingest locks them): a late event's trigger
                # then waits for this fold and marks its day stale again after it.
                batch = [
                    r[0]
                    for r in conn.execute(
                        "SELECT day FROM agg_days WHERE van = ? AND state = 0"
                        f" AND day IN ({marks}) ORDER BY day{store.row_lock}",
                        (van, *batch),
                    ).fetchall()
                ]
                if not batch:
                    continue
                _fold_batch(conn, van, batch, crew)
                n += len(batch)
    rollup.refresh(store)
    return n


def _fold_batch(conn, van: str, days: list[str], crew: int = DEFAULT_CREW) -> None:
    """Replace the aggregates of these days by the metrics of their raw rows (inside the
    caller's write transaction) and mark them folded."""
    marks = ",".join("?" * len(days))
    rows = raw_metrics(conn, van, days, crew=crew)
    conn.execute(f"DELETE FROM aggregates WHERE van = ? AND day IN ({marks})", (van, *days))
    conn.executemany(
        "INSERT INTO aggregates (metric, day, van, key, value) VALUES (?,?,?,?,?)", rows
    )
    conn.execute(f"UPDATE agg_days SET state = 1 WHERE van = ? AND day IN ({marks})", (van, *days))
    rollup.mark(conn, days)


def cutoff_day(store: Store, retention_days: int, now: datetime) -> str:
    """The first local day whose raw events are kept."""
    return (store.local(now).date() - timedelta(days=retention_days)).isoformat()


def prune(
    store: Store,
    retention_days: int,
    now: datetime,
    *,
    dry_run: bool = False,
    keep_unconfirmed: bool | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    crew: int = DEFAULT_CREW,
) -> PruneResult:
    """Fold, then delete raw events older than ``retention_days`` (see module docstring).
    With ``dry_run`` nothing is written; the result says what would be deleted.
    ``keep_unconfirmed`` (default: :func:`tracks_delivery`) keeps the raw events of the
    days the hub has not confirmed and can still ask for (the last ``window_days`` days,
    ``mqtt.reconcile_days``, or a day with events still queued in the outbox)."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cut = cutoff_day(store, retention_days, now)
    cut_ts = to_epoch(datetime.combine(datetime.fromisoformat(cut).date(), time(), store.tz))
    if keep_unconfirmed is None:
        keep_unconfirmed = tracks_delivery(store)
    unconfirmed = unconfirmed_days(store, cut) if keep_unconfirmed else []
    window_start = first_day(store, to_epoch(now), window_days)
    queued = _queued_days(store) if unconfirmed else set()
    kept = tuple(d for d in unconfirmed if d >= window_start or d in queued)
    lost = len(unconfirmed) - len(kept)
    keep_sql = f" AND day NOT IN ({','.join('?' * len(kept))})" if kept else ""
    if dry_run:
        with store._lock:
            c = store._conn
            stale = c.execute(
                "SELECT count(*) FROM agg_days WHERE state = 0 AND day < ?",
                (store.local(now).date().isoformat(),),
            ).fetchone()[0]
            days = c.execute(
                f"SELECT count(*) FROM agg_days WHERE state < 2 AND day < ?{keep_sql}",
                (cut, *kept),
            ).fetchone()[0]
            counts = {
                k.table: c.execute(
                    f"SELECT count(*) FROM {k.table} WHERE day < ?{keep_sql}", (cut, *kept)
                ).fetchone()[0]
                for k in pruned_kinds()
            }
        return _result(stale, days, counts, cut, kept, lost)
    folded = fold(store, now, crew=crew)
    with store.transaction() as conn:
        # Whatever became stale since the fold (a row written meanwhile) is folded now,
        # in the same transaction as the delete, so no raw row goes unaggregated.
        late: dict[str, list[str]] = defaultdict(list)
        for van, day in conn.execute(
            "SELECT van, day FROM agg_days WHERE state = 0 AND day < ?"
            f" ORDER BY van, day{store.row_lock}",  # locked as in fold()
            (cut,),
        ).fetchall():
            late[van].append(day)
        for van, days in late.items():
            _fold_batch(conn, van, days, crew)
        vans = [
            r[0] for r in conn.execute("SELECT DISTINCT van FROM agg_days WHERE day < ?", (cut,))
        ]
        deleted = dict.fromkeys((k.table for k in pruned_kinds()), 0)
        for van in vans:
            for k in pruned_kinds():
                limit = cut_ts if k.prune_by == "ts" else cut
                deleted[k.table] += conn.execute(
                    f"DELETE FROM {k.table} WHERE van = ? AND {k.prune_by} < ?{keep_sql}",
                    (van, limit, *kept),
                ).rowcount
        days = conn.execute(
            f"UPDATE agg_days SET state = 2 WHERE state = 1 AND day < ?{keep_sql}", (cut, *kept)
        ).rowcount
        conn.execute(
            "UPDATE stop_visits SET lat = round(lat, 2), lon = round(lon, 2)"
            " WHERE planned = 0 AND day < ? AND (lat != round(lat, 2) OR lon != round(lon, 2))",
            (cut,),
        )
    if late:
        rollup.refresh(store)  # the late days' periods, marked by the fold above
    if lost:
        log.warning("%d day(s) beyond the reconciliation window were never confirmed by the"
                    " hub; deleted with the retention", lost)  # fmt: skip
    return _result(folded, days, deleted, cut, kept, lost)


def _result(
    folded: int, days: int, deleted: dict[str, int], cut: str, kept: tuple[str, ...], lost: int
) -> PruneResult:
    return PruneResult(
        folded, days, deleted.get("positions", 0), deleted.get("footfall", 0),
        deleted.get("checkins", 0), cut, kept, lost,
    )  # fmt: skip


def _queued_days(store: Store) -> set[str]:
    """Local days that still have events waiting in the outbox."""
    out: set[str] = set()
    with store._lock:
        for table in (k.table for k in pruned_kinds()):
            out |= {
                r[0]
                for r in store._conn.execute(
                    f"SELECT DISTINCT t.day FROM outbox o JOIN {table} t ON t.id = o.event_id"
                )
            }
    return out
