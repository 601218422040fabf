"""Benchmark: the tour plan's costs, for the default plan and for a full one.

    .venv/bin/python benchmarks/bench_plan.py [-n 30]

A "full" plan has the default 8 weekly stops and 1000 exceptions (the limit): 600
one-off visits with long names and reasons, 300 cancels, 100 delays. Measured, median
of ``n`` runs each:

- parse + validate the JSON (what the box does with every retained plan it receives,
  and what every page does with a stored plan that is not cached yet);
- ``visits_between`` over a year (the timetable and the iCalendar feeds);
- ``next_visits`` (the kiosk's start page, the public map);
- one staff change saved through ``change_plan`` on disk (read, edit, validate, insert);
- the retained payload's size.

The baseline is the default plan's parse + validate, measured in the same run; every
line prints its ratio to it. Goals: a full plan parses and validates in < 0.25 s here
(about 1 s on a Pi 3), a staff change on a full plan is saved in < 0.5 s, and the
payload stays below telemetry.plan.MAX_JSON (1 MiB).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from telemetry.config import default_config
from telemetry.plan import (
    MAX_JSON,
    Plan,
    PlanException,
    PlanStop,
    change_plan,
    new_id,
    save_plan,
)
from telemetry.plan_json import plan_from_json
from telemetry.store import Store

VAN = "jungregio-1"
START = date(2027, 1, 4)  # a Monday, in the future: nothing is pruned as past


def full_plan() -> Plan:
    cfg = default_config()
    base = Plan.from_tour(VAN, cfg.tour)
    exc: list[PlanException] = []
    for i in range(600):
        d = START + timedelta(days=i)
        place = PlanStop(f"sonder-{i}", f"Sondertermin Nummer {i} " + "x" * 50, "Peine",
                         52.32, 10.23)  # fmt: skip
        exc.append(PlanException(new_id(), "extra", d, stop=place, start=dtime(6),
                                 end=dtime(7), reason="r" * 200, version=1))  # fmt: skip
    mondays = [START + timedelta(weeks=w) for w in range(100)]
    for i in range(300):
        day = mondays[i % 100] + timedelta(weeks=100 * (i // 100))
        exc.append(PlanException(new_id(), "cancel", day, stop_key="edemissen-schulzentrum",
                                 reason="Krankheit", version=1))  # fmt: skip
    for i in range(100):
        exc.append(PlanException(new_id(), "delay", mondays[i], stop_key="peine-marktplatz",
                                 delay_min=30, reason="Stau", version=1))  # fmt: skip
    return Plan(VAN, 1, time.time(), base.stops, tuple(exc)).validate()


def median_s(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    n = ap.parse_args().n
    cfg = default_config()
    small = Plan.from_tour(VAN, cfg.tour).changed(now=time.time())
    big = full_plan()
    small_json, big_json = small.to_json(), big.to_json()
    now = datetime(2027, 6, 1, 8, tzinfo=UTC)
    base = median_s(lambda: plan_from_json(small_json), n)
    rows = [("parse+validate, default plan (baseline)", base)]
    rows.append(("parse+validate, full plan", median_s(lambda: plan_from_json(big_json), n)))
    year = (date(2027, 1, 1), date(2027, 12, 31))
    for label, p in (("default", small), ("full", big)):
        rows.append((f"visits_between one year, {label} plan",
                     median_s(lambda p=p: p.visits_between(*year, cfg.tz), n)))  # fmt: skip
        rows.append((f"next_visits(3), {label} plan",
                     median_s(lambda p=p: p.next_visits(now, cfg.tz, 3), n)))  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        st = Store(Path(d) / "hub.db", tz=cfg.timezone)
        save_plan(st, big)

        def one_change() -> None:  # a new reason for a cancel: replaces it, 1000 stay
            ex = PlanException(new_id(), "cancel", START, stop_key="edemissen-schulzentrum",
                               reason=f"Grund {time.monotonic()}")  # fmt: skip
            change_plan(st, VAN, lambda p: p.with_exception(ex), fallback_tour=cfg.tour)

        rows.append(
            ("staff change saved (change_plan), full plan", median_s(one_change, min(n, 10)))
        )
        st.close()
    print(f"{'what':<48} {'median':>10} {'x baseline':>11}")
    for label, s in rows:
        print(f"{label:<48} {s * 1000:>8.2f} ms {s / base:>10.1f}x")
    print(f"payload: default plan {len(small_json.encode())} bytes, full plan "
          f"{len(big_json.encode())} bytes (limit {MAX_JSON})")  # fmt: skip


if __name__ == "__main__":
    main()
