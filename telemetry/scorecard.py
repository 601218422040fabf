"""The balanced scorecard: the year's figures per month, and each target's evaluation.

Figures (of one van, or ``van=None`` for all vans; only what happened up to ``until``):

- **Reach.** *Beratungskontakte*: the counselling contacts staff recorded (table
  ``contacts``), as the sum of ``persons`` (a group offer counts every person reached).
  *Erstkontakte*: the same, of contacts marked as first contact. *Anteil ländlicher
  Raum*: persons living in a municipality of the district other than the town
  (``cfg.reports["town"]``) as a share of all persons (those living outside the district
  count in the total, not as rural). *Erreichte Gemeinden*: municipalities of the district
  with at least one contact so far this year.
- **Process.** *Halte bedient*: the tour plan's visits that are over (their end before
  ``until``; cancelled visits and closed periods are not planned) and were served: a
  stop visit of the van at that stop marked planned, arriving from
  :data:`MATCH_BEFORE_S` before the start until the end (each stop visit serves one
  visit). The plan of a day is the van's plan version in force at the end of that day
  (table ``plans``; before the first stored version, the TOML tour of the config's own
  van). *Pünktlichkeit*: of the served visits, the share that arrived no later than
  :data:`PUNCTUAL_MIN` minutes after the announced start (an announced delay shifts it).
  *Einsatzstunden*: time at stops (planned or not) from arrival to departure; an open
  visit counts until ``until``, at most :data:`OPEN_VISIT_S`.
- **Network.** *Vermittlungen* per partner: contacts with a referral to that partner
  (one per contact and partner).
- **Reference lines** (no targets): check-ins (kiosk) and visits (door sensor) per month,
  as the reports count them (:mod:`telemetry.metrics`).

Evaluation of a target (:func:`evaluate`): the *expected* figure to date is the yearly
target times the share of the year elapsed, pro rata by days or by a monthly profile of
12 weights (a month's weight spread over its days); for a share (%) or a level (number of
municipalities) it is the target itself. The *forecast* for the year is the actual figure
divided by that share (shares and levels: the actual figure). The *traffic light*: green
when the actual figure reaches 100 % of the expected one, yellow from 85 %, red below;
where lower is better, the expected figure is compared with the actual one the other way
round. A custom target is evaluated up to the end of the last month staff entered.
"""

from __future__ import annotations

import bisect
import calendar
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .metrics import OPEN_VISIT_S, metrics
from .plan import Plan, PlannedVisit
from .plan_visits import visits_on_days
from .targets import MAX_VALUE, MONTHS_SHORT, Target

PUNCTUAL_MIN = 10
MATCH_BEFORE_S = 3 * 3600.0
GREEN, YELLOW = 1.0, 0.85
LIGHTS = {"green": "grün", "yellow": "gelb", "red": "rot", "none": "–"}
PERSPECTIVES = {
    "reach": "Reichweite",
    "process": "Prozesse",
    "network": "Netzwerk",
    "custom": "Eigene Ziele",
}


@dataclass(frozen=True)
class Figure:
    code: str
    perspective: str
    label: str
    unit: str
    kind: str  # sum | rate (a share in %) | level (a count that only grows)
    hint: str
    max_value: float = MAX_VALUE
    lower_better: bool = False


