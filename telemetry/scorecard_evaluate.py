"""The evaluation of a scorecard target against its figure (:func:`evaluate`).

The *expected* figure to date is the yearly target times the share of the year elapsed,
pro rata by days or by a monthly profile of 12 weights (a month's weight spread over its
days); for a share (%) or a level (number of municipalities) it is the target itself. The
*forecast* for the year is the actual figure divided by that share (shares and levels:
the actual figure). The *traffic light*: green when the actual figure reaches 100 % of the
expected one, yellow from 85 %, red below; where lower is better, the expected figure is
compared with the actual one the other way round. A custom target is evaluated up to the
end of the last month staff entered (:func:`custom_until`). Each result carries the
monthly trend chart's rows (cumulative for sums).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from .scorecard_figures import Figure, Monthly
from .targets import MONTHS_SHORT, Target

GREEN, YELLOW = 1.0, 0.85
LIGHTS = {"green": "grün", "yellow": "gelb", "red": "rot", "none": "–"}


def elapsed(year: int, at: datetime, tz: ZoneInfo, profile: Sequence[float] | None = None) -> float:
    """The share of the year's target due by ``at`` (0..1): by days, or by the monthly
    profile with each month's weight spread evenly over its days."""
    local = at.astimezone(tz)
    if local.year < year:
        return 0.0
    if local.year > year:
        return 1.0
    day_part = (local.hour * 3600 + local.minute * 60 + local.second) / 86400.0
    if profile is None:
        n = 366 if calendar.isleap(year) else 365
        return ((local.date() - date(year, 1, 1)).days + day_part) / n
    m = local.month
    in_month = (local.day - 1 + day_part) / calendar.monthrange(year, m)[1]
    return (sum(profile[: m - 1]) + profile[m - 1] * in_month) / sum(profile)


@dataclass(frozen=True)
class Result:
    figure: Figure
    target: Target | None
    actual: float | None
    expected: float | None
    forecast: float | None
    attainment: float | None  # in % (actual vs expected; the other way round if lower is better)
    light: str  # green | yellow | red | none
    upto: int  # months counted (1..12; 0 before the year)
    chart: tuple[tuple, ...]  # rows: (month label, actual, expected[, reference...])
    chart_columns: tuple[str, ...]


def light_of(actual: float | None, expected: float | None, lower_better: bool) -> str:
    """green: actual >= expected; yellow: >= 85 % of it; red: below (lower is better:
    expected >= actual, >= 85 % of actual)."""
    if actual is None or expected is None:
        return "none"
    have, want = (expected, actual) if lower_better else (actual, expected)
    if have >= want * GREEN:
        return "green"
    if have >= want * YELLOW:
        return "yellow"
    return "red"


def custom_until(
    year: int, entered: Iterable[int], until: datetime, tz: ZoneInfo
) -> datetime | None:
    """A custom target counts up to the end of the last month staff entered (not past
    ``until``); None when nothing is entered yet."""
    months = [m for m in entered if 1 <= m <= 12]
    if not months:
        return None
    last = max(months)
    end = datetime.combine(date(year + (last == 12), last % 12 + 1, 1), time(0), tzinfo=tz)
    return min(end, until)


def months_counted(year: int, at: datetime, tz: ZoneInfo) -> int:
    """How many months of ``year`` have begun by ``at`` (0..12)."""
    local = at.astimezone(tz)
    if local.year != year:
        return 0 if local.year < year else 12
    if local.month == 1 and local.day == 1 and local.time() == time(0):
        return 0
    if local.day == 1 and local.time() == time(0):
        return local.month - 1  # midnight of the 1st: the new month has not begun
    return local.month


def evaluate(
    fig: Figure,
    target: Target | None,
    monthly: Monthly,
    *,
    year: int,
    until: datetime | None,
    tz: ZoneInfo,
    reference: dict[str, Sequence[float]] | None = None,
) -> Result:
    """One target against its figure, counted up to ``until`` (None: no figures yet, as
    for a custom target without entries); see the module docstring."""
    upto = months_counted(year, until, tz) if until is not None else 0
    actual = monthly.total(fig.kind, upto) if upto else None
    expected = forecast = attainment = None
    if target is not None and upto and until is not None:
        if fig.kind == "sum":
            frac = elapsed(year, until, tz, target.profile)
            expected = target.value * frac
            forecast = actual / frac if frac > 0 and actual is not None else None
        else:
            expected, forecast = target.value, actual
        if actual is not None:
            have, want = (expected, actual) if fig.lower_better else (actual, expected)
            attainment = 100.0 * have / want if want else None
    light = light_of(actual, expected, fig.lower_better) if target is not None else "none"
    return Result(
        fig,
        target,
        actual,
        expected,
        forecast,
        attainment,
        light,
        upto,
        *_chart(fig, target, monthly, year, upto, tz, reference),
    )


def _chart(fig, target, monthly: Monthly, year: int, upto: int, tz, reference):
    rows = []
    cum = cum_ref = None
    refs = dict(reference or {})
    if fig.kind == "sum":
        cols = ["Monat", "Ist (kumuliert)", "Soll (kumuliert)"]
        cols += [f"{k} (kumuliert)" for k in refs]
        cum, cum_ref = 0.0, {k: 0.0 for k in refs}
    else:
        cols = ["Monat", "Ist", "Ziel"]
    for m in range(1, 13):
        if fig.kind == "sum":
            cum += monthly.num[m - 1]
            end = datetime.combine(date(year + (m == 12), m % 12 + 1, 1), time(0), tzinfo=tz)
            want = target.value * elapsed(year, end, tz, target.profile) if target else None
            row = [
                MONTHS_SHORT[m - 1],
                round(cum, 2) if m <= upto else None,
                None if want is None else round(want, 2),
            ]
            for k, vals in refs.items():
                cum_ref[k] += vals[m - 1]
                row.append(round(cum_ref[k], 2) if m <= upto else None)
        else:
            v = monthly.month(fig.kind, m) if m <= upto else None
            row = [
                MONTHS_SHORT[m - 1],
                None if v is None else round(v, 2),
                target.value if target else None,
            ]
        rows.append(tuple(row))
    if target is None:  # no target: no expected line
        rows = [r[:2] + r[3:] for r in rows]
        cols = cols[:2] + cols[3:]
    return tuple(rows), tuple(cols)
