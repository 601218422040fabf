"""The metrics of days not folded yet (today, stale days), computed from the raw tables
(positions, footfall, check-ins, stop visits), for one van or many at once.

:func:`raw_metrics_many` computes the days of many vans with the same dozen queries a
single van needs (``van IN (...)``, 200 vans per batch), not a dozen per van: a hub's
fleet page for today on PostgreSQL asked 13 queries per van, 13,000 for 1,000 vans.
:func:`raw_metrics` is the same for one van. The definitions are in
:mod:`telemetry.metrics` (metric names and keys) and here:

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

A check-in belongs to the stop visit overlapping most of its hour; a door event to the
visit it happened in (visits never overlap: an open visit ends 12 hours after arrival or
at the next arrival). Data quality per visit: gaps over 10 minutes in the fixes
(``no_fix_s``) and in all records (``offline_s``), and blocked sensors (``blocked_s``,
``blocked_n``); door events outside any visit (``outside_n``).
"""

from __future__ import annotations

import bisect
import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .visit_quality import GAP_S as GAP_S
from .visit_quality import visit_quality

OPEN_VISIT_S = 12 * 3600.0
DEFAULT_CREW = 2  # the default of cfg.reports["crew"]
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
Metric = tuple[str, str, str, str, float]  # metric, day, van, key, value
QUALITY = frozenset({"no_fix_s", "offline_s", "blocked_s", "blocked_n"})
_CHECKIN = frozenset({"visit_checkins", "visit_first", "hour_checkins", "topic", "age", "first"})
BATCH_VANS = 200  # vans per batch of queries
# visits per statement: 5 parameters each, and PostgreSQL takes at most 65,535 (a hub
# whose daily job stood still for weeks has that many raw visits in one batch of vans)
VISITS_PER_QUERY = 2000


