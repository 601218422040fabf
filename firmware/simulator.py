"""The simulated van's GPS: a day's route through the Landkreis Peine, replayed as NMEA.

The route starts at the depot in Peine, drives to one stop in each of the seven
municipalities, stands there for a while, and returns. :func:`demo_day` lays it out on
a simulated clock; :class:`NmeaFeeder` writes the receiver's sentences (GGA, GSA, RMC,
one epoch per simulated second) into a pty, so the real GPS reader reads them exactly as
it reads ``/dev/serial0`` on the Pi. Faults for the soak test: the port vanishing and
coming back (:meth:`NmeaFeeder.unplug`), bursts of line noise (:meth:`NmeaFeeder.garbage`).
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telemetry.clock import Clock
from telemetry.config import WEEKDAYS
from telemetry.geo import bearing_deg, distance_m, interpolate

log = logging.getLogger(__name__)

DEPOT = ("Depot Peine", "Peine", 52.3130, 10.2490)
# One parking place per municipality: (name, municipality, lat, lon).
DEMO_STOPS = [
    ("Edemissen, Schulzentrum", "Edemissen", 52.3858, 10.2605),
    ("Wendeburg, Rathaus", "Wendeburg", 52.3282, 10.3958),
    ("Vechelde, Bahnhof", "Vechelde", 52.2607, 10.3662),
    ("Lengede, Jugendzentrum", "Lengede", 52.2052, 10.3091),
    ("Ilsede, Gebläsehalle", "Ilsede", 52.2631, 10.1838),
    ("Hohenhameln, Marktplatz", "Hohenhameln", 52.2590, 10.0672),
    ("Peine, Marktplatz", "Peine", 52.3215, 10.2335),
]


@dataclass(frozen=True)
class Leg:
    """The van at one place (``speed == 0``) or driving from a to b, in simulated time."""

    start: datetime
    end: datetime
    a: tuple[float, float]
    b: tuple[float, float]
    stop: tuple[str, str, float, float] | None = None  # set while standing at a stop

    @property
    def driving(self) -> bool:
        return self.a != self.b


@dataclass(frozen=True)
class State:
    lat: float
    lon: float
    speed: float  # m/s
    track: float
    stop: tuple[str, str, float, float] | None


class Route:
    """A day's legs. ``at(t)`` is where the van is at simulated time ``t``."""

    def __init__(self, legs: list[Leg]) -> None:
        self.legs = legs

    @property
    def start(self) -> datetime:
        return self.legs[0].start

    @property
    def end(self) -> datetime:
        return self.legs[-1].end

    def stops(self) -> list[Leg]:
        return [leg for leg in self.legs if leg.stop is not None]

    def at(self, t: datetime) -> State:
        for leg in self.legs:
            if leg.start <= t < leg.end:
                break
        else:
            leg = self.legs[0] if t < self.start else self.legs[-1]
        if not leg.driving:
            return State(leg.a[0], leg.a[1], 0.0, 0.0, leg.stop)
        span = (leg.end - leg.start).total_seconds()
        f = min(1.0, max(0.0, (t - leg.start).total_seconds() / span))
        lat, lon = interpolate(*leg.a, *leg.b, f)
        dist = distance_m(*leg.a, *leg.b)
        # A little wobble so the track looks like a road, not a ruler line.
        wobble = math.sin(f * math.pi * 6) * 0.0012 * math.sin(f * math.pi)
        return State(lat + wobble, lon, dist / span, bearing_deg(*leg.a, *leg.b), None)


