"""NMEA 0183 decoding: lines of a GPS receiver (or a recording) to one fix per epoch.

Pure code, no I/O besides :func:`read_file`, no clock, no threads:

- :class:`NmeaDecoder` takes lines of bytes or text, checks every sentence's checksum
  itself, accepts every talker id (GP, GN, GL, GA, GB, BD, QZ, ...), groups the sentences
  that share one UTC time into one epoch and returns a :class:`Fix` per completed epoch.
  Line noise (binary, NULs, truncated or run-together sentences, bad checksums) is
  counted and skipped, never raised. Dates are corrected for the 1024-week rollover.
- :class:`FixFilter` flags implausible fixes (a jump faster than a maximum speed, an HDOP
  above a limit) as ``suspect`` and tells whether a fix is too old to be the live position.

``decode_lines(lines)`` and ``read_file(path)`` run a sequence of lines or a recording
through the decoder (``#`` lines are comments). The serial reader thread built on this
is :class:`firmware.gps.GpsReader`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from telemetry.errors import VanboxError
from telemetry.events import Position, iso_utc
from telemetry.geo import distance_m

log = logging.getLogger(__name__)

# GPS broadcasts its week number in 10 bits, so it wraps every 1024 weeks (1999-08-22,
# 2019-04-07). Receivers with the rollover bug then report dates 19.6 years in the past.
# Like gpsd, any date before ROLLOVER_CUTOFF is taken to come from such a receiver and is
# moved forward by GPS_WEEK_ROLLOVER: no receiver in service today can really be there.
GPS_WEEK_ROLLOVER = timedelta(weeks=1024)
ROLLOVER_CUTOFF = date(2017, 1, 1)

KNOTS_TO_MS = 1852.0 / 3600.0
_ONE_DAY = timedelta(days=1)
# Sentences that carry the position or the UTC time of an epoch. Seeing one of these a
# second time in an epoch starts the next epoch, even when it carries no time (receivers
# without a fix often send empty time fields).
_CYCLE_SENTENCES = frozenset({"GGA", "RMC", "GLL", "GNS", "VTG", "ZDA"})
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


# --- field parsers (raise ValueError on malformed input) --------------------------------


def _tod(s: str) -> tuple[int, float] | None:
    """``hhmmss[.sss]`` -> (centisecond key, seconds of day); ``None`` when empty."""
    if not s:
        return None
    if len(s) < 6 or not s[:6].isdigit():
        raise ValueError(f"bad time {s!r}")
    h, m = int(s[0:2]), int(s[2:4])
    sec = float(s[4:])
    if h > 23 or m > 59 or not 0 <= sec < 60:
        raise ValueError(f"bad time {s!r}")
    t = h * 3600 + m * 60 + sec
    return round(t * 100), t


def _coord(value: str, hemi: str, limit: int) -> float | None:
    """NMEA ``dddmm.mmmm`` + hemisphere -> signed decimal degrees; ``None`` when empty."""
    if not value or not hemi:
        return None
    v = float(value)
    deg = int(v // 100)
    minutes = v - deg * 100
    # exactly 60.0 minutes: a receiver rounding 59.99996 up; gpsd's arithmetic accepts it
    if not (0 <= minutes <= 60) or v < 0:
        raise ValueError(f"bad coordinate {value!r}")
    out = deg + minutes / 60.0
    if out > limit:
        raise ValueError(f"coordinate out of range {value!r}")
    if hemi in "SW":
        return -out
    if hemi in "NE":
        return out
    raise ValueError(f"bad hemisphere {hemi!r}")


def _float(s: str) -> float | None:
    if not s:
        return None
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"not a number {s!r}")
    return v


def _int(s: str) -> int | None:
    return int(s) if s else None


_HEX = {f"{i:02X}": i for i in range(256)} | {f"{i:02x}": i for i in range(256)}
_M512, _M256, _M128 = (1 << 512) - 1, (1 << 256) - 1, (1 << 128) - 1


def _xor(body: str) -> int:
    """XOR of the characters of ``body`` (the NMEA checksum). Bodies up to 128
    characters (NMEA allows 82) are folded as one big integer, which is several times
    faster in CPython than a loop over the bytes."""
    raw = body.encode("latin-1")
    if len(raw) > 128:
        x = 0
        for b in raw:
            x ^= b
        return x
    n = int.from_bytes(raw, "little")
    n = (n ^ (n >> 512)) & _M512
    n = (n ^ (n >> 256)) & _M256
    n = (n ^ (n >> 128)) & _M128
    n = (n ^ (n >> 64)) & 0xFFFFFFFFFFFFFFFF
    n = (n ^ (n >> 32)) & 0xFFFFFFFF
    n = (n ^ (n >> 16)) & 0xFFFF
    return (n ^ (n >> 8)) & 0xFF


def _checksum_ok(body: str, given: str) -> bool:
    """XOR of every character between ``$`` and ``*`` equals the two hex digits given."""
    want = _HEX.get(given)
    return want is not None and _xor(body) == want


class _Epoch:
    """What the sentences of one epoch said so far (mutable, private)."""

    __slots__ = (
        "key",
        "tod",
        "date",
        "seen",
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


class NmeaDecoder:
    """Pure NMEA 0183 decoder: lines in, one :class:`Fix` per completed epoch out.

    An epoch is the set of sentences that share one UTC time: GGA, RMC, GLL, GNS, GSA,
    VTG and ZDA all contribute (GSA and VTG carry no time and join the current epoch).
    An epoch is complete when a sentence with another time arrives, or when a sentence
    that occurs once per epoch (GGA, RMC, GLL, GNS, VTG, ZDA) arrives a second time;
    :meth:`flush` completes the last one at the end of input.

    Counters: ``sentences`` (accepted), ``bad`` (rejected: checksum missing or wrong,
    non-printable characters, malformed fields).
    """

    def __init__(self) -> None:
        self._ep = _Epoch()
        self._date: date | None = None  # date of the last completed epoch with a time
        self._last_tod: float | None = None
        self._last_gga_key: int | None = None
        self.sentences = 0
        self.bad = 0

    # -- input ---------------------------------------------------------------------

    def feed(self, line: bytes | str) -> list[Fix]:
        """Decode one line (which may hold several run-together sentences, or noise)."""
        if type(line) is not str:
            line = bytes(line).decode("latin-1")
        out: list[Fix] = []
        parts = line.split("$")
        if len(parts) == 1:
            if line.strip():
                self.bad += 1
            return out
        if parts[0] and parts[0].strip():
            self.bad += 1  # noise before the first sentence
        for part in parts[1:]:
            self._sentence(part.rstrip("\r\n\t "), out)
        return out

    def flush(self) -> list[Fix]:
        """End of input (or a pause in it): complete the pending epoch, if any."""
        out: list[Fix] = []
        if not self._ep.empty:
            out.append(self._finish())
        return out

    @property
    def pending(self) -> bool:
        """True while sentences of an epoch wait for the epoch to complete."""
        return not self._ep.empty

    # -- one sentence --------------------------------------------------------------

    def _sentence(self, text: str, out: list[Fix]) -> None:
        star = len(text) - 3
        if star < 0 or text[star] != "*":
            self.bad += 1  # no checksum: truncated, run into the next one, or noise
            return
        body = text[:star]
        if not (body.isprintable() and body.isascii()) or not _checksum_ok(body, text[star + 1 :]):
            self.bad += 1
            return
        handler = _HANDLERS.get(body[2:6]) if body[:1] != "P" else None
        if handler is None:
            # proprietary ($P...), satellites in view, text...: nothing to take from it
            self.sentences += 1
            return
        try:
            handler(self, body.split(","), out)
        except (ValueError, IndexError):
            self.bad += 1
            return
        self.sentences += 1

    def _enter(self, kind: str, t: tuple[int, float] | None, out: list[Fix]) -> _Epoch:
        """The epoch a sentence of ``kind`` with time ``t`` belongs to (completing the
        current one first when the sentence starts a new epoch)."""
        ep = self._ep
        if not ep.empty and (
            (t is not None and ep.key is not None and t[0] != ep.key)
            or (kind in _CYCLE_SENTENCES and kind in ep.seen)
        ):
            out.append(self._finish())
            ep = self._ep
        if t is not None and ep.key is None:
            ep.key, ep.tod = t
        ep.seen.add(kind)
        return ep

    # -- sentence handlers (fields[0] is the address, e.g. "GPGGA") -----------------

    def _gga(self, f: list[str], out: list[Fix]) -> None:
        t = _tod(f[1])
        quality = _int(f[6])
        sats = _int(f[7])
        hdop = _float(f[8])
        lat = _coord(f[2], f[3], 90)
        lon = _coord(f[4], f[5], 180)
        alt = _float(f[9]) if len(f) > 9 else None
        if t is not None and t[0] == self._last_gga_key:
            # The time in GGA did not advance: the receiver is stuck and repeats its
            # last report (no fix, whatever the other fields claim).
            ep = self._enter("GGA", t, out)
            ep.stuck = True
            return
        if t is not None:
            self._last_gga_key = t[0]
        ep = self._enter("GGA", t, out)
        if sats is not None:
            ep.sats = sats
        if hdop is not None:
            ep.hdop = hdop
        if quality is None:
            return
        if quality == 0 or (quality == 6 and not sats):
            ep.invalid = True  # 0: no fix; 6 (estimated) with no satellites: a guess
            return
        if lat is None or lon is None:
            return
        ep.valid = True
        ep.lat, ep.lon = lat, lon
        if alt is not None:
            ep.alt = alt

    def _rmc(self, f: list[str], out: list[Fix]) -> None:
        t = _tod(f[1])
        status = f[2]
        faa = f[12] if len(f) > 12 else ""
        lat = _coord(f[3], f[4], 90)
        lon = _coord(f[5], f[6], 180)
        speed = _float(f[7])
        track = _float(f[8])
        day = None
        if status == "A" and f[9]:
            # Some receivers (MTK3301, ...) send garbage dates while void: trust only "A".
            d = f[9]
            if len(d) != 6 or not d.isdigit():
                raise ValueError(f"bad date {d!r}")
            day = date(2000 + int(d[4:6]), int(d[2:4]), int(d[0:2]))
        ep = self._enter("RMC", t, out)
        if status != "A" or faa == "N":
            ep.invalid = True
            return
        if day is not None:
            ep.date = day
        if lat is None or lon is None:
            return
        ep.valid = True
        ep.lat, ep.lon = lat, lon
        if speed is not None:
            ep.speed = speed * KNOTS_TO_MS
        if track is not None:
            ep.track = track

    def _gll(self, f: list[str], out: list[Fix]) -> None:
        lat = _coord(f[1], f[2], 90)
        lon = _coord(f[3], f[4], 180)
        t = _tod(f[5]) if len(f) > 5 else None
        status = f[6] if len(f) > 6 else ""
        faa = f[7] if len(f) > 7 else ""
        ep = self._enter("GLL", t, out)
        if status != "A" or faa == "N":
            if status == "V" or faa == "N":
                ep.invalid = True
            return
        if lat is None or lon is None:
            return
        ep.valid = True
        ep.lat, ep.lon = lat, lon

    def _gns(self, f: list[str], out: list[Fix]) -> None:
        t = _tod(f[1])
        lat = _coord(f[2], f[3], 90)
        lon = _coord(f[4], f[5], 180)
        modes = f[6]
        sats = _int(f[7])
        hdop = _float(f[8])
        alt = _float(f[9]) if len(f) > 9 else None
        ep = self._enter("GNS", t, out)
        if sats is not None:
            ep.sats = sats
        if hdop is not None:
            ep.hdop = hdop
        if not modes:
            return
        if modes.strip("N") == "":
            ep.invalid = True  # every constellation says "not valid"
            return
        if lat is None or lon is None:
            return
        ep.valid = True
        ep.lat, ep.lon = lat, lon
        if alt is not None:
            ep.alt = alt

    def _gsa(self, f: list[str], out: list[Fix]) -> None:
        if len(f) < 18:
            return  # malformed short GSA (i.Trek M3 and others): nothing trustworthy
        mode = _int(f[2])
        hdop = _float(f[16])
        ep = self._enter("GSA", None, out)
        if mode in (1, 2, 3):
            ep.gsa_mode = mode
        if hdop is not None and ep.hdop is None:
            ep.hdop = hdop

    def _vtg(self, f: list[str], out: list[Fix]) -> None:
        track = _float(f[1])
        speed = _float(f[5]) if len(f) > 5 else None
        faa = f[9] if len(f) > 9 else ""
        ep = self._enter("VTG", None, out)
        if faa == "N":
            return
        if track is not None:
            ep.track = track
        if speed is not None:
            ep.speed = speed * KNOTS_TO_MS

    def _zda(self, f: list[str], out: list[Fix]) -> None:
        t = _tod(f[1])
        day = None
        if f[2] and f[3] and f[4]:
            day = date(int(f[4]), int(f[3]), int(f[2]))
        ep = self._enter("ZDA", t, out)
        if day is not None:
            ep.date = day

    # -- completing an epoch -------------------------------------------------------

    def _finish(self) -> Fix:
        ep = self._ep
        self._ep = _Epoch()
        when: datetime | None = None
        if ep.tod is not None:
            if ep.date is not None:
                self._date = ep.date
            elif (
                self._date is not None
                and self._last_tod is not None
                and ep.tod < self._last_tod - 43_200
            ):
                self._date += _ONE_DAY  # the time of day wrapped past midnight
            self._last_tod = ep.tod
            if self._date is not None:
                d = self._date
                if d < ROLLOVER_CUTOFF:
                    d += GPS_WEEK_ROLLOVER
                when = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(seconds=ep.tod)
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


_HANDLERS: dict[str, Callable[[NmeaDecoder, list[str], list[Fix]], None]] = {
    f"{kind},": handler
    for kind, handler in (
        ("GGA", NmeaDecoder._gga),
        ("RMC", NmeaDecoder._rmc),
        ("GLL", NmeaDecoder._gll),
        ("GNS", NmeaDecoder._gns),
        ("GSA", NmeaDecoder._gsa),
        ("VTG", NmeaDecoder._vtg),
        ("ZDA", NmeaDecoder._zda),
    )
}  # keyed by characters 2-5 of the sentence: the type and its comma ("GGA,")


def decode_lines(lines: Iterable[bytes | str], decoder: NmeaDecoder | None = None) -> Iterator[Fix]:
    """Every epoch of a sequence of lines; lines starting with ``#`` are comments."""
    dec = decoder or NmeaDecoder()
    for line in lines:
        if isinstance(line, bytes | bytearray):
            if line.lstrip().startswith(b"#"):
                continue
        elif line.lstrip().startswith("#"):
            continue
        yield from dec.feed(line)
    yield from dec.flush()


