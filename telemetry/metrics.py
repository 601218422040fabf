"""The metric layer under the reports: daily metric rows per van, from raw rows or from
the daily aggregates.

A metric row is ``(metric, day, van, key, value)`` (:data:`Metric`). :func:`raw_metrics`
computes the metrics of one van's local days from the raw tables (positions, footfall,
check-ins, stop visits); :func:`metrics` gives the rows of a range of days for one van or
all vans, folded days from ``aggregates`` and the rest from :func:`raw_metrics`. The
definitions (attribution, visitors, data quality) are in :mod:`telemetry.reports`, which
builds the report tables from these rows.

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

Staff passes. The crew (``cfg.reports["crew"]``, :data:`DEFAULT_CREW` = 2 people on
board) pass the door themselves: each goes in once at the start of a stop visit (setting
up) and out once at its end (packing up). Those passes are not visits:

- ``beam-pair`` sensor (direction known): the first ``crew`` ``in`` events of each stop
  visit are the crew's; visitors = ``max(0, ins - crew)``, counted at the hours of the
  remaining ``in`` events.
- ``door`` / ``beam`` sensor (``pass``, direction unknown): the first ``crew`` and, once
  the visit is closed (``left`` known), the last ``crew`` passes of the visit are the
  crew's; of the remaining passes every person makes two, so visitors =
  ``ceil(max(0, passes - 2 * crew) / 2)`` per closed visit, counted at the hours of the
  1st, 3rd, 5th ... remaining pass. While a visit is still open only the first ``crew``
  passes are dropped (its figure can go down by up to ``crew`` when it closes).

The same ``crew`` must be used when a day is folded and when it is read raw: both default
to :data:`DEFAULT_CREW`; ``vanbox prune`` and the reports pass ``cfg.reports["crew"]``.

Metrics (``aggregates.metric`` / ``key``): ``visit_visitors``, ``visit_checkins``,
``visit_first`` (key: stop visit id, ``""`` = not at a stop); ``hour_visitors``,
``hour_checkins`` (key: local hour ``"00"``..``"23"``); ``topic`` (key: topic code);
``age`` (key: age group); ``first`` (key ``"1"`` first visit, ``"0"`` returning, ``""``
not said); ``no_fix_s``, ``offline_s``, ``blocked_s``, ``blocked_n``, ``outside_n`` (key
``""``).
"""

from __future__ import annotations

import bisect
import json
import math
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

OPEN_VISIT_S = 12 * 3600.0
DEFAULT_CREW = 2  # the default of cfg.reports["crew"]
GAP_S = 600.0
HOUR_S = 3600.0
METRICS = (
    "visit_visitors",
    "visit_checkins",
    "visit_first",
    "hour_visitors",
    "hour_checkins",
    "topic",
    "age",
    "first",
    "no_fix_s",
    "offline_s",
    "blocked_s",
    "blocked_n",
    "outside_n",
)