def _cur(conn: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor that returns plain tuples (much cheaper than ``sqlite3.Row``)."""
    cur = conn.cursor()
    cur.row_factory = None
    return cur


@dataclass(frozen=True)
class _Visit:
    id: str
    van: str
    arrived: float
    left: float | None
    end: float  # for attribution: left, or capped for an open visit
    day: str


def _marks(xs: Sequence) -> str:
    return ",".join("?" * len(xs))


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
    return raw_metrics_many(conn, {van: days}, names, crew=crew).get(van, [])


def raw_metrics_many(
    conn: sqlite3.Connection,
    days_of: Mapping[str, Sequence[str]],
    names: Iterable[str] = METRICS,
    *,
    crew: int = DEFAULT_CREW,
) -> dict[str, list[Metric]]:
    """:func:`raw_metrics` of many vans at once: ``{van: its local days}`` ->
    ``{van: its metric rows}``, the same rows, with a dozen queries per batch of vans."""
    if isinstance(crew, bool) or not isinstance(crew, int) or not 0 <= crew <= 10:
        raise ValueError(f"crew must be a whole number 0 to 10, not {crew!r}")
    todo = {v: sorted(set(ds)) for v, ds in days_of.items() if ds}
    names = frozenset(names)
    out: dict[str, list[Metric]] = {v: [] for v in days_of}
    vans = sorted(todo)
    for i in range(0, len(vans), BATCH_VANS):
        out.update(_batch(conn, {v: todo[v] for v in vans[i : i + BATCH_VANS]}, names, crew))
    return out


def _batch(
    conn, todo: dict[str, list[str]], names: frozenset[str], crew: int
) -> dict[str, list[Metric]]:
    vans = list(todo)
    days = sorted({d for ds in todo.values() for d in ds})
    pairs = {(v, d) for v, ds in todo.items() for d in ds}
    where = f"van IN ({_marks(vans)}) AND day IN ({_marks(days)})"
    vd = (*vans, *days)
    q = _cur(conn)
    acc: dict[str, dict[tuple[str, str, str], float]] = {v: defaultdict(float) for v in vans}

    # Grouped by day first: grouping by ts first would make SQLite pick the (van, ts)
    # index and read every check-in of the van.
    chk: dict[str, list[tuple]] = defaultdict(list)
    if names & _CHECKIN:
        for r in q.execute(
            "SELECT van, ts, day, hour, age_group, topics, first_visit, count(*) FROM checkins"
            f" WHERE {where} GROUP BY 1, 3, 2, 4, 5, 6, 7",
            vd,
        ).fetchall():
            if (r[0], r[2]) in pairs:
                chk[r[0]].append(r[1:])
    lo_of: dict[str, float] = {}
    hi_of: dict[str, float] = {}
    for table, col in (("footfall", "ts"), ("checkins", "ts"), ("stop_visits", "arrived")):
        for v, d, lo, hi in q.execute(
            f"SELECT van, day, min({col}), max({col}) FROM {table} WHERE {where} GROUP BY 1, 2",
            vd,
        ).fetchall():
            if (v, d) in pairs and lo is not None:
                lo_of[v] = min(lo, lo_of.get(v, lo))
                hi_of[v] = max(hi, hi_of.get(v, hi))
    window = [v for v in vans if v in lo_of]  # vans with events on their days
    lo_of = {v: lo_of.get(v, 0.0) - OPEN_VISIT_S - HOUR_S for v in vans}
    hi_of = {v: hi_of.get(v, 0.0) + HOUR_S for v in vans}
    visits = _visits(q, todo, lo_of, hi_of, window, vans, days)
    all_visits = [v for vs in visits.values() for v in vs]

    attributed: dict[tuple[str, str], int] = defaultdict(int)
    for i in range(0, len(all_visits), VISITS_PER_QUERY):
        chunk = all_visits[i : i + VISITS_PER_QUERY]
        for key, n in _door_counts(q, acc, chunk, days, pairs, crew).items():
            attributed[key] += n
    for v, day, n in q.execute(
        f"SELECT van, day, count(*) FROM footfall WHERE {where} AND kind IN ('in', 'pass')"
        " GROUP BY 1, 2",
        vd,
    ).fetchall():
        if (v, day) in pairs and n > attributed.get((v, day), 0):
            acc[v][("outside_n", day, "")] += n - attributed.get((v, day), 0)
    blocked: dict[str, list[tuple]] = defaultdict(list)
    if names & QUALITY:
        for r in q.execute(
            f"SELECT van, ts, day, kind, sensor, id FROM footfall WHERE {where}"
            " AND kind IN ('sensor_blocked', 'sensor_ok')",
            vd,
        ).fetchall():
            if (r[0], r[2]) in pairs:
                blocked[r[0]].append(r[1:])

    for v in vans:
        _checkins(acc[v], chk[v], visits[v])
        if blocked[v]:
            _blocked(conn, acc[v], v, todo[v], sorted(blocked[v]))
    if names & QUALITY:
        mine = [x for x in all_visits if x.day in todo[x.van]]
        for i in range(0, len(mine), VISITS_PER_QUERY):
            visit_quality(conn, q, acc, mine[i : i + VISITS_PER_QUERY])
    return {v: [(m, d, v, k, val) for (m, d, k), val in acc[v].items() if val] for v in vans}


def _door_counts(q, acc, visits, days, pairs, crew) -> dict[tuple[str, str], int]:
    """Footfall, counted in SQL per visit, day and hour: each visit's [arrived, end) is a
    range of the (van, ts) index. Of each visit's "in" events all but the first ``crew``
    count; of its passes, those left after the crew's (the first ``crew``, and the last
    ``crew`` of a closed visit), the 1st, 3rd, 5th ... count. The window sees the whole
    visit, the counts are kept for the days asked for. Returns the door events inside
    the visits per (van, day). The windows are per visit, so batches of visits add up."""
    cte = "WITH vis(van, id, a, e, c) AS (VALUES " + ",".join(["(?,?,?,?,?)"] * len(visits)) + ") "
    join = " FROM vis CROSS JOIN footfall f ON f.van = vis.van AND f.ts >= vis.a AND f.ts < vis.e"
    args = [x for v in visits for x in (v.van, v.id, v.arrived, v.end, v.left is not None)]
    counted = q.execute(
        cte + "SELECT van, id, day, hour, count(*) FROM (SELECT vis.van AS van, vis.id AS id,"
        " f.day AS day, f.hour AS hour, f.kind AS kind, vis.c AS closed, row_number() OVER"
        " (PARTITION BY vis.id, f.kind ORDER BY f.ts, f.id) AS rn,"
        " count(*) OVER (PARTITION BY vis.id, f.kind) AS cnt"
        + join
        + " AND f.kind IN ('in', 'pass'))"
        f" WHERE day IN ({_marks(days)}) AND rn > ? AND (kind = 'in' OR"
        " (rn <= cnt - closed * ? AND (rn - ?) % 2 = 1)) GROUP BY 1, 2, 3, 4",
        [*args, *days, crew, crew, crew],
    ).fetchall()
    for van, vid, day, hour, n in counted:
        if (van, day) in pairs:
            acc[van][("visit_visitors", day, vid)] += n
            acc[van][("hour_visitors", day, f"{hour:02d}")] += n
    return {
        (v, d): n
        for v, d, n in q.execute(
            cte
            + "SELECT vis.van, f.day, count(*)"
            + join
            + f" WHERE f.day IN ({_marks(days)}) AND f.kind IN ('in', 'pass') GROUP BY 1, 2",
            [*args, *days],
        ).fetchall()
    }


def _visits(q, todo, lo_of, hi_of, window, vans, days) -> dict[str, list[_Visit]]:
    """Each van's stop visits that can hold its days' events: arrived between its own
    ``lo`` and ``hi`` (the vans in ``window``, which have events), or on one of its
    days, or the one visit before ``lo`` if it left after ``lo`` (parked over a weekend
    with the box on: visits never overlap, so only the last one can reach that far);
    in order of arrival. A single day and a week's batch so see the same visits."""
    rows = []
    if window:
        cte = "WITH w(van, lo, hi) AS (VALUES " + ",".join(["(?,?,?)"] * len(window)) + ")"
        bounds = [x for v in window for x in (v, lo_of[v], hi_of[v])]
        rows += q.execute(
            cte + ' SELECT s.van, s.id, s.arrived, s."left", s.day FROM w CROSS JOIN'
            " stop_visits s ON s.van = w.van AND s.arrived >= w.lo AND s.arrived <= w.hi",
            bounds,
        ).fetchall()
        rows += q.execute(
            cte + ' SELECT s.van, s.id, s.arrived, s."left", s.day FROM w CROSS JOIN'
            " stop_visits s ON s.van = w.van AND s.arrived = (SELECT max(t.arrived) FROM"
            " stop_visits t WHERE t.van = w.van AND t.arrived < w.lo)"
            ' WHERE s."left" > w.lo',
            bounds,
        ).fetchall()
    rows += q.execute(
        f'SELECT van, id, arrived, "left", day FROM stop_visits WHERE van IN ({_marks(vans)})'
        f" AND day IN ({_marks(days)})",
        (*vans, *days),
    ).fetchall()
    mine: dict[str, dict[str, tuple]] = defaultdict(dict)
    for r in rows:
        lo = lo_of[r[0]]
        if r[4] in todo[r[0]] or lo <= r[2] <= hi_of[r[0]] or (r[3] is not None and r[3] > lo):
            mine[r[0]][r[1]] = r
    out: dict[str, list[_Visit]] = {}
    for v in vans:
        rs = sorted(mine[v].values(), key=lambda r: r[2])
        out[v] = []
        for i, r in enumerate(rs):
            nxt = rs[i + 1][2] if i + 1 < len(rs) else math.inf
            left = r[3]
            end = min(left if left is not None else r[2] + OPEN_VISIT_S, nxt)  # never overlap
            out[v].append(_Visit(r[1], v, r[2], left, end, r[4]))
    return out


def _checkins(acc, chk: list[tuple], visits: list[_Visit]) -> None:
    """Check-ins: the visit overlapping most of the check-in's hour."""
    starts = [v.arrived for v in visits]
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


def _blocked(conn, acc, van: str, days: list[str], blocked: list[tuple]) -> None:
    """Sensor blocked: to the next ok of that sensor on the day, else the day's last
    record (rare: queried per van that had a blocked sensor)."""
    marks = _marks(days)
    last_of_day = dict(
        _cur(conn)
        .execute(
            f"SELECT day, max(ts) FROM footfall WHERE van = ? AND day IN ({marks}) GROUP BY day",
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
