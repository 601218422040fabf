"""The public view of a van: exactly what the public may see, and nothing more.

The public page and the public API show a van's position **only** while it stands at
a public stop of **its own** tour plan (telemetry/plan.py: the newest plan stored for
that van, exceptions applied: a cancelled visit is never open, a delay shifts the
opening) during that visit's service hours. Optionally
(``privacy.coarsen_driving``) a position snapped to a coarse grid (``privacy.coarsen_m``)
is shown while the van is moving between two stops of the day's plan. Never inside a
hidden zone (depot, staff homes: ``privacy.hidden_zones``), never a history, never a
check-in or a count. Everywhere else the van is "on the road" without a position.

:func:`load_state` reads what the store knows of one van (the newest fix, its status,
the stop visit it is at); :func:`public_view` turns that, the config and the time into
the public dict. The kiosk serves that dict as JSON and renders the page from it, so the
API cannot show more than the page.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .config import Config
from .errors import PlanError
from .events import Position, from_epoch, iso_utc, to_epoch, utcnow
from .geo import coarsen, distance_m
from .plan import Plan, PlannedVisit, stored_plan
from .store import Store

# A fix older than this says nothing about where the van is now (a parked box
# publishes at least every publish.parked_interval_s, 300 s by default).
FIX_MAX_AGE = timedelta(minutes=30)
FUTURE_SLACK = timedelta(minutes=5)  # a fix ahead of now by more is a wrong clock
NEXT_STOPS = 3
STATES = ("open", "driving", "away", "offline")


@dataclass(frozen=True)
class VanState:
    """What is known of one van, public or not (input of :func:`public_view`)."""

    van: str
    status: str = "unknown"  # online | offline | unknown
    last_seen: datetime | None = None
    fix: Position | None = None  # the newest non-suspect fix
    arrived: datetime | None = None  # arrival at the stop visit it is at (not left yet)
    arrived_at: tuple[float, float] | None = None  # where that stop visit is
    plan: Plan | None = None  # the van's newest stored plan (None: see plan_of)


# --- reading the store -----------------------------------------------------------------


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (name,)).fetchone() is not None


def known_vans(store: Store) -> list[str]:
    """Every van the hub has heard from, by id."""
    conn = store.reader()
    if not _has_table(conn, "van_status"):
        return []
    return [r[0] for r in conn.execute("SELECT van FROM van_status WHERE van != '' ORDER BY van")]


def load_state(
    store: Store, van: str, *, box: bool = False, now: datetime | None = None
) -> VanState:
    """The state of ``van`` from the store at ``now`` (default: the wall clock).
    ``box=True``: this is the van's own box, which is online by definition and was last
    seen at its newest fix. A fix dated ahead of ``now`` by more than the public view's
    slack is passed over, so one bad clock cannot hide the van's real newest fix."""
    conn = store.reader()
    limit = to_epoch((now or utcnow()) + FUTURE_SLACK)
    r = conn.execute(
        "SELECT ts, lat, lon, mode, alt, speed, track, hdop, sats, id FROM positions"
        " WHERE van = ? AND suspect = 0 AND ts <= ? ORDER BY ts DESC LIMIT 1",
        (van, limit),
    ).fetchone()
    fix = None
    if r is not None:
        fix = Position(
            time=from_epoch(r[0]), lat=r[1], lon=r[2], mode=r[3], alt=r[4], speed=r[5],
            track=r[6], hdop=r[7], sats=r[8], id=r[9], van=van,
        )  # fmt: skip
    v = conn.execute(
        'SELECT arrived, lat, lon FROM stop_visits WHERE van = ? AND "left" IS NULL'
        " ORDER BY arrived DESC LIMIT 1",
        (van,),
    ).fetchone()
    arrived = from_epoch(v[0]) if v else None
    arrived_at = (v[1], v[2]) if v else None
    try:
        plan = stored_plan(conn, van)
    except PlanError:  # cannot happen: plans are validated before they are stored
        plan = None
    if box:
        return VanState(van, "online", fix.time if fix else None, fix, arrived, arrived_at, plan)
    status, last_seen = "unknown", None
    if _has_table(conn, "van_status"):
        s = conn.execute("SELECT status, last_seen FROM van_status WHERE van = ?", (van,))
        row = s.fetchone()
        if row is not None:
            status = row[0]
            last_seen = from_epoch(row[1]) if row[1] is not None else None
    if fix is not None and (last_seen is None or fix.time > last_seen):
        last_seen = fix.time
    return VanState(van, status, last_seen, fix, arrived, arrived_at, plan)


# --- the rules ------------------------------------------------------------------------


def in_hidden_zone(cfg: Config, lat: float, lon: float, margin_m: float = 0.0) -> bool:
    return any(
        distance_m(lat, lon, z.lat, z.lon) <= z.radius_m + margin_m for z in cfg.hidden_zones
    )


def plan_of(cfg: Config, state: VanState) -> Plan:
    """The plan that applies to ``state.van``: its newest stored plan; without one, the
    TOML tour for the van this config describes, and an empty plan for any other van
    (the hub never shows its own config's tour for another van)."""
    if state.plan is not None:
        return state.plan
    return Plan.from_tour(state.van, cfg.tour if state.van == cfg.van["id"] else ())


