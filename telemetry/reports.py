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
- **Visitors** ("Besuche", door sensor), without the crew's own passes
  (``cfg.reports["crew"]`` people, see :mod:`telemetry.metrics`). With a ``beam-pair``
  sensor, visitors are the footfall events of kind ``in`` but the first ``crew`` of each
  stop visit. With a ``door`` or ``beam`` sensor (kind ``pass``, direction unknown) the
  first ``crew`` and (visit closed) the last ``crew`` passes of a visit are the crew's,
  and every other person passes twice: visitors are ``ceil(rest / 2)`` per stop visit; by
  hour of day, the 1st, 3rd, 5th ... remaining pass counts, so hours add up to the
  visit's total. **Check-ins** (kiosk) and **counselling contacts** (staff) are separate
  figures (definitions: :data:`telemetry.definitions.DEFINITIONS`).
- **Contacts** (old annual report) are visitors; **first contacts** are check-ins that
  said "first visit". **Rural share** is the share of visitors at stops outside the
  district town (``cfg.reports["town"]``, passed as ``town``); an unplanned stop belongs
  to the municipality of the nearest tour stop.
- **Data quality**, per stop visit (counted on the day of arrival):
  *offline* is every stretch of more than :data:`GAP_S` (10 min, twice the parked
  publishing interval, so thinned hub data is not a gap) in which the box recorded nothing
  at all (no fix, no count, no sensor event): it was off, rebooting or hung.
  *Without a GPS fix* is every stretch of more than 10 min between two fixes (fixes
  flagged suspect by the jump filter do not count), less the offline time in it (the box
  ran but had no fix).
  *Sensor blocked* is the time from a ``sensor_blocked`` event to the next ``sensor_ok``
  of the same sensor on that day (or, without one, to the van's last record of the day).
- **Privacy.** ``public=True`` hides every people count from 1 to ``min_cell - 1``
  (0 stays visible): the cell becomes ``None`` (shown as "<3"), and so does every share
  computed from it. Further cells are hidden over **all public tables of the period
  together** (:mod:`telemetry.report_privacy`, :mod:`telemetry.suppression`) until no
  hidden cell can be worked out from the published ones, whatever combination of
  totals, municipalities, stops, hours, weekdays and the summary one uses.

The metrics the tables are built from (how they are stored, folded into daily
aggregates and cached) are computed by :mod:`telemetry.metrics`; the tables are built
by :mod:`telemetry.report_tables`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .config import TOWN
from .events import from_epoch, to_epoch
from .metrics import DEFAULT_CREW as DEFAULT_CREW
from .metrics import GAP_S as GAP_S
from .metrics import HOUR_S as HOUR_S
from .metrics import METRICS as METRICS
from .metrics import OPEN_VISIT_S as OPEN_VISIT_S
from .metrics import Metric as Metric
from .metrics import _cur
from .metrics import metrics as metrics
from .metrics import raw_metrics as raw_metrics
from .plan import Plan, PlannedVisit
from .report_privacy import SUPPRESSED as SUPPRESSED
from .report_privacy import public_tables as _public_tables
from .report_tables import AGE_LABELS as AGE_LABELS
from .report_tables import NOT_AT_STOP as NOT_AT_STOP
from .report_tables import REPORTS as REPORTS
from .report_tables import WEEKDAY_NAMES as WEEKDAY_NAMES
from .report_tables import Opts as Opts
from .report_tables import Period as Period
from .report_tables import Table as Table
from .report_tables import _int, _sum_by, _sums, build
from .report_tables import period as period
from .sums import clear_cache as clear_cache
from .sums import visit_counts


def report(
    conn: sqlite3.Connection,
    name: str,
    period: Period,
    *,
    van: str | None = None,
    public: bool = False,
    min_cell: int = 3,
    town: str = TOWN,
    crew: int = DEFAULT_CREW,
) -> Table:
    """One report as a :class:`Table` (see :data:`REPORTS` for the names). ``town``:
    ``cfg.reports["town"]``; ``crew``: ``cfg.reports["crew"]``. ``public=True``: small
    cells hidden together with every other public table of the period
    (:func:`public_tables`)."""
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}; use one of {', '.join(REPORTS)}")
    opts = Opts(town=town, crew=crew)
    if public:
        return _public_tables(conn, period, van=van, min_cell=min_cell, opts=opts)[name]
    return build(conn, name, period, van, opts)


def public_tables(
    conn: sqlite3.Connection,
    period: Period,
    *,
    van: str | None = None,
    min_cell: int = 3,
    town: str = TOWN,
    crew: int = DEFAULT_CREW,
) -> dict[str, Table]:
    """Every report of the period as the public sees it: ``{name: Table}``, small cells
    hidden across all of them together."""
    opts = Opts(town=town, crew=crew)
    return _public_tables(conn, period, van=van, min_cell=min_cell, opts=opts)


