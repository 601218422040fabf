"""Benchmark: the annual report (figures, page, PDF, XLSX) on three years of data plus
50,000 counselling contacts.

    .venv/bin/python benchmarks/bench_annual.py [--fresh] [--reps N]

Data: three years (2023-2025) of one van from the test generator
(``tests/telemetry/yeardata.py``, made busier as in ``bench_reports.py``) and 50,000
counselling contacts with referrals (``tests/telemetry/contactdata.py``), folded by the
daily job except the last 7 days (which come from the raw rows, as after a week without
the job). The database is cached in ``build/bench/`` (``--fresh`` rebuilds it).

Measured beside a baseline from the same run (``SELECT count(*) FROM positions``), with
the reports' memory of raw days cleared before every call, for the running year 2025
seen on 31 December (so the year before is read too):

- ``telemetry.annual.annual()``: the figures of every table, suppression included;
- ``GET /staff/annual``: the whole page with its charts (goal p95 <= 300 ms);
- ``GET /staff/annual.pdf``: the PDF (goal <= 3 s); ``GET /staff/annual.xlsx``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "telemetry"))

import contactdata  # noqa: E402
import yeardata  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from kiosk import create_app  # noqa: E402
from kiosk.auth import set_user  # noqa: E402
from telemetry import reports  # noqa: E402
from telemetry.annual import annual  # noqa: E402
from telemetry.clock import ScaledClock  # noqa: E402
from telemetry.config import MUNICIPALITIES, default_config  # noqa: E402
from telemetry.plan import Plan  # noqa: E402
from telemetry.retention import fold  # noqa: E402
from telemetry.store import Store  # noqa: E402

VERSION = 1
BUILD = ROOT / "build" / "bench"
DB = BUILD / f"annual-3y-50k-v{VERSION}.db"
VAN = "jungregio-1"
YEARS = (2023, 2024, 2025)
CONTACTS = 50_000
PARAMS = dict(drive_interval_s=1.2, park_interval_s=30.0, visitor_scale=32.0)
NOW = datetime(2025, 12, 31, 15, 0, tzinfo=UTC)
FUNDERS = [("Jugendamt", 21493.17), ("Soziales", 60000.0), ("Arbeit", 48506.83)]


def build(path: Path) -> dict:
    tmp = path.with_suffix(".tmp")
    for f in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        f.unlink(missing_ok=True)
    cfg = default_config()
    store = Store(tmp, van=VAN, tz=cfg.timezone)
    store._conn.execute("PRAGMA synchronous = OFF")
    t0 = time.perf_counter()
    per_year = CONTACTS // len(YEARS)
    for i, year in enumerate(YEARS):
        y = yeardata.generate(year, seed=100 + i, van=VAN, **PARAMS)
        yeardata.bulk_insert(store, y)
        n = per_year + (CONTACTS - per_year * len(YEARS) if i == len(YEARS) - 1 else 0)
        per_visit = n / max(1, len(y.visits))
        contacts = contactdata.generate_contacts(y.visits, cfg.tz, van=VAN, seed=i,
                                                 per_visit=per_visit)  # fmt: skip
        contactdata.insert_contacts(store, contacts)
        took = time.perf_counter() - t0
        print(f"  {year}: {len(y.positions):,} positions, {len(y.footfall):,} footfall,"
              f" {len(contacts):,} contacts ({took:.0f} s)", flush=True)  # fmt: skip
        del y
    t = time.perf_counter()
    folded = fold(store, NOW, before="2025-12-24")  # the last 7 days stay raw
    print(f"  daily job: folded {folded} days in {time.perf_counter() - t:.0f} s")
    counts = {t: store.count(t) for t in ("positions", "footfall", "checkins", "stop_visits")}
    counts["contacts"] = store.reader().execute("SELECT count(*) FROM contacts").fetchone()[0]
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    tmp.rename(path)
    path.with_suffix(".json").write_text(json.dumps(counts))
    return counts


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def forget() -> None:
    """Clear what the reports remember (raw days, the public tables of a period)."""
    reports.clear_cache()
    from telemetry import report_privacy

    getattr(report_privacy, "_CACHE", []).clear()


def timed(fn, reps: int) -> list[float]:
    """Milliseconds per call; the reports' memory is cleared before each, so every call
    computes as a first page view after a write does."""
    fn()
    out = []
    for _ in range(reps):
        forget()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def client(store, tmp: Path):
    passwd = tmp / "staff.passwd"
    set_user(passwd, "bench", generate_password_hash("bench-pass-1", method="pbkdf2:sha256:1000"))
    funders = [{"name": n, "eur": e} for n, e in FUNDERS]
    cfg = default_config({"staff": {"passwd_file": str(passwd)}, "reports": {"funders": funders}})
    app = create_app({"TESTING": True}, config=cfg, store=store)
    app.extensions["vanbox_clock"] = ScaledClock(NOW, speed=1.0)
    c = app.test_client()
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/staff/login").text).group(1)
    c.post("/staff/login", data={"name": "bench", "password": "bench-pass-1", "csrf_token": tok})
    return c


def row(name: str, xs: list[float], base: float, goal: float | None) -> str:
    p95 = pct(xs, 0.95)
    verdict = "" if goal is None else ("ok" if p95 <= goal else "MISSED")
    return (f"{name:24} {statistics.median(xs):8.1f} {p95:8.1f} {p95 / base:10.1f}x"
            f"  {'' if goal is None else f'goal p95 <= {goal:.0f} ms'} {verdict}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached database")
    ap.add_argument("--reps", type=int, default=20, help="runs per measurement (default 20)")
    args = ap.parse_args()
    BUILD.mkdir(parents=True, exist_ok=True)
    if args.fresh or not DB.exists():
        print(f"building {DB} (once; cached for later runs)", flush=True)
        build(DB)
    counts = json.loads(DB.with_suffix(".json").read_text())
    print("data: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    work = BUILD / "annual-work.db"
    shutil.copy(DB, work)
    store = Store(work, van=VAN)
    conn = store.reader()
    cfg = default_config()
    plans = [Plan.from_tour(VAN, cfg.tour)]

    base = timed(lambda: conn.execute("SELECT count(*) FROM positions").fetchone(), args.reps)
    b50 = statistics.median(base)
    print(f"\nbaseline SELECT count(*) FROM positions: p50 {b50:.1f} ms")
    print(f"\n{'annual report 2025':24} {'p50 ms':>8} {'p95 ms':>8} {'p95/base':>11}")

    def figures():
        return annual(conn, 2025, now=NOW, tz=cfg.tz, van=None, funders=FUNDERS, plans=plans,
                      municipalities=list(MUNICIPALITIES), public=True)  # fmt: skip

    a = figures()
    print(f"  ({a.figures['kontakte']:,} counselling contacts, {a.figures['besuche']:,} visits,"
          f" {a.figures['checkins']:,} check-ins in 2025)")  # fmt: skip
    print(row("annual() figures", timed(figures, args.reps), b50, None))
    c = client(store, BUILD)
    for name, url, goal, reps in (
        ("GET /staff/annual", "/staff/annual?year=2025", 300.0, args.reps),
        ("GET /staff/annual.xlsx", "/staff/annual.xlsx?year=2025", None, max(5, args.reps // 2)),
        ("GET /staff/annual.pdf", "/staff/annual.pdf?year=2025", 3000.0, max(5, args.reps // 2)),
    ):
        r = c.get(url)
        assert r.status_code == 200, (url, r.status_code)
        xs = timed(lambda u=url: c.get(u).data, reps)
        print(row(name, xs, b50, goal) + f"  ({len(r.data):,} bytes)")
    store.close()
    work.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
