"""Clocks: the real one, and a scaled one for the simulated van.

The box, the kiosk and the simulator ask an injected clock for the time, so a simulated
day can run 10 or 60 times faster than the wall clock and every timestamp (NMEA times,
footfall, check-ins, stop visits) stays on the same simulated time line.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """The wall clock. ``speed`` is 1; ``sleep`` is ``time.sleep``."""

    speed = 1.0

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock(Clock):
    """Simulated time that starts at ``start`` and runs ``speed`` times faster than real
    time. ``sleep(s)`` sleeps ``s`` simulated seconds (``s / speed`` real ones).
    ``jump(seconds)`` moves it (a clock jump for fault injection)."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.speed = float(speed)
        self._start = start.timestamp()
        self._t0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._start + self._offset + (time.monotonic() - self._t0) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def jump(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def real_seconds(self, sim_seconds: float) -> float:
        return sim_seconds / self.speed

    def at(self, sim: datetime) -> float:
        """Real seconds from now until simulated time ``sim`` (may be negative)."""
        return (sim.timestamp() - self.time()) / self.speed


def midnight_after(t: datetime) -> datetime:
    return (t + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
