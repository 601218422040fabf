"""Benchmark: the web server with 1,000 idle plus 200 slow connections open, against none.

    .venv/bin/python benchmarks/bench_idle_clients.py [--runs 3] [--seconds 3] [--role hub]
                                                       [--old]

The hub's Flask app with some data (two published vans, a day of positions each) runs
under ``kiosk.serve.make_server`` (the server ``vanbox hub`` and the box use) in its own
process. Closed-loop clients (``--clients`` threads, keep-alive) request ``/healthz`` and
``/api/public/vans`` for ``--seconds`` each; requests/s and p99 latency.

Conditions, alternated ``--runs`` times: "none" (no other connections) and "load"
(1,000 idle TCP connections that never send a byte, plus 200 slow clients that send a
request one byte every 0.1 s, reopened when the server closes them). Printed: the
median of the runs per condition and the ratio load/none.

``--old``: the same against the settings before issue 12 (waitress with select(),
connection_limit=1000, channel_timeout=60), to show what the change fixes: expected is
no answer at all or a crashed server.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import multiprocessing as mp
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from firmware.localnet import free_port, wait_port  # noqa: E402

PATHS = ("/healthz", "/api/public/vans")
SLOW_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000


def serve(db: str, port: int, role: str, old: bool) -> None:
    from bench_hub import bench_config

    from kiosk import create_app
    from kiosk.serve import make_server
    from telemetry.store import Store

    logging.basicConfig(level=logging.ERROR)
    store = Store(db)
    app = create_app(config=bench_config(), store=store, mode="hub")
    if old:
        import waitress

        server = waitress.create_server(app, host="127.0.0.1", port=port, threads=6,
                                        connection_limit=1000, backlog=1024,
                                        channel_timeout=60)  # fmt: skip
    else:
        server = make_server(app, host="127.0.0.1", port=port, role=role, threads=6)
    server.run()


class Crowd:
    """``idle`` connections that send nothing and ``slow`` ones trickling a request."""

    def __init__(self, port: int, idle: int, slow: int) -> None:
        self.port, self.n_idle, self.n_slow = port, idle, slow
        self.idle: list[socket.socket] = []
        self.slow: list[list] = []  # [socket | None, bytes sent]
        self.reopened = 0
        self.failed_connects = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._trickle, daemon=True)

    def _connect(self) -> socket.socket | None:
        try:
            return socket.create_connection(("127.0.0.1", self.port), timeout=2)
        except OSError:
            self.failed_connects += 1
            return None

    def __enter__(self) -> Crowd:
        for _ in range(self.n_idle):
            s = self._connect()
            if s is not None:
                self.idle.append(s)
        self.slow = [[self._connect(), 0] for _ in range(self.n_slow)]
        self._t.start()
        return self

    def _trickle(self) -> None:
        while not self._stop.wait(0.1):
            for entry in self.slow:
                s, pos = entry
                if s is None or pos >= len(SLOW_REQUEST):
                    if s is not None:
                        s.close()
                    entry[0], entry[1] = self._connect(), 0
                    self.reopened += 1
                    continue
                try:
                    s.send(SLOW_REQUEST[pos : pos + 1])
                    entry[1] = pos + 1
                except OSError:
                    s.close()
                    entry[0], entry[1] = self._connect(), 0
                    self.reopened += 1

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join(5)
        for s in self.idle:
            s.close()
        for s, _ in self.slow:
            if s is not None:
                s.close()


def measure(port: int, path: str, seconds: float, clients: int) -> tuple[float, float, int]:
    """(requests/s, p99 ms, errors) of ``clients`` closed-loop keep-alive clients."""
    lat: list[float] = []
    errors = [0]
    stop_at = time.perf_counter() + seconds
    lock = threading.Lock()

    def client() -> None:
        mine: list[float] = []
        conn = None
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    errors[0] += 1
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except OSError:
                errors[0] += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
                continue
            mine.append(time.perf_counter() - t0)
        if conn is not None:
            conn.close()
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if not lat:
        return 0.0, float("inf"), errors[0]
    lat.sort()
    return len(lat) / elapsed, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, errors[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--role", choices=("hub", "box"), default="hub")
    ap.add_argument("--old", action="store_true", help="waitress as before issue 12")
    args = ap.parse_args()

    from bench_hub import fill_hub_db

    from kiosk.serve import raise_nofile_limit

    raise_nofile_limit()
    tmp = Path(tempfile.mkdtemp(prefix="vanbox-bench-idle-"))
    db = tmp / "hub.db"
    fill_hub_db(db)
    port = free_port()
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=serve, args=(str(db), port, args.role, args.old), daemon=True)
    proc.start()
    wait_port(port)
    what = (
        "waitress as before (select, limit 1000)" if args.old else f"make_server role={args.role}"
    )
    print(f"== {what}: {args.clients} clients x {args.seconds:g}s, {args.runs} runs; "
          f"load = {args.idle} idle + {args.slow} slow connections ==")  # fmt: skip
    results: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    for path in PATHS:  # warm-up: imports, caches, SQLite pages
        measure(port, path, 1.0, args.clients)
    try:
        for run in range(args.runs):
            for cond in ("none", "load"):
                if cond == "none":
                    for path in PATHS:
                        results.setdefault((cond, path), []).append(
                            measure(port, path, args.seconds, args.clients)
                        )
                    continue
                with Crowd(port, args.idle, args.slow) as crowd:
                    time.sleep(1.0)
                    for path in PATHS:
                        results.setdefault((cond, path), []).append(
                            measure(port, path, args.seconds, args.clients)
                        )
                    alive = proc.is_alive()
                    print(f"  run {run + 1}: crowd open {len(crowd.idle)} idle,"
                          f" {sum(1 for s, _ in crowd.slow if s)} slow;"
                          f" reconnects {crowd.reopened}, failed connects"
                          f" {crowd.failed_connects}; server alive: {alive}")  # fmt: skip
                if not proc.is_alive():
                    print("  the server process died")
                    break
            if not proc.is_alive():
                break
    finally:
        proc.terminate()
        proc.join(5)

    print(f"{'path':<20} {'cond':<5} {'req/s':>9} {'p99 ms':>9} {'errors':>7}")
    for path in PATHS:
        med = {}
        for cond in ("none", "load"):
            rs = results.get((cond, path), [])
            if not rs:
                continue
            rps = statistics.median(r[0] for r in rs)
            p99 = statistics.median(r[1] for r in rs)
            errs = sum(r[2] for r in rs)
            med[cond] = (rps, p99)
            print(f"{path:<20} {cond:<5} {rps:9.0f} {p99:9.1f} {errs:7d}")
        if len(med) == 2 and med["none"][0]:
            print(f"{path:<20} ratio load/none: req/s {med['load'][0] / med['none'][0]:.2f},"
                  f" p99 {med['load'][1] / med['none'][1]:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
