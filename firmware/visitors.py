"""Simulated visitors for the demo van and the tests: people walking through the door
sensor on gpiozero's mock pins, and when they arrive at a stop.

* :func:`walk_edges` plans one person's walk as timed edges (beam breaks of 0.3-0.8 s,
  0.1-0.4 s from one beam to the next, optional contact bounce); :func:`play` drives
  them on mock pins through a :class:`PinDriver`, which knows the wiring convention of
  :mod:`firmware.footfall`. The same plans feed the pure state machines in tests.
* :class:`VisitorStream` draws arrivals at a stop as a Poisson process (a few to ~20
  people per hour), how long each stays, and friends arriving together;
  :func:`run_stop` plays a whole stop and returns what really happened, to compare
  with what the sensor counted.

Time, and running faster than real time
---------------------------------------
The sensor and the visitors must share one clock. At ``--speed 60`` a 0.3 s beam break
lasts 5 ms of real time: a sensor on :func:`time.time` would see every break as a
glitch shorter than its debounce. So the demo gives both the same :class:`SimClock`, a
:class:`telemetry.clock.ScaledClock` (``speed`` times faster than real time; real
sleeps are divided by ``speed``) that can also be *stepped*: during a walk, :func:`play`
still sleeps the scaled real time between two edges, but then sets the clock to exactly
the planned time. The sensor timestamps edges (and its ticker judges timeouts) on that
stepped time, so a thread switch, a busy CPU or a sleep that overshoots never shortens
or stretches a beam break as the sensor sees it, and counts are the same at any speed
from 1 to 60 (and beyond). Outside walks the clock runs freely; it never goes back.

Any clock with ``time()`` and ``sleep()`` works here (or a plain function for the
time); one that cannot be stepped (a bare ``ScaledClock``) times walks by real sleeps:
intervals then only ever get longer, never shorter, but at speed S a stall of J real
seconds stretches a walk by S x J simulated ones, and a walk stretched past
``max_pass_ms`` is not counted. Tests use :class:`ManualClock`, which stands still until
slept on, so they take no real time.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from firmware.footfall import active_is_high
from telemetry.clock import Clock as WallClock
from telemetry.clock import ScaledClock

# ---------------------------------------------------------------------------------------
# Clocks
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# One person's walk
# ---------------------------------------------------------------------------------------


class Edge(NamedTuple):
    """A planned change: at ``t`` seconds after the walk starts, ``line`` (``a``/``b``;
    ``a`` for single sensors) becomes ``active`` (broken / open) or not."""

    t: float
    line: str
    active: bool


BREAK_S = (0.3, 0.8)  # how long a person breaks one beam
OFFSET_S = (0.1, 0.4)  # from breaking the first beam to breaking the second
DOOR_OPEN_S = (1.0, 4.0)  # how long the door stands open for one person
BOUNCE_GAP_S = (0.0005, 0.003)  # between two toggles of a bouncing contact


def _bounced(t: float, line: str, active: bool, n: int, rng: random.Random) -> list[Edge]:
    """``n`` spurious toggles before an edge settles at ``t`` (contact bounce)."""
    edges = []
    tt = t
    for i in range(2 * n):
        edges.append(Edge(tt, line, active if i % 2 == 0 else not active))
        tt += rng.uniform(*BOUNCE_GAP_S)
    edges.append(Edge(tt, line, active))
    return edges


def walk_edges(
    kind: str,
    direction: str = "in",
    rng: random.Random | None = None,
    *,
    break_s: float | None = None,
    offset_s: float | None = None,
    open_s: float | None = None,
    bounce: int = 0,
) -> list[Edge]:
    """Plan one person going ``in`` or ``out`` through a sensor of ``kind``.

    ``beam-pair``: going in breaks ``a`` then, ``offset_s`` later, ``b``; each stays
    broken about ``break_s`` (drawn from :data:`BREAK_S` and :data:`OFFSET_S` when not
    given), and the second beam clears last.
    ``beam``: one break. ``door``: open for ``open_s``, then shut. ``bounce`` adds that
    many spurious toggle pairs, 0.5-3 ms apart, at every edge. Sorted by time.
    """
    rng = rng or random.Random()
    if direction not in ("in", "out"):
        raise ValueError(f"direction {direction!r}: use 'in' or 'out'")
    if kind == "door":
        hold = open_s if open_s is not None else rng.uniform(*DOOR_OPEN_S)
        plan = [(0.0, "a", True), (hold, "a", False)]
    elif kind == "beam":
        hold = break_s if break_s is not None else rng.uniform(*BREAK_S)
        plan = [(0.0, "a", True), (hold, "a", False)]
    elif kind == "beam-pair":
        first, second = ("a", "b") if direction == "in" else ("b", "a")
        off = offset_s if offset_s is not None else rng.uniform(*OFFSET_S)
        if break_s is not None:
            hold1 = hold2 = break_s
        else:
            # One body at one pace breaks both beams about equally long, and leaves the
            # second beam clearly after the first (by >= 0.1 s, more than any bounce).
            hold1 = rng.uniform(*BREAK_S)
            hold2 = min(BREAK_S[1], max(hold1 * rng.uniform(0.9, 1.1), hold1 + 0.1 - off))
            hold2 = max(BREAK_S[0], hold2)
        plan = [
            (0.0, first, True),
            (hold1, first, False),
            (off, second, True),
            (off + hold2, second, False),
        ]
    else:
        raise ValueError(f"unknown sensor kind {kind!r}")
    edges: list[Edge] = []
    for t, line, active in sorted(plan):
        edges += _bounced(t, line, active, bounce, rng) if bounce else [Edge(t, line, active)]
    return sorted(edges, key=lambda e: e.t)


class PinDriver:
    """Drives the mock pins of a sensor the way the real sensor would.

    ``PinDriver(kind, pin_factory, pin, pin_b=None, pull_up=True, invert=False)``;
    ``set(line, active)`` breaks/clears a beam or opens/shuts the door on the pin with
    the electrical level :mod:`firmware.footfall` expects (e.g. beam broken = LOW with
    the pull-up). Use the same ``pin_factory`` (a ``MockFactory``) as the sensor.
    """

    def __init__(
        self,
        kind: str,
        pin_factory: Any,
        pin: int | str,
        pin_b: int | str | None = None,
        *,
        pull_up: bool = True,
        invert: bool = False,
    ):
        if kind == "beam-pair" and pin_b is None:
            raise ValueError("a beam pair needs pin_b")
        self.kind = kind
        self.high_when_active = active_is_high(kind, pull_up=pull_up, invert=invert)
        self.pins = {"a": pin_factory.pin(pin)}
        if kind == "beam-pair":
            self.pins["b"] = pin_factory.pin(pin_b)

    @classmethod
    def for_config(cls, sensor_cfg: dict[str, Any], pin_factory: Any) -> PinDriver:
        """A driver for the sensor that ``footfall.open_sensor(sensor_cfg)`` opens."""
        return cls(
            sensor_cfg["kind"],
            pin_factory,
            sensor_cfg["pin"],
            sensor_cfg.get("pin_b"),
            pull_up=bool(sensor_cfg.get("pull_up", True)),
            invert=bool(sensor_cfg.get("invert", False)),
        )

    def rest(self) -> None:
        """Put every line at rest: door shut, beams clear. Call it after opening the
        sensor (a mock pin with a pull-up reads HIGH, which for a door means open), and
        let the debounce time pass on the clock before the first walk."""
        for line in self.pins:
            self.set(line, False)

    def set(self, line: str, active: bool) -> None:
        pin = self.pins[line]
        if active == self.high_when_active:
            pin.drive_high()
        else:
            pin.drive_low()


def play(edges: Sequence[Edge], driver: PinDriver, clock: Any) -> None:
    """Drive planned edges on the pins, sleeping on ``clock`` between them (stepped where
    the clock can be, see the module doc, so the sensor sees the planned durations)."""
    with stepping(clock):
        t = 0.0
        for e in sorted(edges, key=lambda e: e.t):
            if e.t > t:
                clock.sleep(e.t - t)
                t = e.t
            driver.set(e.line, e.active)


def walk(
    driver: PinDriver,
    clock: Any,
    direction: str = "in",
    rng: random.Random | None = None,
    *,
    bounce: int = 0,
) -> list[Edge]:
    """One person walks ``in`` or ``out`` through the sensor; returns the plan played."""
    edges = walk_edges(driver.kind, direction, rng, bounce=bounce)
    play(edges, driver, clock)
    return edges


def walk_duration(edges: Sequence[Edge]) -> float:
    return max((e.t for e in edges), default=0.0)


# ---------------------------------------------------------------------------------------
# Visitors at a stop
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """One visitor: arrives and leaves, in seconds after the van opened at the stop."""

    arrive: float
    leave: float


class VisitorStream:
    """Who comes to the van during a stop.

    Arrivals are a Poisson process of ``rate_per_hour`` (a few to ~20 at a village
    stop); with probability ``group_p`` an arrival is two or three friends coming in a
    few seconds apart. Each stays a log-normal time around ``stay_median_s`` (a
    counselling talk: minutes to most of an hour), but leaves before the van does.
    Iterating gives arrival offsets for ever; :meth:`visits` gives one stop's visits.
    """

    def __init__(
        self,
        rate_per_hour: float = 8.0,
        rng: random.Random | None = None,
        *,
        group_p: float = 0.25,
        stay_median_s: float = 900.0,
        stay_sigma: float = 0.6,
    ):
        if rate_per_hour <= 0:
            raise ValueError("rate_per_hour must be > 0")
        self.rate_per_hour = rate_per_hour
        self.rng = rng or random.Random()
        self.group_p = group_p
        self.stay_median_s = stay_median_s
        self.stay_sigma = stay_sigma

    def __iter__(self) -> Iterator[float]:
        """Arrival offsets in seconds, increasing, for ever."""
        t = 0.0
        while True:
            # Groups are counted as one arrival of the process, so the person rate is
            # higher than rate_per_hour by the mean group size.
            t += self.rng.expovariate(self.rate_per_hour / 3600.0)
            yield t
            if self.rng.random() < self.group_p:
                tt = t
                for _ in range(self.rng.choice((1, 2))):
                    tt += self.rng.uniform(2.0, 6.0)
                    yield tt

    def stay(self) -> float:
        return self.stay_median_s * math.exp(self.rng.gauss(0.0, self.stay_sigma))

    def visits(self, duration_s: float, *, last_leave_margin_s: float = 30.0) -> list[Visit]:
        """The visits of one stop of ``duration_s`` seconds, by arrival."""
        out = []
        closing = max(0.0, duration_s - last_leave_margin_s)
        for t in self:
            if t >= closing:
                break
            out.append(Visit(t, min(t + self.stay(), closing)))
        return out


class Crossing(NamedTuple):
    """A planned walk through the door at ``t`` seconds after the stop began."""

    t: float
    direction: str


def crossings(visits: Sequence[Visit], *, min_gap_s: float = 2.0) -> list[Crossing]:
    """Arrivals and departures in time order, at least ``min_gap_s`` apart (people
    queue at the door: a walk takes up to ~1.2 s through a beam pair, and a door stays
    open up to 4 s), so that no two walks overlap."""
    plan = sorted(
        [Crossing(v.arrive, "in") for v in visits] + [Crossing(v.leave, "out") for v in visits]
    )
    out: list[Crossing] = []
    for c in plan:
        t = c.t if not out else max(c.t, out[-1].t + min_gap_s)
        out.append(Crossing(t, c.direction))
    return out


@dataclass
class StopResult:
    """What really happened at the door (the truth to compare the counts with)."""

    walked_in: int = 0
    walked_out: int = 0

    @property
    def passes(self) -> int:
        return self.walked_in + self.walked_out


def run_stop(
    driver: PinDriver,
    clock: Any,
    plan: Sequence[Crossing],
    *,
    rng: random.Random | None = None,
    bounce: int = 0,
    stop: threading.Event | None = None,
    on_walk: Callable[[Crossing], None] | None = None,
) -> StopResult:
    """Play a stop: wait on ``clock`` for each crossing of ``plan`` (from
    :func:`crossings`) and walk it. Returns early, with what was walked so far, when
    ``stop`` is set. Times in ``plan`` count from the moment this is called."""
    rng = rng or random.Random()
    start = clock_time(clock)
    result = StopResult()
    free_at = start  # when the doorway is free for the next person
    for c in plan:
        edges = walk_edges(driver.kind, c.direction, rng, bounce=bounce)
        if not clock_sleep_until(clock, max(start + c.t, free_at), stop):
            break
        play(edges, driver, clock)
        free_at = clock_time(clock) + 0.5
        if c.direction == "in":
            result.walked_in += 1
        else:
            result.walked_out += 1
        if on_walk is not None:
            on_walk(c)
    return result
