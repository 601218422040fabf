"""The metric layer under the reports: daily metric rows per van, from raw rows or from
the daily aggregates.

A metric row is ``(metric, day, van, key, value)`` (:data:`Metric`). :func:`raw_metrics`
(:mod:`telemetry.raw_days`) computes the metrics of a van's local days from the raw
tables (positions, footfall, check-ins, stop visits); :func:`metrics` gives the rows of a
range of days for one van or all vans, folded days from ``aggregates`` and the rest from
the raw tables. :mod:`telemetry.report_tables` builds the report tables from their sums.

Storage: the daily job (``vanbox prune``) folds complete days into the ``aggregates``
table (see ``migrations/0002_aggregates.sql`` and :mod:`telemetry.retention`); triggers
mark a folded day stale again when a raw row for it arrives later. A report reads folded
days from ``aggregates`` and every other day (today, stale days) from the raw tables,
computing the same metrics with the same code (:func:`raw_metrics`), so figures do not
change when a day is folded or its raw rows are pruned. Raw days are remembered per
connection until the database changes, so an export of all ten reports computes them once.
A year from aggregates takes milliseconds; a year of raw rows only (the daily job never
ran) takes seconds.

The report builders do not take the rows themselves but their sums, added up by the
database (:mod:`telemetry.sums`, over the fleet rollup of :mod:`telemetry.rollup`).

Staff passes (the crew's own door passes are not visits), attribution and data quality
are defined in :mod:`telemetry.raw_days`, which computes the raw days.

Metrics (``aggregates.metric`` / ``key``): ``visit_visitors``, ``visit_checkins``,
``visit_first`` (key: stop visit id, ``""`` = not at a stop); ``hour_visitors``,
``hour_checkins`` (key: local hour ``"00"``..``"23"``); ``topic`` (key: topic code);
``age`` (key: age group); ``first`` (key ``"1"`` first visit, ``"0"`` returning, ``""``
not said); ``no_fix_s``, ``offline_s``, ``blocked_s``, ``blocked_n``, ``outside_n`` (key
``""``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from . import visit_quality
from .raw_days import DEFAULT_CREW as DEFAULT_CREW
from .raw_days import GAP_S as GAP_S
from .raw_days import HOUR_S as HOUR_S
from .raw_days import METRICS as METRICS
from .raw_days import OPEN_VISIT_S as OPEN_VISIT_S
from .raw_days import Metric as Metric
from .raw_days import _cur as _cur
from .raw_days import raw_metrics as raw_metrics
from .raw_days import raw_metrics_many

# --- metrics for a period: aggregates for folded days, raw rows for the rest --------


def _dirty_days(conn, start: str, end: str, van: str | None) -> dict[str, list[str]]:
    sql = "SELECT van, day FROM agg_days WHERE day >= ? AND day < ? AND state = 0"
    args: list = [start, end]
    if van is not None:
        sql += " AND van = ?"
        args.append(van)
    out: dict[str, list[str]] = defaultdict(list)
    for v, d in _cur(conn).execute(sql, args).fetchall():
        out[v].append(d)
    return out


def metrics(
    conn: sqlite3.Connection,
    start: date,
    end: date,
    *,
    van: str | None = None,
    names: Iterable[str] = METRICS,
    crew: int = DEFAULT_CREW,
) -> list[Metric]:
    """All metric rows of the days ``[start, end)``: folded days from ``aggregates``,
    the other days computed from the raw tables (``crew`` as in :func:`raw_metrics`)."""
    names = tuple(names)
    s, e = start.isoformat(), end.isoformat()
    marks = ",".join("?" * len(names))
    sql = (
        "SELECT a.metric, a.day, a.van, a.key, a.value FROM aggregates a"
        " JOIN agg_days d ON d.van = a.van AND d.day = a.day AND d.state > 0"
        f" WHERE a.metric IN ({marks}) AND a.day >= ? AND a.day < ?"
        # the same range on agg_days: PostgreSQL does not carry it over the join itself
        " AND d.day >= ? AND d.day < ?"
    )
    args: list = [*names, s, e, s, e]
    if van is not None:
        sql += " AND a.van = ?"
        args.append(van)
    out: list[Metric] = _cur(conn).execute(sql, args).fetchall()
    for rows in raw_cached(conn, _dirty_days(conn, s, e, van), crew).values():
        out.extend(rows)
    out = [m for m in out if m[0] in names]
    return out


# {(id(conn), data version, changes, crew, van, days): (conn, rows)}, least
# recently used first. Large enough for a fleet: a page of 1,000 vans' raw days asks for
# each van three times (by key, day and stop), and a 4-entry cache recomputed them all.
_CACHE: OrderedDict[tuple, tuple[sqlite3.Connection, list[Metric]]] = OrderedDict()
_CACHE_SIZE = 4096
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget the remembered raw metrics and visit states (telemetry.visit_quality);
    telemetry.sums.clear_cache forgets the sums too."""
    with _CACHE_LOCK:
        _CACHE.clear()
    visit_quality.clear_cache()