def demo_day(
    start: datetime, *, stop_minutes: float = 25, speed_kmh: float = 45, depot_minutes: float = 10
) -> Route:
    """Depot -> the seven stops -> depot, starting at ``start`` (aware)."""
    legs: list[Leg] = []
    t = start
    here = (DEPOT[2], DEPOT[3])
    legs.append(Leg(t, t + timedelta(minutes=depot_minutes), here, here))
    t = legs[-1].end
    for stop in [*DEMO_STOPS, None]:
        there = (stop[2], stop[3]) if stop else (DEPOT[2], DEPOT[3])
        # Roads are ~1.3x longer than the straight line.
        secs = distance_m(*here, *there) * 1.3 / (speed_kmh / 3.6)
        legs.append(Leg(t, t + timedelta(seconds=secs), here, there))
        t = legs[-1].end
        dwell = stop_minutes if stop else depot_minutes
        legs.append(Leg(t, t + timedelta(minutes=dwell), there, there, stop))
        t = legs[-1].end
        here = there
    return Route(legs)


def demo_tour(route: Route, tz) -> list[dict]:
    """Tour-plan entries (config ``[[tour.stops]]``) for the route's stops on its day, so
    the simulated van is 'open' exactly while it stands there."""
    out = []
    for leg in route.stops():
        name, muni, lat, lon = leg.stop
        a, b = leg.start.astimezone(tz), leg.end.astimezone(tz)
        last = a.replace(hour=23, minute=59, second=0, microsecond=0)  # a plan entry's day ends
        a = min(a, last - timedelta(minutes=1))  # a stop reached at 23:59 opens a minute early
        end = min(max(b if b.date() == a.date() else last, a + timedelta(minutes=1)), last)
        out.append(
            {
                "name": name,
                "municipality": muni,
                "lat": lat,
                "lon": lon,
                "radius_m": 150.0,
                "weekdays": [WEEKDAYS[a.weekday()]],
                "start": a.strftime("%H:%M"),
                "end": end.strftime("%H:%M"),
            }
        )
    return out


# --- NMEA --------------------------------------------------------------------------


def checksum(body: str) -> str:
    c = 0
    for ch in body.encode("ascii"):
        c ^= ch
    return f"{c:02X}"


def sentence(body: str) -> str:
    return f"${body}*{checksum(body)}\r\n"


def _dm(v: float, width: int) -> str:
    """Degrees and decimal minutes, rounded as a whole so 52.999999 is 5300.0000."""
    minutes = round(abs(v) * 60, 4)
    d, m = divmod(minutes, 60)
    return f"{int(d):0{width}d}{m:07.4f}"


def _lat(v: float) -> tuple[str, str]:
    return _dm(v, 2), "N" if v >= 0 else "S"


def _lon(v: float) -> tuple[str, str]:
    return _dm(v, 3), "E" if v >= 0 else "W"


def epoch_sentences(
    t: datetime, s: State | None, *, alt: float = 72.0, sats: int = 9, hdop: float = 0.9
) -> list[str]:
    """One receiver epoch: GGA, GSA, RMC at time ``t``. ``s=None`` is a receiver without
    a fix (empty position fields, quality 0, status V), as real ones send at cold start."""
    t = t.astimezone(UTC)
    hms = t.strftime("%H%M%S.") + f"{t.microsecond // 10000:02d}"
    dmy = t.strftime("%d%m%y")
    if s is None:
        return [
            sentence(f"GPGGA,{hms},,,,,0,00,99.9,,M,,M,,"),
            sentence("GPGSA,A,1,,,,,,,,,,,,,99.9,99.9,99.9"),
            sentence(f"GPRMC,{hms},V,,,,,,,{dmy},,,N"),
        ]
    la, ns = _lat(s.lat)
    lo, ew = _lon(s.lon)
    used = [str(p) for p in (2, 5, 7, 9, 13, 15, 18, 20, 26, 29, 30, 31)[: min(sats, 12)]]
    prns = ",".join(used + [""] * (12 - len(used)))
    knots = s.speed / 0.514444
    return [
        sentence(f"GPGGA,{hms},{la},{ns},{lo},{ew},1,{sats:02d},{hdop:.1f},{alt:.1f},M,46.9,M,,"),
        sentence(f"GPGSA,A,3,{prns},1.6,{hdop:.1f},1.3"),
        sentence(f"GPRMC,{hms},A,{la},{ns},{lo},{ew},{knots:.2f},{s.track:.1f},{dmy},,,A"),
    ]


