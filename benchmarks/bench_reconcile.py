"""Benchmark: reconcile a 30-day gap for 10 vans (issue 11).

Ten boxes, each a separate process running the real Publisher on its own database with
30 service days of events (per day: 80 footfall events, 20 check-ins, 3 stop visits
with their leaving, 450 track points) that the broker took (PUBACK) but the hub never got
(a hub restored from a backup 30 days old, or a broker that lost its persistence file).
Then the hub (Hub + Reconciler, in this process) starts: it gets every van's retained
tally, asks for the missing (day, kind), the boxes re-send, and the run ends when the
hub holds exactly the boxes' events. Figures: time to converge, events per second,
bytes on the wire (a counting TCP proxy in front of the broker for the boxes, another for
the hub), messages; at two publish rates: the shipped ``mqtt.rate_limit`` (50 msg/s per
van, for a mobile link) and an unthrottled 5,000 msg/s (what the CPU allows). The
baseline in the same run: the same events published once, live, by the same boxes.

Run: ``.venv/bin/python benchmarks/bench_reconcile.py [--vans 10] [--days 30]``.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_publish import CountingProxy, Mosquitto  # noqa: E402

from hub.ingest import Hub  # noqa: E402
from hub.reconcile import Reconciler  # noqa: E402
from telemetry.events import CheckIn, Footfall, Position, StopVisit  # noqa: E402
from telemetry.store import Store  # noqa: E402

TABLES = {
    "footfall": "SELECT count(*) FROM footfall WHERE van = ?",
    "checkins": "SELECT count(*) FROM checkins WHERE van = ?",
    "stop_visits": 'SELECT count(*) FROM stop_visits WHERE van = ? AND "left" IS NOT NULL',
    "positions": "SELECT count(*) FROM positions WHERE van = ? AND suspect = 0",
}


def fill(path: Path, van: str, days: int, end: datetime) -> int:
    store = Store(path, van=van, tid="BV")
    n = 0
    try:
        for d in range(days):
            t = end - timedelta(days=days - d)
            evs: list = [Footfall(time=t + timedelta(minutes=k), kind="in") for k in range(80)]
            evs += [CheckIn(time=t + timedelta(minutes=3 * k), age_group="18-20",
                            topics=("job",)) for k in range(20)]  # fmt: skip
            evs += [Position(time=t + timedelta(seconds=20 * k), lat=52.3, lon=10.2 + k * 1e-5,
                             hdop=1.0, sats=9) for k in range(450)]  # fmt: skip
            for s in range(3):
                sv = StopVisit(arrived=t + timedelta(hours=2 * s), name=f"Halt {s}",
                               municipality="Peine", lat=52.32, lon=10.23)  # fmt: skip
                evs += [sv, replace(sv, left=sv.arrived + timedelta(hours=1))]
            store.record_many(evs)
            n += len(evs) - 3
    finally:
        store.close()
    return n


def counts(conn: sqlite3.Connection, van: str) -> tuple[int, ...]:
    return tuple(conn.execute(sql, (van,)).fetchone()[0] for sql in TABLES.values())


def child(db: str, port: int, van: str, rate: float) -> int:
    from telemetry.publisher import Publisher

    store = Store(db, van=van, tid="BV")
    cfg = {"host": "127.0.0.1", "port": port, "keepalive": 60, "rate_limit": rate,
           "client_id": f"vanbox-{van}"}  # fmt: skip
    pub = Publisher(store, cfg, van=van, tid="BV", tally_min_s=2.0)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    pub.start()
    print("ready", flush=True)
    done.wait()
    pub.stop()
    print(f"stats {pub.stats()}", flush=True)
    store.close()
    return 0


def start_boxes(dbs: list[Path], vans: list[str], port: int, rate: float) -> list:
    procs = []
    for db, van in zip(dbs, vans, strict=True):
        p = subprocess.Popen(
            [sys.executable, __file__, "--child", str(db), str(port), van, str(rate)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        procs.append(p)
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    return procs


def stop_boxes(procs: list) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(30)


def outbox_total(dbs: list[Path]) -> int:
    n = 0
    for db in dbs:
        c = sqlite3.connect(db)
        n += c.execute("SELECT count(*) FROM outbox").fetchone()[0]
        c.close()
    return n


def run(tmp: Path, n_vans: int, days: int, rate: float, label: str) -> dict:
    end = datetime.now(UTC).replace(hour=7, minute=0, second=0, microsecond=0)
    vans = [f"van{i:02d}" for i in range(n_vans)]
    dbs = [tmp / f"{label}-{v}.db" for v in vans]
    t0 = time.perf_counter()
    n_events = sum(fill(db, v, days, end) for db, v in zip(dbs, vans, strict=True))
    print(f"   [{label}] {n_vans} boxes, {days} days, {n_events:,} events "
          f"(made in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
    broker = Mosquitto(tmp)
    box_proxy = CountingProxy(broker.port)
    hub_proxy = CountingProxy(broker.port)
    expected = {}
    for db, v in zip(dbs, vans, strict=True):
        c = sqlite3.connect(db)
        expected[v] = counts(c, v)
        c.close()
    out: dict = {"events": n_events}
    try:
        # Baseline: the first, live sending (nobody listens: the hub "lost" all of it).
        procs = start_boxes(dbs, vans, box_proxy.port, rate)
        t1 = time.perf_counter()
        while outbox_total(dbs) > 0:
            time.sleep(0.1)
        first_s = time.perf_counter() - t1
        time.sleep(0.5)
        up, down, *_ = box_proxy.snapshot()
        out["first_s"], out["first_bytes"] = first_s, up + down
        print(f"   [{label}] baseline, first sending: {first_s:.1f} s, "
              f"{n_events / first_s:,.0f} events/s, {up + down:,} B")  # fmt: skip
        # The hub starts with nothing: reconcile.
        hub_store = Store(tmp / f"{label}-hub.db")
        rec = Reconciler(hub_store, backoff_s=600)
        hub = Hub(hub_store, {"host": "127.0.0.1", "port": hub_proxy.port},
                  client_id=f"bench-hub-{label}", on_control=rec)  # fmt: skip
        b0 = box_proxy.snapshot()
        t2 = time.perf_counter()
        hub.start()
        hub.wait_connected(10)
        conn = sqlite3.connect(tmp / f"{label}-hub.db")
        deadline = time.monotonic() + 1800
        while any(counts(conn, v) != expected[v] for v in vans):
            if time.monotonic() > deadline:
                raise SystemExit("did not converge in 30 min")
            time.sleep(0.2)
        rec_s = time.perf_counter() - t2
        b1 = box_proxy.snapshot()
        h = hub_proxy.snapshot()
        conn.close()
        box_bytes = (b1[0] - b0[0]) + (b1[1] - b0[1])
        hub_bytes = h[0] + h[1]
        out |= {"rec_s": rec_s, "box_bytes": box_bytes, "hub_bytes": hub_bytes,
                "asked": rec.asked, "tallies": rec.tallies}  # fmt: skip
        print(f"   [{label}] reconcile: {rec_s:.1f} s until the hub held all {n_events:,}"
              f" events = {n_events / rec_s:,.0f} events/s; {rec.tallies} tallies handled,"
              f" {rec.asked} (day, kind) asked")  # fmt: skip
        print(f"   [{label}] bytes: boxes {box_bytes:,} B ({box_bytes / n_vans / 1e6:.2f} MB per"
              f" van, {box_bytes / n_events:.0f} B/event), hub {hub_bytes:,} B;"
              f" vs the first sending {box_bytes / max(1, out['first_bytes']):.2f} x,"
              f" time {rec_s / first_s:.2f} x")  # fmt: skip
        hub.stop()
        hub_store.close()
        stop_boxes(procs)
    finally:
        box_proxy.close()
        hub_proxy.close()
        broker.stop()
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        db, port, van, rate = sys.argv[2:6]
        return child(db, int(port), van, float(rate))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vans", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--rates", default="5000,50", help="publish rates (msg/s per van) to run")
    a = ap.parse_args()
    print(f"== reconcile a {a.days}-day gap for {a.vans} vans ==")
    with tempfile.TemporaryDirectory(prefix="vanbox-bench-rec-") as d:
        for rate in (float(r) for r in a.rates.split(",")):
            run(Path(d), a.vans, a.days, rate, f"{rate:g} msg per s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
