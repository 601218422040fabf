"""A generated year in the van: tour plan, GPS track, footfall, check-ins, faults.

``generate(year, seed=...)`` returns a :class:`Year`: the events to store and the
generator's own ground truth (which visit each visitor and check-in belongs to, the
gaps it made), so tests can compare report figures with counts made from the truth.

The van follows the default tour plan (``telemetry.config.DEFAULTS``): it leaves the
depot, drives to each stop of the day (a fix every ``drive_interval_s``), parks within
40 m of the stop (a fix every ``park_interval_s``, as the box's deadband keeps them),
serves visitors and drives on; back at the depot the box goes off. Besides:

- some planned visits are cancelled (holidays, illness);
- some days have an unplanned stop (a home visit) in a village away from the stops;
- staff open the door at the depot (counts outside any stop visit);
- some visits lose the GPS fix for a while (the box keeps counting), some have the box
  off for a while (nothing recorded), some have the sensor blocked (no counts).

Everything is seeded: the same arguments give the same year (the same figures; event
ids are fresh UUIDv7s). ``write(store, year)`` writes
it through ``Store.record_many``; ``bulk_insert(conn, year, tz)`` writes the raw rows in
one transaction without outbox rows (for the benchmark's millions of rows).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from telemetry.config import TourStop, default_config
from telemetry.events import CheckIn, Footfall, Position, StopVisit, new_id
from telemetry.geo import distance_m, interpolate
from telemetry.tour import visits_on

DEPOT = (52.3300, 10.2450)  # a yard in Peine, north of the centre (a hidden zone)
AGE_WEIGHTS = {"15-17": 25, "18-20": 30, "21-24": 25, "25-27": 12, "unsaid": 8}
TOPIC_WEIGHTS = {
    "school": 14,
    "training": 16,
    "job": 18,
    "money": 10,
    "housing": 9,
    "family": 8,
    "health": 6,
    "papers": 5,
    "talk": 11,
    "other": 3,
}
# Villages for unplanned stops: (name for the truth, lat, lon), away from every tour stop.
VILLAGES = [
    ("Oelerse", 52.3630, 10.2060),
    ("Clauen", 52.2850, 10.0970),
    ("Groß Lafferde", 52.2370, 10.2030),
    ("Broistedt", 52.1960, 10.3480),
    ("Wahle", 52.2880, 10.4020),
    ("Bortfeld", 52.3120, 10.3640),
]


@dataclass
class TruthVisit:
    id: str
    van: str
    name: str  # tour stop name, or the village for an unplanned stop
    municipality: str  # for an unplanned stop: the nearest tour stop's
    planned: bool
    arrived: float  # first fix inside the stop's radius (unplanned: first parked fix)
    left: float  # first fix outside again
    day: str  # local date of arrival
    visitors: int = 0  # people counted (in, or two passes)
    checkins: list[int] = field(default_factory=list)  # indexes into Year.checkins
    fix_gaps: list[tuple[float, float]] = field(default_factory=list)
    off_gaps: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class TruthCheckIn:
    ts: float  # exact time (the event's time is rounded down to the hour)
    visit: str  # the visit the person was at
    age: str
    topics: tuple[str, ...]
    first: bool | None
    day: str
    hour: int


@dataclass
class Year:
    van: str
    sensor: str  # beam-pair | door
    tz: ZoneInfo
    tour: tuple[TourStop, ...]
    positions: list[Position] = field(default_factory=list)
    footfall: list[Footfall] = field(default_factory=list)
    checkins: list[TruthCheckIn] = field(default_factory=list)
    checkin_events: list[CheckIn] = field(default_factory=list)
    visits: list[TruthVisit] = field(default_factory=list)
    outside_counts: dict[str, int] = field(default_factory=dict)  # day -> counts at depot
    blocked: list[tuple[float, float, str]] = field(default_factory=list)  # start, end, day
    visitor_hours: dict[tuple[str, int], int] = field(default_factory=dict)  # (day, hour)

    def stop_visits(self) -> list[StopVisit]:
        """The truth's visits as closed StopVisit events (for writing without detection)."""
        out = []
        for v in self.visits:
            lat, lon = self._place(v)
            out.append(
                StopVisit(
                    arrived=datetime.fromtimestamp(v.arrived, UTC),
                    name=v.name if v.planned else f"bei {v.name}",
                    municipality=v.municipality,
                    lat=lat,
                    lon=lon,
                    planned=v.planned,
                    left=datetime.fromtimestamp(v.left, UTC),
                    id=v.id,
                    van=self.van,
                )
            )
        return out

    def _place(self, v: TruthVisit) -> tuple[float, float]:
        for s in self.tour:
            if s.name == v.name:
                return s.lat, s.lon
        for name, lat, lon in VILLAGES:
            if name == v.name:
                return lat, lon
        raise KeyError(v.name)


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class _Gen:
    def __init__(self, y: Year, rng: random.Random, drive_s: float, park_s: float, scale: float):
        self.y, self.rng = y, rng
        self.drive_s, self.park_s, self.scale = drive_s, park_s, scale
        self.occupancy = 0

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.y.tz)

    def fix(self, ts: float, lat: float, lon: float, speed: float) -> None:
        self.y.positions.append(
            Position(
                time=datetime.fromtimestamp(ts, UTC),
                lat=lat,
                lon=lon,
                speed=speed,
                hdop=1.0,
                sats=9,
                id=new_id(),
                van=self.y.van,
            )
        )

    def drive(self, t: float, a: tuple[float, float], b: tuple[float, float]) -> float:
        """Fixes from a towards b (not at b); returns the arrival time at b."""
        d = distance_m(*a, *b)
        speed = 13.9  # 50 km/h
        n = max(2, int(d / speed / self.drive_s))
        for i in range(n):
            lat, lon = interpolate(*a, *b, i / n)
            self.fix(t + i * self.drive_s, lat, lon, speed)
        return t + n * self.drive_s

    def count(self, ts: float, kind: str) -> None:
        if self.y.sensor == "beam-pair":
            if kind == "in":
                self.occupancy += 1
            elif kind == "out":
                self.occupancy = max(0, self.occupancy - 1)
            ev = Footfall(
                datetime.fromtimestamp(ts, UTC), kind, "beam-pair", self.occupancy, van=self.y.van
            )
        else:
            ev = Footfall(datetime.fromtimestamp(ts, UTC), "pass", "door", 0, van=self.y.van)
        self.y.footfall.append(ev)

    def drop_one_pass(self, events: list) -> None:
        """Door sensor: now and then one person's second pass is missed (the door stayed
        open); at most one per visit, so ceil(passes / 2) still counts everyone."""
        if self.y.sensor != "beam-pair" and events and self.rng.random() < 0.3:
            outs = [i for i, e in enumerate(events) if e[1] == "out"]
            del events[self.rng.choice(outs)]

    def serve(self, v: TruthVisit, t0: float, t1: float, mean: float, checkin_p: float) -> None:
        """Visitors during [t0, t1), skipping the visit's gaps and blocked times."""
        rng, y = self.rng, self.y
        dead = v.off_gaps + [(b[0], b[1]) for b in y.blocked if b[1] > t0 and b[0] < t1]
        events: list[tuple[float, str, TruthCheckIn | None]] = []
        for _ in range(_poisson(rng, mean * self.scale)):
            t_in = rng.uniform(t0 + 60, t1 - 120)
            stay = min(rng.uniform(4, 40) * 60, t1 - 60 - t_in)
            t_out = t_in + stay
            if any(a - 120 <= t_in <= b + 30 or a - 30 <= t_out <= b + 30 for a, b in dead):
                continue  # the box was off or the sensor blocked: not counted, not in truth
            ci = None
            if rng.random() < checkin_p:
                loc = self.local(t_in + 90)
                ci = TruthCheckIn(
                    ts=t_in + 90,
                    visit=v.id,
                    age=_pick(rng, AGE_WEIGHTS),
                    topics=tuple(
                        dict.fromkeys(_pick(rng, TOPIC_WEIGHTS) for _ in range(rng.randint(1, 3)))
                    ),
                    first=rng.choices([True, False, None], weights=[35, 55, 10])[0],
                    day=loc.date().isoformat(),
                    hour=loc.hour,
                )
            events.append((t_in, "in", ci))
            events.append((t_out, "out", None))
            v.visitors += 1
            loc = self.local(t_in)
            key = (loc.date().isoformat(), loc.hour)
            y.visitor_hours[key] = y.visitor_hours.get(key, 0) + 1
        events.sort(key=lambda e: e[0])
        self.drop_one_pass(events)
        self.occupancy = 0
        for ts, kind, ci in events:
            self.count(ts, kind)
            if ci is not None:
                v.checkins.append(len(y.checkins))
                y.checkins.append(ci)
                y.checkin_events.append(
                    CheckIn(
                        datetime.fromtimestamp(ci.ts, UTC),
                        ci.age,
                        ci.topics,
                        ci.first,
                        heard_from=None,
                        language="de",
                        van=y.van,
                    )
                )
        self.occupancy = 0

    def park(
        self,
        v: TruthVisit,
        t_arrive: float,
        t_leave: float,
        t_open: float,
        place: tuple[float, float],
        mean_visitors: float,
        checkin_p: float,
    ) -> None:
        """Park from t_arrive to t_leave (fixes every park_s), with faults, and serve."""
        rng = self.rng
        fault = rng.random()
        mid = t_arrive + (t_leave - t_arrive) * rng.uniform(0.25, 0.6)
        if fault < 0.04:  # GPS lost for a while; the box keeps counting
            v.fix_gaps.append((mid, mid + rng.uniform(15, 40) * 60))
        elif fault < 0.07:  # the box is off for a while: nothing recorded at all
            v.off_gaps.append((mid, mid + rng.uniform(15, 40) * 60))
        elif fault < 0.10:  # sensor blocked (door held open, a box in the beam)
            b0 = mid
            self.y.blocked.append((b0, b0 + rng.uniform(5, 30) * 60, v.day))
        gaps = v.fix_gaps + v.off_gaps
        t = t_arrive
        while t < t_leave:
            if not any(a <= t < b for a, b in gaps):
                jl = place[0] + rng.uniform(-4e-5, 4e-5)
                jo = place[1] + rng.uniform(-6e-5, 6e-5)
                self.fix(t, jl, jo, 0.0)
            t += self.park_s * rng.uniform(0.97, 1.0)
        for b0, b1, _day in self.y.blocked[-1:]:
            if t_arrive <= b0 < t_leave:
                self.y.footfall.append(
                    Footfall(datetime.fromtimestamp(b0, UTC), "sensor_blocked", self._sensor(), 0,
                             van=self.y.van)
                )  # fmt: skip
                self.y.footfall.append(
                    Footfall(datetime.fromtimestamp(b1, UTC), "sensor_ok", self._sensor(), 0,
                             van=self.y.van)
                )  # fmt: skip
        self.serve(v, t_open, t_leave, mean_visitors, checkin_p)

    def _sensor(self) -> str:
        return "beam-pair" if self.y.sensor == "beam-pair" else "door"


