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

The devices share their base, :class:`~firmware.footfall_sensor.FootfallSensor` (threads,
lock and clock: see :mod:`firmware.footfall_sensor` for how they read the time), and the
wiring rules of :mod:`firmware.footfall_wiring` (which level means "door open" or "beam
broken" for each kind and ``pull_up``/``invert``, and :class:`SensorError`); both are
importable from here. The table of which wire goes where is in
:mod:`firmware.footfall_wiring`.
"""

from __future__ import annotations

import time
from datetime import UTC, tzinfo
from typing import Any

from firmware.footfall_logic import Debouncer as Debouncer
from firmware.footfall_logic import LineEvent as LineEvent
from firmware.footfall_logic import LineMonitor as LineMonitor
from firmware.footfall_logic import PairCounter, SingleCounter
from firmware.footfall_sensor import Clock as Clock
from firmware.footfall_sensor import FootfallSensor as FootfallSensor
from firmware.footfall_sensor import OnEvent as OnEvent
from firmware.footfall_wiring import SensorError as SensorError
from firmware.footfall_wiring import active_is_high as active_is_high
from telemetry.events import Footfall


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
