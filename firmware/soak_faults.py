"""The fault schedule of ``vanbox soak`` (:mod:`firmware.soak`): which faults strike on
which simulated day and when, drawn from the seed, so that a run can be repeated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAULT_KINDS = (
    "broker_outage",
    "power_cut",
    "gps_unplug",
    "nmea_garbage",
    "chatter",
    "beam_blocked",
    "disk_full",
    "clock_jump",
)


@dataclass(frozen=True)
class Fault:
    day: int
    at: float  # simulated seconds after the day's start
    kind: str
    duration: float = 0.0  # simulated seconds


def schedule(days: int, seed: int, day_s: float, stops: list[tuple[float, float]]) -> list[Fault]:
    """The faults of the whole run, drawn from ``seed``. ``stops`` are the (start, end)
    offsets of the stops within a day; some faults are placed inside them."""
    rng = random.Random(seed)
    out: list[Fault] = []
    blocked_day = rng.randrange(days)
    disk_day = rng.randrange(days)
    jump_day = rng.randrange(days)
    for d in range(days):
        out.append(Fault(d, rng.uniform(0.05, 0.3) * day_s, "broker_outage", rng.uniform(5, 120)))
        out.append(
            Fault(d, rng.uniform(0.35, 0.6) * day_s, "broker_outage", rng.uniform(1800, 7200))
        )
        for _ in range(2):
            out.append(Fault(d, rng.uniform(0.05, 0.9) * day_s, "power_cut"))
        out.append(Fault(d, rng.uniform(0.1, 0.9) * day_s, "gps_unplug", rng.uniform(30, 600)))
        for _ in range(3):
            out.append(Fault(d, rng.uniform(0.02, 0.95) * day_s, "nmea_garbage"))
        a, b = stops[rng.randrange(len(stops))]
        out.append(Fault(d, a, "chatter", b - a))
        if d == blocked_day:
            a, b = stops[rng.randrange(len(stops))]
            out.append(Fault(d, a - 60, "beam_blocked", 3600))
        if d == disk_day:
            out.append(Fault(d, rng.uniform(0.2, 0.7) * day_s, "disk_full", rng.uniform(900, 2400)))
        if d == jump_day:
            out.append(
                Fault(d, rng.uniform(0.2, 0.6) * day_s, "clock_jump", rng.uniform(600, 1800))
            )
    return sorted(out, key=lambda f: (f.day, f.at))
