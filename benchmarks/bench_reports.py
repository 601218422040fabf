"""Benchmark: report latency and a year's CSV export on three years of data.

    .venv/bin/python benchmarks/bench_reports.py [--fresh] [--reps N]

Data: three years (2023-2025) of one van from the test generator
(``tests/telemetry/yeardata.py``) made busier: about 2 million positions, 1 million
footfall events and 200,000 check-ins, bulk-inserted in one transaction per year. The
database is cached in ``build/bench/`` between runs (``--fresh`` rebuilds it).

Measured, each beside a baseline from the same run (``SELECT count(*) FROM positions``,
a full scan of the biggest table):

- every report for the year 2025, p50/p95/p99 over ``--reps`` runs (goal p95 <= 300 ms),
  with the daily job's aggregates in place and the last 7 days not folded yet (the job
  has not run for a week: those days come from the raw rows);
- a year's CSV export of every report, written with the csv module (goal <= 2 s);
- for information: the daily job's first fold of three years; the retention (400 days)
  and the reports of a pruned year (aggregates only); the reports with nothing folded
  (the job never ran), from raw rows only.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "telemetry"))

import yeardata  # noqa: E402

from telemetry import reports  # noqa: E402
from telemetry.retention import fold, prune  # noqa: E402
from telemetry.store import Store  # noqa: E402

VERSION = 1
BUILD = ROOT / "build" / "bench"
RAW_DB = BUILD / f"reports-3y-v{VERSION}.db"
VAN = "jungregio-1"
YEARS = (2023, 2024, 2025)
PARAMS = dict(drive_interval_s=1.2, park_interval_s=30.0, visitor_scale=32.0)


def build(path: Path) -> dict:
    """Generate and bulk-insert three years; returns the row counts."""
    tmp = path.with_suffix(".tmp")
    for f in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        f.unlink(missing_ok=True)
    store = Store(tmp, van=VAN)
    store._conn.execute("PRAGMA synchronous = OFF")
    t0 = time.perf_counter()
    for i, year in enumerate(YEARS):
        y = yeardata.generate(year, seed=100 + i, van=VAN, **PARAMS)
        yeardata.bulk_insert(store, y)
        print(
            f"  {year}: {len(y.positions):,} positions, {len(y.footfall):,} footfall,"
            f" {len(y.checkin_events):,} check-ins ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        del y
    counts = {t: store.count(t) for t in ("positions", "footfall", "checkins", "stop_visits")}
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    tmp.rename(path)
    path.with_suffix(".json").write_text(json.dumps(counts))
    return counts


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def timed(fn, reps: int) -> list[float]:
    """Milliseconds per call; the reports' memory of raw days is cleared before each call,
    so every call computes as a first page view after a write does."""
    fn()  # warm SQLite's page cache
    out = []
    for _ in range(reps):
        reports.clear_cache()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def export_csv(conn, p) -> int:
    """Every report of the period as CSV (one section per report); returns bytes."""
    buf = io.StringIO()
    w = csv.writer(buf)
    for name in reports.REPORTS:
        t = reports.report(conn, name, p)
        w.writerow([t.title, p.label])
        w.writerow(t.columns)
        w.writerows(["" if c is None else c for c in r] for r in t.rows)
        w.writerow([])
    return len(buf.getvalue().encode("utf-8"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached database")
    ap.add_argument("--reps", type=int, default=20, help="runs per report (default 20)")
    args = ap.parse_args()
    BUILD.mkdir(parents=True, exist_ok=True)
    if args.fresh or not RAW_DB.exists():
        print(f"building {RAW_DB} (once; cached for later runs)", flush=True)
        t = time.perf_counter()
        counts = build(RAW_DB)
        print(f"  built in {time.perf_counter() - t:.0f} s")
    counts = json.loads(RAW_DB.with_suffix(".json").read_text())
    print(
        f"data: {counts['positions']:,} positions, {counts['footfall']:,} footfall events,"
        f" {counts['checkins']:,} check-ins, {counts['stop_visits']:,} stop visits,"
        f" {RAW_DB.stat().st_size / 1e6:.0f} MB"
    )

    # The daily job on a copy: fold everything before 2026-01-01 ...
    folded_db = BUILD / f"reports-3y-v{VERSION}-folded.db"
    if args.fresh or not folded_db.exists():
        shutil.copy(RAW_DB, folded_db)
        store = Store(folded_db, van=VAN)
        t = time.perf_counter()
        n = fold(store, datetime(2026, 1, 1, 12, tzinfo=UTC))
        print(f"daily job, first run: folded {n} days in {time.perf_counter() - t:.1f} s")
        store.close()
    # ... and let the last week of 2025 be stale again (as if the job had not run since).
    store = Store(folded_db, van=VAN)
    with store.transaction() as c:
        c.execute("UPDATE agg_days SET state = 0 WHERE day >= '2025-12-25'")
    conn = store.reader()
    year = reports.period("year", date(2025, 6, 1))

    base = timed(lambda: conn.execute("SELECT count(*) FROM positions").fetchone(), args.reps)
    b50 = statistics.median(base)
    print(
        f"\nbaseline SELECT count(*) FROM positions: p50 {b50:.1f} ms, p95 {pct(base, 0.95):.1f} ms"
    )
    print(f"\nreports for the year {year.label} (aggregates + 7 raw days), {args.reps} runs each:")
    print(
        f"{'report':16} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p95/baseline':>13}"
        "  goal p95 <= 300 ms"
    )
    worst = 0.0
    for name in reports.REPORTS:
        xs = timed(lambda n=name: reports.report(conn, n, year), args.reps)
        p95 = pct(xs, 0.95)
        worst = max(worst, p95)
        print(
            f"{name:16} {statistics.median(xs):8.1f} {p95:8.1f} {pct(xs, 0.99):8.1f}"
            f" {p95 / b50:12.2f}x  {'ok' if p95 <= 300 else 'MISSED'}"
        )
    xs = timed(lambda: reports.annual(conn, 2025, budget_eur=180_000.0), args.reps)
    print(f"{'annual()':16} {statistics.median(xs):8.1f} {pct(xs, 0.95):8.1f} {pct(xs, 0.99):8.1f}")
    size = export_csv(conn, year)
    xs = timed(lambda: export_csv(conn, year), max(3, args.reps // 4))
    print(
        f"\nCSV export of every report for {year.label}: p50 {statistics.median(xs):.0f} ms,"
        f" max {max(xs):.0f} ms ({size:,} bytes; {statistics.median(xs) / b50:.1f}x baseline)"
        f"  goal <= 2000 ms: {'ok' if max(xs) <= 2000 else 'MISSED'}"
    )
    print(f"worst report p95: {worst:.1f} ms  {'ok' if worst <= 300 else 'MISSED'}")
    store.close()

    # For information: after the retention (400 days) has deleted 2023 and most of 2024.
    pruned_db = BUILD / f"reports-3y-v{VERSION}-pruned.db"
    if args.fresh or not pruned_db.exists():
        shutil.copy(folded_db, pruned_db)
        store = Store(pruned_db, van=VAN)
        t = time.perf_counter()
        r = prune(store, 400, datetime(2026, 1, 1, 12, tzinfo=UTC))
        print(f"\nretention job (400 days): {r.summary()} in {time.perf_counter() - t:.1f} s")
        store._conn.execute("VACUUM")
        store.close()
    store = Store(pruned_db, van=VAN)
    conn = store.reader()
    y2024 = reports.period("year", date(2024, 1, 1))
    xs = []
    for name in reports.REPORTS:
        xs += timed(lambda n=name: reports.report(conn, n, y2024), max(5, args.reps // 2))
    print(
        f"\nfor information, the pruned year 2024 (aggregates only), all reports:"
        f" p50 {statistics.median(xs):.1f} ms, p95 {pct(xs, 0.95):.1f} ms"
    )
    store.close()

    # For information: nothing folded, every figure from the raw rows.
    store = Store(RAW_DB, van=VAN)
    conn = store.reader()
    reps = max(3, args.reps // 5)
    print(f"\nfor information, nothing folded (raw rows only), {reps} runs each:")
    for name in ("summary", "quality"):
        xs = timed(lambda n=name: reports.report(conn, n, year), reps)
        print(f"{name:16} p50 {statistics.median(xs):8.1f} ms  max {max(xs):8.1f} ms")
    xs = timed(lambda: export_csv(conn, year), 2)
    print(
        f"CSV export of every report: p50 {statistics.median(xs):.0f} ms (raw days computed once)"
    )
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
