"""Footfall state machines: debounce, blocked lines, counting and direction.

Pure logic over ``(timestamp, level)`` inputs, with no gpiozero inside:
:class:`Debouncer`, :class:`LineMonitor` (debounce plus "blocked" detection on one
input), :class:`SingleCounter` (``door``: counts openings; ``beam``: counts passes) and
:class:`PairCounter` (``beam-pair``: direction from the order of the breaks, occupancy).
Timestamps are float seconds since the epoch (UTC); the machines never read a clock,
so they are tested with made-up timestamps. ``level`` is always the *logical* level:
``True`` means "beam broken" or "door open", whatever the wiring.

The gpiozero devices that feed them from real (or mock) pins are in
:mod:`firmware.footfall`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import NamedTuple

from telemetry.events import Footfall, from_epoch

# Times within a microsecond are the same time (epoch floats resolve ~0.2 us today).
EPS = 1e-6


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