def _cur(conn: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor that returns plain tuples (much cheaper than ``sqlite3.Row``)."""
    cur = conn.cursor()
    cur.row_factory = None
    return cur


# --- metrics from raw rows -----------------------------------------------------------

Metric = tuple[str, str, str, str, float]  # metric, day, van, key, value


@dataclass(frozen=True)
class _Visit:
    id: str
    arrived: float
    left: float | None
    end: float  # for attribution: left, or capped for an open visit
    day: str


def _visits_for(conn: sqlite3.Connection, van: str, lo: float, hi: float, days: Sequence[str]):
    marks = ",".join("?" * len(days))
    rows = (
        _cur(conn)
        .execute(
            f'SELECT id, arrived, "left", day FROM stop_visits WHERE van = ?'
            f" AND ((arrived >= ? AND arrived <= ?) OR day IN ({marks})) ORDER BY arrived",
            (van, lo, hi, *days),
        )
        .fetchall()
    )
    out = []
    for i, r in enumerate(rows):
        nxt = rows[i + 1][1] if i + 1 < len(rows) else math.inf
        left = r[2]
        end = min(left if left is not None else r[1] + OPEN_VISIT_S, nxt)  # never overlap
        out.append(_Visit(r[0], r[1], left, end, r[3]))
    return out


def _gaps(points: Iterable[float], lo: float, hi: float) -> float:
    total, prev = 0.0, lo
    for t in sorted(points):
        if t > prev:
            if t - prev > GAP_S:
                total += t - prev
            prev = t
    if hi - prev > GAP_S:
        total += hi - prev
    return total


_QUALITY = frozenset({"no_fix_s", "offline_s", "blocked_s", "blocked_n"})
_ALL_BUT_QUALITY = tuple(m for m in METRICS if m not in _QUALITY)
_CHECKIN = frozenset({"visit_checkins", "visit_first", "hour_checkins", "topic", "age", "first"})


def raw_metrics(
    conn: sqlite3.Connection,
    van: str,
    days: Sequence[str],
    names: Iterable[str] = METRICS,
    *,
    crew: int = DEFAULT_CREW,
) -> list[Metric]:
    """The metrics of one van on the given local days, computed from the raw tables
    (only the ``names`` asked for, and perhaps a few more); ``crew``: staff on board,
    whose own door passes are not visitors (see the module docstring)."""
    if isinstance(crew, bool) or not isinstance(crew, int) or not 0 <= crew <= 10:
        raise ValueError(f"crew must be a whole number 0 to 10, not {crew!r}")
    days = sorted(set(days))
    names = frozenset(names)
    if not days:
        return []
    acc: dict[tuple[str, str, str], float] = defaultdict(float)
    marks = ",".join("?" * len(days))
    q = _cur(conn)
    # Grouped by day first: grouping by ts first would make SQLite pick the (van, ts)
    # index and read every check-in of the van.
    chk = (
        q.execute(
            "SELECT ts, day, hour, age_group, topics, first_visit, count(*) FROM checkins"
            f" WHERE van = ? AND day IN ({marks}) GROUP BY 2, 1, 3, 4, 5, 6",
            (van, *days),
        ).fetchall()
        if names & _CHECKIN
        else []
    )
    spans = [
        q.execute(f"SELECT min({col}), max({col}) FROM {table} WHERE van = ? AND day IN ({marks})",
                  (van, *days)).fetchone()
        for table, col in (("footfall", "ts"), ("checkins", "ts"), ("stop_visits", "arrived"))
    ]  # fmt: skip
    xs = [x for r in spans for x in r if x is not None]
    lo = min(xs, default=0.0) - OPEN_VISIT_S - HOUR_S
    hi = max(xs, default=0.0) + HOUR_S
    visits = _visits_for(conn, van, lo, hi, days)
    starts = [v.arrived for v in visits]

    # Footfall, counted in SQL per visit, day and hour: each visit's [arrived, end) is a
    # range of the (van, ts) index. Of each visit's "in" events all but the first
    # ``crew`` count; of its passes, those left after the crew's (the first ``crew``, and
    # the last ``crew`` of a closed visit), the 1st, 3rd, 5th ... count. The window
    # sees the whole visit, the counts are kept for the days asked for.
    attributed: dict[str, int] = {}
    if visits:
        cte = "WITH vis(id, a, e, c) AS (VALUES " + ",".join(["(?,?,?,?)"] * len(visits)) + ") "
        join = " FROM vis CROSS JOIN footfall f ON f.van = ? AND f.ts >= vis.a AND f.ts < vis.e"
        args = [x for v in visits for x in (v.id, v.arrived, v.end, v.left is not None)]
        counted = q.execute(
            cte + "SELECT id, day, hour, count(*) FROM (SELECT vis.id AS id, f.day AS day,"
            " f.hour AS hour, f.kind AS kind, vis.c AS closed, row_number() OVER"
            " (PARTITION BY vis.id, f.kind ORDER BY f.ts, f.id) AS rn,"
            " count(*) OVER (PARTITION BY vis.id, f.kind) AS cnt"
            + join
            + " AND f.kind IN ('in', 'pass'))"
            f" WHERE day IN ({marks}) AND rn > ? AND (kind = 'in' OR"
            " (rn <= cnt - closed * ? AND (rn - ?) % 2 = 1)) GROUP BY 1, 2, 3",
            [*args, van, *days, crew, crew, crew],
        ).fetchall()
        for vid, day, hour, n in counted:
            acc[("visit_visitors", day, vid)] += n
            acc[("hour_visitors", day, f"{hour:02d}")] += n
        join += f" WHERE f.day IN ({marks})"
        args += [van, *days]
        attributed = dict(
            q.execute(
                cte + "SELECT f.day, count(*)" + join + " AND f.kind IN ('in', 'pass') GROUP BY 1",
                args,
            ).fetchall()
        )
    for day, n in q.execute(
        f"SELECT day, count(*) FROM footfall WHERE van = ? AND day IN ({marks})"
        " AND kind IN ('in', 'pass') GROUP BY 1",
        (van, *days),
    ).fetchall():
        if n > attributed.get(day, 0):
            acc[("outside_n", day, "")] += n - attributed.get(day, 0)
    blocked = sorted(
        q.execute(
            f"SELECT ts, day, kind, sensor, id FROM footfall WHERE van = ? AND day IN ({marks})"
            " AND kind IN ('sensor_blocked', 'sensor_ok')",
            (van, *days),
        ).fetchall()
        if names & _QUALITY
        else []
    )

    # Check-ins: the visit overlapping most of the check-in's hour.
    for ts, day, hour, age, topics, first, n in chk:
        best, best_o = None, 0.0
        i = bisect.bisect_left(starts, ts + HOUR_S) - 1
        for j in range(i, max(-1, i - 3), -1):
            v = visits[j]
            o = min(v.end, ts + HOUR_S) - max(v.arrived, ts)
            if o > 0 and o >= best_o:
                best, best_o = v, o
        key = best.id if best else ""
        acc[("visit_checkins", day, key)] += n
        if first == 1:
            acc[("visit_first", day, key)] += n
        acc[("hour_checkins", day, f"{hour:02d}")] += n
        acc[("age", day, age)] += n
        acc[("first", day, "" if first is None else str(first))] += n
        try:
            codes = json.loads(topics)
        except ValueError:
            codes = []
        for code in dict.fromkeys(codes):
            acc[("topic", day, str(code))] += n

    # Sensor blocked: to the next ok of that sensor on the day, else the day's last record.
    if blocked and names & _QUALITY:
        last_of_day = dict(
            _cur(conn)
            .execute(
                f"SELECT day, max(ts) FROM footfall WHERE van = ? AND day IN ({marks})"
                " GROUP BY day",
                (van, *days),
            )
            .fetchall()
        )
        for day, t in (
            _cur(conn)
            .execute(
                f"SELECT day, max(ts) FROM positions WHERE van = ? AND ts >= ? AND ts <= ?"
                f" AND day IN ({marks}) GROUP BY day",
                (van, min(b[0] for b in blocked), max(b[0] for b in blocked) + 2 * 86400, *days),
            )
            .fetchall()
        ):
            last_of_day[day] = max(t, last_of_day.get(day, t))
        open_since: dict[str, tuple[float, str]] = {}
        for ts, day, kind, sensor, _id in blocked:
            if kind == "sensor_blocked":
                if sensor not in open_since:
                    open_since[sensor] = (ts, day)
                    acc[("blocked_n", day, "")] += 1
            elif sensor in open_since:
                t0, d0 = open_since.pop(sensor)
                end = ts if day == d0 else last_of_day.get(d0, t0)
                acc[("blocked_s", d0, "")] += max(0.0, end - t0)
        for t0, d0 in open_since.values():
            acc[("blocked_s", d0, "")] += max(0.0, last_of_day.get(d0, t0) - t0)

    # Quality per visit: gaps in the fixes and in all records, inside the visit.
    for v in visits if names & _QUALITY else ():
        if v.day not in days:
            continue
        hi_v = v.left
        pos = [
            r[0]
            for r in _cur(conn).execute(
                "SELECT ts FROM positions WHERE van = ? AND ts >= ? AND ts <= ? AND suspect = 0",
                (van, v.arrived, v.end if hi_v is None else hi_v),
            )
        ]
        ff = [
            r[0]
            for r in _cur(conn).execute(
                "SELECT ts FROM footfall WHERE van = ? AND ts >= ? AND ts <= ?",
                (van, v.arrived, v.end if hi_v is None else hi_v),
            )
        ]
        if hi_v is None:  # still open: up to the last sign of life
            hi_v = max(pos + ff + [v.arrived])
        offline = _gaps(pos + ff, v.arrived, hi_v)
        no_fix = _gaps(pos, v.arrived, hi_v) - offline
        if offline:
            acc[("offline_s", v.day, "")] += offline
        if no_fix > 0:
            acc[("no_fix_s", v.day, "")] += no_fix
    return [(m, d, van, k, val) for (m, d, k), val in acc.items() if val]


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
    for v, days in _dirty_days(conn, s, e, van).items():
        out.extend(_raw_cached(conn, v, days, bool(_QUALITY & set(names)), crew))
    out = [m for m in out if m[0] in names]
    return out


_CACHE: list[tuple[sqlite3.Connection, tuple, bool, list[Metric]]] = []
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget the remembered raw metrics (telemetry.sums.clear_cache forgets the sums too)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _raw_cached(
    conn: sqlite3.Connection, van: str, days: list[str], quality: bool, crew: int
) -> list[Metric]:
    """The raw metrics of these days (the quality ones only if ``quality``), remembered
    per connection until the database changes (``PRAGMA data_version`` counts other
    connections' commits, ``total_changes`` this one's), so the ten reports of an export
    compute the raw days once."""
    version = _cur(conn).execute("PRAGMA data_version").fetchone()[0]
    key = (version, conn.total_changes, van, tuple(sorted(days)), crew)
    with _CACHE_LOCK:
        for c, k, q, rows in _CACHE:
            if c is conn and k == key and q >= quality:
                return rows
    rows = raw_metrics(conn, van, days, METRICS if quality else _ALL_BUT_QUALITY, crew=crew)
    with _CACHE_LOCK:
        _CACHE.insert(0, (conn, key, quality, rows))
        del _CACHE[_CACHE_SIZE:]
    return rows
