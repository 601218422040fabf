"""Benchmarks of the hub: the public location endpoint under load, and ingest of a backlog.

    .venv/bin/python benchmarks/bench_hub.py [--seconds 5] [--clients 200] [--events 100000]

1. HTTP: ``/api/public/vans`` served by waitress (the same server ``vanbox hub`` runs,
   in its own process) to ``--clients`` concurrent keep-alive clients for ``--seconds``:
   requests/s, p50 and p99 latency; as plain 200 responses, as a conditional GET
   (``If-None-Match`` -> 304) and as the page polls it (``?since=<etag>`` -> a short
   "unchanged"). Baseline: a trivial endpoint in the same server. Closed loop (every
   client back to back) and open loop (``--rate`` requests/s offered in all).
   Goal: >= 1,000 req/s and p99 <= 100 ms.
2. Ingest: ``--events`` events (2 vans: track batches of 50 fixes, and single door
   counts) queued by a real mosquitto while the hub is down; then the hub starts and
   the time until all are stored is measured. Baseline: raw ``Store.ingest_many`` of
   the same events in batches of 1,000. Goal: >= 5,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firmware.localnet import free_port, wait_port  # noqa: E402

STOPS = [("Peine, Marktplatz", "Peine", 52.3215, 10.2335),
         ("Edemissen, Schulzentrum", "Edemissen", 52.386, 10.261)]  # fmt: skip


def bench_config():
    from telemetry.config import WEEKDAYS, default_config

    return default_config(
        {
            "tour": {
                "stops": [
                    {"name": n, "municipality": m, "lat": lat, "lon": lon,
                     "weekdays": list(WEEKDAYS), "start": "00:00", "end": "23:59"}
                    for n, m, lat, lon in STOPS
                ]
            }
        }
    )  # fmt: skip


# --- 1. HTTP --------------------------------------------------------------------------


def fill_hub_db(path: Path) -> None:
    from telemetry.events import Position, utcnow
    from telemetry.store import Store

    st = Store(path)
    now = utcnow()
    events = []
    for i, (van, (_, _, lat, lon)) in enumerate(zip(("van-a", "van-b"), STOPS, strict=True)):
        for k in range(2000):  # a day of history the public never sees
            t = now - timedelta(seconds=30 * (2000 - k))
            events.append(Position(time=t, lat=lat + 0.0001 * (k % 7) * i, lon=lon, van=van))
    st.ingest_many(events)
    with st.transaction() as conn:
        for van in ("van-a", "van-b"):
            conn.execute(
                "INSERT INTO van_status (van, status, last_seen) VALUES (?, 'online', ?)",
                (van, now.timestamp()),
            )
    from telemetry import registry

    for van in ("van-a", "van-b"):  # only published vans are public
        registry.register(st, [van])
        registry.rename(st, van, f"Bus {van[-1].upper()}")
        registry.publish(st, van)
    st.close()


def serve(db: str, port: int, threads: int) -> None:
    """The server process: the hub's Flask app under waitress, plus a trivial route."""
    import waitress
    from flask import Response

    from kiosk import create_app
    from telemetry.store import Store

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" noise
    store = Store(db)
    app = create_app(config=bench_config(), store=store, mode="hub")
    app.add_url_rule("/bench/trivial", "trivial", lambda: Response(b"ok", mimetype="text/plain"))
    waitress.serve(app, host="127.0.0.1", port=port, threads=threads, connection_limit=1000,
                   backlog=1024, _quiet=True, ident="bench")  # fmt: skip


async def _client(port: int, path: str, etag: str | None, stop_at: float, lat: list[float],
                  errors: list[int], interval: float | None = None) -> None:  # fmt: skip
    """One client on a keep-alive connection (reopened when the server closes it, as a
    browser does). ``interval``: open loop, one request every ``interval`` seconds, the
    latency counted from when the request was due; ``None``: closed loop, back to back."""
    req = f"GET {path} HTTP/1.1\r\nHost: bench\r\n"
    if etag:
        req += f"If-None-Match: {etag}\r\n"
    raw = (req + "\r\n").encode()
    reader = writer = None
    due = time.perf_counter() + (random.random() * interval if interval else 0.0)
    try:
        while True:
            if interval:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            t0 = due if interval else time.perf_counter()
            if t0 >= stop_at:
                break
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = 0, False
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
                elif line == b"connection: close":
                    close = True
            if length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if status not in (200, 304):
                errors.append(status)
            if close:
                writer.close()
                reader = writer = None
            due += interval or 0.0
    finally:
        if writer is not None:
            writer.close()


async def _load(port: int, path: str, etag: str | None, clients: int, seconds: float,
                rate: float | None = None):  # fmt: skip
    lat: list[float] = []
    errors: list[int] = []
    interval = clients / rate if rate else None
    # warm-up: open the connections, fill caches
    await asyncio.gather(*(_client(port, path, etag, time.perf_counter() + 0.5, [], [])
                           for _ in range(clients)))  # fmt: skip
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(port, path, etag, t0 + seconds, lat, errors, interval)
                           for _ in range(clients)))  # fmt: skip
    elapsed = time.perf_counter() - t0
    return len(lat) / elapsed, lat, errors


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


