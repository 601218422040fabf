"""The clock that simulated visitors and the door sensor share: :class:`SimClock`
(simulated time, steppable), :class:`ManualClock` (for tests), and helpers that take any
clock (:func:`clock_time`, :func:`clock_sleep_until`, :func:`stepping`).

Time, and running faster than real time
---------------------------------------
The sensor and the visitors must share one clock. At ``--speed 60`` a 0.3 s beam break
lasts 5 ms of real time: a sensor on :func:`time.time` would see every break as a
glitch shorter than its debounce. So the demo gives both the same :class:`SimClock`, a
:class:`telemetry.clock.ScaledClock` (``speed`` times faster than real time; real
sleeps are divided by ``speed``) that can also be *stepped*: during a walk,
:func:`firmware.door_walks.play` still sleeps the scaled real time between two edges,
but then sets the clock to exactly the planned time. The sensor timestamps edges (and
its ticker judges timeouts) on that stepped time, so a thread switch, a busy CPU or a
sleep that overshoots never shortens or stretches a beam break as the sensor sees it,
and counts are the same at any speed from 1 to 60 (and beyond). Outside walks the clock
runs freely; it never goes back.

Any clock with ``time()`` and ``sleep()`` works here (or a plain function for the
time); one that cannot be stepped (a bare ``ScaledClock``) times walks by real sleeps:
intervals then only ever get longer, never shorter, but at speed S a stall of J real
seconds stretches a walk by S x J simulated ones, and a walk stretched past
``max_pass_ms`` is not counted. Tests use :class:`ManualClock`, which stands still until
slept on, so they take no real time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from telemetry.clock import Clock as WallClock
from telemetry.clock import ScaledClock


def clock_time(clock: Any) -> float:
    """The time on ``clock``: an object with ``time()`` (:mod:`telemetry.clock`) or a
    function returning epoch seconds."""
    return clock.time() if hasattr(clock, "time") else clock()


def clock_sleep_until(clock: Any, t: float, stop: threading.Event | None = None) -> bool:
    """Sleep on ``clock`` until its time ``t``, in real slices of at most 0.1 s so that
    ``stop`` is noticed; returns False (early) if ``stop`` gets set."""
    if hasattr(clock, "sleep_until"):
        return clock.sleep_until(t, stop)
    speed = getattr(clock, "speed", 1.0) or 1.0
    while True:
        if stop is not None and stop.is_set():
            return False
        remaining = t - clock_time(clock)
        if remaining <= 0:
            return True
        clock.sleep(min(remaining, 0.1 * speed))


class ManualClock(WallClock):
    """A clock that stands still until :meth:`sleep` or :meth:`advance` moves it.

    ``speed`` is 0: it does not move with real time. Callable, like :func:`time.time`.
    Thread-safe."""

    speed = 0.0

    def __init__(self, start: float = 0.0):
        self._t = float(start)
        self._lock = threading.Lock()

    def time(self) -> float:
        return self._t

    __call__ = time

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._t += max(0.0, seconds)

    advance = sleep

    def sleep_until(self, t: float, stop: threading.Event | None = None) -> bool:
        """Move to ``t`` (if later); returns False if ``stop`` is set."""
        if stop is not None and stop.is_set():
            return False
        with self._lock:
            self._t = max(self._t, t)
        return True

    def stepping(self) -> AbstractContextManager[None]:
        return nullcontext()


class SimClock(ScaledClock):
    """:class:`telemetry.clock.ScaledClock` (simulated time ``speed`` times faster than
    real time) that a visitor driver can *step*.

    Inside ``with clock.stepping():`` the clock holds still, except that each
    :meth:`sleep` by the stepping thread moves it by exactly the seconds asked for
    (after sleeping ``seconds / speed`` real ones); ``speed`` reads 0 meanwhile. When
    the block ends the clock runs on from the real scaled time, never going back past
    the last stepped time (except by :meth:`jump`). Callable, like :func:`time.time`.

    ``ceiling`` (e.g. :func:`time.time`): the clock never runs ahead of it. When the
    simulated time catches up with the ceiling, the clock goes on at the ceiling's pace
    (speed 1), so a demo that started in the past at ``--speed 60`` never stamps an event
    "from the future", however long it runs; a stepped walk is held at the ceiling too.
    """

    # Real sleeps shorter than this are skipped (contact bounce at 60x: microseconds).
    MIN_REAL_SLEEP = 0.0002

    def __init__(
        self,
        start: datetime | float | None = None,
        speed: float = 1.0,
        *,
        ceiling: Callable[[], float] | None = None,
    ):
        self._ceiling = ceiling
        self.caught_up = False
        if start is None:
            start = time.time()
        if not isinstance(start, datetime):
            start = datetime.fromtimestamp(start, UTC)
        self._held: float | None = None
        self._stepper: threading.Thread | None = None
        self._floor = float("-inf")
        super().__init__(start, speed)

    @property  # type: ignore[override]
    def speed(self) -> float:
        """Simulated seconds per real second right now (0 while stepping)."""
        return 0.0 if self._held is not None else self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        self._speed = float(value)

    @property
    def factor(self) -> float:
        """The configured speed factor, stepping or not."""
        return self._speed

    def real_seconds(self, sim_seconds: float) -> float:
        return sim_seconds / self._speed

    def at(self, sim: datetime) -> float:
        """Real seconds from now until simulated time ``sim`` (may be negative)."""
        return (sim.timestamp() - self.time()) / self._speed

    def _scaled(self) -> float:
        mono = time.monotonic()
        t = self._start + self._offset + (mono - self._t0) * self._speed
        if self._ceiling is not None:
            top = self._ceiling()
            if t >= top:  # caught up: from now on, the ceiling's own pace
                self._start, self._offset, self._t0 = top, 0.0, mono
                if self._speed != 1.0:
                    self._speed = 1.0
                    self.caught_up = True
                return top
        return t

    def time(self) -> float:
        with self._lock:
            if self._held is not None:
                if self._ceiling is not None:
                    return min(self._held, self._ceiling())
                return self._held
            t = max(self._floor, self._scaled())
            return t if self._ceiling is None else min(t, self._ceiling())

    __call__ = time

    def jump(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds
            self._floor = float("-inf")

    def _stepping_here(self) -> bool:
        return self._held is not None and self._stepper is threading.current_thread()

    def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        real = seconds / self._speed
        if real >= self.MIN_REAL_SLEEP:
            time.sleep(real)
        if self._stepping_here():
            with self._lock:
                self._held += seconds

    def sleep_until(self, t: float, stop: threading.Event | None = None) -> bool:
        """Sleep until simulated time ``t`` in real slices of at most 0.1 s; returns
        False (early) if ``stop`` gets set."""
        while True:
            if stop is not None and stop.is_set():
                return False
            remaining = t - self.time()
            if remaining <= 0:
                return True
            if self._stepping_here():
                self.sleep(remaining)
                return True
            time.sleep(max(self.MIN_REAL_SLEEP, min(0.1, remaining / self._speed)))

    @contextmanager
    def stepping(self) -> Iterator[None]:
        with self._lock:
            nested = self._held is not None
            if nested and self._stepper is not threading.current_thread():
                raise RuntimeError("SimClock is already being stepped by another thread")
            if not nested:
                self._held = max(self._floor, self._scaled())
                self._stepper = threading.current_thread()
        if nested:  # already stepping in this thread: the outer block ends it
            yield
            return
        try:
            yield
        finally:
            with self._lock:
                self._floor = max(self._floor, self._held)
                self._held = None
                self._stepper = None


def stepping(clock: Any) -> AbstractContextManager[None]:
    """``clock.stepping()`` where the clock can be stepped, else a no-op."""
    step = getattr(clock, "stepping", None)
    return step() if step is not None else nullcontext()
