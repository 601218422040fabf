"""Stop visits from GPS fixes: when the van stood at a stop of the tour, or elsewhere.

:class:`StopDetector` is a pure state machine over positions (no clock, no I/O): feed it
every fix in time order and it returns the :class:`~telemetry.events.StopVisit` events to
record. The box records them with ``store.record``, which upserts ``stop_visits`` by id
and publishes them.

Rules (times from ``[stops]`` in the config):

- **Arrived** at a tour stop when the van's fixes stay within the stop's ``radius_m`` for
  at least ``arrive_after_s``. The visit's ``arrived`` time is the first fix inside.
- **Left** when the fixes stay outside that radius for at least ``leave_after_s``. The
  visit's ``left`` time is the first fix outside (or the last fix inside, if the fixes
  stopped for longer than :data:`MAX_GAP_S` before that).
- **Unplanned stop**: parked within :data:`PARK_RADIUS_M` of one point anywhere else for
  more than ``unplanned_after_s``. Named after the nearest tour stop ("bei Ilsede,
  Gebläsehalle") with that stop's municipality; ``planned=False``. Left like a tour stop,
  when the van is more than :data:`PARK_RADIUS_M` away for ``leave_after_s``.
- Places inside ``ignore`` zones (the depot, staff homes: ``privacy.hidden_zones``) never
  become unplanned stops.
- A gap of more than :data:`MAX_GAP_S` between two fixes (the box was off) closes an open
  visit at the last fix seen before the gap, and dwell times start again.

The stops come from the van's plan (:meth:`StopDetector.set_plan`, telemetry/plan.py:
its weekly stops plus the places of one-off visits within a day), or from a fixed
``tour`` (the TOML ``[[tour.stops]]``) when there is no plan. A plan received while the
box runs takes effect with the next fix.

Each visit is returned twice with the same id: on arrival with ``left=None``, and on
leaving with ``left`` set. Sparse fixes (one every 5 minutes while parked, as a hub has
them after thinning) work the same: only the times of the fixes matter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .config import MUNICIPALITIES, TourStop, Zone
from .events import Position, StopVisit, from_epoch
from .geo import distance_m
from .tour import nearest_stop, stop_at

if TYPE_CHECKING:
    from .plan import Plan

PARK_RADIUS_M = 100.0  # an unplanned stop: the van stayed within this of one point
MAX_GAP_S = 3600.0  # fixes further apart than this: the box was off; close the visit


@dataclass
class _Candidate:
    """Where the van may be arriving: a tour stop or a parking point."""

    stop: TourStop | None
    lat: float
    lon: float
    first: datetime
    last: datetime


class StopDetector:
    """Detect stop visits from a stream of positions of one van (see module docstring)."""

    def __init__(
        self,
        tour: Iterable[TourStop],
        stops_cfg: dict,
        tz: ZoneInfo,
        *,
        van: str = "",
        ignore: Iterable[Zone] = (),
        current: StopVisit | None = None,
        plan: Plan | None = None,
    ) -> None:
        self.tour = tuple(tour)
        self._plan: Plan | None = plan
        self._cache: tuple[Plan, date, tuple[TourStop, ...]] | None = None
        self.arrive_after_s = float(stops_cfg["arrive_after_s"])
        self.leave_after_s = float(stops_cfg["leave_after_s"])
        self.unplanned_after_s = float(stops_cfg["unplanned_after_s"])
        self.tz = tz
        self.van = van
        self.ignore = tuple(ignore)
        self.visit: StopVisit | None = current if current and current.left is None else None
        self._radius = self._radius_of(self.visit) if self.visit else 0.0
        self._cand: _Candidate | None = None
        self._out_since: datetime | None = None  # first fix outside the open visit
        self._last_in: datetime | None = current.arrived if self.visit else None
        self._last: datetime | None = None

    # --- public -----------------------------------------------------------------------

    def set_plan(self, plan: Plan | None) -> None:
        """Use ``plan``'s stops from now on (None: the fixed ``tour`` again). Safe to call
        from another thread: it replaces one reference."""
        self._plan = plan

    def stops_at(self, t: datetime | None = None) -> tuple[TourStop, ...]:
        """The stops in force at ``t`` (the plan's, else the fixed tour)."""
        plan = self._plan
        if plan is None:
            return self.tour
        day = (t or self._last or datetime.now(self.tz)).astimezone(self.tz).date()
        c = self._cache
        if c is None or c[0] is not plan or c[1] != day:
            c = self._cache = (plan, day, plan.tour(around=day))
        return c[2]

    def feed(self, position: Position) -> list[StopVisit]:
        """Take one fix (in time order); return the visits that arrived or left with it."""
        t = position.time
        out: list[StopVisit] = []
        if self._last is not None and t < self._last:
            return out  # out of order: ignore rather than corrupt the dwell times
        if self._last is not None and (t - self._last).total_seconds() > MAX_GAP_S:
            if self.visit is not None:
                out.append(self._close(self._last_in or self._last))
            self._cand = None
        self._last = t
        if self.visit is not None:
            out.extend(self._while_at_stop(position))
        if self.visit is None:
            out.extend(self._while_moving(position))
        return out

    def close(self, when: datetime) -> StopVisit | None:
        """Close the open visit at ``when`` (e.g. the box shuts down cleanly)."""
        return self._close(when) if self.visit is not None else None

    # --- states -----------------------------------------------------------------------

    def _while_at_stop(self, p: Position) -> list[StopVisit]:
        v = self.visit
        assert v is not None
        if distance_m(p.lat, p.lon, v.lat, v.lon) <= self._radius:
            self._out_since = None
            self._last_in = p.time
            return []
        if self._out_since is None:
            self._out_since = p.time
        if (p.time - self._out_since).total_seconds() < self.leave_after_s:
            return []
        last_in = self._last_in or v.arrived
        gap = (self._out_since - last_in).total_seconds()
        left = self._out_since if gap <= MAX_GAP_S else last_in
        closed = self._close(left)
        # The fix that confirmed leaving may already be the start of the next stop.
        return [closed]

    def _while_moving(self, p: Position) -> list[StopVisit]:
        stop = stop_at(self.stops_at(p.time), p.lat, p.lon)
        c = self._cand
        if stop is not None:
            if c is None or c.stop is not stop:
                c = self._cand = _Candidate(stop, stop.lat, stop.lon, p.time, p.time)
            c.last = p.time
            if (c.last - c.first).total_seconds() >= self.arrive_after_s:
                return [self._open(c, planned=True)]
            return []
        if any(distance_m(p.lat, p.lon, z.lat, z.lon) <= z.radius_m for z in self.ignore):
            self._cand = None
            return []
        if (
            c is None
            or c.stop is not None
            or distance_m(p.lat, p.lon, c.lat, c.lon) > PARK_RADIUS_M
        ):
            self._cand = _Candidate(None, p.lat, p.lon, p.time, p.time)
            return []
        c.last = p.time
        if (c.last - c.first).total_seconds() > self.unplanned_after_s:
            return [self._open(c, planned=False)]
        return []

    # --- helpers ----------------------------------------------------------------------

    def _open(self, c: _Candidate, *, planned: bool) -> StopVisit:
        if planned:
            assert c.stop is not None
            name, muni = c.stop.name, c.stop.municipality
        else:
            name, muni = self.place_name(c.lat, c.lon)
        self.visit = StopVisit(
            arrived=c.first,
            name=name,
            municipality=muni,
            lat=c.lat,
            lon=c.lon,
            planned=planned,
            van=self.van,
        )
        self._radius = self._radius_of(self.visit)
        self._cand = None
        self._out_since = None
        self._last_in = c.last
        return self.visit

    def _close(self, left: datetime) -> StopVisit:
        assert self.visit is not None
        closed = replace(self.visit, left=max(left, self.visit.arrived))
        self.visit = None
        self._out_since = None
        self._last_in = None
        self._cand = None
        return closed

    def _radius_of(self, v: StopVisit) -> float:
        if v.planned:
            for s in self.stops_at(v.arrived):
                if s.name == v.name:
                    return s.radius_m
        return PARK_RADIUS_M

    def place_name(self, lat: float, lon: float) -> tuple[str, str]:
        """("bei <nearest tour stop>", its municipality); without a tour, the nearest
        municipality centre of the Landkreis."""
        near = nearest_stop(self.stops_at(), lat, lon)
        if near is not None:
            return f"bei {near[0].name}", near[0].municipality
        muni = min(MUNICIPALITIES, key=lambda m: distance_m(lat, lon, *MUNICIPALITIES[m]))
        return f"bei {muni}", muni


def open_visit(conn: sqlite3.Connection, van: str) -> StopVisit | None:
    """The van's latest stop visit if it is still open (to resume a detector after a
    restart: ``StopDetector(..., current=open_visit(conn, van))``)."""
    r = conn.execute(
        'SELECT id, van, arrived, "left", name, municipality, lat, lon, planned'
        " FROM stop_visits WHERE van = ? ORDER BY arrived DESC LIMIT 1",
        (van,),
    ).fetchone()
    if r is None or r[3] is not None:
        return None
    return StopVisit(
        arrived=from_epoch(r[2]),
        name=r[4],
        municipality=r[5],
        lat=r[6],
        lon=r[7],
        planned=bool(r[8]),
        id=r[0],
        van=r[1],
    )