def generate(
    year: int = 2025,
    *,
    seed: int = 1,
    van: str = "jungregio-1",
    sensor: str = "beam-pair",
    drive_interval_s: float = 10.0,
    park_interval_s: float = 300.0,
    visitor_scale: float = 1.0,
    checkin_share: float = 0.45,
    days: int | None = None,
    start: date | None = None,
) -> Year:
    """A seeded year (or ``days`` days from ``start``) of one van on the default tour."""
    cfg = default_config()
    tz = cfg.tz
    rng = random.Random(f"{seed}-{van}-{year}")
    y = Year(van=van, sensor=sensor, tz=tz, tour=cfg.tour)
    g = _Gen(y, rng, drive_interval_s, park_interval_s, visitor_scale)
    first = start or date(year, 1, 1)
    n_days = days if days is not None else (date(first.year + 1, 1, 1) - first).days
    popularity = {s.name: rng.uniform(6, 18) for s in cfg.tour}
    for i in range(n_days):
        day = first + timedelta(days=i)
        plan = [v for v in visits_on(cfg.tour, day, tz) if rng.random() > 0.06]
        if not plan:
            continue
        t = plan[0].start.timestamp() - rng.uniform(40, 60) * 60
        here = DEPOT
        # Staff open the door at the depot before leaving: counts outside any stop.
        for k in range(rng.randint(0, 3)):
            g.count(t - 300 + 60 * k, "in" if sensor == "beam-pair" else "pass")
            y.outside_counts[day.isoformat()] = y.outside_counts.get(day.isoformat(), 0) + 1
        g.fix(t - 600, *DEPOT, 0.0)  # the box starts at the depot
        unplanned_after = rng.randrange(len(plan)) if rng.random() < 0.12 else None
        for j, pv in enumerate(plan):
            s = pv.stop
            place = (s.lat + rng.uniform(-2e-4, 2e-4), s.lon + rng.uniform(-3e-4, 3e-4))
            mark = len(y.positions)
            t_arrive = g.drive(t, here, place)
            t_leave = pv.end.timestamp() + rng.uniform(0, 10) * 60
            inside = [
                p.time.timestamp()
                for p in y.positions[mark:]
                if distance_m(p.lat, p.lon, s.lat, s.lon) <= s.radius_m
            ]
            arrived = inside[0] if inside else t_arrive
            v = TruthVisit(
                new_id(), van, s.name, s.municipality, True, arrived, 0.0,
                datetime.fromtimestamp(arrived, tz).date().isoformat(),
            )  # fmt: skip
            y.visits.append(v)
            t_open = max(t_arrive, pv.start.timestamp())
            g.park(v, t_arrive, t_leave, t_open, place, popularity[s.name], checkin_share)
            here = place
            t = _leave(g, y, v, t_leave, here, (s.lat, s.lon), s.radius_m)
            if unplanned_after == j:
                name, lat, lon = rng.choice(VILLAGES)
                t_at = g.drive(t, here, (lat, lon))
                nearest = min(cfg.tour, key=lambda st: distance_m(lat, lon, st.lat, st.lon))
                u = TruthVisit(
                    new_id(), van, name, nearest.municipality, False, t_at, 0.0,
                    datetime.fromtimestamp(t_at, tz).date().isoformat(),
                )  # fmt: skip
                y.visits.append(u)
                stay = rng.uniform(25, 70) * 60
                for k in range(int(stay // park_interval_s) + 1):
                    g.fix(t_at + k * park_interval_s, lat, lon, 0.0)
                t_end = t_at + (stay // park_interval_s) * park_interval_s + 60
                if rng.random() < 0.5:  # a home visit: one or two people at the door
                    g.serve(u, t_at, t_end, 1.5, 0.5)
                here = (lat, lon)
                t = _leave(g, y, u, t_end, here, (lat, lon), 100.0)
        t_home = g.drive(t, here, DEPOT)
        g.fix(t_home, *DEPOT, 0.0)
        g.fix(t_home + 120, *DEPOT, 0.0)  # then the box is switched off
    y.positions.sort(key=lambda p: p.time)
    y.footfall.sort(key=lambda f: f.time)
    return y


def _leave(g: _Gen, y: Year, v: TruthVisit, t: float, here, centre, radius: float) -> float:
    """Drive off: fixes away from the stop until well outside; sets ``v.left`` to the
    first fix outside the radius. Returns the time the van is on its way."""
    lat, lon = here
    k = 0
    while True:
        k += 1
        ts = t + k * g.drive_s
        lat += 0.0013  # ~145 m north per fix
        g.fix(ts, lat, lon, 13.9)
        if distance_m(lat, lon, *centre) > radius and not v.left:
            v.left = ts
        if distance_m(lat, lon, *centre) > radius + 400 and ts - v.left >= 90:
            return ts + g.drive_s


def write(store, y: Year, *, detect: bool = True) -> list[StopVisit]:
    """Write the year through ``store.record_many`` (with outbox rows), feeding the track
    through a :class:`StopDetector` (or, with ``detect=False``, the truth's visits).
    Returns the stop visits recorded."""
    from telemetry.config import default_config as _cfg
    from telemetry.stops import StopDetector

    if detect:
        cfg = _cfg()
        det = StopDetector(cfg.tour, cfg.stops, y.tz, van=y.van)
        visits = [ev for p in y.positions for ev in det.feed(p)]
    else:
        visits = y.stop_visits()
    store.record_many(y.positions)
    store.record_many(y.footfall)
    store.record_many(y.checkin_events)
    store.record_many(visits)  # in order: each visit's arrival, then its leaving
    # Empty the outbox: as if the publisher had sent everything.
    with store.transaction() as conn:
        conn.execute("DELETE FROM outbox")
    return visits


def bulk_insert(store, y: Year, *, visits: list[StopVisit] | None = None) -> None:
    """Insert the year's raw rows with ``executemany`` in one transaction, without outbox
    rows: the truth's visits, or ``visits`` (the last version of each id wins)."""
    with store.transaction() as conn:
        _bulk(conn, y, visits)


def final_visits(events: list[StopVisit]) -> list[StopVisit]:
    """The last version of each visit, in order of arrival."""
    last = {v.id: v for v in events}
    return sorted(last.values(), key=lambda v: v.arrived)


def _bulk(conn, y: Year, visits: list[StopVisit] | None) -> None:
    tz = y.tz

    def loc(t: datetime) -> datetime:
        return t.astimezone(tz)

    conn.executemany(
        "INSERT INTO positions (id, van, ts, day, lat, lon, mode, alt, speed, track, hdop,"
        " sats, suspect) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0)",
        (
            (p.id, p.van, p.time.timestamp(), loc(p.time).date().isoformat(), p.lat, p.lon,
             p.mode, p.alt, p.speed, p.track, p.hdop, p.sats)
            for p in y.positions
        ),
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO footfall (id, van, ts, day, hour, kind, sensor, occupancy)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (
            (f.id, f.van, f.time.timestamp(), loc(f.time).date().isoformat(), loc(f.time).hour,
             f.kind, f.sensor, f.occupancy)
            for f in y.footfall
        ),
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO checkins (id, van, ts, day, hour, age_group, topics, first_visit,"
        " heard_from, language) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            (c.id, c.van, c.time.timestamp(), loc(c.time).date().isoformat(), loc(c.time).hour,
             c.age_group, json.dumps(list(c.topics)),
             None if c.first_visit is None else int(c.first_visit), c.heard_from, c.language)
            for c in y.checkin_events
        ),
    )  # fmt: skip
    conn.executemany(
        'INSERT INTO stop_visits (id, van, arrived, "left", day, name, municipality, lat, lon,'
        " planned) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            (v.id, v.van, v.arrived.timestamp(), v.left.timestamp() if v.left else None,
             loc(v.arrived).date().isoformat(), v.name, v.municipality, v.lat, v.lon,
             int(v.planned))
            for v in (final_visits(visits) if visits is not None else y.stop_visits())
        ),
    )  # fmt: skip