def bench_http(args) -> None:
    import urllib.request

    tmp = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    try:
        fill_hub_db(tmp / "hub.db")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(tmp / "hub.db"), str(port),
             str(args.threads)], cwd=ROOT,
        )  # fmt: skip
        try:
            wait_port(port)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/public/vans") as r:
                etag = r.headers["ETag"]
                body = r.read()
            print(f"\n== public endpoint: {args.clients} clients, {args.seconds:g} s each, "
                  f"waitress threads={args.threads} (server in its own process) ==")  # fmt: skip
            print(f"/api/public/vans: {len(body)} bytes, ETag {etag}")
            cases = (
                ("baseline: trivial endpoint", "/bench/trivial", None),
                ("/api/public/vans (200, full body)", "/api/public/vans", None),
                ("/api/public/vans (If-None-Match -> 304)", "/api/public/vans", etag),
                ("/api/public/vans?since= (page's poll)",
                 f"/api/public/vans?since={etag.strip(chr(34))}", None),
            )  # fmt: skip
            for title, rate in (
                ("closed loop: every client back to back (the most the server does)", None),
                (f"open loop: {args.rate:g} req/s offered, spread over the clients", args.rate),
            ):
                print(f"\n{title}")
                print(f"{'endpoint':42} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
                rows = {}
                for name, path, tag in cases:
                    rps, lat, errors = asyncio.run(
                        _load(port, path, tag, args.clients, args.seconds, rate)
                    )
                    rows[name] = (rps, pct(lat, 99))
                    print(f"{name:42} {rps:8.0f} {pct(lat, 50):8.1f} {pct(lat, 99):8.1f} "
                          f"{len(errors):7d}")  # fmt: skip
                base_rps, base_p99 = rows["baseline: trivial endpoint"]
                for name, (rps, p99) in rows.items():
                    if not name.startswith("baseline"):
                        print(f"  {name}: {rps / base_rps:.2f} x the baseline's req/s, "
                              f"p99 {p99 / base_p99:.2f} x")  # fmt: skip
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- 2. ingest ------------------------------------------------------------------------


def backlog_messages(n_events: int) -> list[tuple[str, str]]:
    """(topic, payload) of ``n_events`` events from two vans: 80 % fixes in track batches
    of 50, 20 % single door counts."""
    from telemetry import topics
    from telemetry.events import Footfall, Position

    t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    msgs = []
    per_van = n_events // 2
    for v, van in enumerate(("van-a", "van-b")):
        n_fix = per_van * 4 // 5
        pts = [topics.location_payload(Position(time=t0 + timedelta(seconds=k), lat=52.3 + k * 1e-5,
                                                lon=10.2 + v * 0.01), "V")
               for k in range(n_fix)]  # fmt: skip
        for i in range(0, n_fix, 50):
            batch = topics.track_payload(pts[i : i + 50], "V")
            msgs.append((f"vanbox/{van}/track", topics.dumps(batch)))
        for k in range(per_van - n_fix):
            ff = Footfall(time=t0 + timedelta(seconds=k), kind="in", occupancy=k % 5)
            msgs.append((f"vanbox/{van}/footfall",
                         topics.dumps(topics.footfall_payload(ff, {"in": k}))))  # fmt: skip
    return msgs


def bench_ingest(args) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from hub.ingest import Hub
    from telemetry import topics
    from telemetry.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    port = free_port()
    (tmp / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        # as deploy/mosquitto/central.conf: a deep queue, 100 messages in flight
        "max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 100\n"
    )
    mosq = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                             str(tmp / "mosquitto.conf")], stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_port(port)
        msgs = backlog_messages(args.events)
        n_events = sum(len(topics.decode(t, p).events) for t, p in msgs)
        print(f"\n== hub ingest of a backlog: {n_events} events in {len(msgs)} messages ==")
        store = Store(tmp / "hub.db")
        cfg = {"host": "127.0.0.1", "port": port}
        hub = Hub(store, cfg, client_id="bench-hub")
        hub.start()  # make the persistent session, then go away
        hub.wait_connected(10)
        time.sleep(0.5)
        hub.stop()

        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-vans")
        pub.max_inflight_messages_set(1000)
        pub.max_queued_messages_set(0)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        t = time.perf_counter()
        infos = [pub.publish(tp, p, qos=1) for tp, p in msgs]
        for info in infos:
            info.wait_for_publish(60)
        print(f"published while the hub was down in {time.perf_counter() - t:.1f} s")
        pub.loop_stop()
        pub.disconnect()

        hub = Hub(store, cfg, client_id="bench-hub")
        t = time.perf_counter()
        hub.start()
        while hub.stats.events < n_events:
            time.sleep(0.01)
            if time.perf_counter() - t > 600:
                raise SystemExit(f"only {hub.stats.events} of {n_events} events after 600 s")
        hub_s = time.perf_counter() - t
        hub.stop()
        stored = store.count("positions") + store.count("footfall")
        store.close()

        base_store = Store(tmp / "baseline.db")
        events = [e for tp, p in msgs for e in topics.decode(tp, p).events]
        t = time.perf_counter()
        for i in range(0, len(events), 1000):
            base_store.ingest_many(events[i : i + 1000])
        base_s = time.perf_counter() - t
        base_store.close()

        print(f"{'':44} {'seconds':>8} {'events/s':>10}")
        print(f"{'baseline: Store.ingest_many, batches of 1000':44} {base_s:8.2f} "
              f"{n_events / base_s:10.0f}")  # fmt: skip
        print(f"{'hub: from the broker queue to the store':44} {hub_s:8.2f} "
              f"{n_events / hub_s:10.0f}")  # fmt: skip
        print(f"  hub / baseline: {base_s / hub_s:.2f}; {hub.stats.batches} batches; "
              f"stored {stored} rows (expected {n_events})")  # fmt: skip
    finally:
        mosq.send_signal(signal.SIGTERM)
        mosq.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--rate", type=float, default=1000.0, help="open-loop offered req/s")
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--only", choices=("http", "ingest"))
    args = p.parse_args()
    print(f"bench_hub: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if args.only != "ingest":
        bench_http(args)
    if args.only != "http":
        bench_ingest(args)


if __name__ == "__main__":
    main()
