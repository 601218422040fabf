"""One person's walk through the door sensor, on gpiozero's mock pins.

:func:`walk_edges` plans a walk as timed edges (beam breaks of 0.3-0.8 s, 0.1-0.4 s
from one beam to the next, optional contact bounce); :func:`play` drives them on mock
pins through a :class:`PinDriver`, which knows the wiring convention of
:mod:`firmware.footfall`. Where the clock can be stepped (:mod:`firmware.sim_clock`),
:func:`play` steps it so the sensor sees the planned durations at any speed. The same
plans feed the pure state machines in tests.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, NamedTuple

from firmware.footfall import active_is_high

from .sim_clock import stepping


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
    the clock can be, see :mod:`firmware.sim_clock`, so the sensor sees the planned
    durations)."""
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
