"""The report tables (see :mod:`telemetry.reports` for how every figure is counted):
periods, the :class:`Table` and one builder per report, all with the full figures.
Public versions are made from these by :mod:`telemetry.report_privacy`."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .config import TOWN
from .metrics import DEFAULT_CREW, Metric, _cur, metrics

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


@dataclass(frozen=True)
class Opts:
    """What the builders take from the config: the district town's name (every other
    municipality is rural) and the staff on board (:mod:`telemetry.metrics`)."""

    town: str = TOWN
    crew: int = DEFAULT_CREW


def _share(n: float, total: float) -> float | None:
    return round(100.0 * n / total, 1) if total else None


def _int(x: float) -> int:
    return int(round(x))


# --- the reports ---------------------------------------------------------------------


def build(conn: sqlite3.Connection, name: str, p: Period, van: str | None, opts: Opts) -> Table:
    """One report with its full figures (see :data:`REPORTS` for the names)."""
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}; use one of {', '.join(REPORTS)}")
    return _BUILDERS[name](conn, p, van, opts)


def _table(name, columns, rows, chart, notes, total=None) -> Table:
    rows = [tuple(r) for r in rows]
    if total is not None:
        rows.append(tuple(total))
    return Table(name, REPORTS[name], tuple(columns), tuple(rows), chart,
                 " ".join(n for n in notes if n))  # fmt: skip


def _summary(conn, p: Period, van, o: Opts) -> Table:
    m = metrics(
        conn,
        p.start,
        p.end,
        van=van,
        crew=o.crew,
        names=("visit_visitors", "visit_checkins", "first"),
    )
    per_visit = _sum_by(m, "visit_visitors")
    info = _visit_info(conn, per_visit)
    visitors = sum(per_visit.values())
    rural = sum(n for k, n in per_visit.items() if k in info and info[k][2] != o.town)
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
        [f"Visitors outside the town of {o.town}", _int(rural)],
        [f"Share outside the town of {o.town} (%)", _share(rural, visitors)],
    ]
    notes = [f"{p.label}: {p.start.isoformat()} to {(p.end - timedelta(days=1)).isoformat()}."]
    return Table(
        "summary",
        REPORTS["summary"],
        ("Figure", "Value"),
        tuple(tuple(r) for r in rows),
        "none",
        " ".join(notes),
    )


def _per_visit(conn, p: Period, van, o: Opts):
    m = metrics(
        conn,
        p.start,
        p.end,
        van=van,
        crew=o.crew,
        names=("visit_visitors", "visit_checkins", "visit_first"),
    )
    vis = _sum_by(m, "visit_visitors")
    chk = _sum_by(m, "visit_checkins")
    fst = _sum_by(m, "visit_first")
    visits = _visits_in(conn, p, van)
    info = {v[0]: (v[0], v[2], v[3], v[4]) for v in visits}
    info.update(_visit_info(conn, (set(vis) | set(chk) | set(fst)) - set(info)))
    return vis, chk, fst, visits, info


def _stops(conn, p: Period, van, o: Opts) -> Table:
    vis, chk, fst, visits, info = _per_visit(conn, p, van, o)
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
    return _table(
        "stops",
        ("Stop", "Municipality", "Planned", "Visits", "Visitors", "Check-ins", "First visits"),
        rows,
        "bar",
        [],
        total,
    )


def _municipalities(conn, p: Period, van, o: Opts) -> Table:
    vis, chk, _fst, visits, info = _per_visit(conn, p, van, o)
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
    return _table(
        "municipalities",
        ("Municipality", "Visits", "Visitors", "Check-ins", "Share of visitors (%)"),
        rows,
        "bar",
        [],
        total,
    )


def _rural(conn, p: Period, van, o: Opts) -> Table:
    vis, chk, _fst, visits, info = _per_visit(conn, p, van, o)
    labels = (f"Town of {o.town}", "Rural municipalities")
    acc = {labels[0]: [0, 0.0, 0.0], labels[1]: [0, 0.0, 0.0]}
    for v in visits:
        acc[labels[v[3] != o.town]][0] += 1
    for src, col in ((vis, 1), (chk, 2)):
        for k, n in src.items():
            key = labels[info[k][2] != o.town] if k in info else NOT_AT_STOP
            acc.setdefault(key, [0, 0.0, 0.0])[col] += n
    total_vis = sum(a[1] for a in acc.values())
    rows = [[k, a[0], _int(a[1]), _int(a[2]), _share(a[1], total_vis)] for k, a in acc.items()]
    return _table(
        "rural",
        ("Area", "Visits", "Visitors", "Check-ins", "Share of visitors (%)"),
        rows,
        "pie",
        [],
    )


def _hours(conn, p: Period, van, o: Opts) -> Table:
    m = metrics(
        conn, p.start, p.end, van=van, crew=o.crew, names=("hour_visitors", "hour_checkins")
    )
    vis, chk = _sum_by(m, "hour_visitors"), _sum_by(m, "hour_checkins")
    hours = sorted({int(h) for h in vis} | {int(h) for h in chk})
    rows = []
    if hours:
        for h in range(hours[0], hours[-1] + 1):
            k = f"{h:02d}"
            rows.append([f"{h:02d}:00", _int(vis.get(k, 0)), _int(chk.get(k, 0))])
    return _table(
        "hours",
        ("Hour", "Visitors", "Check-ins"),
        rows,
        "bar",
        ["Check-in times are rounded down to the hour."],
    )


def _weekdays(conn, p: Period, van, o: Opts) -> Table:
    m = metrics(
        conn, p.start, p.end, van=van, crew=o.crew, names=("visit_visitors", "visit_checkins")
    )
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
    return _table(
        "weekdays",
        ("Weekday", "Stop visits", "Visitors", "Check-ins"),
        rows,
        "bar",
        [],
    )


def _categories(name, metric, label, order, conn, p: Period, van, o: Opts) -> Table:
    m = metrics(conn, p.start, p.end, van=van, crew=o.crew, names=(metric, "first"))
    counts = _sum_by(m, metric)
    checkins = sum(_sum_by(m, "first").values())
    keys = [k for k in order if k in counts] + sorted(
        (k for k in counts if k not in order), key=lambda k: (-counts[k], k)
    )
    rows = [[_label(metric, k), _int(counts[k]), _share(counts[k], checkins)] for k in keys]
    notes = []
    if metric == "topic":
        notes.append("A check-in may name several topics; shares are of all check-ins.")
    return _table(
        name,
        (label, "Check-ins", "Share of check-ins (%)"),
        rows,
        "pie" if metric != "topic" else "bar",
        notes,
    )


AGE_LABELS = {"under-15": "under 15", "over-27": "over 27"}


def _label(metric: str, key: str) -> str:
    if metric == "first":
        return {"1": "First visit", "0": "Returning", "": "Not said"}.get(key, key)
    if metric == "age":
        return AGE_LABELS.get(key, key)
    return key


def _topics(conn, p: Period, van, o: Opts) -> Table:
    return _categories("topics", "topic", "Topic", (), conn, p, van, o)


def _age_groups(conn, p: Period, van, o: Opts) -> Table:
    order = ("under-15", "15-17", "18-20", "21-24", "25-27", "over-27")
    return _categories("age_groups", "age", "Age group", order, conn, p, van, o)


def _first_visits(conn, p: Period, van, o: Opts) -> Table:
    return _categories("first_visits", "first", "Answer", ("1", "0", ""), conn, p, van, o)


def _quality(conn, p: Period, van, o: Opts) -> Table:
    names = ("no_fix_s", "offline_s", "blocked_s", "blocked_n", "outside_n")
    m = metrics(conn, p.start, p.end, van=van, crew=o.crew, names=names)
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
    return _table(
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
