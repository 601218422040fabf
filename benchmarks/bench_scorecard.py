"""Benchmark: the scorecard page (/staff/scorecard) on three years of data + 50,000 contacts.

    .venv/bin/python benchmarks/bench_scorecard.py [--fresh] [--reps N]

Data: three years (2023-2025) of one van from the test generator
(``tests/telemetry/yeardata.py``, four times the visitors), 50,000 counselling contacts
spread over those years (about a quarter with referrals), 60 stored versions of the tour
plan (with cancellations and delays), and targets for every figure plus two custom ones
with monthly actuals. The daily job's aggregates are in place up to a week before "now"
(2025-11-12 16:00), as on a box whose job has not run for a week. Cached in
``build/bench/`` (``--fresh`` rebuilds it).

Measured through Flask's test client with a logged-in session (guard, figures, 17 SVG
charts, template), p50/p95/p99 over ``--reps`` runs (goal p95 <= 300 ms):

- the current year (2025, figures up to now) on the box, and the past year 2024; the
  trend charts are kept once drawn (same figures, same SVG), so also the current year
  with every chart drawn anew (the first view after new data);
- the hub's view of all vans for 2025 (the same data);
- beside them, from the same run: ``telemetry.scorecard.collect()`` alone (the figures
  without the web layer) and the existing report page ``/staff/reports/summary?p=year``
  (the baseline a staff member already waits for).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "telemetry"))
sys.path.insert(0, str(ROOT))

import yeardata  # noqa: E402

from telemetry import targets  # noqa: E402
from telemetry.config import default_config  # noqa: E402
from telemetry.plan import Plan, PlanException, save_plan  # noqa: E402
from telemetry.retention import fold  # noqa: E402
from telemetry.store import Store  # noqa: E402

VERSION = 1
BUILD = ROOT / "build" / "bench"
DB = BUILD / f"scorecard-3y-v{VERSION}.db"
VAN = "jungregio-1"
YEARS = (2023, 2024, 2025)
CONTACTS = 50_000
NOW = datetime(2025, 11, 12, 15, 0, tzinfo=UTC)
CFG = default_config()


def _contacts(rng: random.Random, days: list[date]) -> list[tuple]:
    munis = [*CFG.reports["municipalities"], "outside"]
    partners = [p["code"] for p in CFG.contacts["partners"]]
    out = []
    for _ in range(CONTACTS):
        day = rng.choice(days)
        hour = rng.randint(9, 19)
        ts = datetime(day.year, day.month, day.day, hour, tzinfo=CFG.tz).timestamp()
        refs = rng.sample(partners, rng.choice([0, 0, 0, 1, 1, 2]))
        out.append(
            (
                str(uuid.uuid4()),
                VAN,
                ts,
                day.isoformat(),
                hour,
                rng.choice(["kurz", "beratung"]),
                json.dumps(["job"]),
                "15-30",
                "18-20",
                rng.choice(munis),
                int(rng.random() < 0.4),
                1 if rng.random() < 0.85 else rng.randint(2, 12),
                json.dumps(refs),
                "geklaert",
            )
        )
    return out


def build(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    for f in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        f.unlink(missing_ok=True)
    store = Store(tmp, van=VAN, tz=CFG.timezone)
    store._conn.execute("PRAGMA synchronous = OFF")
    t0 = time.perf_counter()
    days: list[date] = []
    for i, year in enumerate(YEARS):
        y = yeardata.generate(year, seed=200 + i, van=VAN, visitor_scale=4.0)
        yeardata.bulk_insert(store, y)
        days += sorted({date.fromisoformat(v.day) for v in y.visits})
        print(
            f"  {year}: {len(y.footfall):,} footfall, {len(y.checkin_events):,} check-ins,"
            f" {len(y.visits):,} stop visits ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    rng = random.Random(7)
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO contacts (id, van, ts, day, hour, kind, topics, duration, age_group,"
            " municipality, first_contact, persons, referrals, outcome)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            _contacts(rng, days),
        )
    plan = Plan.from_tour(VAN, CFG.tour)
    start = datetime(2022, 12, 20, tzinfo=UTC)
    for k in range(60):  # a version every ~18 days, each with a cancel and a delay
        when = start + timedelta(days=18 * k)
        d = when.date() + timedelta(days=3)
        s = next((s for s in plan.stops if d.weekday() in s.weekdays), None)
        p = plan
        if s is not None:
            p = p.with_exception(PlanException(str(uuid.uuid4()), "cancel", d, stop_key=s.key))
            p = p.with_exception(
                PlanException(
                    str(uuid.uuid4()), "delay", d + timedelta(days=7), stop_key=s.key, delay_min=20
                )
            )
        plan = replace(p.pruned(d - timedelta(days=90)), updated=when.timestamp())
        save_plan(store, plan)
    print(f"  contacts and plans ({time.perf_counter() - t0:.0f} s); folding ...", flush=True)
    fold(store, NOW, before=(NOW - timedelta(days=7)).date().isoformat())
    print(f"  folded ({time.perf_counter() - t0:.0f} s)", flush=True)
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    tmp.rename(path)


def set_targets(store: Store, van: str) -> None:
    t = time.time()
    for year in (2024, 2025):
        for code, v in (
            ("contacts", 18000),
            ("first-contacts", 7000),
            ("rural-share", 75),
            ("municipalities", 7),
            ("served", 95),
            ("hours", 1000),
            ("punctuality", 90),
            ("referrals-jobcenter", 1800),
            ("referrals-schule", 1500),
        ):
            targets.save(store, targets.Target(year, van, code, v), user="bench", now=t)
        for name in ("Elternabende", "Beschwerden"):
            tg = targets.Target(
                year,
                van,
                targets.custom_code(name, ()),
                12,
                label=name,
                lower_better=name == "Beschwerden",
            )
            targets.save(store, tg, user="bench", now=t)
            targets.save_actuals(
                store, year, van, tg.code, {m: 1.0 for m in range(1, 11)}, user="bench", now=t
            )


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def timed(fn, reps: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def line(name: str, xs: list[float]) -> str:
    return (
        f"{name:<44} p50 {statistics.median(xs):7.1f} ms  p95 {pct(xs, 0.95):7.1f} ms"
        f"  p99 {pct(xs, 0.99):7.1f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", action="store_true", help="rebuild the database")
    ap.add_argument("--reps", type=int, default=30, help="runs per page (default 30)")
    args = ap.parse_args()
    BUILD.mkdir(parents=True, exist_ok=True)
    if args.fresh or not DB.exists():
        print(f"building {DB} ...", flush=True)
        build(DB)

    from werkzeug.security import generate_password_hash

    from kiosk import create_app
    from kiosk.auth import set_user
    from telemetry import scorecard
    from telemetry.clock import ScaledClock

    tmp = Path(tempfile.mkdtemp(prefix="bench-scorecard-"))
    passwd = tmp / "staff.passwd"
    set_user(passwd, "bench", generate_password_hash("bench-passwort", method="scrypt"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}})
    results = {}
    for mode in ("box", "hub"):
        copy = tmp / f"{mode}.db"
        shutil.copy(DB, copy)
        store = Store(copy, van=VAN if mode == "box" else "", tz=cfg.timezone)
        set_targets(store, VAN if mode == "box" else "")
        app = create_app({"TESTING": True}, config=cfg, store=store, mode=mode)
        app.extensions["vanbox_clock"] = ScaledClock(NOW)
        c = app.test_client()
        page = c.get("/staff/login").text
        tok = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        c.post(
            "/staff/login", data={"name": "bench", "password": "bench-passwort", "csrf_token": tok}
        )

        def get(url: str, c=c) -> None:
            r = c.get(url)
            assert r.status_code == 200, (url, r.status_code)

        if mode == "box":
            conn = store.reader()
            counts = {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("footfall", "checkins", "stop_visits", "contacts", "plans")
            }
            print("data:", ", ".join(f"{k} {v:,}" for k, v in counts.items()))
            until = NOW.astimezone(cfg.tz)
            results["collect() 2025 (figures only)"] = timed(
                lambda conn=conn, until=until: scorecard.collect(
                    conn,
                    2025,
                    van=VAN,
                    until=until,
                    tz=cfg.tz,
                    town=cfg.reports["town"],
                    municipalities=cfg.reports["municipalities"],
                    fallback={VAN: Plan.from_tour(VAN, cfg.tour)},
                ),
                args.reps,
            )
            results["baseline: /staff/reports/summary?p=year"] = timed(
                lambda: get("/staff/reports/summary?p=year&d=2025-01-01"), args.reps
            )
            results["box /staff/scorecard?year=2025"] = timed(
                lambda: get("/staff/scorecard?year=2025"), args.reps
            )
            from kiosk import staff_scorecard

            def cold(url: str) -> None:
                staff_scorecard._SVG.clear()
                get(url)

            results["box ...?year=2025, every chart drawn anew"] = timed(
                lambda: cold("/staff/scorecard?year=2025"), args.reps
            )
            results["box /staff/scorecard?year=2024"] = timed(
                lambda: get("/staff/scorecard?year=2024"), args.reps
            )
        else:
            results["hub /staff/scorecard?year=2025 (all vans)"] = timed(
                lambda: get("/staff/scorecard?year=2025"), args.reps
            )
        store.close()
    shutil.rmtree(tmp, ignore_errors=True)
    for name, xs in results.items():
        print(line(name, xs))
    base = statistics.median(results["baseline: /staff/reports/summary?p=year"])
    worst = max(pct(xs, 0.95) for k, xs in results.items() if "?year=" in k)
    print(
        f"scorecard page median / baseline median: "
        f"{statistics.median(results['box /staff/scorecard?year=2025']) / base:.2f}"
    )
    print(
        f"worst scorecard p95: {worst:.1f} ms (goal <= 300 ms): "
        f"{'ok' if worst <= 300 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
