"""Benchmark: the staff pages and exports end to end, on three years of data.

    .venv/bin/python benchmarks/bench_staff_pages.py [--reps N]

Uses the database that ``benchmarks/bench_reports.py`` builds and folds (three years of
one van: about 2 million positions, 1 million footfall events, 200,000 check-ins; run
that first), copied once to ``build/bench/staff-pages.db`` so the two never disturb each
other. Every request goes through Flask's test client with a logged-in session: the
guard, the report, the SVG chart, the template, the response.

Measured, each beside its baseline from the same run, ``telemetry.reports.report()``
alone (the Table without the web layer):

- every report page for the year 2025 and for one month, p50/p95/p99 (goal p95 <= 300 ms);
- CSV and XLSX export of every report for the year 2025 (goal <= 2 s each);
- the annual report page and the today page.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from werkzeug.security import generate_password_hash

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "build" / "bench" / "reports-3y-v1-folded.db"
COPY = ROOT / "build" / "bench" / "staff-pages.db"
VAN = "jungregio-1"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def timed(fn, reps: int) -> list[float]:
    fn()  # warm the page cache
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20, help="runs per page (default 20)")
    args = ap.parse_args()
    if not SOURCE.exists():
        print(f"{SOURCE} is missing: run benchmarks/bench_reports.py first", file=sys.stderr)
        return 1
    if not COPY.exists():
        shutil.copy(SOURCE, COPY)

    from kiosk import create_app
    from kiosk.auth import set_user
    from telemetry import reports
    from telemetry.clock import ScaledClock
    from telemetry.config import default_config
    from telemetry.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-staff-"))
    passwd = tmp / "staff.passwd"
    set_user(passwd, "bench", generate_password_hash("bench-passwort", method="scrypt"))
    cfg = default_config(
        {"staff": {"passwd_file": str(passwd)}, "reports": {"annual_budget_eur": 180_000.0}}
    )
    store = Store(COPY, van=VAN, tz=cfg.timezone)
    conn = store.reader()
    app = create_app({"TESTING": True}, config=cfg, store=store)
    app.extensions["vanbox_clock"] = ScaledClock(datetime(2025, 11, 12, 15, 0, tzinfo=UTC))
    c = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/staff/login").text).group(1)
    r = c.post(
        "/staff/login", data={"name": "bench", "password": "bench-passwort", "csrf_token": token}
    )
    assert r.status_code == 302, r.status_code
    counts = {t: store.count(t) for t in ("positions", "footfall", "checkins", "stop_visits")}
    print(
        f"data: {counts['positions']:,} positions, {counts['footfall']:,} footfall,"
        f" {counts['checkins']:,} check-ins, {counts['stop_visits']:,} stop visits"
    )

    def get(url: str) -> int:
        resp = c.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
        return len(resp.data)

    worst_page = 0.0
    for kind, day in (("year", date(2025, 6, 1)), ("month", date(2025, 11, 1))):
        p = reports.period(kind, day)
        print(f"\nreport pages for {p.label}, {args.reps} runs each (baseline: report() alone)")
        print(
            f"{'report':16} {'page p50':>9} {'p95':>7} {'p99':>7} {'report() p50':>13}"
            f" {'web layer':>10} {'page/report':>12}  goal p95 <= 300 ms"
        )
        for name in reports.REPORTS:
            base = timed(lambda n=name, p=p: reports.report(conn, n, p), args.reps)
            url = f"/staff/reports/{name}?p={kind}&d={day.isoformat()}"
            xs = timed(lambda u=url: get(u), args.reps)
            p50, p95, b50 = statistics.median(xs), pct(xs, 0.95), statistics.median(base)
            worst_page = max(worst_page, p95)
            print(
                f"{name:16} {p50:9.1f} {p95:7.1f} {pct(xs, 0.99):7.1f} {b50:13.1f}"
                f" {p50 - b50:10.1f} {p50 / b50:11.2f}x  {'ok' if p95 <= 300 else 'MISSED'}"
            )

    p = reports.period("year", date(2025, 6, 1))
    reps = max(3, args.reps // 4)
    print(f"\nexports of every report for {p.label}, {reps} runs each (goal <= 2000 ms)")
    print(f"{'report':16} {'CSV max ms':>11} {'XLSX max ms':>12} {'report() p50':>13}")
    worst_export = 0.0
    for name in reports.REPORTS:
        base = timed(lambda n=name: reports.report(conn, n, p), reps)
        q = f"p=year&d={p.start.isoformat()}"
        csv_ms = timed(lambda n=name, q=q: get(f"/staff/export/{n}.csv?{q}"), reps)
        xlsx_ms = timed(lambda n=name, q=q: get(f"/staff/export/{n}.xlsx?{q}"), reps)
        worst_export = max(worst_export, max(csv_ms), max(xlsx_ms))
        print(f"{name:16} {max(csv_ms):11.1f} {max(xlsx_ms):12.1f} {statistics.median(base):13.1f}")

    base = timed(lambda: reports.annual(conn, 2025, budget_eur=180_000.0), args.reps)
    xs = timed(lambda: get("/staff/annual?year=2025"), args.reps)
    print(
        f"\nannual page 2025: p50 {statistics.median(xs):.1f} ms, p95 {pct(xs, 0.95):.1f} ms"
        f" (annual() alone p50 {statistics.median(base):.1f} ms)"
    )
    xs = timed(lambda: get("/staff/"), args.reps)
    print(f"today page: p50 {statistics.median(xs):.1f} ms, p95 {pct(xs, 0.95):.1f} ms")
    print(
        f"\nworst report page p95: {worst_page:.1f} ms {'ok' if worst_page <= 300 else 'MISSED'};"
        f" worst export: {worst_export:.0f} ms {'ok' if worst_export <= 2000 else 'MISSED'}"
    )
    store.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