def figures(town: str, municipalities: Sequence[str], partners: Iterable[dict]) -> list[Figure]:
    """Every figure a target can be set for (custom targets aside), in page order."""
    out = [
        Figure(
            "contacts",
            "reach",
            "Beratungskontakte",
            "Personen",
            "sum",
            "Von den Mitarbeitenden erfasste Beratungskontakte: Summe der erreichten"
            " Personen (ein Gruppenangebot zählt jede Person).",
        ),
        Figure(
            "first-contacts",
            "reach",
            "Erstkontakte",
            "Personen",
            "sum",
            "Beratungskontakte, die als Erstkontakt erfasst wurden (Personen).",
        ),
        Figure(
            "rural-share",
            "reach",
            "Anteil ländlicher Raum",
            "%",
            "rate",
            f"Personen aus den Gemeinden des Landkreises außer {town} je Person aller"
            " Beratungskontakte (Wohnort außerhalb des Landkreises zählt nicht als"
            " ländlich).",
            100.0,
        ),
        Figure(
            "municipalities",
            "reach",
            "Erreichte Gemeinden",
            "Gemeinden",
            "level",
            "Gemeinden des Landkreises, aus denen in diesem Jahr mindestens ein"
            " Beratungskontakt kam.",
            float(len(municipalities)),
        ),
        Figure(
            "served",
            "process",
            "Halte bedient",
            "% der geplanten",
            "rate",
            "Termine des Tourplans, die schon vorbei sind und bedient wurden (Halt"
            " erkannt), je geplantem Termin; abgesagte Termine und Schließzeiten zählen"
            " nicht als geplant.",
            100.0,
        ),
        Figure(
            "hours",
            "process",
            "Einsatzstunden",
            "Stunden",
            "sum",
            "Zeit an Haltestellen (auch ungeplante Halte) von der Ankunft bis zur Abfahrt.",
        ),
        Figure(
            "punctuality",
            "process",
            "Pünktlichkeit",
            "%",
            "rate",
            f"Anteil der bedienten Termine, an denen der Bus spätestens {PUNCTUAL_MIN}"
            " Minuten nach dem angekündigten Beginn ankam (eine angekündigte Verspätung"
            " verschiebt den Beginn).",
            100.0,
        ),
    ]
    for p in partners:
        out.append(
            Figure(
                f"referrals-{p['code']}",
                "network",
                f"Vermittlungen: {p['label']}",
                "Vermittlungen",
                "sum",
                f"Beratungskontakte mit einer Vermittlung an {p['label']} (je Kontakt eine).",
            )
        )
    return out


def custom_figure(t: Target) -> Figure:
    direction = "niedriger ist besser" if t.lower_better else "höher ist besser"
    return Figure(
        t.code,
        "custom",
        t.label,
        t.unit,
        "sum",
        f"Eigenes Ziel; die Ist-Werte tragen die Mitarbeitenden je Monat ein ({direction}).",
        MAX_VALUE,
        t.lower_better,
    )


# --- the figures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Monthly:
    """One figure's 12 months: ``num`` (a sum, a level at the month's end, or a share's
    numerator) and, for a share, its denominator ``den``."""

    num: tuple[float, ...]
    den: tuple[float, ...] | None = None

    def total(self, kind: str, upto: int = 12) -> float | None:
        """The figure over months 1..upto: the sum, the share in % or the level."""
        if kind == "level":
            return self.num[upto - 1] if upto else 0.0
        n = sum(self.num[:upto])
        if kind == "rate":
            d = sum((self.den or ())[:upto])
            return 100.0 * n / d if d else None
        return n

    def month(self, kind: str, m: int) -> float | None:
        if kind == "rate":
            d = (self.den or (0,) * 12)[m - 1]
            return 100.0 * self.num[m - 1] / d if d else None
        return self.num[m - 1]


@dataclass(frozen=True)
class Data:
    year: int
    until: datetime  # aware: figures count what happened before this
    series: dict[str, Monthly]
    reference: dict[str, tuple[float, ...]]  # checkins, visits: per month
    planned: int  # tour visits over by ``until`` (not cancelled)
    cancelled: int


def end_day(until: datetime, tz: ZoneInfo) -> date:
    """The first local day not counted at all at ``until``."""
    local = until.astimezone(tz)
    return local.date() + timedelta(days=0 if local.time() == time(0) else 1)


def _months() -> list[float]:
    return [0.0] * 12


def _van_sql(van: str | None, col: str = "van") -> tuple[str, list]:
    return ("", []) if van is None else (f" AND {col} = ?", [van])


