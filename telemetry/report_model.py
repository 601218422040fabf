"""What the report builders share (:mod:`telemetry.report_tables`): the reports' names,
the periods, the :class:`Table` a report is, the builders' :class:`Opts` and the small
helpers that round, share out and assemble the rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .config import TOWN
from .metrics import DEFAULT_CREW, Metric

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


def _table(name, columns, rows, chart, notes, total=None) -> Table:
    rows = [tuple(r) for r in rows]
    if total is not None:
        rows.append(tuple(total))
    return Table(name, REPORTS[name], tuple(columns), tuple(rows), chart,
                 " ".join(n for n in notes if n))  # fmt: skip
