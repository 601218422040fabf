"""The tour plan: which stop is served when, and what comes next.

A *visit* is one stop of the plan on one date, with its local start and end times.
Used by the kiosk's start screen (next three stops), the public map (open now? where
next?) and stop detection (is this parked position a planned stop?).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .config import TourStop
from .geo import distance_m


@dataclass(frozen=True)
class Visit:
    stop: TourStop
    start: datetime  # aware, local time zone
    end: datetime

    def is_open(self, now: datetime) -> bool:
        return self.start <= now < self.end


def visits_on(tour: Iterable[TourStop], day: date, tz: ZoneInfo) -> list[Visit]:
    """The plan's visits on one local date, by start time."""
    out = [
        Visit(
            s,
            datetime.combine(day, s.start, tzinfo=tz),
            datetime.combine(day, s.end, tzinfo=tz),
        )
        for s in tour
        if day.weekday() in s.weekdays
    ]
    return sorted(out, key=lambda v: (v.start, v.stop.name))


def visits_from(
    tour: Iterable[TourStop], now: datetime, tz: ZoneInfo, days: int = 14
) -> Iterator[Visit]:
    """Visits that have not ended yet at ``now``, in order, looking ``days`` ahead."""
    tour = tuple(tour)
    local = now.astimezone(tz)
    for i in range(days + 1):
        for v in visits_on(tour, local.date() + timedelta(days=i), tz):
            if v.end > local:
                yield v


def next_visits(tour: Iterable[TourStop], now: datetime, tz: ZoneInfo, n: int = 3) -> list[Visit]:
    """The current visit (if one is open) and the next ones: ``n`` in all."""
    out = []
    for v in visits_from(tour, now, tz):
        out.append(v)
        if len(out) == n:
            break
    return out


def open_visit(tour: Iterable[TourStop], now: datetime, tz: ZoneInfo) -> Visit | None:
    """The visit scheduled at ``now`` (service hours), if any."""
    local = now.astimezone(tz)
    for v in visits_on(tour, local.date(), tz):
        if v.is_open(local):
            return v
    return None


def stop_at(tour: Iterable[TourStop], lat: float, lon: float) -> TourStop | None:
    """The tour stop whose radius contains the point (the nearest, if several)."""
    best, best_d = None, float("inf")
    for s in tour:
        d = distance_m(lat, lon, s.lat, s.lon)
        if d <= s.radius_m and d < best_d:
            best, best_d = s, d
    return best


def nearest_stop(tour: Iterable[TourStop], lat: float, lon: float) -> tuple[TourStop, float] | None:
    best = None
    for s in tour:
        d = distance_m(lat, lon, s.lat, s.lon)
        if best is None or d < best[1]:
            best = (s, d)
    return best
