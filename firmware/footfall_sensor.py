"""The base of the gpiozero footfall sensors: :class:`FootfallSensor` feeds a counter of
:mod:`firmware.footfall_logic` from one or two input pins (:mod:`firmware.footfall_wiring`
opens them), with a background ticker, under one lock.

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
from collections.abc import Callable
from typing import Any

from firmware.footfall_logic import PairCounter, SingleCounter
from firmware.footfall_wiring import ACTIVE_AT_REST, open_input
from telemetry.events import Footfall

log = logging.getLogger("firmware.footfall")

Clock = Callable[[], float] | Any  # a function like time.time, or an object with .time()
OnEvent = Callable[[Footfall], None]


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
        self._rest_active = ACTIVE_AT_REST[self.kind] ^ self.invert
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._ticker: threading.Thread | None = None
        self.inputs: dict[str, Any] = {}
        try:
            for name, pin in pins.items():
                self.inputs[name] = open_input(pin, self.pull_up, pin_factory)
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
