"""Footfall at the van's door: debounce, counting and direction, and the gpiozero sensors.

Two layers:

* Pure state machines over ``(timestamp, level)`` inputs, with no gpiozero inside:
  :class:`Debouncer`, :class:`LineMonitor` (debounce plus "blocked" detection on one
  input), :class:`SingleCounter` (``door``: counts openings; ``beam``: counts passes) and
  :class:`PairCounter` (``beam-pair``: direction from the order of the breaks, occupancy).
  Timestamps are float seconds since the epoch (UTC); the machines never read a clock,
  so they are tested with made-up timestamps. ``level`` is always the *logical* level:
  ``True`` means "beam broken" or "door open", whatever the wiring.
* Small gpiozero devices that feed them from real (or mock) pins: :class:`DoorSensor`,
  :class:`BeamSensor`, :class:`BeamPairSensor`, and :func:`open_sensor`, which builds the
  one named by the ``[sensor]`` section of the config. gpiozero is imported only when a
  sensor is opened.

Electrical convention (BCM pin numbers; ``pull_up=True``, the default and the usual
wiring, uses the Pi's internal pull-up resistor):

=========  ==================================================  ===========  ===========
kind       wiring with ``pull_up=True``                        line HIGH    line LOW
=========  ==================================================  ===========  ===========
door       reed contact between GPIO and GND, closed while     door open    door shut
           the door is shut (magnet beside it)
beam       IR receiver's open-collector output between GPIO    beam clear   beam broken
           and GND; it conducts while the beam is broken (as
           the common 3 mm/5 mm IR break-beam modules do)
=========  ==================================================  ===========  ===========

With ``pull_up=False`` the Pi pulls the line down and the contact or output switches it
to 3V3, so both columns swap (door shut = HIGH, beam broken = HIGH). A receiver that
conducts while it *sees* its beam ("light-on" output) needs ``invert=True``.

A broken wire to a door contact reads as "door open" and turns into a ``sensor_blocked``
event after ``blocked_after_s``; a broken wire to a beam receiver reads as "beam clear"
and shows only as missing counts.

gpiozero's mock pins ignore ``bounce_time``, and real pins' bounce handling only
suppresses edges after the first one; so ``bounce_time`` is ``None`` and the
:class:`Debouncer` here does the work, the same on the Pi as in the tests.

Time: the sensors read their clock when an edge arrives, corrected by gpiozero's own
edge timestamp when the callback runs late. ``clock`` is a function returning epoch
seconds (default :func:`time.time`, or a bound ``clock.time``) or an object with a
``time()`` method (:mod:`telemetry.clock`). A simulated van gives them the same
accelerated clock its visitors sleep on (see :mod:`firmware.visitors`). A clock (or the
owner of the bound method) may say how fast it runs in ``speed``: simulated seconds per
real second; 1.0 if absent, 0.0 for a clock that only moves when told to.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any, NamedTuple

from telemetry.errors import VanboxError
from telemetry.events import Footfall, from_epoch

log = logging.getLogger(__name__)

Clock = Callable[[], float] | Any  # a function like time.time, or an object with .time()
OnEvent = Callable[[Footfall], None]


class SensorError(VanboxError):
    """The footfall sensor cannot be opened (bad kind, pin in use, no GPIO)."""


# Times within a microsecond are the same time (epoch floats resolve ~0.2 us today).
EPS = 1e-6


# ---------------------------------------------------------------------------------------
# Pure state machines
# ---------------------------------------------------------------------------------------


class Debouncer:
    """Turns raw edges into confirmed level changes: a level counts once it has been
    stable for ``debounce_ms``.

    ::

        raw        ____/\\/‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾\\/\\______________/\\_________
        level      _______/‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾\\_____________________
                          t1     :               t2     :       (ignored: shorter
                          |<-d-->|               |<-d-->|        than d)
                          confirmed at t1 + d    confirmed at t2 + d

    Edges inside the debounce window ``d`` after another edge restart the window and
    are otherwise ignored. A confirmed change is reported with the time of the raw edge
    that started the stable level (``t1``, ``t2``), so durations measured between
    confirmed changes are exact; it becomes *known* only ``d`` later, at the next
    :meth:`feed` or :meth:`advance` at or after ``t + d``. With ``debounce_ms=0`` every
    raw change is confirmed at once.
    """

    def __init__(self, debounce_ms: float = 30, *, start: float = 0.0, level: bool = False):
        if debounce_ms < 0:
            raise ValueError("debounce_ms must be >= 0")
        self.debounce_s = debounce_ms / 1000.0
        self.level = bool(level)  # confirmed level
        self.raw = bool(level)  # last raw level seen
        self.raw_since = start  # time of the last raw edge

    @property
    def pending(self) -> bool:
        """A raw level differs from the confirmed one and may still be confirmed."""
        return self.raw != self.level

    def deadline(self) -> float | None:
        """When the pending level would be confirmed if no edge comes first."""
        return self.raw_since + self.debounce_s if self.pending else None

    def stable(self, now: float) -> bool:
        """The line has sat at its confirmed level, without any edge, for ``d``."""
        return not self.pending and now - self.raw_since >= self.debounce_s - EPS

    def advance(self, now: float) -> list[tuple[float, bool]]:
        """Confirm what has been stable long enough by ``now``; returns ``[(t, level)]``."""
        if self.pending and now - self.raw_since >= self.debounce_s - EPS:
            self.level = self.raw
            return [(self.raw_since, self.level)]
        return []

    def feed(self, t: float, level: bool) -> list[tuple[float, bool]]:
        """A raw edge (or a repeated level, which is ignored) at time ``t``."""
        out = self.advance(t)
        if bool(level) != self.raw:
            self.raw = bool(level)
            self.raw_since = t
            out += self.advance(t)  # only confirms at once when debounce_ms == 0
        return out


class LineEvent(NamedTuple):
    """What a :class:`LineMonitor` reports: ``what`` is ``level``, ``blocked`` or ``ok``."""

    t: float
    what: str
    level: bool = False
    line: str = ""


class LineMonitor:
    """One input: a :class:`Debouncer` plus detection of a line that will not rest.

    The line is *idle* when it has been inactive (beam clear, door shut) and free of
    edges for the debounce time. It becomes *busy* at the first edge out of idle. If it
    has not come back to idle within ``blocked_after_s`` of that edge (a door held open,
    a box in the beam, a chattering contact), it is *blocked*: a ``blocked`` event with
    the time the limit ran out, and an ``ok`` event with the time it came back to rest.

    ::

        raw     ___/‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾\\_____________
                   t0                                 |        t1
                   |<------- blocked_after_s -------->|
                                                      blocked  ok (at t1, known at t1 + d)

    The blocked decision is taken only once it cannot change any more (at
    ``t0 + blocked_after_s + d``), so the result does not depend on when ticks come.
    """

    def __init__(
        self,
        debounce_ms: float = 30,
        blocked_after_s: float = 60,
        *,
        start: float = 0.0,
        level: bool = False,
        name: str = "",
    ):
        if blocked_after_s <= 0:
            raise ValueError("blocked_after_s must be > 0")
        self.name = name
        self.debouncer = Debouncer(debounce_ms, start=start, level=level)
        self.blocked_after_s = float(blocked_after_s)
        self.blocked = False
        self.busy_since: float | None = start if level else None

    @property
    def level(self) -> bool:
        return self.debouncer.level

    def deadline(self) -> float | None:
        """The next time at which :meth:`advance` may report something without an edge."""
        deb = self.debouncer
        times = [deb.deadline()]
        if self.busy_since is not None:
            if not deb.raw:
                times.append(deb.raw_since + deb.debounce_s)  # may come back to rest
            if not self.blocked:
                times.append(self.busy_since + self.blocked_after_s + deb.debounce_s)
        return min((t for t in times if t is not None), default=None)

    def advance(self, now: float) -> list[LineEvent]:
        deb = self.debouncer
        out = [LineEvent(t, "level", lvl, self.name) for t, lvl in deb.advance(now)]
        if self.busy_since is None:
            return out
        idle_at = deb.raw_since if (not deb.level and deb.stable(now)) else None
        limit = self.busy_since + self.blocked_after_s
        if not self.blocked:
            if idle_at is not None and idle_at <= limit + EPS:
                self.busy_since = None
                return out
            if idle_at is not None or now >= limit + deb.debounce_s - EPS:
                self.blocked = True
                out.append(LineEvent(limit, "blocked", True, self.name))
        if self.blocked and idle_at is not None:
            self.blocked = False
            self.busy_since = None
            out.append(LineEvent(idle_at, "ok", False, self.name))
        return out

    def feed(self, t: float, level: bool) -> list[LineEvent]:
        out = self.advance(t)
        if bool(level) != self.debouncer.raw:
            if self.busy_since is None:
                self.busy_since = t
            out += [
                LineEvent(ts, "level", lvl, self.name) for ts, lvl in self.debouncer.feed(t, level)
            ]
            out += self.advance(t)
        return out


@dataclass
class _Today:
    """Per local day: counts by kind and occupancy; reset at local midnight."""

    day: date
    counts: dict[str, int] = field(default_factory=lambda: {"in": 0, "out": 0, "pass": 0})
    occupancy: int = 0


class _Counter:
    """What every counter shares: clock discipline, today's totals, event building."""

    sensor = "door"

    def __init__(self, *, tz: tzinfo, start: float):
        self.tz = tz
        self.last_t = start
        self.today = _Today(self._day(start))
        self.blocked = False
        self.discarded = 0  # passes that started but did not count

    def _day(self, t: float) -> date:
        return datetime.fromtimestamp(t, self.tz).date()

    def _clamp(self, t: float) -> float:
        """Inputs never go back in time (a clock stepped back is held at the last time)."""
        if t < self.last_t:
            t = self.last_t
        self.last_t = t
        return t

    def _roll(self, t: float) -> None:
        day = self._day(t)
        if day != self.today.day:
            self.today = _Today(day)

    @property
    def occupancy(self) -> int:
        return self.today.occupancy

    @property
    def counts(self) -> dict[str, int]:
        """Today's counts by kind (``in``, ``out``, ``pass``), a copy."""
        return dict(self.today.counts)

    def _event(self, t: float, kind: str) -> Footfall:
        self._roll(t)
        if kind in self.today.counts:
            self.today.counts[kind] += 1
            if kind == "in":
                self.today.occupancy += 1
            elif kind == "out":
                self.today.occupancy = max(0, self.today.occupancy - 1)
        return Footfall(
            time=from_epoch(t), kind=kind, sensor=self.sensor, occupancy=self.today.occupancy
        )


