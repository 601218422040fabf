"""The scorecard's process figures from the tour plan: planned, served and punctual visits.

*Halte bedient*: the tour plan's visits that are over (their end before ``until``;
cancelled visits and closed periods are not planned) and were served: a stop visit of
the van at that stop marked planned, arriving from :data:`MATCH_BEFORE_S` before the
start until the end (each stop visit serves one visit). The plan of a day is the van's
plan version in force at the end of that day (table ``plans``; before the first stored
version, the TOML tour of the config's own van). *Pünktlichkeit*: of the served visits,
the share that arrived no later than
:data:`~telemetry.scorecard_figures.PUNCTUAL_MIN` minutes after the announced start (an
announced delay shifts it).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .plan import Plan, PlannedVisit
from .plan_visits import visits_on_days
from .scorecard_figures import PUNCTUAL_MIN, _months

MATCH_BEFORE_S = 3 * 3600.0


def end_day(until: datetime, tz: ZoneInfo) -> date:
    """The first local day not counted at all at ``until``."""
    local = until.astimezone(tz)
    return local.date() + timedelta(days=0 if local.time() == time(0) else 1)


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