def raw_cached(
    conn: sqlite3.Connection, days_of: dict[str, list[str]], crew: int
) -> dict[str, list[Metric]]:
    """The raw metrics of these vans' days (``{van: days}`` -> ``{van: rows}``, always
    with the quality metrics), remembered per connection until the database changes
    (``PRAGMA data_version`` counts other connections' commits, ``total_changes`` this
    one's), so the ten reports of an export compute the raw days once; the vans not
    remembered are computed together (:func:`telemetry.raw_days.raw_metrics_many`)."""
    if not days_of:
        return {}
    version = _cur(conn).execute("PRAGMA data_version").fetchone()[0]
    base = (id(conn), version, conn.total_changes, crew)
    out: dict[str, list[Metric]] = {}
    with _CACHE_LOCK:
        for v, days in days_of.items():
            key = (*base, v, tuple(sorted(days)))
            got = _CACHE.get(key)
            if got is not None and got[0] is conn:
                _CACHE.move_to_end(key)
                out[v] = got[1]
    missing = {v: days for v, days in days_of.items() if v not in out}
    if missing:
        computed = raw_metrics_many(conn, missing, METRICS, crew=crew)
        with _CACHE_LOCK:
            for v, rows in computed.items():
                _CACHE[(*base, v, tuple(sorted(missing[v])))] = (conn, rows)
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        out.update(computed)
    return out


# --- the per-visit metrics by stop ------------------------------------------------------


def stops_of(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, tuple]:
    """``{visit id: (name, municipality, planned)}`` for the ids that are stop visits."""
    ids = sorted(i for i in set(ids) if i)
    out: dict[str, tuple] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for r in _cur(conn).execute(
            "SELECT id, name, municipality, planned FROM stop_visits"
            f" WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            out[r[0]] = (r[1], r[2], r[3])
    return out


def stop_sums(
    conn: sqlite3.Connection, joins: str, where: str, args: Sequence, lo: str, hi: str
) -> list[tuple]:
    """Aggregates rows (``a``, picked by ``joins``, ``where`` and its ``args``, of the days
    ``lo`` to ``hi``) summed by the stop of their key: ``(metric, name, municipality,
    planned, value)``, name None for "not at a stop" (key ``""`` or no such visit).

    A day's figures belong to visits that arrived that day or the day before, so the stop
    visits are joined by day (``lo - 1`` to ``hi + 1``: the database finds them by day
    instead of hashing all of them); a visit of more than a day (parked over a weekend)
    is missed by that join, and the few keys it misses are looked up by id."""
    rows = (
        _cur(conn)
        .execute(
            "SELECT a.metric, s.name, s.municipality, s.planned,"
            " CASE WHEN s.id IS NULL AND a.key <> '' THEN a.key END, sum(a.value)"
            f" FROM aggregates a{joins} LEFT JOIN stop_visits s ON s.id = a.key"
            " AND a.key <> '' AND s.day >= ? AND s.day <= ?"
            f" WHERE {where} GROUP BY 1, 2, 3, 4, 5",
            [_shift(lo, -1), _shift(hi, 1), *args],
        )
        .fetchall()
    )
    found = stops_of(conn, {r[4] for r in rows if r[4]})
    return [
        (m, *found.get(key, (None, None, None)), v) if key else (m, name, muni, planned, v)
        for m, name, muni, planned, key, v in rows
    ]


def _shift(day: str, n: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()