class SingleCounter(_Counter):
    """One input: a door contact (``sensor="door"``) or one beam (``sensor="beam"``).

    A door counts each opening, at the time it opened::

        door open  ____/‾‾‾‾‾‾\\____________/‾‾‾‾‾‾‾‾‾‾\\_________
                       ^ pass              ^ pass

    A beam counts each break that clears again, at the time it cleared::

        beam broken ___/‾‾‾‾‾‾\\____________/‾‾‾‾‾‾‾‾‾‾\\_________
                              ^ pass                  ^ pass

    A door held open, or a beam broken, for longer than ``blocked_after_s`` gives
    ``sensor_blocked`` and pauses counting (a beam break that ends blocked is not a
    pass); ``sensor_ok`` follows when the line is back at rest::

        level       ___/‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾\\_______/‾‾\\____
                       |<-- blocked_after_s -->|    |       ^ counts again
                                sensor_blocked ^    ^ sensor_ok
    """

    def __init__(
        self,
        sensor: str = "door",
        *,
        debounce_ms: float = 30,
        blocked_after_s: float = 60,
        tz: tzinfo = UTC,
        start: float = 0.0,
        level: bool = False,
    ):
        if sensor not in ("door", "beam"):
            raise ValueError(f"SingleCounter counts a door or a beam, not {sensor!r}")
        super().__init__(tz=tz, start=start)
        self.sensor = sensor
        self.line = LineMonitor(debounce_ms, blocked_after_s, start=start, level=level)
        self._break_start: float | None = None

    def feed(self, t: float, level: bool) -> list[Footfall]:
        """A raw edge at ``t``: ``level`` True = door open / beam broken."""
        return self._handle(self.line.feed(self._clamp(t), level))

    def tick(self, now: float) -> list[Footfall]:
        """Let time pass without an edge: confirms levels, detects blocking."""
        now = self._clamp(now)
        out = self._handle(self.line.advance(now))
        self._roll(now)
        return out

    def deadline(self) -> float | None:
        return self.line.deadline()

    def _handle(self, events: list[LineEvent]) -> list[Footfall]:
        out: list[Footfall] = []
        for ev in sorted(events, key=lambda e: e.t):
            if ev.what == "blocked":
                self.blocked = True
                if self._break_start is not None:
                    self.discarded += 1
                self._break_start = None
                out.append(self._event(ev.t, "sensor_blocked"))
            elif ev.what == "ok":
                self.blocked = False
                out.append(self._event(ev.t, "sensor_ok"))
            elif self.blocked:
                continue
            elif self.sensor == "door":
                if ev.level:
                    out.append(self._event(ev.t, "pass"))
            elif ev.level:
                self._break_start = ev.t
            elif self._break_start is not None:
                self._break_start = None
                out.append(self._event(ev.t, "pass"))
        return out


