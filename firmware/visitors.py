"""Simulated visitors for the demo van and the tests: people walking through the door
sensor on gpiozero's mock pins, and when they arrive at a stop.

* One person's walk (:func:`walk_edges`, :func:`play`, :func:`walk`,
  :class:`PinDriver`) is planned and played by :mod:`firmware.door_walks`, on the clock
  the sensor and the visitors share (:class:`SimClock`, :class:`ManualClock`,
  :mod:`firmware.sim_clock`); those names are importable from here too.
* :class:`VisitorStream` draws arrivals at a stop as a Poisson process (a few to ~20
  people per hour), how long each stays, and friends arriving together;
  :func:`crossings` queues them at the door and :func:`run_stop` plays a whole stop
  and returns what really happened, to compare with what the sensor counted.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .door_walks import BOUNCE_GAP_S as BOUNCE_GAP_S
from .door_walks import BREAK_S as BREAK_S
from .door_walks import DOOR_OPEN_S as DOOR_OPEN_S
from .door_walks import OFFSET_S as OFFSET_S
from .door_walks import Edge as Edge
from .door_walks import PinDriver as PinDriver
from .door_walks import play as play
from .door_walks import walk as walk
from .door_walks import walk_duration as walk_duration
from .door_walks import walk_edges as walk_edges
from .sim_clock import ManualClock as ManualClock
from .sim_clock import SimClock as SimClock
from .sim_clock import clock_sleep_until as clock_sleep_until
from .sim_clock import clock_time as clock_time
from .sim_clock import stepping as stepping


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
