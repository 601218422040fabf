"""Report figures for the staff pages, the exports and the annual report.

Every report is a :class:`Table` for a :class:`Period` (a local day, ISO week, month or
year), for one van or (``van=None``, the hub) all vans. The same code runs on the box and
on the hub.

How the figures are counted
---------------------------
- **Attribution.** A footfall event belongs to the stop visit of the same van whose
  ``[arrived, left)`` contains its time. An open visit (``left`` unknown) lasts until the
  van's next visit or at most :data:`OPEN_VISIT_S` (12 h). A check-in's time is rounded
  down to the hour for privacy, so a check-in belongs to the visit that overlaps most of
  its hour ``[ts, ts + 1 h)`` (the earlier one on a tie). Check-ins outside any visit
  still count as check-ins ("not at a stop"); door counts outside any visit (staff at the
  depot) are not visitors and show in the quality report as "counts outside stops".
- **Visitors.** With a ``beam-pair`` sensor, visitors are the footfall events of kind
  ``in``. With a ``door`` or ``beam`` sensor (kind ``pass``, direction unknown) every
  person passes twice, so visitors are ``ceil(passes / 2)`` per stop visit and day; by
  hour of day, the 1st, 3rd, 5th ... pass of a visit counts as a visitor, so hours add up
  to the visit's total.
- **Contacts** (annual report) are visitors; **first contacts** are check-ins that said
  "first visit". **Rural share** is the share of visitors at stops outside the town of
  Peine (:data:`telemetry.config.TOWN`); an unplanned stop belongs to the municipality of
  the nearest tour stop.
- **Data quality**, per stop visit (counted on the day of arrival):
  *offline* is every stretch of more than :data:`GAP_S` (10 min, twice the parked
  publishing interval, so thinned hub data is not a gap) in which the box recorded nothing
  at all (no fix, no count, no sensor event): it was off, rebooting or hung.
  *Without a GPS fix* is every stretch of more than 10 min between two fixes (fixes
  flagged suspect by the jump filter do not count), less the offline time in it (the box
  ran but had no fix).
  *Sensor blocked* is the time from a ``sensor_blocked`` event to the next ``sensor_ok``
  of the same sensor on that day (or, without one, to the van's last record of the day).
- **Privacy.** ``public=True`` suppresses every people count from 1 to ``min_cell - 1``
  (0 stays visible): the cell becomes ``None`` (shown as "<3"), and so does every share
  computed from it. When a column has exactly one suppressed cell, the next smallest cell
  of that column is suppressed too, so the column's total (shown in the summary) cannot
  be used to work it out; a total row is suppressed when any cell above it is. The same
  holds within a municipality's stops (its total is in the municipalities table) and
  within the rural municipalities (their total is in the rural table).

Storage: the daily job (``vanbox prune``) folds complete days into the ``aggregates``
table (see ``migrations/0002_aggregates.sql`` and :mod:`telemetry.retention`); triggers
mark a folded day stale again when a raw row for it arrives later. A report reads folded
days from ``aggregates`` and every other day (today, stale days) from the raw tables,
computing the same metrics with the same code (:func:`raw_metrics`), so figures do not
change when a day is folded or its raw rows are pruned. Raw days are remembered per
connection until the database changes, so an export of all ten reports computes them once.
A year from aggregates takes milliseconds; a year of raw rows only (the daily job never
ran) takes seconds.

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
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .config import TOWN
from .events import from_epoch, to_epoch
from .tour import open_visit

OPEN_VISIT_S = 12 * 3600.0
GAP_S = 600.0
HOUR_S = 3600.0
NOT_AT_STOP = "(not at a stop)"
SUPPRESSED = None  # what a suppressed cell holds; pages show it as "<3"

REPORTS: dict[str, str] = {
    "summary": "Summary",
    "stops": "Visitors per stop",
    "municipalities": "Visitors per municipality",
    "rural": "Town of Peine and rural municipalities",
    "hours": "Visitors by hour of day",
    "weekdays": "Visitors by weekday",
    "topics": "Topics",
    "age_groups": "Age groups",
    "first_visits": "First visits",
    "quality": "Data quality",
}

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
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


# --- periods -------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    kind: str  # day | week | month | year
    start: date
    end: date  # exclusive
    label: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def period(kind: str, day: date) -> Period:
    """The period of that kind containing ``day`` (weeks are ISO weeks, Monday first)."""
    if isinstance(day, datetime):
        day = day.date()
    if kind == "day":
        return Period("day", day, day + timedelta(days=1), day.isoformat())
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        y, w, _ = start.isocalendar()
        return Period("week", start, start + timedelta(days=7), f"{y}-W{w:02d}")
    if kind == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return Period("month", start, end, start.strftime("%Y-%m"))
    if kind == "year":
        start = day.replace(month=1, day=1)
        return Period("year", start, start.replace(year=start.year + 1), str(start.year))
    raise ValueError(f"unknown period kind {kind!r}; use day, week, month or year")


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    chart: str  # bar | line | pie | none
    note: str = ""


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
    conn: sqlite3.Connection, van: str, days: Sequence[str], names: Iterable[str] = METRICS
) -> list[Metric]:
    """The metrics of one van on the given local days, computed from the raw tables
    (only the ``names`` asked for, and perhaps a few more)."""
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
    # range of the (van, ts) index. "in" counts; of the passes, the 1st, 3rd, 5th ...
    # per visit and day (ceil(passes / 2) in all).
    attributed: dict[str, int] = {}
    if visits:
        cte = "WITH vis(id, a, e) AS (VALUES " + ",".join(["(?,?,?)"] * len(visits)) + ") "
        join = (
            " FROM vis CROSS JOIN footfall f ON f.van = ? AND f.ts >= vis.a AND f.ts < vis.e"
            f" WHERE f.day IN ({marks})"
        )
        args = [x for v in visits for x in (v.id, v.arrived, v.end)] + [van, *days]
        ins = q.execute(
            cte + "SELECT vis.id, f.day, f.hour, count(*)" + join + " AND f.kind = 'in'"
            " GROUP BY 1, 2, 3",
            args,
        ).fetchall()
        odd = q.execute(
            cte + "SELECT id, day, hour, count(*) FROM (SELECT vis.id AS id, f.day AS day,"
            " f.hour AS hour, row_number() OVER (PARTITION BY vis.id, f.day"
            " ORDER BY f.ts, f.id) AS rn" + join + " AND f.kind = 'pass')"
            " WHERE rn % 2 = 1 GROUP BY 1, 2, 3",
            args,
        ).fetchall()
        for vid, day, hour, n in ins + odd:
            acc[("visit_visitors", day, vid)] += n
            acc[("hour_visitors", day, f"{hour:02d}")] += n
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
) -> list[Metric]:
    """All metric rows of the days ``[start, end)``: folded days from ``aggregates``,
    the other days computed from the raw tables."""
    names = tuple(names)
    s, e = start.isoformat(), end.isoformat()
    marks = ",".join("?" * len(names))
    sql = (
        "SELECT a.metric, a.day, a.van, a.key, a.value FROM aggregates a"
        " JOIN agg_days d ON d.van = a.van AND d.day = a.day AND d.state > 0"
        f" WHERE a.metric IN ({marks}) AND a.day >= ? AND a.day < ?"
    )
    args: list = [*names, s, e]
    if van is not None:
        sql += " AND a.van = ?"
        args.append(van)
    out: list[Metric] = _cur(conn).execute(sql, args).fetchall()
    for v, days in _dirty_days(conn, s, e, van).items():
        out.extend(m for m in _raw_cached(conn, v, days, bool(_QUALITY & set(names))))
    out = [m for m in out if m[0] in names]
    return out


_CACHE: list[tuple[sqlite3.Connection, tuple, bool, list[Metric]]] = []
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget the remembered raw metrics (benchmarks measure the uncached path)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _raw_cached(conn: sqlite3.Connection, van: str, days: list[str], quality: bool) -> list[Metric]:
    """The raw metrics of these days (the quality ones only if ``quality``), remembered
    per connection until the database changes (``PRAGMA data_version`` counts other
    connections' commits, ``total_changes`` this one's), so the ten reports of an export
    compute the raw days once."""
    version = _cur(conn).execute("PRAGMA data_version").fetchone()[0]
    key = (version, conn.total_changes, van, tuple(sorted(days)))
    with _CACHE_LOCK:
        for c, k, q, rows in _CACHE:
            if c is conn and k == key and q >= quality:
                return rows
    rows = raw_metrics(conn, van, days, METRICS if quality else _ALL_BUT_QUALITY)
    with _CACHE_LOCK:
        _CACHE.insert(0, (conn, key, quality, rows))
        del _CACHE[_CACHE_SIZE:]
    return rows


def _sum_by(rows: Iterable[Metric], metric: str, by: int = 3) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for r in rows:
        if r[0] == metric:
            out[r[by]] += r[4]
    return out


def _visit_info(conn, ids: Iterable[str]) -> dict[str, sqlite3.Row | tuple]:
    ids = [i for i in set(ids) if i]
    out: dict = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for r in (
            _cur(conn)
            .execute(
                f"SELECT id, name, municipality, planned FROM stop_visits WHERE id IN ({marks})",
                chunk,
            )
            .fetchall()
        ):
            out[r[0]] = tuple(r)
    return out


def _visits_in(conn, p: Period, van: str | None) -> list[tuple]:
    sql = "SELECT id, day, name, municipality, planned FROM stop_visits WHERE day >= ? AND day < ?"
    args: list = [p.start.isoformat(), p.end.isoformat()]
    if van is not None:
        sql += " AND van = ?"
        args.append(van)
    return [tuple(r) for r in _cur(conn).execute(sql, args).fetchall()]


# --- privacy -------------------------------------------------------------------------


def _suppress(
    rows: list[list],
    people_cols: Sequence[int],
    share_of: dict[int, int],
    min_cell: int,
    groups: Sequence | None = None,
) -> str:
    """Suppress small people counts in place (see module docstring). ``share_of`` maps a
    share column to the count column it is computed from. ``groups`` gives each row a
    group (a stop's municipality, a municipality's area): a lone suppressed cell of a
    group takes a partner from the same group first, since the group's total is
    published in another table. Returns a note."""

    def visible(i: int, c: int) -> bool:
        v = rows[i][c]
        return isinstance(v, int | float) and v > 0

    def hide_partner(c: int, among: list[int]) -> None:
        rest = [(rows[i][c], i) for i in among if visible(i, c)]
        if rest:
            rows[min(rest)[1]][c] = SUPPRESSED

    hidden = 0
    for c in people_cols:
        small = [i for i in range(len(rows)) if visible(i, c) and rows[i][c] < min_cell]
        for i in small:
            rows[i][c] = SUPPRESSED
        by_group: dict = defaultdict(list)
        for i, g in enumerate(groups or ()):
            by_group[g].append(i)
        # Hiding a partner may leave another group or the column with a lone hidden cell:
        # repeat until nothing changes (cells are only ever hidden, so this ends).
        while True:
            before = sum(r[c] is SUPPRESSED for r in rows)
            for members in by_group.values():
                if sum(rows[i][c] is SUPPRESSED for i in members) == 1:
                    hide_partner(c, members)
            if sum(r[c] is SUPPRESSED for r in rows) == 1:
                hide_partner(c, list(range(len(rows))))
            after = sum(r[c] is SUPPRESSED for r in rows)
            if after == before:
                break
        hidden += after
    for sc, cc in share_of.items():
        for r in rows:
            if r[cc] is SUPPRESSED:
                r[sc] = SUPPRESSED
    if not hidden:
        return ""
    return f"Cells with fewer than {min_cell} people are suppressed (shown as <{min_cell})."


def _share(n: float, total: float) -> float | None:
    return round(100.0 * n / total, 1) if total else None


def _int(x: float) -> int:
    return int(round(x))


# --- the reports ---------------------------------------------------------------------


def report(
    conn: sqlite3.Connection,
    name: str,
    period: Period,
    *,
    van: str | None = None,
    public: bool = False,
    min_cell: int = 3,
) -> Table:
    """One report as a :class:`Table` (see :data:`REPORTS` for the names)."""
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}; use one of {', '.join(REPORTS)}")
    return _BUILDERS[name](conn, period, van, public, min_cell)


def _finish(
    name, columns, rows, chart, note_parts, public, people, shares, min_cell, total=None, group=None
):
    rows = [list(r) for r in rows]
    notes = [n for n in note_parts if n]
    if public:
        body_note = _suppress(
            rows, people, shares, min_cell, None if group is None else [group(r) for r in rows]
        )
        if total is not None:
            total = list(total)
            for c in people:
                if any(r[c] is SUPPRESSED for r in rows) or (
                    isinstance(total[c], int | float) and 0 < total[c] < min_cell
                ):
                    total[c] = SUPPRESSED
            for sc, cc in shares.items():
                if total[cc] is SUPPRESSED:
                    total[sc] = SUPPRESSED
        notes.append(body_note)
    if total is not None:
        rows.append(list(total))
    return Table(
        name,
        REPORTS[name],
        tuple(columns),
        tuple(tuple(r) for r in rows),
        chart,
        " ".join(n for n in notes if n),
    )


def _summary(conn, p: Period, van, public, min_cell) -> Table:
    m = metrics(conn, p.start, p.end, van=van, names=("visit_visitors", "visit_checkins", "first"))
    per_visit = _sum_by(m, "visit_visitors")
    info = _visit_info(conn, per_visit)
    visitors = sum(per_visit.values())
    rural = sum(n for k, n in per_visit.items() if k in info and info[k][2] != TOWN)
    checkins = sum(_sum_by(m, "visit_checkins").values())
    first = _sum_by(m, "first")
    visits = _visits_in(conn, p, van)
    rows = [
        ["Visitors", _int(visitors)],
        ["Check-ins", _int(checkins)],
        ["First visits", _int(first.get("1", 0))],
        ["Returning visitors", _int(first.get("0", 0))],
        ["Stop visits (tour)", sum(1 for v in visits if v[4])],
        ["Unplanned stops", sum(1 for v in visits if not v[4])],
        ["Places served", len({v[2] for v in visits})],
        ["Visitors outside the town of Peine", _int(rural)],
        ["Share outside the town of Peine (%)", _share(rural, visitors)],
    ]
    notes = [f"{p.label}: {p.start.isoformat()} to {(p.end - timedelta(days=1)).isoformat()}."]
    if public:
        for r in rows[:4] + rows[7:8]:
            if isinstance(r[1], int) and 0 < r[1] < min_cell:
                r[1] = SUPPRESSED
        town = visitors - rural
        if 0 < town < min_cell:  # visitors - rural would give the town's small count away
            rows[7][1] = SUPPRESSED
        if rows[7][1] is SUPPRESSED or rows[0][1] is SUPPRESSED:
            rows[8][1] = SUPPRESSED
        if any(r[1] is SUPPRESSED for r in rows):
            notes.append(f"Counts from 1 to {min_cell - 1} are suppressed (shown as <{min_cell}).")
    return Table(
        "summary",
        REPORTS["summary"],
        ("Figure", "Value"),
        tuple(tuple(r) for r in rows),
        "none",
        " ".join(notes),
    )


def _per_visit(conn, p: Period, van):
    m = metrics(
        conn,
        p.start,
        p.end,
        van=van,
        names=("visit_visitors", "visit_checkins", "visit_first"),
    )
    vis = _sum_by(m, "visit_visitors")
    chk = _sum_by(m, "visit_checkins")
    fst = _sum_by(m, "visit_first")
    visits = _visits_in(conn, p, van)
    info = {v[0]: (v[0], v[2], v[3], v[4]) for v in visits}
    info.update(_visit_info(conn, (set(vis) | set(chk) | set(fst)) - set(info)))
    return vis, chk, fst, visits, info


def _stops(conn, p: Period, van, public, min_cell) -> Table:
    vis, chk, fst, visits, info = _per_visit(conn, p, van)
    acc: dict[tuple, list] = {}
    for v in visits:
        acc.setdefault((v[2], v[3], bool(v[4])), [0, 0.0, 0.0, 0.0])[0] += 1
    for src, col in ((vis, 1), (chk, 2), (fst, 3)):
        for k, n in src.items():
            if k in info:
                i = info[k]
                key = (i[1], i[2], bool(i[3]))
            else:
                key = (NOT_AT_STOP, "", False)
            acc.setdefault(key, [0, 0.0, 0.0, 0.0])[col] += n
    rows = [
        [name, muni, "yes" if planned else "no", a[0], _int(a[1]), _int(a[2]), _int(a[3])]
        for (name, muni, planned), a in acc.items()
    ]
    rows.sort(key=lambda r: (r[0] == NOT_AT_STOP, -r[4], r[0]))
    total = ["Total", "", "", sum(r[3] for r in rows)] + [
        sum(r[c] for r in rows) for c in (4, 5, 6)
    ]
    return _finish(
        "stops",
        ("Stop", "Municipality", "Planned", "Visits", "Visitors", "Check-ins", "First visits"),
        rows,
        "bar",
        [],
        public,
        (4, 5, 6),
        {},
        min_cell,
        total,
        group=lambda r: r[1],  # the municipality: its total is in "municipalities"
    )


def _municipalities(conn, p: Period, van, public, min_cell) -> Table:
    vis, chk, _fst, visits, info = _per_visit(conn, p, van)
    acc: dict[str, list] = {}
    for v in visits:
        acc.setdefault(v[3], [0, 0.0, 0.0])[0] += 1
    for src, col in ((vis, 1), (chk, 2)):
        for k, n in src.items():
            muni = info[k][2] if k in info else NOT_AT_STOP
            acc.setdefault(muni, [0, 0.0, 0.0])[col] += n
    total_vis = sum(a[1] for a in acc.values())
    rows = [
        [muni, a[0], _int(a[1]), _int(a[2]), _share(a[1], total_vis)] for muni, a in acc.items()
    ]
    rows.sort(key=lambda r: (r[0] == NOT_AT_STOP, -r[2], r[0]))
    total = ["Total", sum(r[1] for r in rows), _int(total_vis), sum(r[3] for r in rows)]
    total.append(100.0 if total_vis else None)
    return _finish(
        "municipalities",
        ("Municipality", "Visits", "Visitors", "Check-ins", "Share of visitors (%)"),
        rows,
        "bar",
        [],
        public,
        (2, 3),
        {4: 2},
        min_cell,
        total,
        group=lambda r: (r[0] == TOWN, r[0] == NOT_AT_STOP),  # the area: in "rural"
    )


def _rural(conn, p: Period, van, public, min_cell) -> Table:
    vis, chk, _fst, visits, info = _per_visit(conn, p, van)
    labels = (f"Town of {TOWN}", "Rural municipalities")
    acc = {labels[0]: [0, 0.0, 0.0], labels[1]: [0, 0.0, 0.0]}
    for v in visits:
        acc[labels[v[3] != TOWN]][0] += 1
    for src, col in ((vis, 1), (chk, 2)):
        for k, n in src.items():
            key = labels[info[k][2] != TOWN] if k in info else NOT_AT_STOP
            acc.setdefault(key, [0, 0.0, 0.0])[col] += n
    total_vis = sum(a[1] for a in acc.values())
    rows = [[k, a[0], _int(a[1]), _int(a[2]), _share(a[1], total_vis)] for k, a in acc.items()]
    return _finish(
        "rural",
        ("Area", "Visits", "Visitors", "Check-ins", "Share of visitors (%)"),
        rows,
        "pie",
        [],
        public,
        (2, 3),
        {4: 2},
        min_cell,
    )


def _hours(conn, p: Period, van, public, min_cell) -> Table:
    m = metrics(conn, p.start, p.end, van=van, names=("hour_visitors", "hour_checkins"))
    vis, chk = _sum_by(m, "hour_visitors"), _sum_by(m, "hour_checkins")
    hours = sorted({int(h) for h in vis} | {int(h) for h in chk})
    rows = []
    if hours:
        for h in range(hours[0], hours[-1] + 1):
            k = f"{h:02d}"
            rows.append([f"{h:02d}:00", _int(vis.get(k, 0)), _int(chk.get(k, 0))])
    return _finish(
        "hours",
        ("Hour", "Visitors", "Check-ins"),
        rows,
        "bar",
        ["Check-in times are rounded down to the hour."],
        public,
        (1, 2),
        {},
        min_cell,
    )


def _weekdays(conn, p: Period, van, public, min_cell) -> Table:
    m = metrics(conn, p.start, p.end, van=van, names=("visit_visitors", "visit_checkins"))
    vis = [0.0] * 7
    chk = [0.0] * 7
    for metric, day, _v, _k, n in m:
        wd = date.fromisoformat(day).weekday()
        if metric == "visit_visitors":
            vis[wd] += n
        else:
            chk[wd] += n
    nvis = [0] * 7
    for v in _visits_in(conn, p, van):
        nvis[date.fromisoformat(v[1]).weekday()] += 1
    rows = [[WEEKDAY_NAMES[i], nvis[i], _int(vis[i]), _int(chk[i])] for i in range(7)]
    return _finish(
        "weekdays",
        ("Weekday", "Stop visits", "Visitors", "Check-ins"),
        rows,
        "bar",
        [],
        public,
        (2, 3),
        {},
        min_cell,
    )


def _categories(name, metric, label, order, conn, p: Period, van, public, min_cell) -> Table:
    m = metrics(conn, p.start, p.end, van=van, names=(metric, "first"))
    counts = _sum_by(m, metric)
    checkins = sum(_sum_by(m, "first").values())
    keys = [k for k in order if k in counts] + sorted(
        (k for k in counts if k not in order), key=lambda k: (-counts[k], k)
    )
    rows = [[_label(metric, k), _int(counts[k]), _share(counts[k], checkins)] for k in keys]
    notes = []
    if metric == "topic":
        notes.append("A check-in may name several topics; shares are of all check-ins.")
    return _finish(
        name,
        (label, "Check-ins", "Share of check-ins (%)"),
        rows,
        "pie" if metric != "topic" else "bar",
        notes,
        public,
        (1,),
        {2: 1},
        min_cell,
    )


def _label(metric: str, key: str) -> str:
    if metric == "first":
        return {"1": "First visit", "0": "Returning", "": "Not said"}.get(key, key)
    return key


def _topics(conn, p, van, public, min_cell) -> Table:
    return _categories("topics", "topic", "Topic", (), conn, p, van, public, min_cell)


def _age_groups(conn, p, van, public, min_cell) -> Table:
    order = ("15-17", "18-20", "21-24", "25-27")
    return _categories("age_groups", "age", "Age group", order, conn, p, van, public, min_cell)


def _first_visits(conn, p, van, public, min_cell) -> Table:
    return _categories(
        "first_visits", "first", "Answer", ("1", "0", ""), conn, p, van, public, min_cell
    )


def _quality(conn, p: Period, van, public, min_cell) -> Table:
    names = ("no_fix_s", "offline_s", "blocked_s", "blocked_n", "outside_n")
    m = metrics(conn, p.start, p.end, van=van, names=names)
    per_day: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for metric, day, _v, _k, n in m:
        per_day[day][metric] += n
    rows = []
    for day in sorted(per_day):
        d = per_day[day]
        rows.append(
            [
                day,
                round(d["no_fix_s"] / 60, 1),
                round(d["offline_s"] / 60, 1),
                round(d["blocked_s"] / 60, 1),
                _int(d["blocked_n"]),
                _int(d["outside_n"]),
            ]
        )
    total = ["Total"] + [
        round(sum(r[c] for r in rows), 1) if c < 4 else sum(r[c] for r in rows) for c in range(1, 6)
    ]
    note = (
        "Per stop visit: offline = more than 10 min with no record at all; without GPS fix ="
        " more than 10 min between fixes, less offline time; sensor blocked = from"
        " sensor_blocked to sensor_ok. Counts outside stops are door counts not in any visit."
        " Only days with a finding are listed."
    )
    return _finish(
        "quality",
        (
            "Day",
            "Without GPS fix (min)",
            "Offline (min)",
            "Sensor blocked (min)",
            "Blocked periods",
            "Counts outside stops",
        ),
        rows,
        "none",
        [note],
        False,
        (),
        {},
        min_cell,
        total,
    )


_BUILDERS = {
    "summary": _summary,
    "stops": _stops,
    "municipalities": _municipalities,
    "rural": _rural,
    "hours": _hours,
    "weekdays": _weekdays,
    "topics": _topics,
    "age_groups": _age_groups,
    "first_visits": _first_visits,
    "quality": _quality,
}


# --- today, the annual report, vans --------------------------------------------------


def today(
    conn: sqlite3.Connection, now: datetime, tz: ZoneInfo, *, van: str | None = None, tour=()
) -> dict:
    """Today at a glance: ``stop`` (the open stop visit's name, or None), ``municipality``,
    ``since`` (arrival, aware datetime or None), ``planned_stop`` (the tour stop scheduled
    now, or None), ``people_in`` (visitors today), ``checkins`` (today), ``occupancy``
    (people inside now, beam-pair only; summed over vans)."""
    local = now.astimezone(tz)
    day = local.date()
    ts = to_epoch(now)
    sql = (
        'SELECT name, municipality, arrived FROM stop_visits WHERE "left" IS NULL'
        " AND arrived <= ? AND arrived > ?"
    )
    args: list = [ts, ts - OPEN_VISIT_S]
    if van is not None:
        sql += " AND van = ?"
        args.append(van)
    cur = _cur(conn).execute(sql + " ORDER BY arrived DESC LIMIT 1", args).fetchone()
    m = metrics(
        conn, day, day + timedelta(days=1), van=van, names=("visit_visitors", "visit_checkins")
    )
    # Occupancy: the last count event of each van today, up to now (beam pair; else 0).
    if van is None:
        van_list = [r[0] for r in _cur(conn).execute(
            "SELECT van FROM agg_days WHERE day = ?", (day.isoformat(),)
        )]  # fmt: skip
    else:
        van_list = [van]
    occupancy = 0
    for v in van_list:
        r = (
            _cur(conn)
            .execute(
                "SELECT occupancy FROM footfall WHERE van = ? AND ts <= ? AND day = ?"
                " AND kind IN ('in', 'out', 'pass') ORDER BY ts DESC LIMIT 1",
                (v, ts, day.isoformat()),
            )
            .fetchone()
        )
        occupancy += r[0] if r else 0
    planned = open_visit(tour, now, tz) if tour else None

    return {
        "stop": cur[0] if cur else None,
        "municipality": cur[1] if cur else None,
        "since": from_epoch(cur[2]).astimezone(tz) if cur else None,
        "planned_stop": planned.stop.name if planned else None,
        "people_in": _int(sum(_sum_by(m, "visit_visitors").values())),
        "checkins": _int(sum(_sum_by(m, "visit_checkins").values())),
        "occupancy": int(occupancy),
    }


def annual(
    conn: sqlite3.Connection,
    year: int,
    *,
    van: str | None = None,
    budget_eur: float = 0.0,
    public: bool = True,
    min_cell: int = 3,
) -> dict:
    """The annual report's figures (see module docstring for the definitions).

    Keys: ``year``, ``period``, ``contacts``, ``first_contacts``, ``checkins``,
    ``stops_served`` (stop visits of the tour), ``unplanned_stops``, ``places_served``,
    ``rural_contacts``, ``rural_share`` (0..1 or None), ``topics`` (a :class:`Table`),
    ``budget_eur``, ``cost_per_contact`` (None if the budget is 0 or there were no
    contacts), ``note``. With ``public=True`` a count from 1 to ``min_cell - 1`` is None.
    """
    p = period("year", date(year, 1, 1))
    m = metrics(conn, p.start, p.end, van=van, names=("visit_visitors", "first"))
    per_visit = _sum_by(m, "visit_visitors")
    info = _visit_info(conn, per_visit)
    contacts = _int(sum(per_visit.values()))
    rural = _int(sum(n for k, n in per_visit.items() if k in info and info[k][2] != TOWN))
    first = _sum_by(m, "first")
    visits = _visits_in(conn, p, van)
    out = {
        "year": year,
        "period": p,
        "contacts": contacts,
        "first_contacts": _int(first.get("1", 0)),
        "checkins": _int(sum(first.values())),
        "stops_served": sum(1 for v in visits if v[4]),
        "unplanned_stops": sum(1 for v in visits if not v[4]),
        "places_served": len({v[2] for v in visits}),
        "rural_contacts": rural,
        "rural_share": round(rural / contacts, 4) if contacts else None,
        "topics": report(conn, "topics", p, van=van, public=public, min_cell=min_cell),
        "budget_eur": float(budget_eur),
        "cost_per_contact": round(budget_eur / contacts, 2) if budget_eur and contacts else None,
        "note": "",
    }
    if public:
        small = [
            k
            for k in ("contacts", "first_contacts", "checkins", "rural_contacts")
            if 0 < out[k] < min_cell
        ]
        town = contacts - rural
        if 0 < town < min_cell:
            small.append("rural_contacts")
        for k in small:
            out[k] = SUPPRESSED
        if out["rural_contacts"] is SUPPRESSED or out["contacts"] is SUPPRESSED:
            out["rural_share"] = SUPPRESSED
        if out["contacts"] is SUPPRESSED:
            out["cost_per_contact"] = SUPPRESSED
        if small:
            out["note"] = f"Counts from 1 to {min_cell - 1} are suppressed."
    return out


def vans(conn: sqlite3.Connection) -> list[str]:
    """Every van with any data (raw or aggregated), sorted."""
    return [
        r[0]
        for r in _cur(conn)
        .execute(
            "SELECT DISTINCT van FROM agg_days UNION SELECT DISTINCT van FROM stop_visits"
            " ORDER BY 1"
        )
        .fetchall()
    ]