@dataclass
class _Pass:
    start: float
    first: str
    broken: set[str] = field(default_factory=set)
    void: bool = False  # too slow: runs out without counting


class PairCounter(_Counter):
    """Two beams across the doorway, ``a`` outside and ``b`` inside: in, out, occupancy.

    A pass starts when either beam breaks while both are clear and both are in use
    (not blocked). It ends when both beams are clear again after both have been
    broken. Its direction is the order of the breaks: it entered on ``a`` and left on
    ``b`` = ``in``; entered on ``b`` and left on ``a`` = ``out``. Counted at the time
    the last beam cleared::

        in      beam a  ___/‾‾‾‾‾‾‾‾‾\\_______________     (overlapping breaks)
                beam b  _______/‾‾‾‾‾‾‾‾‾‾\\__________
                           |<-- max_pass -->^ "in"

        in      beam a  ___/‾‾‾‾\\____________________     (a gap between the beams
                beam b  ____________/‾‾‾‾\\___________      is fine)
                                             ^ "in"

        out     beam a  _______/‾‾‾‾‾‾‾‾‾‾\\__________
                beam b  ___/‾‾‾‾‾‾‾‾‾\\_______________
                                              ^ "out"

        turned  beam a  ___/‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾\\_________     (in on a, back out on a:
        back    beam b  _______/‾‾‾‾\\________________      not counted)

    A pass must complete within ``max_pass_ms`` of its first break; one that takes
    longer, or breaks only one beam, is discarded (counted in :attr:`discarded`, no
    event). Occupancy goes up on ``in`` and down on ``out`` but never below 0, and
    starts again at 0 at local midnight in ``tz`` (as do today's counts). Either beam
    blocked longer than ``blocked_after_s`` gives one ``sensor_blocked`` and pauses
    counting until both are back at rest (``sensor_ok``).
    """

    sensor = "beam-pair"

    def __init__(
        self,
        *,
        debounce_ms: float = 30,
        max_pass_ms: float = 2000,
        blocked_after_s: float = 60,
        tz: tzinfo = UTC,
        start: float = 0.0,
        a: bool = False,
        b: bool = False,
    ):
        super().__init__(tz=tz, start=start)
        self.max_pass_s = max_pass_ms / 1000.0
        self.debounce_s = debounce_ms / 1000.0
        self.lines = {
            n: LineMonitor(debounce_ms, blocked_after_s, start=start, level=lvl, name=n)
            for n, lvl in (("a", a), ("b", b))
        }
        self.levels = {"a": bool(a), "b": bool(b)}
        self._blocked_lines: set[str] = set()
        # A beam broken at start belongs to no pass: wait until both are clear.
        self._pass: _Pass | None = _Pass(start, "a", void=True) if (a or b) else None

    def feed(self, t: float, line: str, level: bool) -> list[Footfall]:
        """A raw edge on beam ``line`` (``"a"`` or ``"b"``) at ``t``; True = broken."""
        if line not in self.lines:
            raise ValueError(f"beam {line!r}: use 'a' or 'b'")
        t = self._clamp(t)
        other = "b" if line == "a" else "a"
        events = self.lines[other].advance(t) + self.lines[line].feed(t, level)
        return self._handle(events)

    def feed_a(self, t: float, level: bool) -> list[Footfall]:
        return self.feed(t, "a", level)

    def feed_b(self, t: float, level: bool) -> list[Footfall]:
        return self.feed(t, "b", level)

    def tick(self, now: float) -> list[Footfall]:
        """Let time pass without an edge: confirms levels, ends stale passes, detects
        blocking, resets at midnight."""
        now = self._clamp(now)
        out = self._handle(self.lines["a"].advance(now) + self.lines["b"].advance(now))
        # Every level change up to now - d is known by now: a pass still open then and
        # older than max_pass can no longer complete in time.
        self._expire(now - self.debounce_s, known_until=True)
        self._roll(now)
        return out

    def deadline(self) -> float | None:
        times = [line.deadline() for line in self.lines.values()]
        if self._pass is not None and not self._pass.void:
            times.append(self._pass.start + self.max_pass_s + self.debounce_s)
        return min((t for t in times if t is not None), default=None)

    def _expire(self, t: float, *, known_until: bool = False) -> None:
        """End the open pass if it can no longer complete within max_pass: at an event
        at ``t``, when ``t`` is past the limit; at a tick, when everything up to ``t``
        is known (``known_until``) and ``t`` has reached the limit."""
        p = self._pass
        if p is None or p.void:
            return
        limit = p.start + self.max_pass_s
        if (t < limit - EPS) if known_until else (t <= limit + EPS):
            return
        self.discarded += 1
        if any(self.levels.values()):
            p.void = True  # wait for both beams to clear, then start afresh
        else:
            self._pass = None

    def _handle(self, events: list[LineEvent]) -> list[Footfall]:
        out: list[Footfall] = []
        # Both lines' events in time order (stable: a line's own order is kept).
        for ev in sorted(events, key=lambda e: e.t):
            name = ev.line
            self._expire(ev.t)
            if ev.what == "blocked":
                if not self._blocked_lines:
                    self.blocked = True
                    if self._pass is not None and not self._pass.void:
                        self.discarded += 1
                    self._pass = None
                    out.append(self._event(ev.t, "sensor_blocked"))
                self._blocked_lines.add(name)
            elif ev.what == "ok":
                self._blocked_lines.discard(name)
                if not self._blocked_lines:
                    self.blocked = False
                    self._pass = None
                    out.append(self._event(ev.t, "sensor_ok"))
            else:
                self.levels[name] = ev.level
                if self._blocked_lines:
                    continue
                if ev.level:
                    self._break(ev.t, name)
                else:
                    kind = self._clear(name)
                    if kind:
                        out.append(self._event(ev.t, kind))
        return out

    def _break(self, t: float, name: str) -> None:
        if self._pass is None:
            self._pass = _Pass(t, name)
        self._pass.broken.add(name)

    def _clear(self, name: str) -> str | None:
        p = self._pass
        if p is None or any(self.levels.values()):
            return None
        if p.void:
            self._pass = None
            return None
        if len(p.broken) < 2:
            return None  # one beam so far: the other may still come within max_pass
        self._pass = None
        if p.first == "a" and name == "b":
            return "in"
        if p.first == "b" and name == "a":
            return "out"
        self.discarded += 1  # turned back
        return None


