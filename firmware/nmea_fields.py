"""NMEA 0183 field parsing with bounds: the GPS boundary's input checks.

Every number a receiver sends passes through one of these parsers. A field that is
malformed or outside its physical bounds raises :class:`FieldError` (a ``ValueError``)
naming the field; the decoder counts it and rejects the sentence (time, date, position)
or drops just that field (speed, course, HDOP, altitude, satellites), as gpsd does. No
parser ever raises anything else (no ``OverflowError`` from a 25-digit year, no
``inf`` from ``1e999``), so one crafted sentence cannot stop the reader.

The checksum helpers live here too: :func:`checksum_ok`.
"""

from __future__ import annotations

import math
import re
from datetime import date

# Longest numeric field accepted at all (NMEA sentences are at most 82 characters; the
# longest real field is a time or coordinate with many decimals). Longer is noise.
MAX_NUMBER_CHARS = 16

# Physical bounds. A van on the ground never leaves them; a value outside is a corrupt
# or crafted sentence, never a measurement.
SPEED_MAX_KNOTS = 2000.0  # ~1030 m/s: faster than anything a GPS receiver reports
ALT_MIN_M, ALT_MAX_M = -1500.0, 50_000.0  # below the Dead Sea shore .. above any aircraft
HDOP_MAX = 99.99  # the NMEA field's own maximum
SATS_MAX = 99  # GGA/GNS: two digits (some GN receivers count over 12)
QUALITY_MAX = 9
YEAR_MIN, YEAR_MAX = 1980, 2099  # GPS time starts in 1980; RMC has two-digit years


_NUMERIC_CHARS = frozenset("0123456789.+-eE")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


class FieldError(ValueError):
    """One NMEA field is malformed or out of bounds. ``field`` names it."""

    def __init__(self, field: str, value: str, why: str = "malformed") -> None:
        super().__init__(f"{field} {why}: {value[:24]!r}")
        self.field = field
        # A well-formed number beyond its bounds (1e308, 25 digits) rather than text
        # that is no number at all: the decoder drops just such an optional field.
        self.out_of_range = why == "out of range"


def _number(field: str, s: str) -> float:
    """A finite decimal number of at most :data:`MAX_NUMBER_CHARS` characters."""
    if len(s) > MAX_NUMBER_CHARS:  # (checked first: no regex over a long string)
        raise FieldError(field, s, "out of range" if _NUMERIC_CHARS.issuperset(s) else "malformed")
    if not _NUMBER.match(s):  # no "nan", "1_0", " 5" or other things float() takes
        raise FieldError(field, s)
    v = float(s)
    if math.isinf(v):
        raise FieldError(field, s, "out of range")
    return v


def bounded_float(field: str, s: str, lo: float, hi: float) -> float | None:
    """``s`` as a float within ``[lo, hi]``; ``None`` when empty."""
    if not s:
        return None
    v = _number(field, s)
    if not lo <= v <= hi:
        raise FieldError(field, s, "out of range")
    return v


def bounded_int(field: str, s: str, lo: int, hi: int) -> int | None:
    """``s`` as a plain decimal integer within ``[lo, hi]``; ``None`` when empty."""
    if not s:
        return None
    if not s.isdigit() or not s.isascii():
        raise FieldError(field, s)
    if len(s) > MAX_NUMBER_CHARS:
        raise FieldError(field, s, "out of range")
    v = int(s)
    if not lo <= v <= hi:
        raise FieldError(field, s, "out of range")
    return v


def tod(s: str) -> tuple[int, float] | None:
    """``hhmmss[.sss]`` -> (centisecond key, seconds of day); ``None`` when empty."""
    if not s:
        return None
    if len(s) < 6 or len(s) > MAX_NUMBER_CHARS or not s[:6].isdigit() or not s.isascii():
        raise FieldError("time", s)
    h, m = int(s[0:2]), int(s[2:4])
    sec = _number("time", s[4:])
    if h > 23 or m > 59 or not 0 <= sec < 60:
        raise FieldError("time", s, "out of range")
    t = h * 3600 + m * 60 + sec
    return round(t * 100), t


def coord(value: str, hemi: str, limit: int) -> float | None:
    """NMEA ``dddmm.mmmm`` + hemisphere -> signed decimal degrees; ``None`` when empty."""
    if not value or not hemi:
        return None
    field = "latitude" if limit == 90 else "longitude"
    v = _number(field, value)
    deg = int(v // 100)
    minutes = v - deg * 100
    # exactly 60.0 minutes: a receiver rounding 59.99996 up; gpsd's arithmetic accepts it
    if not (0 <= minutes <= 60) or v < 0:
        raise FieldError(field, value)
    out = deg + minutes / 60.0
    if out > limit:
        raise FieldError(field, value, "out of range")
    if hemi in "SW" and len(hemi) == 1:
        return -out
    if hemi in "NE" and len(hemi) == 1:
        return out
    raise FieldError("hemisphere", hemi)


def rmc_date(d: str) -> date:
    """RMC ``ddmmyy`` -> a date in 2000..2099 (before the week-rollover correction)."""
    if len(d) != 6 or not d.isdigit() or not d.isascii():
        raise FieldError("date", d)
    return make_date(2000 + int(d[4:6]), int(d[2:4]), int(d[0:2]), d)


def zda_date(day: str, month: str, year: str) -> date | None:
    """ZDA day, month, four-digit year -> a date; ``None`` when a part is empty."""
    if not (day and month and year):
        return None
    text = f"{day},{month},{year}"
    y = bounded_int("year", year, YEAR_MIN, YEAR_MAX)
    m = bounded_int("month", month, 1, 12)
    dd = bounded_int("day", day, 1, 31)
    assert y is not None and m is not None and dd is not None
    return make_date(y, m, dd, text)


def make_date(y: int, m: int, d: int, text: str) -> date:
    if not YEAR_MIN <= y <= YEAR_MAX:
        raise FieldError("date", text, "out of range")
    try:
        return date(y, m, d)
    except (ValueError, OverflowError):
        raise FieldError("date", text) from None


# --- checksum ---------------------------------------------------------------------------

_HEX = {f"{i:02X}": i for i in range(256)} | {f"{i:02x}": i for i in range(256)}
_M512, _M256, _M128 = (1 << 512) - 1, (1 << 256) - 1, (1 << 128) - 1


def xor(body: str) -> int:
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


def checksum_ok(body: str, given: str) -> bool:
    """XOR of every character between ``$`` and ``*`` equals the two hex digits given."""
    want = _HEX.get(given)
    return want is not None and xor(body) == want