# --- today, the annual report, vans --------------------------------------------------


def today(
    conn: sqlite3.Connection,
    now: datetime,
    tz: ZoneInfo,
    *,
    van: str | None = None,
    plans: Iterable[Plan] = (),
    crew: int = DEFAULT_CREW,
) -> dict:
    """Today at a glance: ``stop`` (the open stop visit's name, or None), ``municipality``,
    ``since`` (arrival, aware datetime or None), ``planned`` (the visits in service now
    by the plans, by van: :class:`~telemetry.plan.PlannedVisit` s with the day's
    exceptions applied, so a cancelled visit is not there and a delayed one starts
    later), ``planned_stop`` (the first planned visit's stop name, or None),
    ``cancelled`` (the cancelled visits that would be in service now, by van),
    ``people_in`` (visitors today), ``checkins`` (today), ``occupancy`` (people inside
    now, beam-pair only; summed over vans).

    ``plans``: each van's current plan (:func:`telemetry.plan.current_plan`); with ``van``
    only that van's plan counts, without it (the fleet) every van's."""
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
        conn,
        day,
        day + timedelta(days=1),
        van=van,
        crew=crew,
        names=("visit_visitors", "visit_checkins"),
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
    planned, cancelled = _plan_now(plans, van, now, tz)

    return {
        "stop": cur[0] if cur else None,
        "municipality": cur[1] if cur else None,
        "since": from_epoch(cur[2]).astimezone(tz) if cur else None,
        "planned": planned,
        "planned_stop": planned[0].name if planned else None,
        "cancelled": cancelled,
        "people_in": _int(sum(_sum_by(m, "visit_visitors").values())),
        "checkins": _int(sum(_sum_by(m, "visit_checkins").values())),
        "occupancy": int(occupancy),
    }


def _plan_now(
    plans: Iterable[Plan], van: str | None, now: datetime, tz: ZoneInfo
) -> tuple[list[PlannedVisit], list[PlannedVisit]]:
    """The visits in service at ``now`` and the cancelled ones that would be, of every plan
    (only ``van``'s if given; one plan per van, the first given), by van and start."""
    local = now.astimezone(tz)
    seen: set[str] = set()
    planned: list[PlannedVisit] = []
    cancelled: list[PlannedVisit] = []
    for plan in plans:
        if (van is not None and plan.van != van) or plan.van in seen:
            continue
        seen.add(plan.van)
        for v in plan.visits_on(local.date(), tz):
            late = v.status == "delayed" and (v.planned_start or v.start) <= local < v.end
            if v.is_open(local) or late:  # a delayed visit: from its planned start on
                planned.append(v)
            elif v.cancelled and v.start <= local < v.end:
                cancelled.append(v)
    planned.sort(key=lambda v: (v.van, v.start))
    cancelled.sort(key=lambda v: (v.van, v.start))
    return planned, cancelled


def annual(
    conn: sqlite3.Connection,
    year: int,
    *,
    van: str | None = None,
    budget_eur: float = 0.0,
    public: bool = True,
    min_cell: int = 3,
    town: str = TOWN,
    crew: int = DEFAULT_CREW,
) -> dict:
    """The annual report's figures (see module docstring for the definitions).

    Keys: ``year``, ``period``, ``contacts``, ``first_contacts``, ``checkins``,
    ``stops_served`` (stop visits of the tour), ``unplanned_stops``, ``places_served``,
    ``rural_contacts``, ``rural_share`` (0..1 or None), ``topics`` (a :class:`Table`),
    ``budget_eur``, ``cost_per_contact`` (None if the budget is 0 or there were no
    contacts), ``note``. With ``public=True`` a count from 1 to ``min_cell - 1`` is None.
    """
    p = period("year", date(year, 1, 1))
    o = Opts(town=town, crew=crew)
    per_stop = _sums(conn, p, van, o, "stop")
    contacts = _int(sum(n for (m, _k), n in per_stop.items() if m == "visit_visitors"))
    rural = _int(sum(n for (m, k), n in per_stop.items()
                     if m == "visit_visitors" and k is not None and k[1] != town))  # fmt: skip
    first = {k: n for (m, k), n in _sums(conn, p, van, o, "key").items() if m == "first"}
    visits = visit_counts(conn, p.start, p.end, "stop", van=van)
    out = {
        "year": year,
        "period": p,
        "contacts": contacts,
        "first_contacts": _int(first.get("1", 0)),
        "checkins": _int(sum(first.values())),
        "stops_served": sum(n for k, n in visits.items() if k[2]),
        "unplanned_stops": sum(n for k, n in visits.items() if not k[2]),
        "places_served": len({k[0] for k in visits}),
        "rural_contacts": rural,
        "rural_share": round(rural / contacts, 4) if contacts else None,
        "topics": report(
            conn, "topics", p, van=van, public=public, min_cell=min_cell, town=town, crew=crew
        ),
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