# ---------------------------------------------------------------------------------------
# gpiozero devices
# ---------------------------------------------------------------------------------------

# For each sensor kind: is the logical level (open / broken) the level at which the
# pull resistor holds the line, i.e. gpiozero's *inactive* state? (See the table above.)
_ACTIVE_AT_REST = {"door": True, "beam": False, "beam-pair": False}


def active_is_high(kind: str, *, pull_up: bool = True, invert: bool = False) -> bool:
    """The electrical level of "door open" / "beam broken" for a sensor kind and wiring:
    True = HIGH. ``active_is_high("door")`` is True, ``active_is_high("beam")`` False."""
    if kind not in _ACTIVE_AT_REST:
        raise SensorError(f"unknown sensor kind {kind!r}; use door, beam or beam-pair")
    # gpiozero's active level is LOW with a pull-up, HIGH with a pull-down.
    gz_active_high = not pull_up
    return gz_active_high ^ _ACTIVE_AT_REST[kind] ^ bool(invert)


def _open_input(pin: int | str, pull_up: bool, pin_factory: Any) -> Any:
    from gpiozero import DigitalInputDevice, GPIOZeroError

    try:
        return DigitalInputDevice(pin, pull_up=pull_up, bounce_time=None, pin_factory=pin_factory)
    except GPIOZeroError as e:
        raise SensorError(
            f"cannot open GPIO pin {pin} for the footfall sensor: {e} "
            "(without GPIO hardware, set GPIOZERO_PIN_FACTORY=mock)"
        ) from e


