"""Epoch assembly: what the sentences of one UTC time said, made into one :class:`Fix`.

:class:`Fix` is the decoder's output; :class:`EpochState` collects one epoch's fields
(private to the decoder); :class:`DateKeeper` carries the date from epoch to epoch
(midnight rollover, the 1024-week rollover correction) and :func:`finish_epoch` turns a
complete epoch into a :class:`Fix`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from telemetry.errors import VanboxError
from telemetry.events import Position, iso_utc

# GPS broadcasts its week number in 10 bits, so it wraps every 1024 weeks (1999-08-22,
# 2019-04-07). Receivers with the rollover bug then report dates 19.6 years in the past.
# Like gpsd, any date before ROLLOVER_CUTOFF is taken to come from such a receiver and is
# moved forward by GPS_WEEK_ROLLOVER: no receiver in service today can really be there.
GPS_WEEK_ROLLOVER = timedelta(weeks=1024)
ROLLOVER_CUTOFF = date(2017, 1, 1)

KNOTS_TO_MS = 1852.0 / 3600.0
_ONE_DAY = timedelta(days=1)
_JSON_DECIMALS = {"lat": 9, "lon": 9, "speed": 3}  # as gpsd prints them


class NoFixError(VanboxError, ValueError):
    """A fix without a valid position (mode 1) or without a date was asked for a position."""


@dataclass(frozen=True)
class Fix:
    """One epoch's report. Fields are ``None`` where the receiver did not say.

    ``time`` is UTC-aware, after the 1024-week rollover correction, and ``None`` while the
    receiver has not yet sent a date (RMC or ZDA). For ``mode == 1`` (no fix) the position
    fields (lat, lon, alt, speed, track) are always ``None``.
    """

    time: datetime | None
    mode: int  # 1 no fix, 2 2D, 3 3D
    lat: float | None = None
    lon: float | None = None
    alt: float | None = None  # metres above mean sea level
    speed: float | None = None  # m/s over ground
    track: float | None = None  # degrees true
    hdop: float | None = None
    sats: int | None = None  # satellites used
    suspect: bool = False  # jump filter / HDOP limit: keep, but never show as live position
    # Seconds since UTC midnight as the receiver sent them: known even before the date is.
    time_of_day: float | None = None

    @property
    def has_fix(self) -> bool:
        return self.mode >= 2

    def to_position(self) -> Position:
        """The fix as a storable event. Raises :class:`NoFixError` for a no-fix epoch."""
        if self.mode < 2 or self.lat is None or self.lon is None:
            raise NoFixError(f"epoch {self._when()} has no fix (mode {self.mode})")
        if self.time is None:
            raise NoFixError("fix without a date: the receiver has not sent RMC or ZDA yet")
        return Position(
            time=self.time,
            lat=self.lat,
            lon=self.lon,
            mode=self.mode,
            alt=self.alt,
            speed=self.speed,
            track=self.track,
            hdop=self.hdop,
            sats=self.sats,
            suspect=self.suspect,
        )

    def to_json(self) -> dict[str, Any]:
        """A gpsd-style TPV dict: the same field names, absent where unknown."""
        out: dict[str, Any] = {"class": "TPV", "mode": self.mode}
        if self.time is not None:
            out["time"] = iso_utc(self.time)
        for key in ("lat", "lon", "alt", "speed", "track", "hdop", "sats"):
            v = getattr(self, key)
            if v is not None:
                out[key] = round(v, _JSON_DECIMALS[key]) if key in _JSON_DECIMALS else v
        if self.suspect:
            out["suspect"] = True
        return out

    def _when(self) -> str:
        return iso_utc(self.time) if self.time else "without time"


class EpochState:
    """What the sentences of one epoch said so far (mutable, private to the decoder)."""

    __slots__ = (
        "key",
        "tod",
        "date",
        "seen",
        "timed",
        "valid",
        "invalid",
        "stuck",
        "gsa_mode",
        "lat",
        "lon",
        "alt",
        "speed",
        "track",
        "hdop",
        "sats",
    )

    def __init__(self) -> None:
        self.key: int | None = None  # centiseconds of day, for comparing times
        self.tod: float | None = None  # seconds of day
        self.date: date | None = None
        self.seen: set[str] = set()
        self.timed: list[str] = []  # kinds of the sentences that carried a time, in order
        self.valid = False  # a position sentence reported a valid fix
        self.invalid = False  # a position sentence reported no fix
        self.stuck = False  # GGA time did not advance
        self.gsa_mode: int | None = None
        self.lat: float | None = None
        self.lon: float | None = None
        self.alt: float | None = None
        self.speed: float | None = None
        self.track: float | None = None
        self.hdop: float | None = None
        self.sats: int | None = None

    @property
    def empty(self) -> bool:
        return not self.seen

    def add(self, kind: str) -> None:
        self.seen.add(kind)


class DateKeeper:
    """The date from epoch to epoch: taken from RMC/ZDA, moved on at midnight."""

    def __init__(self) -> None:
        self.date: date | None = None  # date of the last completed epoch with a time
        self.last_tod: float | None = None

    def when(self, ep: EpochState) -> datetime | None:
        """The epoch's UTC time, or ``None`` while no date is known."""
        if ep.tod is None:
            return None
        if ep.date is not None:
            self.date = ep.date
        elif self.date is not None and self.last_tod is not None:
            if ep.tod < self.last_tod - 43_200:
                self.date += _ONE_DAY  # the time of day wrapped past midnight
        self.last_tod = ep.tod
        if self.date is None:
            return None
        d = self.date
        if d < ROLLOVER_CUTOFF:
            d += GPS_WEEK_ROLLOVER
        try:
            return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(seconds=ep.tod)
        except OverflowError:  # 9999-12-31 plus a day: no such time
            return None


def finish_epoch(ep: EpochState, when: datetime | None) -> Fix:
    """A complete epoch as a :class:`Fix` (mode 1 unless a position is trustworthy)."""
    lat, lon = ep.lat, ep.lon
    good = (
        ep.valid
        and not ep.invalid
        and not ep.stuck
        and ep.gsa_mode != 1
        and lat is not None
        and lon is not None
        and not (lat == 0.0 and lon == 0.0)  # never a fix at 0,0
    )
    if not good:
        return Fix(time=when, mode=1, hdop=ep.hdop, sats=ep.sats, time_of_day=ep.tod)
    if ep.gsa_mode in (2, 3):
        mode = ep.gsa_mode
    else:
        mode = 3 if ep.alt is not None else 2
    return Fix(
        time=when,
        mode=mode,
        lat=lat,
        lon=lon,
        alt=ep.alt if mode == 3 else None,
        speed=ep.speed,
        track=ep.track,
        hdop=ep.hdop,
        sats=ep.sats,
        time_of_day=ep.tod,
    )
