"""The deadband: which GPS fixes are worth recording and sending.

The receiver gives a fix every second; a mobile link and an SD card do not need 28,800
of them a day. While parked the box keeps at most one fix per ``parked_interval_s``;
while driving at most one per ``driving_interval_s``; the first fix, a change between
parked and driving, and a move of more than ``deadband_m`` (but no faster than the
driving interval) are always kept. Suspect fixes (jump filter) are kept for the record at
the driving rate at most.

::

    speed  ____/‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾\\______________________
    kept   x   x    x    x    x    x x                    x
           |   |<-->|                |<---- parked ------>|
         first  driving_interval   stopped   parked_interval
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import Position, to_epoch
from .geo import distance_m


@dataclass
class Deadband:
    parked_interval_s: float = 300.0
    driving_interval_s: float = 10.0
    driving_speed_ms: float = 2.0
    deadband_m: float = 30.0

    def __post_init__(self) -> None:
        self._last: Position | None = None
        self._last_driving = False
        self._last_suspect_ts: float | None = None

    @classmethod
    def from_config(cls, publish: dict) -> Deadband:
        return cls(
            parked_interval_s=publish["parked_interval_s"],
            driving_interval_s=publish["driving_interval_s"],
            driving_speed_ms=publish["driving_speed_ms"],
            deadband_m=publish["deadband_m"],
        )

    def driving(self, p: Position) -> bool:
        return p.speed is not None and p.speed >= self.driving_speed_ms

    def accept(self, p: Position) -> bool:
        """Whether to keep this fix. Call once per fix, in time order."""
        ts = to_epoch(p.time)
        if p.suspect:
            if (
                self._last_suspect_ts is None
                or ts - self._last_suspect_ts >= self.driving_interval_s
            ):
                self._last_suspect_ts = ts
                return True
            return False
        last = self._last
        driving = self.driving(p)
        if last is None:
            keep = True
        else:
            dt = ts - to_epoch(last.time)
            if dt < 0:  # the clock went back (receiver reset): start afresh
                keep = True
            elif driving != self._last_driving:
                keep = dt >= 1.0
            elif driving:
                keep = dt >= self.driving_interval_s
            else:
                moved = distance_m(last.lat, last.lon, p.lat, p.lon) >= self.deadband_m
                keep = dt >= self.parked_interval_s or (moved and dt >= self.driving_interval_s)
        if keep:
            self._last = p
            self._last_driving = driving
        return keep