class FootfallSensor:
    """Base of the gpiozero sensors: a counter fed from one or two input pins.

    Edges from gpiozero's callbacks and a background ticker (for debounce confirmation,
    pass timeouts and blocked detection without edges) feed the counter under one lock;
    every :class:`~telemetry.events.Footfall` it produces goes to ``on_event`` in order,
    on whichever thread produced it. ``close()`` stops the ticker and frees the pins.
    """

    kind = "door"

    def __init__(
        self,
        pins: dict[str, int | str],
        *,
        pull_up: bool,
        invert: bool,
        clock: Clock,
        on_event: OnEvent | None,
        tick_interval: float,
        pin_factory: Any,
        make_counter: Callable[[float, dict[str, bool]], SingleCounter | PairCounter],
    ):
        self.pull_up = bool(pull_up)
        self.invert = bool(invert)
        self.clock = clock
        # A function giving the time, and the object that may say how fast it runs
        # (``speed``): the clock itself, or the owner of a bound ``clock.time``.
        self._time: Callable[[], float] = clock if callable(clock) else clock.time
        self._clock_owner = getattr(self._time, "__self__", clock)
        self.on_event = on_event
        self.tick_interval = float(tick_interval)
        self._rest_active = _ACTIVE_AT_REST[self.kind] ^ self.invert
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._ticker: threading.Thread | None = None
        self.inputs: dict[str, Any] = {}
        try:
            for name, pin in pins.items():
                self.inputs[name] = _open_input(pin, self.pull_up, pin_factory)
            with self._lock:
                levels = {n: self._logical(d.is_active) for n, d in self.inputs.items()}
                self.counter = make_counter(self._time(), levels)
                for name, dev in self.inputs.items():
                    dev.when_activated = self._callback(name, dev, True)
                    dev.when_deactivated = self._callback(name, dev, False)
        except BaseException:
            self._close_inputs()
            raise
        self._ticker = threading.Thread(
            target=self._run_ticker, name=f"footfall-{self.kind}", daemon=True
        )
        self._ticker.start()

    # -- levels -------------------------------------------------------------------------

    def _logical(self, gz_active: bool) -> bool:
        return bool(gz_active) ^ self._rest_active

    @property
    def value(self) -> tuple[bool, ...]:
        """The raw logical level of each input now (True = open / broken), undebounced."""
        return tuple(self._logical(d.is_active) for d in self.inputs.values())

    @property
    def is_active(self) -> bool:
        return any(self.value)

    # -- what the counter knows -----------------------------------------------------------

    @property
    def occupancy(self) -> int:
        with self._lock:
            return self.counter.occupancy

    @property
    def counts(self) -> dict[str, int]:
        """Today's counts by kind: ``{"in": .., "out": .., "pass": ..}``."""
        with self._lock:
            return self.counter.counts

    @property
    def blocked(self) -> bool:
        with self._lock:
            return self.counter.blocked

    @property
    def discarded(self) -> int:
        with self._lock:
            return self.counter.discarded

    # -- feeding --------------------------------------------------------------------------

    def _speed(self) -> float:
        speed = getattr(self._clock_owner, "speed", 1.0)
        return float(speed) if isinstance(speed, int | float) else 1.0

    def _now(self, latency: float | None = None) -> float:
        t = self._time()
        if latency is not None and 0.0 < latency < 1.0:
            # gpiozero's own timestamp of the edge says the callback ran late.
            t -= latency * self._speed()
        return t

    def _callback(self, name: str, dev: Any, gz_active: bool) -> Callable[[], None]:
        level = self._logical(gz_active)

        def edge() -> None:
            latency = dev.active_time if gz_active else dev.inactive_time
            with self._lock:
                if self._closed:
                    return
                t = self._now(latency)
                self._emit(self._feed(t, name, level))
                self._wake.notify_all()

        return edge

    def _feed(self, t: float, name: str, level: bool) -> list[Footfall]:
        raise NotImplementedError

    def tick(self) -> list[Footfall]:
        """Advance the counter to ``clock()`` now; emits and returns what that produced.

        The background ticker calls this; tests may call it to be deterministic."""
        with self._lock:
            if self._closed:
                return []
            events = self.counter.tick(self._time())
            self._emit(events)
            return events

    def _emit(self, events: list[Footfall]) -> None:
        if self.on_event is None:
            return
        for ev in events:
            try:
                self.on_event(ev)
            except Exception:
                log.exception("footfall: the event handler failed on %s", ev)

    def _run_ticker(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                wait = self.tick_interval
                deadline = self.counter.deadline()
                speed = self._speed()
                if deadline is not None and speed > 0:
                    wait = min(wait, max(0.0, (deadline - self._time()) / speed))
                self._wake.wait(wait)
                if self._closed:
                    return
            try:
                self.tick()
            except Exception:  # never let the ticker die silently
                log.exception("footfall: tick failed")

    # -- life cycle -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the ticker and release the pins. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
        t = self._ticker
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)
        self._close_inputs()

    def _close_inputs(self) -> None:
        for dev in self.inputs.values():
            try:
                dev.close()
            except Exception:
                log.exception("footfall: closing %s failed", dev)

    def __enter__(self) -> FootfallSensor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        pins = ", ".join(f"{n}={d.pin}" for n, d in self.inputs.items()) if self.inputs else ""
        state = "closed" if self._closed else f"counts={self.counts}"
        return f"<{type(self).__name__} {pins} {state}>"


