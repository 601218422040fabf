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
from .metrics import DEFAULT_CREW, Metric
from .sums import sums, visit_counts

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


# Every builder asks for the same few sums (the same names per grouping), so the ten
# reports of a page run three summing queries, remembered by telemetry.sums.
_PER_STOP = ("visit_visitors", "visit_checkins", "visit_first")
_PER_KEY = ("hour_visitors", "hour_checkins", "topic", "age", "first")
_QUALITY = ("no_fix_s", "offline_s", "blocked_s", "blocked_n", "outside_n")
_PER_DAY = ("visit_visitors", "visit_checkins", *_QUALITY)


def _sums(conn, p: Period, van, o: Opts, by: str) -> dict[tuple, float]:
    names = {"stop": _PER_STOP, "key": _PER_KEY, "day": _PER_DAY}[by]
    return sums(conn, p.start, p.end, by, van=van, names=names, crew=o.crew)


_SPLIT: list[tuple[dict, dict[str, dict]]] = []  # the last few sums, split by metric


def _of(got: dict[tuple, float], metric: str) -> dict:
    """``{key: value}`` of one metric of :func:`_sums` (not to be changed: the split of
    the last few sums is remembered, as a fleet's year by stop has 40,000 entries)."""
    for g, split in list(_SPLIT):
        if g is got:
            return split.get(metric, {})
    split: dict[str, dict] = defaultdict(dict)
    for (m, k), n in got.items():
        split[m][k] = n
    _SPLIT.insert(0, (got, split))
    del _SPLIT[4:]
    return split.get(metric, {})


def _summary(conn, p: Period, van, o: Opts) -> Table:
    per_stop = _sums(conn, p, van, o, "stop")
    vis = _of(per_stop, "visit_visitors")
    visitors = sum(vis.values())
    rural = sum(n for k, n in vis.items() if k is not None and k[1] != o.town)
    checkins = sum(_of(per_stop, "visit_checkins").values())
    first = _of(_sums(conn, p, van, o, "key"), "first")
    visits = visit_counts(conn, p.start, p.end, "stop", van=van)
    rows = [
        ["Visitors", _int(visitors)],
        ["Check-ins", _int(checkins)],
        ["First visits", _int(first.get("1", 0))],
        ["Returning visitors", _int(first.get("0", 0))],
        ["Stop visits (tour)", sum(n for k, n in visits.items() if k[2])],
        ["Unplanned stops", sum(n for k, n in visits.items() if not k[2])],
        ["Places served", len({k[0] for k in visits})],
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


_NOWHERE = (NOT_AT_STOP, "", False)  # the stop of check-ins outside any visit


def _per_visit(conn, p: Period, van, o: Opts):
    """The visitors, check-ins and first visits per stop (``None``: not at a stop) and
    the stop visits per stop, in a fixed order (by stop)."""
    per_stop = _sums(conn, p, van, o, "stop")
    vis, chk, fst = (_of(per_stop, m) for m in _PER_STOP)
    visits = dict(sorted(visit_counts(conn, p.start, p.end, "stop", van=van).items()))
    return vis, chk, fst, visits


def _stops(conn, p: Period, van, o: Opts) -> Table:
    vis, chk, fst, visits = _per_visit(conn, p, van, o)
    acc: dict[tuple, list] = {}
    for k, n in visits.items():
        acc.setdefault(k, [0, 0.0, 0.0, 0.0])[0] += n
    # The figures are whole numbers: the order they are added in does not change them (a
    # fleet's year has 40,000 stops; the rows are sorted once, below).
    for src, col in ((vis, 1), (chk, 2), (fst, 3)):
        for k, n in src.items():
            acc.setdefault(_NOWHERE if k is None else k, [0, 0.0, 0.0, 0.0])[col] += n
    rows = [
        [name, muni, "yes" if planned else "no", a[0], _int(a[1]), _int(a[2]), _int(a[3])]
        for (name, muni, planned), a in acc.items()
    ]
    rows.sort(key=lambda r: (r[0] == NOT_AT_STOP, -r[4], r[0], r[1], r[2]))
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
    vis, chk, _fst, visits = _per_visit(conn, p, van, o)
    acc: dict[str, list] = {}
    for k, n in visits.items():
        acc.setdefault(k[1], [0, 0.0, 0.0])[0] += n
    for src, col in ((vis, 1), (chk, 2)):
        for k, n in src.items():
            muni = NOT_AT_STOP if k is None else k[1]
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
    vis, chk, _fst, visits = _per_visit(conn, p, van, o)
    labels = (f"Town of {o.town}", "Rural municipalities")
    acc = {labels[0]: [0, 0.0, 0.0], labels[1]: [0, 0.0, 0.0]}
    for k, n in visits.items():
        acc[labels[k[1] != o.town]][0] += n
    for src, col in ((vis, 1), (chk, 2)):
        for k, n in src.items():
            key = NOT_AT_STOP if k is None else labels[k[1] != o.town]
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
    per_key = _sums(conn, p, van, o, "key")
    vis, chk = _of(per_key, "hour_visitors"), _of(per_key, "hour_checkins")
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
    per_day = _sums(conn, p, van, o, "day")
    vis = [0.0] * 7
    chk = [0.0] * 7
    for (metric, day), n in sorted(per_day.items()):
        wd = date.fromisoformat(day).weekday()
        if metric == "visit_visitors":
            vis[wd] += n
        elif metric == "visit_checkins":
            chk[wd] += n
    nvis = [0] * 7
    for day, n in visit_counts(conn, p.start, p.end, "day", van=van).items():
        nvis[date.fromisoformat(day).weekday()] += n
    rows = [[WEEKDAY_NAMES[i], nvis[i], _int(vis[i]), _int(chk[i])] for i in range(7)]
    return _table(
        "weekdays",
        ("Weekday", "Stop visits", "Visitors", "Check-ins"),
        rows,
        "bar",
        [],
    )


def _categories(name, metric, label, order, conn, p: Period, van, o: Opts) -> Table:
    per_key = _sums(conn, p, van, o, "key")
    counts = _of(per_key, metric)
    checkins = sum(_of(per_key, "first").values())
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
    per_day: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (metric, day), n in sorted(_sums(conn, p, van, o, "day").items()):
        if metric in _QUALITY:
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
