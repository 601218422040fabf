"""NMEA 0183 decoding: lines of a GPS receiver (or a recording) to one fix per epoch.

Pure code, no I/O besides :func:`read_file`, no clock, no threads:

- :class:`NmeaDecoder` takes lines of bytes or text, checks every sentence's checksum
  itself, accepts every talker id (GP, GN, GL, GA, GB, BD, QZ, ...), groups the sentences
  that share one UTC time into one epoch and returns a :class:`Fix` per completed epoch.
  Line noise (binary, NULs, truncated or run-together sentences, bad checksums) is
  counted and skipped, never raised. Dates are corrected for the 1024-week rollover.
- Every field is checked against its bounds (:mod:`firmware.nmea_fields`): a bad time,
  date or position rejects the sentence; a bad speed, course, HDOP, altitude or satellite
  count drops just that field. Both are counted in ``rejected`` and never raised.
- :class:`FixFilter` (:mod:`firmware.nmea_filter`) flags implausible fixes as
  ``suspect`` and tells whether a fix is too old to be the live position.

``decode_lines(lines)`` and ``read_file(path)`` run a sequence of lines or a recording
through the decoder (``#`` lines are comments). The serial reader thread built on this
is :class:`firmware.gps.GpsReader`. :class:`Fix` and the epoch rules live in
:mod:`firmware.nmea_epoch`; every public name stays importable from here.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from . import nmea_fields as fields
from .nmea_epoch import (
    GPS_WEEK_ROLLOVER,
    KNOTS_TO_MS,
    ROLLOVER_CUTOFF,
    DateKeeper,
    EpochState,
    Fix,
    NoFixError,
    finish_epoch,
)
from .nmea_fields import FieldError
from .nmea_filter import FixFilter

__all__ = [
    "GPS_WEEK_ROLLOVER",
    "KNOTS_TO_MS",
    "ROLLOVER_CUTOFF",
    "FieldError",
    "Fix",
    "FixFilter",
    "NmeaDecoder",
    "NoFixError",
    "decode_lines",
    "read_file",
]

log = logging.getLogger(__name__)

# Sentences that carry the position or the UTC time of an epoch. Seeing one of these a
# second time in an epoch starts the next epoch, even when it carries no time (receivers
# without a fix often send empty time fields).
_CYCLE_SENTENCES = frozenset({"GGA", "RMC", "GLL", "GNS", "VTG", "ZDA"})


class NmeaDecoder:
    """Pure NMEA 0183 decoder: lines in, one :class:`Fix` per completed epoch out.

    An epoch is the set of sentences that share one UTC time: GGA, RMC, GLL, GNS, GSA,
    VTG and ZDA all contribute (GSA and VTG carry no time and join the current epoch).
    An epoch is complete when a sentence with another time arrives, or when a sentence
    that occurs once per epoch (GGA, RMC, GLL, GNS, VTG, ZDA) arrives a second time;
    :meth:`flush` completes the last one at the end of input.

    Counters: ``sentences`` (accepted), ``bad`` (rejected: checksum missing or wrong,
    non-printable characters, malformed or out-of-bounds time, date or position),
    ``rejected`` (a :class:`collections.Counter` of field name -> fields refused for
    their bounds, whether the sentence or only the field was dropped).
    """

    def __init__(self) -> None:
        self._ep = EpochState()
        self._dates = DateKeeper()
        self._last_gga_key: int | None = None
        self.sentences = 0
        self.bad = 0
        self.rejected: Counter[str] = Counter()
        self.partial = 0  # epochs not reported: their cycle was not complete
        self._enders: set[str] = set()  # sentence kinds that end a cycle (learned)

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
            fix = self._finish()
            if fix is not None:
                out.append(fix)
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
        if not (body.isprintable() and body.isascii()) or not fields.checksum_ok(
            body, text[star + 1 :]
        ):
            self.bad += 1
            return
        handler = _HANDLERS.get(body[2:6]) if body[:1] != "P" else None
        if handler is None:
            # proprietary ($P...), satellites in view, text...: nothing to take from it
            self.sentences += 1
            return
        try:
            handler(self, body.split(","), out)
        except FieldError as e:
            self.rejected[e.field] += 1
            self.bad += 1
            return
        except (ValueError, IndexError, ArithmeticError):
            self.bad += 1
            return
        self.sentences += 1

    def _opt(self, parse: Callable[[], float | int | None]) -> float | int | None:
        """An optional field: a number out of bounds drops the field, not the sentence;
        text that is no number at all still rejects the sentence (it is corrupt)."""
        try:
            return parse()
        except FieldError as e:
            if not e.out_of_range:
                raise
            self.rejected[e.field] += 1
            return None

    def _speed(self, knots: str) -> float | None:
        v = self._opt(lambda: fields.bounded_float("speed", knots, 0.0, fields.SPEED_MAX_KNOTS))
        return None if v is None else v * KNOTS_TO_MS

    def _track(self, s: str) -> float | None:
        return self._opt(lambda: fields.bounded_float("track", s, 0.0, 360.0))  # type: ignore[return-value]

    def _hdop(self, s: str) -> float | None:
        return self._opt(lambda: fields.bounded_float("hdop", s, 0.0, fields.HDOP_MAX))  # type: ignore[return-value]

    def _alt(self, s: str) -> float | None:
        return self._opt(  # type: ignore[return-value]
            lambda: fields.bounded_float("alt", s, fields.ALT_MIN_M, fields.ALT_MAX_M)
        )

    def _sats(self, s: str) -> int | None:
        return self._opt(lambda: fields.bounded_int("sats", s, 0, fields.SATS_MAX))  # type: ignore[return-value]

    def _enter(self, kind: str, t: tuple[int, float] | None, out: list[Fix]) -> EpochState:
        """The epoch a sentence of ``kind`` with time ``t`` belongs to (completing the
        current one first when the sentence starts a new epoch)."""
        ep = self._ep
        if not ep.empty:
            if t is not None and ep.key is not None and t[0] != ep.key:
                self._complete(out, ep.timed[-1] if ep.timed else None)
                ep = self._ep
            elif kind in _CYCLE_SENTENCES and kind in ep.seen:
                self._complete(out, None)
                ep = self._ep
        if t is not None:
            if ep.key is None:
                ep.key, ep.tod = t
            ep.timed.append(kind)
        ep.add(kind)
        return ep

    def _complete(self, out: list[Fix], ender: str | None) -> None:
        """The time changed (or a once-per-cycle sentence came again): the current epoch
        is over. Like gpsd, the last timed sentence before a time change ends cycles
        from now on; the epoch is reported only if its cycle was complete."""
        fix = self._finish()
        if fix is not None:
            out.append(fix)
        if ender is not None:
            self._enders.add(ender)

    # -- sentence handlers (fields[0] is the address, e.g. "GPGGA") -----------------

    def _gga(self, f: list[str], out: list[Fix]) -> None:
        t = fields.tod(f[1])
        quality = fields.bounded_int("quality", f[6], 0, fields.QUALITY_MAX)
        lat = fields.coord(f[2], f[3], 90)
        lon = fields.coord(f[4], f[5], 180)
        sats = self._sats(f[7])
        hdop = self._hdop(f[8])
        alt = self._alt(f[9]) if len(f) > 9 else None
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
        t = fields.tod(f[1])
        status = f[2]
        faa = f[12] if len(f) > 12 else ""
        lat = fields.coord(f[3], f[4], 90)
        lon = fields.coord(f[5], f[6], 180)
        speed = self._speed(f[7])
        track = self._track(f[8])
        day = None
        if status == "A" and f[9]:
            # Some receivers (MTK3301, ...) send garbage dates while void: trust only "A".
            day = fields.rmc_date(f[9])
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
            ep.speed = speed
        if track is not None:
            ep.track = track

    def _gll(self, f: list[str], out: list[Fix]) -> None:
        lat = fields.coord(f[1], f[2], 90)
        lon = fields.coord(f[3], f[4], 180)
        t = fields.tod(f[5]) if len(f) > 5 else None
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
        t = fields.tod(f[1])
        lat = fields.coord(f[2], f[3], 90)
        lon = fields.coord(f[4], f[5], 180)
        modes = f[6]
        sats = self._sats(f[7])
        hdop = self._hdop(f[8])
        alt = self._alt(f[9]) if len(f) > 9 else None
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
        mode = self._opt(lambda: fields.bounded_int("gsa mode", f[2], 1, 3))
        hdop = self._hdop(f[16])
        ep = self._enter("GSA", None, out)
        if mode in (1, 2, 3):
            ep.gsa_mode = int(mode)
        if hdop is not None and ep.hdop is None:
            ep.hdop = hdop

    def _vtg(self, f: list[str], out: list[Fix]) -> None:
        track = self._track(f[1])
        speed = self._speed(f[5]) if len(f) > 5 else None
        faa = f[9] if len(f) > 9 else ""
        ep = self._enter("VTG", None, out)
        if faa == "N":
            return
        if track is not None:
            ep.track = track
        if speed is not None:
            ep.speed = speed

    def _zda(self, f: list[str], out: list[Fix]) -> None:
        t = fields.tod(f[1])
        day = fields.zda_date(f[2], f[3], f[4])
        ep = self._enter("ZDA", t, out)
        if day is not None:
            ep.date = day

    # -- completing an epoch -------------------------------------------------------

    def _finish(self) -> Fix | None:
        """The pending epoch as a Fix, or ``None`` for a partial cycle (see
        :meth:`cycle_complete`), which is counted in ``partial`` and not reported."""
        ep = self._ep
        self._ep = EpochState()
        when = self._dates.when(ep)
        if not self.cycle_complete(ep):
            self.partial += 1
            return None
        return finish_epoch(ep, when)

    def cycle_complete(self, ep: EpochState) -> bool:
        """gpsd's rule: an epoch is reported when a sentence that ends a cycle arrives in
        it. The cycle enders are learned as gpsd learns them: the last timed sentence
        before each time change ends cycles from then on. Before the first time change
        every epoch is reported (gpsd reports after each sentence then); later, an epoch
        without an ender is a partial cycle and is not (the last cycle of a recording
        cut off, a GGA at 10 Hz before gpsd learned that GGA ends cycles too). Epochs
        without any time (no fix, empty time fields) are reported as they are."""
        if ep.key is None or not self._enders:
            return True
        return not self._enders.isdisjoint(ep.timed)


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