class _SingleSensor(FootfallSensor):
    def __init__(
        self,
        pin: int | str,
        *,
        pull_up: bool = True,
        debounce_ms: float = 30,
        blocked_after_s: float = 60,
        tz: tzinfo = UTC,
        clock: Clock = time.time,
        on_event: OnEvent | None = None,
        invert: bool = False,
        tick_interval: float = 0.05,
        pin_factory: Any = None,
    ):
        def make(start: float, levels: dict[str, bool]) -> SingleCounter:
            return SingleCounter(
                self.kind,
                debounce_ms=debounce_ms,
                blocked_after_s=blocked_after_s,
                tz=tz,
                start=start,
                level=levels["line"],
            )

        super().__init__(
            {"line": pin},
            pull_up=pull_up,
            invert=invert,
            clock=clock,
            on_event=on_event,
            tick_interval=tick_interval,
            pin_factory=pin_factory,
            make_counter=make,
        )

    @property
    def pin(self) -> Any:
        return self.inputs["line"].pin

    def _feed(self, t: float, name: str, level: bool) -> list[Footfall]:
        return self.counter.feed(t, level)


class DoorSensor(_SingleSensor):
    """A reed contact on the door; every opening is one ``pass``.

    ``DoorSensor(pin, *, pull_up=True, debounce_ms=30, blocked_after_s=60, tz=UTC,
    clock=time.time, on_event=None, invert=False, tick_interval=0.05, pin_factory=None)``

    With ``pull_up=True`` the contact goes between the pin and GND, closed while the
    door is shut: LOW = shut, HIGH = open. See :class:`SingleCounter` for the timing.
    """

    kind = "door"

    @property
    def is_open(self) -> bool:
        """The door is open now (raw level, not debounced)."""
        return self.value[0]


