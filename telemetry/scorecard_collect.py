"""The scorecard's figures of a year, per month (:func:`collect`).

Figures (of one van, or ``van=None`` for all vans; only what happened up to ``until``):

- **Reach.** *Beratungskontakte*: the counselling contacts staff recorded (table
  ``contacts``), as the sum of ``persons`` (a group offer counts every person reached).
  *Erstkontakte*: the same, of contacts marked as first contact. *Anteil ländlicher
  Raum*: persons living in a municipality of the district other than the town
  (``cfg.reports["town"]``) as a share of all persons (those living outside the district
  count in the total, not as rural). *Erreichte Gemeinden*: municipalities of the district
  with at least one contact so far this year.
- **Process.** *Halte bedient* and *Pünktlichkeit*: the tour plan's visits served, and
  served on time (:mod:`telemetry.scorecard_served`). *Einsatzstunden*: time at stops
  (planned or not) from arrival to departure; an open visit counts until ``until``, at
  most :data:`~telemetry.metrics.OPEN_VISIT_S`.
- **Network.** *Vermittlungen* per partner: contacts with a referral to that partner
  (one per contact and partner).
- **Reference lines** (no targets): check-ins (kiosk) and visits (door sensor) per month,
  as the reports count them (:mod:`telemetry.metrics`).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .metrics import OPEN_VISIT_S, metrics
from .plan import Plan
from .scorecard_figures import Monthly, _months
from .scorecard_served import _served, end_day


@dataclass(frozen=True)
class Data:
    year: int
    until: datetime  # aware: figures count what happened before this
    series: dict[str, Monthly]
    reference: dict[str, tuple[float, ...]]  # checkins, visits: per month
    planned: int  # tour visits over by ``until`` (not cancelled)
    cancelled: int


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
