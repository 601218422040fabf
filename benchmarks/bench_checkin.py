"""Benchmark: a check-in POST until its row is committed, over real HTTP, store on disk.

    .venv/bin/python benchmarks/bench_checkin.py [-n 1000]

The app runs under waitress (as on the Pi) in this process; the client is
``http.client`` on one keep-alive connection. Each timed request is the last step of
the check-in form; the server answers 303 only after ``store.record`` committed the
event and its outbox row (SQLite WAL, synchronous=FULL, one fsync per check-in).

Baselines measured in the same run, on the same disk:
- ``store.record`` of a CheckIn called directly (the floor: the fsync'ed transaction),
- ``GET /healthz`` over the same connection (the floor for HTTP + Flask).

Also prints the start page's total transfer size (HTML + style sheet + script, with
response headers), goal <= 150 KB. Goal for the POST: p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import http.client
import re
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from waitress.server import create_server

from kiosk import create_app
from telemetry.config import default_config
from telemetry.events import CheckIn, utcnow
from telemetry.store import Store


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def line(name: str, xs: list[float]) -> str:
    ms = [x * 1000 for x in xs]
    return (
        f"{name:<34} n={len(ms):5d}  p50 {pct(ms, 50):7.2f} ms  p99 {pct(ms, 99):7.2f} ms"
        f"  max {max(ms):7.2f} ms  mean {statistics.fmean(ms):6.2f} ms"
    )


def response_bytes(resp: http.client.HTTPResponse, body: bytes) -> int:
    head = sum(len(k) + len(v) + 4 for k, v in resp.getheaders()) + 17
    return head + len(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=1000, help="check-ins to time (default 1000)")
    args = ap.parse_args()
    n = args.n

    with tempfile.TemporaryDirectory(prefix="vanbox-bench-") as d:
        store = Store(Path(d) / "vanbox.db", van="bench")
        cfg = default_config({"kiosk": {"min_checkin_interval_s": 0}})
        app = create_app(config=cfg, store=store)
        srv = create_server(app, host="127.0.0.1", port=0, threads=4)
        port = srv.effective_port
        threading.Thread(target=srv.run, daemon=True).start()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def get(path: str, cookie: str = "") -> tuple[http.client.HTTPResponse, bytes]:
            conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
            r = conn.getresponse()
            return r, r.read()

        # start page transfer size: the page and everything it links to
        r, body = get("/")
        total = response_bytes(r, body)
        parts = [("/", total)]
        for ref in re.findall(rb'(?:href|src)="(/[^"]+)"', body):
            if ref.startswith(b"/static/"):
                rr, b = get(ref.decode())
                parts.append((ref.decode(), response_bytes(rr, b)))
                total += parts[-1][1]

        # one browser: its CSRF cookie and form token
        r, body = get("/de/checkin")
        cookie = r.getheader("Set-Cookie").split(";")[0]
        token = re.search(rb'name="csrf_token" value="([^"]+)"', body).group(1).decode()

        def post_checkin() -> float:
            data = urlencode(
                {"csrf_token": token, "flow": secrets.token_urlsafe(16), "step": "visit",
                 "age": "18-20", "topic": "job", "first_visit": "no"}
            )  # fmt: skip
            headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
            t0 = time.perf_counter()
            conn.request("POST", "/de/checkin", body=data, headers=headers)
            resp = conn.getresponse()
            resp.read()
            dt = time.perf_counter() - t0
            if resp.status != 303:
                raise SystemExit(f"check-in POST answered {resp.status}")
            return dt

        def healthz() -> float:
            t0 = time.perf_counter()
            r, _ = get("/healthz")
            dt = time.perf_counter() - t0
            assert r.status == 200
            return dt

        def bare_record() -> float:
            ev = CheckIn(time=utcnow(), age_group="18-20", topics=("job",), first_visit=False)
            t0 = time.perf_counter()
            store.record(ev)
            return time.perf_counter() - t0

        for _ in range(20):  # warm-up, not counted
            post_checkin(), healthz(), bare_record()
        before = store.count("checkins")
        # interleave the three so machine load hits them alike
        posts, gets, records = [], [], []
        for _ in range(n):
            posts.append(post_checkin())
            gets.append(healthz())
            records.append(bare_record())
        made = store.count("checkins") - before
        conn.close()
        srv.close()
        store.close()

    print(f"check-in benchmark, {n} check-ins, store on disk (WAL, synchronous=FULL), waitress")
    print(line("POST check-in -> committed row", posts))
    print(line("baseline: store.record (direct)", records))
    print(line("baseline: GET /healthz", gets))
    p99 = pct(posts, 99) * 1000
    print(
        f"ratios (p50): POST/record {pct(posts, 50) / pct(records, 50):.2f}x, "
        f"POST/healthz {pct(posts, 50) / pct(gets, 50):.2f}x"
    )
    print(f"rows committed by the POSTs + records: {made} (expected {2 * n})")
    print(f"goal p99 <= 20 ms: {'met' if p99 <= 20 else 'NOT met'} ({p99:.2f} ms)")
    print("start page transfer: " + ", ".join(f"{p} {b} B" for p, b in parts))
    print(
        f"start page total {total} B = {total / 1024:.1f} KB; goal <= 150 KB: "
        f"{'met' if total <= 150 * 1024 else 'NOT met'}"
    )
    return 0 if made == 2 * n else 1


if __name__ == "__main__":
    raise SystemExit(main())