class BeamSensor(_SingleSensor):
    """One IR beam across the doorway; every break that clears again is one ``pass``.

    Same signature as :class:`DoorSensor`. With ``pull_up=True`` the receiver's
    open-collector output goes to the pin and pulls it LOW while the beam is broken.
    """

    kind = "beam"

    @property
    def is_broken(self) -> bool:
        """The beam is broken now (raw level, not debounced)."""
        return self.value[0]


class BeamPairSensor(FootfallSensor):
    """Two IR beams: ``pin_a`` outside, ``pin_b`` inside; counts ``in`` and ``out``.

    ``BeamPairSensor(pin_a, pin_b, *, pull_up=True, debounce_ms=30, max_pass_ms=2000,
    blocked_after_s=60, tz=UTC, clock=time.time, on_event=None, invert=False,
    tick_interval=0.05, pin_factory=None)``. Wiring as :class:`BeamSensor`, twice; the
    logic is :class:`PairCounter`.
    """

    kind = "beam-pair"

    def __init__(
        self,
        pin_a: int | str,
        pin_b: int | str,
        *,
        pull_up: bool = True,
        debounce_ms: float = 30,
        max_pass_ms: float = 2000,
        blocked_after_s: float = 60,
        tz: tzinfo = UTC,
        clock: Clock = time.time,
        on_event: OnEvent | None = None,
        invert: bool = False,
        tick_interval: float = 0.05,
        pin_factory: Any = None,
    ):
        if str(pin_a) == str(pin_b):
            raise SensorError(f"the two beams need two different pins, not {pin_a} twice")

        def make(start: float, levels: dict[str, bool]) -> PairCounter:
            return PairCounter(
                debounce_ms=debounce_ms,
                max_pass_ms=max_pass_ms,
                blocked_after_s=blocked_after_s,
                tz=tz,
                start=start,
                a=levels["a"],
                b=levels["b"],
            )

        super().__init__(
            {"a": pin_a, "b": pin_b},
            pull_up=pull_up,
            invert=invert,
            clock=clock,
            on_event=on_event,
            tick_interval=tick_interval,
            pin_factory=pin_factory,
            make_counter=make,
        )

    @property
    def a(self) -> Any:
        """The outer beam's gpiozero input device."""
        return self.inputs["a"]

    @property
    def b(self) -> Any:
        """The inner beam's gpiozero input device."""
        return self.inputs["b"]

    def _feed(self, t: float, name: str, level: bool) -> list[Footfall]:
        return self.counter.feed(t, name, level)