def read_file(path: str | Path) -> Iterator[Fix]:
    """Every epoch of a recording (``#`` lines are comments)."""
    with open(path, "rb") as fh:
        yield from decode_lines(fh)


# --- filter ------------------------------------------------------------------------------


class FixFilter:
    """Plausibility and freshness of fixes.

    - Jump filter: a fix implying a speed above ``max_speed_kmh`` from the last accepted
      fix is flagged ``suspect``. After ``reanchor_after`` suspect fixes in a row that agree
      with each other, the filter accepts the new place (the first fix was the bad one,
      or the receiver was moved while off).
    - HDOP limit: a fix with HDOP above ``max_hdop`` is flagged ``suspect``.
    - Staleness: a fix received more than ``stale_after_s`` seconds ago is not the
      current position (:meth:`is_stale`).
    Suspect fixes are kept (stored, flagged) but never published as the live position.
    """

    def __init__(
        self,
        max_speed_kmh: float = 200.0,
        max_hdop: float = 20.0,
        stale_after_s: float = 10.0,
        *,
        reanchor_after: int = 5,
    ) -> None:
        self.max_speed_ms = max_speed_kmh / 3.6
        self.max_hdop = max_hdop
        self.stale_after_s = stale_after_s
        self.reanchor_after = reanchor_after
        self._anchor: Fix | None = None
        self._chain: list[Fix] = []

    @classmethod
    def from_config(cls, gps: dict[str, Any]) -> FixFilter:
        """From the ``[gps]`` section of the configuration."""
        return cls(
            max_speed_kmh=float(gps["max_speed_kmh"]),
            max_hdop=float(gps["max_hdop"]),
            stale_after_s=float(gps["stale_after_s"]),
        )

    def _too_fast(self, a: Fix, b: Fix) -> bool:
        assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
        dist = distance_m(a.lat, a.lon, b.lat, b.lon)
        if a.time is None or b.time is None:
            return False
        dt = abs((b.time - a.time).total_seconds())
        # Allow one second of timing slack: receivers round, and fixes can share a time.
        return dist > self.max_speed_ms * max(dt, 1.0)

    def check(self, fix: Fix) -> Fix:
        """``fix``, flagged ``suspect`` if implausible. No-fix epochs pass unchanged."""
        if fix.mode < 2 or fix.lat is None or fix.lon is None:
            return fix
        if fix.hdop is not None and fix.hdop > self.max_hdop:
            return replace(fix, suspect=True)
        if self._anchor is None or not self._too_fast(self._anchor, fix):
            self._anchor = fix
            self._chain.clear()
            return fix
        if self._chain and self._too_fast(self._chain[-1], fix):
            self._chain.clear()
        self._chain.append(fix)
        if len(self._chain) >= self.reanchor_after:
            log.info(
                "GPS: %d consistent fixes far from the last one; accepting the new place",
                len(self._chain),
            )
            self._anchor = fix
            self._chain.clear()
            return fix
        return replace(fix, suspect=True)

    def is_stale(self, age_s: float | None) -> bool:
        """True when a fix received ``age_s`` seconds ago is too old to be current."""
        return age_s is None or age_s > self.stale_after_s
