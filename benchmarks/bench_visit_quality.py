"""Benchmark: today's fleet page (raw days of many vans), the data quality of the stop
visits remembered per visit (telemetry/visit_quality.py) against the uncached code.

    .venv/bin/python benchmarks/bench_visit_quality.py [--vans 200 1000] [--reps 7] [--pg]

The data: one day of every van from the test generator (tests/telemetry/yeardata.py, a
fix every 30 s parked), cut at 13:00 local as the hub holds it at midday (rows after that
dropped, the visits then under way open). Timed, per fleet size, with
``raw_metrics_many`` for all the vans' day (the median of ``--reps`` runs):

- *uncached*: the code before the cache (``visit_quality_uncached``);
- *cold*: the cache cleared before each run (the first load);
- *reload*: a minute later (2 more fixes per van, 30 s apart, written before each run,
  not timed), the cache holding the previous run's states.

Each as the whole call and as the part in the visit quality, with ratios against the
uncached code in the same run; every reload's figures are checked against the uncached
code's on the same rows. ``--pg``: the same on a throwaway PostgreSQL cluster
(tests/pg.py; needs root and Debian's ``postgresql``).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "telemetry"), str(ROOT / "tests"), str(ROOT)]

import yeardata  # noqa: E402

from telemetry import raw_days, visit_quality  # noqa: E402
from telemetry.stores import open_store  # noqa: E402

DAY = date(2026, 1, 5)  # a Monday


def load(stores, n_vans: int) -> tuple[list[str], dict[str, float]]:
    """``n_vans`` vans' day cut at 13:00 local into every store; returns the vans and
    each van's last fix (the clock the reloads continue from)."""
    t0 = time.perf_counter()
    vans, last = [], {}
    for i in range(n_vans):
        van = f"van-{i:04d}"
        y = yeardata.generate(
            DAY.year, seed=500 + i, van=van, days=1, start=DAY, park_interval_s=30.0
        )
        cut = datetime(DAY.year, DAY.month, DAY.day, 13, 0, tzinfo=y.tz).timestamp()
        y.positions = [p for p in y.positions if p.time.timestamp() <= cut]
        y.footfall = [f for f in y.footfall if f.time.timestamp() <= cut]
        y.checkin_events = [c for c in y.checkin_events if c.time.timestamp() <= cut]
        visits = [
            v
            if v.left is not None and v.left.timestamp() <= cut
            else dataclasses.replace(v, left=None)
            for v in y.stop_visits()
            if v.arrived.timestamp() <= cut
        ]
        for store in stores:
            yeardata.bulk_insert(store, y, visits=visits)
        vans.append(van)
        last[van] = max((p.time.timestamp() for p in y.positions), default=cut)
    print(f"  {n_vans} vans' day into {len(stores)} store(s) in {time.perf_counter() - t0:.1f} s")
    return vans, last


class Timer:
    """Wraps raw_days.visit_quality, adding up the time spent in it."""

    def __init__(self) -> None:
        self.inner = visit_quality.visit_quality
        self.spent = 0.0

    def __call__(self, conn, q, acc, visits) -> None:
        t0 = time.perf_counter()
        self.inner(conn, q, acc, visits)
        self.spent += time.perf_counter() - t0


def _uncached(conn, q, acc, visits) -> None:
    visit_quality.visit_quality_uncached(q, acc, visits)


def timed(store, vans, inner) -> tuple[float, float, dict]:
    t = Timer()
    t.inner = inner
    raw_days.visit_quality = t
    conn = store.reader()
    t0 = time.perf_counter()
    got = raw_days.raw_metrics_many(conn, {v: [DAY.isoformat()] for v in vans})
    total = time.perf_counter() - t0
    raw_days.visit_quality = visit_quality.visit_quality
    return total, t.spent, got


def add_minute(store, last: dict[str, float], vans) -> None:
    """One more minute: 2 fixes per van, 30 s apart, after its last one."""
    rows = []
    for v in vans:
        for k in (1, 2):
            ts = last[v] + 30.0 * k
            rows.append((f"{v}-x{ts}", v, ts, DAY.isoformat()))
        last[v] += 60.0
    with store.transaction() as c:
        c.executemany(
            "INSERT INTO positions (id, van, ts, day, lat, lon, mode, suspect)"
            " VALUES (?,?,?,?,52.3,10.2,3,0)",
            rows,
        )


def med(xs: list[float]) -> str:
    return f"{1000 * statistics.median(xs):7.1f} ms"


def bench(label: str, store, vans, last, reps: int) -> None:
    old_t, old_q, cold_t, cold_q, re_t, re_q = [], [], [], [], [], []
    for _ in range(reps):
        t, qt, _ = timed(store, vans, _uncached)
        old_t.append(t)
        old_q.append(qt)
        visit_quality.clear_cache()
        t, qt, _ = timed(store, vans, visit_quality.visit_quality)
        cold_t.append(t)
        cold_q.append(qt)
    for _ in range(reps):
        add_minute(store, last, vans)
        s0 = visit_quality.stats()
        t, qt, got = timed(store, vans, visit_quality.visit_quality)
        s1 = visit_quality.stats()
        re_t.append(t)
        re_q.append(qt)
        _t, _q, want = timed(store, vans, _uncached)
        if got != want:
            raise SystemExit(f"{label}: the reload's figures differ from the uncached code's")
    ext, comp = s1["extended"] - s0["extended"], s1["computed"] - s0["computed"]
    r = statistics.median
    print(f"\n{label}, {len(vans)} vans (median of {reps}; last reload: {ext} visits continued,"
          f" {comp} computed):")  # fmt: skip
    print(f"  {'':<10} {'whole call':>10} {'quality':>10}   ratio to uncached (call, quality)")
    print(f"  {'uncached':<10} {med(old_t)} {med(old_q)}")
    for name, t, qt in (("cold", cold_t, cold_q), ("reload", re_t, re_q)):
        print(f"  {name:<10} {med(t)} {med(qt)}   {r(t) / r(old_t):.2f}x  {r(qt) / r(old_q):.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vans", type=int, nargs="+", default=[200, 1000])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--pg", action="store_true", help="also on a throwaway PostgreSQL")
    a = ap.parse_args()
    n = max(a.vans)
    with tempfile.TemporaryDirectory() as d:
        stores = [("SQLite", open_store(Path(d) / "hub.db"))]
        cluster = None
        if a.pg:
            from pg import Cluster

            cluster = Cluster(durable=True)
            stores.append(("PostgreSQL", open_store(cluster.database("bench"))))
        try:
            vans, last = load([s for _, s in stores], n)
            conn = stores[0][1].reader()
            counts = [
                conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("positions", "footfall", "stop_visits")
            ]
            print("  rows: {} positions, {} footfall, {} stop visits".format(*counts))
            for label, store in stores:
                with store.transaction() as c:
                    c.execute("ANALYZE")
                for k in sorted(a.vans):
                    bench(label, store, vans[:k], last, a.reps)
        finally:
            for _, s in stores:
                s.close()
            if cluster:
                cluster.stop()


if __name__ == "__main__":
    main()
