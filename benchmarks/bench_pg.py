"""Benchmark: the hub on PostgreSQL beside the hub on SQLite.

    .venv/bin/python benchmarks/bench_pg.py [--vans 1000] [--reps 20] [--url postgresql://...]

Without ``--url`` it starts its own throwaway PostgreSQL cluster (tests/pg.py: initdb and
pg_ctl as the postgres user on a free port; needs root and Debian's ``postgresql``), and
stops it at the end.

1. **Report pages, 1,000 vans over one year** (goal p95 <= 500 ms). The data is what the
   hub holds after the daily job: every past day folded into the aggregates and its raw
   rows pruned (``agg_days.state = 2``), plus the stop visits. Four vans' years from the
   test generator (tests/telemetry/yeardata.py) are folded on SQLite by the real
   retention code and copied to ``--vans`` vans with COPY (van and visit ids renamed;
   every van its own stops, every three vans their own municipalities, as in a fleet of
   many districts), then the fleet rollup (telemetry/rollup.py) is built, timed.
   Timed: every report (``reports.REPORTS``) of one van for a year, month, week and day
   (random vans), and of the whole fleet for a day, week, month and year, with the
   metric cache cleared before each. Baselines in the same run: the same one-van reports
   on SQLite (the four template vans, folded); the fleet's pages without the rollup
   (switched off: every period out of date, so they read the aggregates as before); and
   the fleet's pages on a SQLite hub holding the same ``--vans`` vans, with its own
   rollup (``--no-sqlite-fleet`` skips it).
2. **A raw day** (today, before the daily fold) of ``--raw-vans`` vans: the whole
   fleet's day page, computed from the raw rows, on PostgreSQL and SQLite.
3. **Ingest**, events/s: the same events (three days of ``--ingest-vans`` vans) through
   ``ingest_many`` in batches of 500 (the hub's batch) into SQLite, into PostgreSQL with
   one writer and with two writers side by side; ratios against SQLite.

The figures are bound by this machine (2 cores, PostgreSQL and the client on the same
cores); they are printed, not asserted.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "telemetry"), str(ROOT / "tests"), str(ROOT)]

import yeardata  # noqa: E402

from telemetry import rollup, sums  # noqa: E402
from telemetry.reports import REPORTS, period, report  # noqa: E402
from telemetry.retention import fold  # noqa: E402
from telemetry.stores import open_store  # noqa: E402

YEAR = 2025
TEMPLATES = 4
MARK = "\x01"  # stands for the van id in the template's COPY text
DISTRICT = "\x02"  # stands for the van's district (three vans share one)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def line(label: str, xs: list[float]) -> str:
    return (
        f"  {label:<44} n={len(xs):>4}  p50 {1000 * statistics.median(xs):8.1f} ms"
        f"  p95 {1000 * pct(xs, 0.95):8.1f} ms  max {1000 * max(xs):8.1f} ms"
    )


# --- the data ------------------------------------------------------------------------


def templates(workdir: Path):
    """Four vans' years folded on SQLite: the SQLite baseline store and, per template,
    the COPY text of its aggregates, stop visits and days."""
    lite = open_store(workdir / "hub.db")
    lite._conn.execute("PRAGMA synchronous = OFF")
    vans = []
    for i in range(TEMPLATES):
        van = f"tmpl-{i}"
        y = yeardata.generate(YEAR, seed=10 + i, van=van, sensor="door" if i == 3 else "beam-pair")
        yeardata.bulk_insert(lite, y)
        vans.append(van)
    t0 = time.perf_counter()
    fold(lite, datetime(YEAR + 1, 1, 2, tzinfo=UTC))
    print(f"  folded {TEMPLATES} van-years on SQLite in {time.perf_counter() - t0:.1f} s")
    conn = lite.reader()
    out = []
    for van in vans:
        visit_ids = {r[0] for r in conn.execute("SELECT id FROM stop_visits WHERE van = ?", (van,))}

        def key(k: str, visit_ids: set[str] = visit_ids) -> str:
            return f"{MARK}/{k}" if k in visit_ids else k

        agg = io.StringIO()
        for m, d, _v, k, val in conn.execute(
            "SELECT metric, day, van, key, value FROM aggregates WHERE van = ?", (van,)
        ):
            agg.write(f"{m}\t{d}\t{MARK}\t{key(k)}\t{val!r}\n")
        sv = io.StringIO()
        for r in conn.execute(
            'SELECT id, arrived, "left", day, name, municipality, lat, lon, planned'
            " FROM stop_visits WHERE van = ?",
            (van,),
        ):
            left = "\\N" if r[2] is None else repr(r[2])
            # every van its own stops, every district its own municipalities
            sv.write(f"{MARK}/{r[0]}\t{MARK}\t{r[1]!r}\t{left}\t{r[3]}\t{r[4]} ({MARK})\t"
                     f"{r[5]} ({DISTRICT})\t"
                     f"{r[6]!r}\t{r[7]!r}\t{r[8]}\n")  # fmt: skip
        days = "".join(
            f"{MARK}\t{r[0]}\t2\n"
            for r in conn.execute("SELECT day FROM agg_days WHERE van = ?", (van,))
        )
        out.append((agg.getvalue(), sv.getvalue(), days))
    return lite, vans, out


def _text(tmpl, i: int, idx: int, van: str) -> str:
    return tmpl[i % len(tmpl)][idx].replace(MARK, van).replace(DISTRICT, f"district {i // 3}")


def build_rollup(store, label: str) -> None:
    """The bulk load bypassed the daily fold: sum the fleet rollup up, timed."""
    t0 = time.perf_counter()
    n = rollup.mark_all(store)
    rollup.refresh(store)
    print(f"  fleet rollup of {n} periods built on {label} in {time.perf_counter() - t0:.1f} s")
    # the daily job: one day folded marks the day, its month and its year
    with store.transaction() as conn:
        rollup.mark(conn, [f"{YEAR}-12-30"])
    t0 = time.perf_counter()
    rollup.refresh(store)
    took = time.perf_counter() - t0
    print(f"  daily refresh (a day, its month and year) on {label}: {took:.2f} s")


def set_rollup(store, on: bool) -> None:
    """Switch the rollup off (every period out of date: the pages read the aggregates, as
    before the rollup) or back on, for the baseline in the same run."""
    with store.transaction() as conn:
        conn.execute("UPDATE rollup_periods SET state = ?", (1 if on else 0,))


def load(url: str, n_vans: int, tmpl) -> list[str]:
    import psycopg

    vans = [f"van-{i:04d}" for i in range(n_vans)]
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("ALTER TABLE stop_visits DISABLE TRIGGER USER")
        with c.cursor() as cur:
            for table, cols, idx in (
                ("aggregates", "metric, day, van, key, value", 0),
                ("stop_visits", 'id, van, arrived, "left", day, name, municipality, lat, lon,'
                 " planned", 1),
                ("agg_days", "van, day, state", 2),
            ):  # fmt: skip
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                    for i, van in enumerate(vans):
                        cp.write(_text(tmpl, i, idx, van))
        c.execute("ALTER TABLE stop_visits ENABLE TRIGGER USER")
        c.execute("VACUUM ANALYZE")
        n = c.execute("SELECT count(*) FROM aggregates").fetchone()[0]
        nv = c.execute("SELECT count(*) FROM stop_visits").fetchone()[0]
    print(f"  COPY of {n_vans} vans: {n:,} aggregate rows, {nv:,} stop visits in"
          f" {time.perf_counter() - t0:.1f} s")  # fmt: skip
    return vans


SQLITE_INSERT = (
    "INSERT INTO aggregates (metric, day, van, key, value) VALUES (?,?,?,?,?)",
    'INSERT INTO stop_visits (id, van, arrived, "left", day, name, municipality, lat, lon,'
    " planned) VALUES (?,?,?,?,?,?,?,?,?,?)",
    # after the stop visits, whose trigger marks their days raw (state 0)
    "INSERT OR REPLACE INTO agg_days (van, day, state) VALUES (?,?,?)",
)


def load_sqlite(path: Path, pg_vans: list[str], tmpl) -> None:
    """The same fleet into a SQLite hub (for the fleet pages' SQLite figures)."""
    store = open_store(path)
    conn = store._conn
    conn.execute("PRAGMA synchronous = OFF")
    t0 = time.perf_counter()
    conn.execute("BEGIN")  # the store's connection is in autocommit mode
    for idx, sql in enumerate(SQLITE_INSERT):
        for i, van in enumerate(pg_vans):
            text = _text(tmpl, i, idx, van)
            rows = ([None if x == "\\N" else x for x in ln.split("\t")]
                    for ln in text.splitlines())  # fmt: skip
            conn.executemany(sql, rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    store.close()
    print(f"  the same {len(pg_vans)} vans into SQLite in {time.perf_counter() - t0:.1f} s")


def timed_reports(store, p, van, reps: int) -> list[float]:
    """One page: every report of the period (the metric cache cleared first)."""
    out = []
    for _ in range(reps):
        sums.clear_cache()
        conn = store.reader()
        t0 = time.perf_counter()
        for name in REPORTS:
            report(conn, name, p, van=van)
        out.append(time.perf_counter() - t0)
    return out


PERIODS = {
    "year": period("year", date(YEAR, 1, 1)),
    "month": period("month", date(YEAR, 6, 1)),
    "week": period("week", date(YEAR, 9, 10)),
    "day": period("day", date(YEAR, 4, 4)),
}


def bench_reports(pg, lite, pg_vans, lite_vans, reps: int, fleet_lite=None) -> None:
    rnd = random.Random(1)
    print("\nReport pages (all 10 reports of one period; p95 goal <= 500 ms):")
    for kind, p in PERIODS.items():
        base = [x for v in lite_vans for x in timed_reports(lite, p, v, max(1, reps // 4))]
        got = [x for v in rnd.sample(pg_vans, reps) for x in timed_reports(pg, p, v, 1)]
        print(line(f"one van, {kind}, SQLite (4 vans)", base))
        print(line(f"one van, {kind}, PostgreSQL", got)
              + f"  ratio p50 {statistics.median(got) / statistics.median(base):.1f}x")  # fmt: skip
    fleet = f"whole fleet ({len(pg_vans)} vans)"
    for kind in ("day", "week", "month", "year"):
        n = max(3, reps // 2) if kind != "year" else max(3, reps // 4)
        got = timed_reports(pg, PERIODS[kind], None, n)
        set_rollup(pg, False)
        old = timed_reports(pg, PERIODS[kind], None, 3)
        set_rollup(pg, True)
        print(line(f"{fleet}, {kind}, PostgreSQL, no rollup", old))
        ratio = f"  ratio p95 {pct(got, 0.95) / pct(old, 0.95):.2f}x"
        if fleet_lite:
            base = timed_reports(fleet_lite, PERIODS[kind], None, n)
            print(line(f"{fleet}, {kind}, SQLite", base))
            ratio += f", to SQLite {pct(got, 0.95) / pct(base, 0.95):.2f}x"
        print(line(f"{fleet}, {kind}, PostgreSQL", got) + ratio)


# --- a raw day: today, before the daily fold ------------------------------------------

RAW_DAY = date(YEAR + 1, 1, 5)  # a Monday after the folded year


def load_raw_day(stores, vans: list[str]) -> None:
    """One day of raw rows (fixes every 30 s parked, door events, check-ins, stop visits)
    for every van, as a hub holds today before the daily fold."""
    t0 = time.perf_counter()
    for i, van in enumerate(vans):
        y = yeardata.generate(YEAR + 1, seed=500 + i, van=van, days=1, start=RAW_DAY,
                              park_interval_s=30.0)  # fmt: skip
        for store in stores:
            yeardata.bulk_insert(store, y)
    print(f"  one raw day of {len(vans)} vans into {len(stores)} store(s) in"
          f" {time.perf_counter() - t0:.1f} s")  # fmt: skip


def bench_raw_day(pg, n_vans: int, reps: int, fleet_lite=None) -> None:
    p = period("day", RAW_DAY)
    print(f"\nThe whole fleet's raw day ({n_vans} vans, not folded yet: today's page):")
    got = timed_reports(pg, p, None, reps)
    line_pg = line("whole fleet, raw day, PostgreSQL", got)
    if fleet_lite is not None:
        base = timed_reports(fleet_lite, p, None, reps)
        print(line("whole fleet, raw day, SQLite", base))
        line_pg += f"  ratio p95 {pct(got, 0.95) / pct(base, 0.95):.2f}x"
    print(line_pg)


# --- ingest ---------------------------------------------------------------------------


def ingest_events(n_vans: int) -> list:
    evs = []
    for i in range(n_vans):
        y = yeardata.generate(YEAR, seed=100 + i, van=f"ing-{i:03d}", days=3,
                              start=date(YEAR, 4, 2), park_interval_s=30.0)  # fmt: skip
        evs += y.positions + y.footfall + y.checkin_events + y.stop_visits()
    evs.sort(key=lambda e: getattr(e, "time", None) or e.arrived)
    return evs


def ingest_rate(store, evs, writers: int) -> float:
    batches = [evs[i : i + 500] for i in range(0, len(evs), 500)]
    t0 = time.perf_counter()
    if writers == 1:
        for b in batches:
            store.ingest_many(b)
    else:
        threads = [threading.Thread(target=lambda k=k: [store.ingest_many(b) for b in
                                                          batches[k::writers]])
                   for k in range(writers)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return len(evs) / (time.perf_counter() - t0)


def bench_ingest(new_pg_url, workdir: Path, n_vans: int) -> None:
    evs = ingest_events(n_vans)
    print(f"\nIngest: {len(evs):,} events of {n_vans} vans in batches of 500:")
    lite = open_store(workdir / "ingest.db")
    base = ingest_rate(lite, evs, 1)
    lite.close()
    print(f"  SQLite (synchronous=FULL, one writer)      {base:9,.0f} events/s")
    for writers in (1, 2):
        pg = open_store(new_pg_url(), max_size=4)
        rate = ingest_rate(pg, evs, writers)
        assert pg.count("positions") == sum(1 for e in evs if type(e).__name__ == "Position")
        pg.close()
        print(f"  PostgreSQL, {writers} writer(s)                  {rate:9,.0f} events/s"
              f"  ratio {rate / base:.2f}x")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vans", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--ingest-vans", type=int, default=20, help="0: no ingest benchmark")
    ap.add_argument("--raw-vans", type=int, default=1000,
                    help="vans with a raw day (today's page); 0: none")  # fmt: skip
    ap.add_argument("--no-sqlite-fleet", action="store_true",
                    help="fleet pages on PostgreSQL only (no SQLite copy)")  # fmt: skip
    ap.add_argument("--url", help="an existing PostgreSQL server's URL (its database 'postgres'"
                    " is used to create and drop benchmark databases)")  # fmt: skip
    a = ap.parse_args()
    cluster = None
    if a.url:
        import psycopg

        def new_db(prefix="bench"):
            name = f"{prefix}_{int(time.time() * 1000)}"
            with psycopg.connect(a.url, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            return a.url.rsplit("/", 1)[0] + "/" + name
    else:
        import pg

        reason = pg.skip_reason()
        if reason:
            sys.exit(f"bench_pg: {reason} (or pass --url)")
        cluster = pg.Cluster(durable=True)
        new_db = cluster.database
        print(f"PostgreSQL cluster: {cluster.bin.parent.name} on port {cluster.port}"
              " (fsync and synchronous_commit on, as in production)")  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
            work = Path(tmp)
            lite, lite_vans, tmpl = templates(work)
            url = new_db()
            pgs = open_store(url, max_size=4)
            pg_vans = load(url, a.vans, tmpl)
            build_rollup(pgs, "PostgreSQL")
            fleet_lite = None
            if not a.no_sqlite_fleet:
                load_sqlite(work / "fleet.db", pg_vans, tmpl)
                fleet_lite = open_store(work / "fleet.db")
                build_rollup(fleet_lite, "SQLite")
            bench_reports(pgs, lite, pg_vans, lite_vans, a.reps, fleet_lite)
            if a.raw_vans:
                raw = pg_vans[: a.raw_vans]
                load_raw_day([pgs] + ([fleet_lite] if fleet_lite else []), raw)
                bench_raw_day(pgs, len(raw), max(3, a.reps // 2), fleet_lite)
            pgs.close()
            lite.close()
            if fleet_lite is not None:
                fleet_lite.close()
            if a.ingest_vans:
                bench_ingest(new_db, work, a.ingest_vans)
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