def _contacts(
    conn, lo: str, hi: str, until_ts: float, van, town: str, munis: Sequence[str], out: dict
) -> None:
    """Contacts, first contacts, rural share, municipalities reached and referrals per
    partner: two passes over the covering index ``contacts_scorecard`` (migration 0012)."""
    vs, va = _van_sql(van)
    where = f"FROM contacts WHERE day >= ? AND day < ? AND ts < ?{vs}"
    args = [lo, hi, until_ts, *va]
    rural = set(munis) - {town}
    total, first, rur = _months(), _months(), _months()
    first_month: dict[str, int] = {}
    for m, muni, fc, n in conn.execute(
        f"SELECT CAST(substr(day, 6, 2) AS INTEGER), municipality, first_contact, sum(persons)"
        f" {where} GROUP BY 1, 2, 3",
        args,
    ):
        total[m - 1] += n
        if fc == 1:
            first[m - 1] += n
        if muni in rural:
            rur[m - 1] += n
        if muni in munis:
            first_month[muni] = min(first_month.get(muni, 13), m)
    out["contacts"] = Monthly(tuple(total))
    out["first-contacts"] = Monthly(tuple(first))
    out["rural-share"] = Monthly(tuple(rur), tuple(total))
    level = [float(sum(1 for fm in first_month.values() if fm <= i + 1)) for i in range(12)]
    out["municipalities"] = Monthly(tuple(level))
    refs: dict[str, list[float]] = defaultdict(_months)
    for m, text, n in conn.execute(
        f"SELECT CAST(substr(day, 6, 2) AS INTEGER), referrals, count(*) {where}"
        " AND referrals != '[]' GROUP BY 1, 2",
        args,
    ):
        try:
            codes = set(json.loads(text))
        except (ValueError, TypeError):  # stored by the validated decoder: cannot happen
            continue
        for code in codes:
            if isinstance(code, str):
                refs[code][m - 1] += n
    for code, months in refs.items():
        out[f"referrals-{code}"] = Monthly(tuple(months))


def _hours(conn, lo: str, hi: str, van, until_ts: float, out: dict) -> None:
    vs, va = _van_sql(van)
    hours = _months()
    for m, s in conn.execute(
        'SELECT CAST(substr(day, 6, 2) AS INTEGER), sum(min(coalesce("left", ?), arrived + ?, ?)'
        " - arrived) FROM stop_visits WHERE day >= ? AND day < ? AND arrived < ?"
        f"{vs} GROUP BY 1",
        [until_ts, OPEN_VISIT_S, until_ts, lo, hi, until_ts, *va],
    ):
        hours[m - 1] = max(0.0, float(s or 0)) / 3600.0
    out["hours"] = Monthly(tuple(hours))


_PLANS: dict[tuple[str, int, float], Plan] = {}
_PLANS_MAX = 512


def _parsed(van: str, version: int, updated: float, body: str) -> Plan:
    """A stored plan version, parsed once (a version's text never changes)."""
    key = (van, version, updated)
    plan = _PLANS.get(key)
    if plan is None:
        plan = Plan.from_json(body, van=van)
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = plan
    return plan


def _plan_for_days(
    conn, van: str, days: list[date], tz: ZoneInfo, fallback: Plan | None
) -> list[tuple[Plan, set[date]]]:
    """The plan version in force at the end of each day: [(plan, its days)]."""
    rows = conn.execute(
        "SELECT updated, body, version FROM plans WHERE van = ? ORDER BY rowid", (van,)
    ).fetchall()
    if not rows:
        return [(fallback, set(days))] if fallback is not None else []
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])
    times = [float(rows[i][0]) for i in order]
    best, run = [], -1
    for i in order:  # the newest stored row among those saved by then
        run = max(run, i)
        best.append(run)
    groups: dict[int, set[date]] = defaultdict(set)
    for d in days:
        end = datetime.combine(d + timedelta(days=1), time(0), tzinfo=tz).timestamp()
        k = bisect.bisect_right(times, end)
        groups[best[k - 1] if k else -1].add(d)
    out = []
    for idx, ds in groups.items():
        if idx < 0:
            r = rows[0]
            plan = fallback if fallback is not None else _parsed(van, r[2], r[0], r[1])
        else:
            r = rows[idx]
            plan = _parsed(van, r[2], r[0], r[1])
        out.append((plan, ds))
    return out


