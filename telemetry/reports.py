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

The metrics the tables are built from (how they are stored, folded into daily
aggregates and cached) are computed by :mod:`telemetry.metrics`.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .config import TOWN
from .events import from_epoch, to_epoch
from .metrics import GAP_S as GAP_S
from .metrics import HOUR_S as HOUR_S
from .metrics import METRICS as METRICS
from .metrics import OPEN_VISIT_S as OPEN_VISIT_S
from .metrics import Metric as Metric
from .metrics import _cur
from .metrics import clear_cache as clear_cache
from .metrics import metrics as metrics
from .metrics import raw_metrics as raw_metrics
from .tour import open_visit

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


AGE_LABELS = {"under-15": "under 15", "over-27": "over 27"}


def _label(metric: str, key: str) -> str:
    if metric == "first":
        return {"1": "First visit", "0": "Returning", "": "Not said"}.get(key, key)
    if metric == "age":
        return AGE_LABELS.get(key, key)
    return key


def _topics(conn, p, van, public, min_cell) -> Table:
    return _categories("topics", "topic", "Topic", (), conn, p, van, public, min_cell)


def _age_groups(conn, p, van, public, min_cell) -> Table:
    order = ("under-15", "15-17", "18-20", "21-24", "25-27", "over-27")
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