def _visit_at(plan: Plan, cfg: Config, lat: float, lon: float, now: datetime):
    """The visit of today's plan (not cancelled) that is open at ``now`` and whose stop
    contains the point (the nearest, if several)."""
    local = now.astimezone(cfg.tz)
    best: tuple[float, PlannedVisit] | None = None
    for v in plan.visits_on(local.date(), cfg.tz):
        if not v.is_open(local):
            continue
        d = distance_m(lat, lon, v.lat, v.lon)
        if d <= v.radius_m and (best is None or d < best[0]):
            best = (d, v)
    return best[1] if best else None


def _at_any_stop(plan: Plan, cfg: Config, lat: float, lon: float, now: datetime) -> bool:
    day = now.astimezone(cfg.tz).date()
    return any(distance_m(lat, lon, s.lat, s.lon) <= s.radius_m for s in plan.tour(around=day))


def _between_stops(plan: Plan, cfg: Config, now: datetime) -> bool:
    """Today's plan has a visit that has begun and a later one that has not ended
    (cancelled visits do not count)."""
    local = now.astimezone(cfg.tz)
    today = [v for v in plan.visits_on(local.date(), cfg.tz) if not v.cancelled]
    begun = [v for v in today if v.start <= local]
    return any(w.end > local and w.start > b.start for b in begun for w in today)


def _local_iso(cfg: Config, t: datetime) -> str:
    return t.astimezone(cfg.tz).isoformat(timespec="minutes")


def display_name(cfg: Config, van: str) -> str:
    return str(cfg.van["name"]) if van == cfg.van["id"] else van


def public_view(cfg: Config, state: VanState, now: datetime) -> dict[str, Any]:
    """What the public may see of one van at ``now`` (a plain, JSON-ready dict)."""
    position = stop = since = until = None
    where = "away"
    plan = plan_of(cfg, state)
    fix = state.fix
    fresh = fix is not None and now - FIX_MAX_AGE <= fix.time <= now + FUTURE_SLACK
    if state.status == "offline":
        where = "offline"
    elif fresh and fix is not None and not in_hidden_zone(cfg, fix.lat, fix.lon):
        visit = _visit_at(plan, cfg, fix.lat, fix.lon, now)
        at_stop = visit is not None or _at_any_stop(plan, cfg, fix.lat, fix.lon, now)
        if visit is not None:
            where = "open"
            position = {"lat": round(fix.lat, 4), "lon": round(fix.lon, 4), "coarse": False}
            stop = {"name": visit.name, "municipality": visit.municipality}
            start = visit.start
            if (
                state.arrived is not None
                and state.arrived_at is not None
                and distance_m(*state.arrived_at, visit.lat, visit.lon) <= visit.radius_m
                and state.arrived <= now
            ):
                start = max(start, state.arrived)
            since, until = _local_iso(cfg, start), _local_iso(cfg, visit.end)
        elif (
            not at_stop
            and cfg.privacy["coarsen_driving"]
            and (fix.speed or 0.0) >= cfg.publish["driving_speed_ms"]
            and _between_stops(plan, cfg, now)
        ):
            cell = float(cfg.privacy["coarsen_m"])
            lat, lon = coarsen(fix.lat, fix.lon, cell)
            # The whole cell must stay clear of every hidden zone, not just its centre.
            if not in_hidden_zone(cfg, lat, lon, margin_m=cell):
                where = "driving"
                position = {
                    "lat": round(lat, 4),
                    "lon": round(lon, 4),
                    "coarse": True,
                    "radius_m": round(cell / 2),
                }
    upcoming = []
    for v in plan.next_visits(now, cfg.tz, NEXT_STOPS + 1):
        if stop is not None and v.name == stop["name"] and v.is_open(now):
            continue  # the visit it is at is shown as "open now", not as "next"
        upcoming.append(
            {
                "name": v.name,
                "municipality": v.municipality,
                "start": _local_iso(cfg, v.start),
                "end": _local_iso(cfg, v.end),
                "planned_start": _local_iso(cfg, v.planned_start or v.start),
                "status": v.status,
                "delay_min": v.delay_min,
                "reason": v.reason,
            }
        )
    return {
        "van": state.van,
        "name": display_name(cfg, state.van),
        "status": state.status,
        "state": where,
        "position": position,
        "stop": stop,
        "open_since": since,
        "open_until": until,
        "last_seen": iso_utc(state.last_seen) if state.last_seen else None,
        "next": upcoming[:NEXT_STOPS],
    }


def public_stop(s: Any) -> dict[str, Any]:
    """One stop of a tour plan as the public sees it: name, municipality, place, hours."""
    from .config import WEEKDAYS

    return {
        "name": s.name,
        "municipality": s.municipality,
        "lat": round(s.lat, 5),
        "lon": round(s.lon, 5),
        "weekdays": [WEEKDAYS[d] for d in s.weekdays],
        "start": s.start.strftime("%H:%M"),
        "end": s.end.strftime("%H:%M"),
    }


def public_stops(cfg: Config, plan: Plan | None = None) -> list[dict[str, Any]]:
    """The tour plan's stops (public by definition): name, municipality, place, hours;
    of ``plan`` if given, else of the config's tour."""
    tour = cfg.tour if plan is None else plan.tour()
    return [public_stop(s) for s in tour]