def open_sensor(
    sensor_cfg: dict[str, Any],
    *,
    on_event: OnEvent,
    tz: tzinfo,
    pin_factory: Any = None,
    clock: Clock = time.time,
) -> FootfallSensor | None:
    """Open the sensor described by the config's ``[sensor]`` section.

    Keys: ``kind`` (door, beam, beam-pair, none), ``pin``, ``pin_b`` (beam-pair only),
    ``pull_up``, ``debounce_ms``, ``max_pass_ms`` (beam-pair only), ``blocked_after_s``;
    optional ``invert`` (default false). ``kind = "none"`` returns None. Raises
    :class:`SensorError` when the pins cannot be opened.
    """
    kind = sensor_cfg.get("kind", "none")
    if kind == "none":
        return None
    for key in ("pin", "pin_b") if kind == "beam-pair" else ("pin",):
        if key not in sensor_cfg:
            raise SensorError(f"sensor.{key} is missing: set the BCM GPIO number of the input")
    common: dict[str, Any] = dict(
        pull_up=bool(sensor_cfg.get("pull_up", True)),
        debounce_ms=sensor_cfg.get("debounce_ms", 30),
        blocked_after_s=sensor_cfg.get("blocked_after_s", 60),
        tz=tz,
        clock=clock,
        on_event=on_event,
        invert=bool(sensor_cfg.get("invert", False)),
        pin_factory=pin_factory,
    )
    if kind == "door":
        return DoorSensor(sensor_cfg["pin"], **common)
    if kind == "beam":
        return BeamSensor(sensor_cfg["pin"], **common)
    if kind == "beam-pair":
        return BeamPairSensor(
            sensor_cfg["pin"],
            sensor_cfg["pin_b"],
            max_pass_ms=sensor_cfg.get("max_pass_ms", 2000),
            **common,
        )
    raise SensorError(
        f"sensor.kind = {kind!r}: unknown sensor kind; use door, beam, beam-pair or none"
    )
