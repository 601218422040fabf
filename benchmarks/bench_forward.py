"""Benchmark of ``[hub.forward]`` (hub/forward.py): positions/s to a local HTTP endpoint,
and how much forwarding lowers the hub's ingest, measured in the same run.

    .venv/bin/python benchmarks/bench_forward.py [--positions 5000] [--rounds 3]

1. Forwarding: ``--positions`` stored positions POSTed one by one (as to Traccar's
   OwnTracks port) to a local HTTP/1.1 keep-alive server (its own process) that answers
   200 at once;
   positions/s (median of ``--rounds``). Baseline: the same number of bare POSTs of the
   same body on one connection, without the store (what HTTP costs alone).
2. Ingest: ``--positions`` location messages through the hub's worker path
   (``Hub._handle`` in batches of 500, no broker: decode, upsert, acknowledge) into a
   fresh store, without a forwarder and with one forwarding to the local endpoint at the
   same time; events/s (median) and the ratio with/without.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.forward import Forwarder, Poster, Target  # noqa: E402
from hub.ingest import Hub, Item  # noqa: E402
from telemetry import topics  # noqa: E402
from telemetry.events import Position  # noqa: E402
from telemetry.store import Store  # noqa: E402

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _serve(port_out) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever()


class Endpoint:
    """A local HTTP/1.1 server answering 200 at once, in its own process (as Traccar is:
    its CPU time does not count against the hub's)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        self.proc = ctx.Process(target=_serve, args=(q,), daemon=True)
        self.proc.start()
        self.url = f"http://127.0.0.1:{q.get(timeout=30)}/"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(5)


def fixes(n: int) -> list[Position]:
    return [Position(time=T0 + timedelta(seconds=i), lat=52.3 + i * 1e-6, lon=10.2, hdop=1.1,
                     speed=4.0, track=90.0, alt=70.0, van="van-a") for i in range(n)]  # fmt: skip


def wait(cond, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.005)


def bench_forward(n: int, ep: Endpoint, d: Path, r: int) -> float:
    st = Store(d / f"fw-{r}.db")
    for p in fixes(n):
        st.record(p)
    fw = Forwarder(st, [Target("traccar", ep.url)], batch=500)
    t0 = time.perf_counter()
    fw.start()
    wait(fw.idle)
    took = time.perf_counter() - t0
    fw.stop()
    st.close()
    return n / took


def bench_bare_posts(n: int, ep: Endpoint) -> float:
    body = json.dumps({"_type": "location", "tid": "JR", "tst": 1795000000, "lat": 52.3,
                       "lon": 10.2, "acc": 6, "alt": 70, "vel": 14, "cog": 90,
                       "topic": "vanbox/van-a"})  # fmt: skip
    poster = Poster(ep.url, 10.0)
    t0 = time.perf_counter()
    for _ in range(n):
        poster.post(body)
    took = time.perf_counter() - t0
    poster.close()
    return n / took


def bench_ingest(n: int, d: Path, r: int, ep: Endpoint | None) -> float:
    st = Store(d / f"ingest-{r}-{'fw' if ep else 'plain'}.db")
    fw = Forwarder(st, [Target("traccar", ep.url)], batch=500) if ep else None
    hub = Hub(st, {}, client_id="bench", on_batch=fw.wake if fw else None)
    now = time.time()
    items = [
        Item("vanbox/van-a/location", topics.dumps(topics.location_payload(p, "JR")).encode(),
             i + 1, 1, False, now, 0)
        for i, p in enumerate(fixes(n))
    ]  # fmt: skip
    if fw:
        fw.start()
    t0 = time.perf_counter()
    for i in range(0, n, 500):
        hub._handle(items[i : i + 500])
    took = time.perf_counter() - t0
    assert hub.stats.events == n, hub.stats
    if fw:
        wait(fw.idle)
        fw.stop()
    st.close()
    return n / took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--positions", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ep = Endpoint()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        fwd = [bench_forward(a.positions, ep, d, r) for r in range(a.rounds)]
        bare = [bench_bare_posts(a.positions, ep) for _ in range(a.rounds)]
        plain, with_fw = [], []
        for r in range(a.rounds):  # interleaved, so drift hits both alike
            plain.append(bench_ingest(a.positions, d, r, None))
            with_fw.append(bench_ingest(a.positions, d, r, ep))
    ep.stop()
    m = statistics.median
    print(f"positions: {a.positions}, rounds: {a.rounds} (medians)")
    print(f"forwarding to a local HTTP endpoint: {m(fwd):8.0f} positions/s")
    print(f"  baseline, bare POSTs of one body:  {m(bare):8.0f} POSTs/s"
          f"  (forwarding = {m(fwd) / m(bare):.2f} x bare)")  # fmt: skip
    print(f"hub ingest without forwarding:       {m(plain):8.0f} events/s")
    print(f"hub ingest while forwarding:         {m(with_fw):8.0f} events/s"
          f"  (ratio {m(with_fw) / m(plain):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