class NmeaFeeder:
    """Writes the route's NMEA into a pty, one epoch per simulated second.

    ``path`` is a stable symlink to the pty's slave side: the GPS reader opens that path,
    like ``/dev/vanbox-gps`` on the Pi. ``unplug(seconds)`` removes the link and closes the
    pty (a USB receiver pulled out) and makes a new one after ``seconds`` of simulated time.
    """

    def __init__(
        self,
        route: Route,
        clock: Clock,
        path: str | Path,
        *,
        cold_start_s: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.route = route
        self.clock = clock
        self.path = Path(path)
        self.cold_start_s = cold_start_s
        self.rng = rng or random.Random(1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._unplugged_until: float | None = None
        self._garbage = 0
        self._thread = threading.Thread(target=self._run, name="nmea-feeder", daemon=True)
        self.epochs = 0
        self.started_at: float | None = None

    # --- pty management -----------------------------------------------------------

    def _plug(self) -> None:
        import tty

        master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        tmp = self.path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(name)
        os.replace(tmp, self.path)
        self._master, self._slave = master, slave
        os.set_blocking(master, False)

    def _unplug_now(self) -> None:
        self.path.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None

    def unplug(self, sim_seconds: float) -> None:
        with self._lock:
            self._unplug_now()
            self._unplugged_until = self.clock.time() + sim_seconds

    def garbage(self, nbytes: int = 2000) -> None:
        """Send a burst of line noise (binary, NULs, truncated sentences) next epoch."""
        with self._lock:
            self._garbage += nbytes

    # --- running ------------------------------------------------------------------

    def start(self) -> NmeaFeeder:
        self._plug()
        self.started_at = self.clock.time()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            self._unplug_now()

    def _rate(self) -> float:
        """Simulated seconds per real second (a stepped clock reads speed 0 while a
        visitor walks; its ``factor`` is the configured speed)."""
        return getattr(self.clock, "factor", None) or self.clock.speed or 1.0

    def _noise(self, n: int) -> bytes:
        parts = []
        while n > 0:
            kind = self.rng.randrange(4)
            if kind == 0:
                chunk = bytes(self.rng.randrange(256) for _ in range(min(n, 64)))
            elif kind == 1:
                chunk = b"\x00" * min(n, 16)
            elif kind == 2:
                chunk = b"$GPGGA,1234" + b"\r\n"
            else:
                chunk = b"$GPRMC,000000.00,A,5219.0000,N,01014.0000,E,0.0,0.0,010120,,,A*00\r\n"
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return
        try:
            os.write(self._master, data)
        except BlockingIOError:
            pass  # nobody reads: a real receiver's bytes would be lost too
        except OSError as e:
            log.debug("pty write failed: %s", e)

    def _run(self) -> None:
        next_epoch = math.floor(self.clock.time()) + 1.0
        while not self._stop.is_set():
            wait = (next_epoch - self.clock.time()) / self._rate()
            if wait > 0:
                self._stop.wait(min(wait, 0.5))
                continue
            now = next_epoch
            next_epoch += 1.0
            if next_epoch < self.clock.time() - 5:  # the clock jumped forward
                next_epoch = math.floor(self.clock.time()) + 1.0
            with self._lock:
                if self._unplugged_until is not None:
                    if self.clock.time() < self._unplugged_until:
                        continue
                    self._unplugged_until = None
                    self._plug()
                t = datetime.fromtimestamp(now, UTC)
                cold = now - (self.started_at or now) < self.cold_start_s
                data = "".join(epoch_sentences(t, None if cold else self.route.at(t))).encode()
                if self._garbage:
                    data = self._noise(self._garbage) + data
                    self._garbage = 0
                self._write(data)
                self.epochs += 1
