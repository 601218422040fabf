"""Footfall at the van's door: debounce, counting and direction, and the gpiozero sensors.

Two layers:

* Pure state machines over ``(timestamp, level)`` inputs, with no gpiozero inside, in
  :mod:`firmware.footfall_logic` (and importable from here): :class:`Debouncer`,
  :class:`LineMonitor`, :class:`SingleCounter` and :class:`PairCounter`. ``level`` is
  always the *logical* level: ``True`` means "beam broken" or "door open", whatever the
  wiring.
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
:class:`~firmware.footfall_logic.Debouncer` does the work, the same on the Pi as in the
tests.

Time: the sensors read their clock when an edge arrives, corrected by gpiozero's own
edge timestamp when the callback runs late. ``clock`` is a function returning epoch
seconds (default :func:`time.time`, or a bound ``clock.time``) or an object with a
``time()`` method (:mod:`telemetry.clock`). A simulated van gives them the same
accelerated clock its visitors sleep on (see :mod:`firmware.sim_clock`). A clock (or the
owner of the bound method) may say how fast it runs in ``speed``: simulated seconds per
real second; 1.0 if absent, 0.0 for a clock that only moves when told to.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Any

from firmware.footfall_logic import Debouncer as Debouncer
from firmware.footfall_logic import LineEvent as LineEvent
from firmware.footfall_logic import LineMonitor as LineMonitor
from firmware.footfall_logic import PairCounter, SingleCounter
from telemetry.errors import VanboxError
from telemetry.events import Footfall

log = logging.getLogger(__name__)

Clock = Callable[[], float] | Any  # a function like time.time, or an object with .time()
OnEvent = Callable[[Footfall], None]


class SensorError(VanboxError):
    """The footfall sensor cannot be opened (bad kind, pin in use, no GPIO)."""


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
        debounce_ms=sensor_cfg.get("debounce_ms", 10),
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