def _served(
    conn, year: int, van: str, until: datetime, tz: ZoneInfo, fallback: Plan | None
) -> tuple[list[float], list[float], list[float], int, int]:
    """Per month: planned, served, punctual visits; and the totals planned, cancelled."""
    start = date(year, 1, 1)
    last = min(date(year, 12, 31), end_day(until, tz) - timedelta(days=1))
    days = [start + timedelta(days=i) for i in range((last - start).days + 1)]
    visits: list[PlannedVisit] = []
    for plan, ds in _plan_for_days(conn, van, days, tz, fallback):
        visits += visits_on_days(plan, ds, tz)
    stops: dict[tuple[str, str], list[float]] = defaultdict(list)
    for day, name, arrived in conn.execute(
        "SELECT day, name, arrived FROM stop_visits WHERE van = ? AND planned = 1"
        " AND day >= ? AND day <= ? ORDER BY arrived",
        (van, start.isoformat(), last.isoformat()),
    ):
        stops[(day, name)].append(float(arrived))
    planned, served, punctual = _months(), _months(), _months()
    n_planned = n_cancelled = 0
    for v in sorted(visits, key=lambda v: v.start):
        if v.end > until or v.start.year != year:
            continue
        if v.cancelled:
            n_cancelled += 1
            continue
        n_planned += 1
        m = v.start.month - 1
        planned[m] += 1
        begin = v.start.timestamp()
        cands = stops.get((v.start.date().isoformat(), v.name), [])
        hit = next((a for a in cands if begin - MATCH_BEFORE_S <= a < v.end.timestamp()), None)
        if hit is None:
            continue
        cands.remove(hit)
        served[m] += 1
        if hit <= begin + PUNCTUAL_MIN * 60:
            punctual[m] += 1
    return planned, served, punctual, n_planned, n_cancelled


def collect(
    conn: sqlite3.Connection,
    year: int,
    *,
    van: str | None,
    until: datetime,
    tz: ZoneInfo,
    town: str,
    municipalities: Sequence[str],
    vans: Iterable[str] = (),
    fallback: dict[str, Plan] | None = None,
) -> Data:
    """The year's figures per month, counted up to ``until`` (see the module docstring).
    ``vans``: the vans whose plans count when ``van`` is None; ``fallback``: the plan of a
    van before its first stored version (the config's own van: its TOML tour)."""
    lo = date(year, 1, 1)
    end = min(date(year + 1, 1, 1), end_day(until, tz))
    series: dict[str, Monthly] = {}
    if end <= lo:
        zero = Monthly(tuple(_months()), tuple(_months()))
        return Data(year, until, {}, {"checkins": zero.num, "visits": zero.num}, 0, 0)
    lo_s, hi_s = lo.isoformat(), end.isoformat()
    _contacts(conn, lo_s, hi_s, until.timestamp(), van, town, municipalities, series)
    _hours(conn, lo_s, hi_s, van, until.timestamp(), series)
    planned, served, punctual = _months(), _months(), _months()
    n_planned = n_cancelled = 0
    fallback = fallback or {}
    for v in [van] if van is not None else sorted(set(vans)):
        p, s, q, n, c = _served(conn, year, v, until, tz, fallback.get(v))
        for i in range(12):
            planned[i] += p[i]
            served[i] += s[i]
            punctual[i] += q[i]
        n_planned += n
        n_cancelled += c
    series["served"] = Monthly(tuple(served), tuple(planned))
    series["punctuality"] = Monthly(tuple(punctual), tuple(served))
    ref = {"checkins": _months(), "visits": _months()}
    for metric, day, _v, _k, n in metrics(
        conn, lo, end, van=van, names=("visit_visitors", "visit_checkins")
    ):
        ref["visits" if metric == "visit_visitors" else "checkins"][int(day[5:7]) - 1] += n
    return Data(year, until, series, {k: tuple(v) for k, v in ref.items()}, n_planned, n_cancelled)


def custom_monthly(values: dict[int, float]) -> Monthly:
    return Monthly(tuple(float(values.get(m, 0.0)) for m in range(1, 13)))


# --- evaluation -----------------------------------------------------------------------------


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
