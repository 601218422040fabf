"""Benchmark of the hub past one machine (issue 17): 1,000 simulated vans into one SQLite
hub with 1 and 2 ingest workers, and the public endpoint for 10,000 viewers, direct and
through nginx. Everything in one run on this machine; ratios against the single-process
hub (1 worker, no proxy) measured in the same run.

    .venv/bin/python benchmarks/bench_fleet.py [--vans 1000] [--seconds 30] [--backlog 30000]
                                               [--http-seconds 10] [--skip-http]

1. Backlog: ``--backlog`` single-event messages from ``--vans`` vans queued by a real
   mosquitto while the workers are down; then they start, and the time until all are
   stored gives the sustained ingest capacity (events/s) and the workers' CPU per 1,000.
2. Live: ``hub.fleet_sim`` with ``--vans`` vans at 1x and 10x the real rates for
   ``--seconds``: events/s stored, ingest lag (sent -> row visible in the database,
   sampled every 50 ms) p50/p99, workers' CPU per 1,000 events.
3. HTTP: ``/api/public/vans`` (every van of the fleet published) from a ``vanbox hub
   --no-ingest`` web process, direct and through deploy/nginx/vanbox-hub.conf, with wrk:
   10,000 viewers polling every 10 s = 1,000 req/s offered (100 connections, each a
   request 90 ms after the last answer), and closed loop (50 connections back to back)
   for the ceiling:
   req/s, p99, the share nginx served from its cache, CPU of hub and nginx.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firmware.localnet import free_port, terminate, wait_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def broker(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    (tmp / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 100\n"
        f"max_connections -1\nuser {os.environ.get('USER', 'root')}\n"
    )
    p = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                          str(tmp / "mosquitto.conf")], stderr=subprocess.DEVNULL)  # fmt: skip
    wait_port(port)
    return p, port


class Workers:
    def __init__(self, tmp: Path, port: int, count: int) -> None:
        from telemetry.store import Store

        self.db = tmp / f"hub-{count}.db"
        Store(self.db).close()
        self.cfg = tmp / f"hub-{count}.toml"
        self.cfg.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
                            f'[hub]\nclient_id = "bench"\ndatabase = "{self.db}"\n')  # fmt: skip
        self.count, self.tmp = count, tmp
        self.procs: list[subprocess.Popen] = []
        self.runs = 0

    def start(self, settle: float = 3.0) -> None:
        self.runs += 1
        env = {**os.environ, "VANBOX_LOG": "INFO"}
        for i in range(self.count):
            log = open(self.tmp / f"w{self.count}-{i}-{self.runs}.log", "wb")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "hub.workers", "--config", str(self.cfg), "--index",
                 str(i), "--count", str(self.count)], cwd=ROOT, stderr=log, env=env))  # fmt: skip
            log.close()
        time.sleep(settle)  # connected and subscribed

    def cpu(self) -> float:
        """The workers' CPU seconds so far, in all."""
        return sum(cpu_s(p.pid) for p in self.procs)

    def signal(self, sig: int) -> None:
        for p in self.procs:
            p.send_signal(sig)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(30)
        self.procs = []


def backlog(vans: int, n: int) -> list[tuple[str, str]]:
    from telemetry import topics
    from telemetry.events import Footfall, Position

    t0 = datetime.now(UTC) - timedelta(hours=2)
    out = []
    for k in range(n):
        van = f"sim-{k % vans:05d}"
        t = t0 + timedelta(seconds=k * 0.1)
        if k % 10 == 9:
            ev = Footfall(time=t, kind="in", van=van)
            out.append((topics.topic("vanbox", van, "footfall"),
                        topics.dumps(topics.footfall_payload(ev, {}))))  # fmt: skip
        else:
            p = Position(time=t, lat=52.3 + (k % 97) * 1e-4, lon=10.2, van=van)
            out.append((topics.topic("vanbox", van, "location"),
                        topics.dumps(topics.location_payload(p, "SV"))))  # fmt: skip
    return out


def rows(db: Path) -> int:
    import sqlite3

    c = sqlite3.connect(db, timeout=30)
    n = sum(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
            for t in ("positions", "footfall", "checkins"))  # fmt: skip
    c.close()
    return n


def bench_backlog(tmp: Path, args, count: int) -> dict:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    mosq, port = broker(tmp)
    try:
        w = Workers(tmp, port, count)
        w.start()
        # Stopped, not gone: the broker queues for them; their start-up CPU is not counted.
        w.signal(signal.SIGSTOP)
        cpu0 = w.cpu()
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-backlog")
        pub.max_inflight_messages_set(1000)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        for info in [pub.publish(t, p, qos=1) for t, p in backlog(args.vans, args.backlog)]:
            info.wait_for_publish(120)
        pub.loop_stop()
        pub.disconnect()
        t0 = time.perf_counter()
        w.signal(signal.SIGCONT)
        first = None  # from the first row stored: the processes' start is not ingest
        while (n := rows(w.db)) < args.backlog:
            if n and first is None:
                first = (time.perf_counter(), n)
            time.sleep(0.02)
            if time.perf_counter() - t0 > 180:
                raise SystemExit(f"backlog: {n} of {args.backlog} stored after 180 s (were"
                                 " the workers subscribed before they were stopped?)")  # fmt: skip
        t1, n1 = first or (t0, 0)
        took = time.perf_counter() - t1
        cpu = w.cpu() - cpu0
        w.stop()
        return {"events_s": (args.backlog - n1) / took, "cpu_ms_per_1000": cpu / args.backlog * 1e6}
    finally:
        terminate(mosq)


def bench_live(tmp: Path, args, count: int, speed: float) -> dict:
    import sqlite3

    from hub.fleet_sim import FleetSim, SimOptions

    mosq, port = broker(tmp)
    sent: dict[str, float] = {}
    lags: list[float] = []
    try:
        w = Workers(tmp, port, count)
        w.start()
        sim = FleetSim(SimOptions(args.vans, "127.0.0.1", port, speed=speed),
                       on_send=lambda van, kind, eid, t: sent.__setitem__(eid, t))  # fmt: skip
        stop = threading.Event()

        def poll() -> None:
            c = sqlite3.connect(w.db, timeout=30)
            last = 0
            while not stop.wait(0.05):
                now = time.time()
                for rowid, eid in c.execute(
                    "SELECT rowid, id FROM positions WHERE rowid > ? ORDER BY rowid", (last,)
                ):
                    last = rowid
                    if eid in sent:
                        lags.append(now - sent[eid])

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        cpu0 = w.cpu()
        t0 = time.perf_counter()
        sim.run_for(args.seconds)
        time.sleep(2.0)
        stop.set()
        poller.join()
        took = time.perf_counter() - t0
        n = rows(w.db)
        cpu = w.cpu() - cpu0
        w.stop()
        lags.sort()
        q = statistics.quantiles(lags, n=100) if len(lags) > 100 else [float("nan")] * 99
        return {"events_s": n / args.seconds, "sent": sum(sim.sent.values()), "stored": n,
                "lag_p50_ms": q[49] * 1000, "lag_p99_ms": q[98] * 1000,
                "cpu_ms_per_1000": cpu / max(1, n) * 1e6, "wall_s": took}  # fmt: skip
    finally:
        terminate(mosq)


# --- 3. HTTP ---------------------------------------------------------------------------

PACE = """request = function() return wrk.format("GET", "{path}") end
delay = function() return 90 end
"""


def wrk(port: int, conns: int, seconds: float, path: str, tmp: Path, paced: bool) -> dict:
    script = tmp / "pace.lua"
    script.write_text(PACE.format(path=path) if paced else "")
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
           f"http://127.0.0.1:{port}{path}"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"req_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50%"), "p99_ms": ms("99%"),
            "errors": int(errors.group(1)) if errors else 0}  # fmt: skip


def bench_http(tmp: Path, args, db: Path) -> list[tuple[str, dict]]:
    from telemetry import registry
    from telemetry.store import Store
    from tests.deploy.test_nginx_cache import Nginx

    st = Store(db)
    vans = [r[0] for r in st.reader().execute("SELECT DISTINCT van FROM positions")]
    registry.register(st, vans)
    for v in vans:
        registry.rename(st, v, f"Bus {v[-5:]}")
        registry.publish(st, v)
    st.close()
    cfg = tmp / "web.toml"
    cfg.write_text(f'[mqtt]\nport = {free_port()}\n[hub]\ndatabase = "{db}"\n')
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "firmware.cli", "hub", "--no-ingest",
                            "--config", str(cfg), "--port", str(port), "--bind", "127.0.0.1"],
                           cwd=ROOT, stderr=subprocess.DEVNULL)  # fmt: skip
    wait_port(port, timeout=30)
    log = tmp / "cache.log"
    ng = Nginx(tmp, [port], access_log=f'log_format c "$upstream_cache_status";\n'
               f"access_log {log} c")  # fmt: skip
    path = "/api/public/vans"
    out = []
    try:
        subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}{path}"])
        size = len(subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}{path}"],
                                  capture_output=True).stdout)  # fmt: skip
        print(f"   /api/public/vans: {len(vans)} vans, {size / 1000:.0f} kB")
        # Warm: on a cold cache the first request's concurrent ones wait for it (the cache
        # lock, polled every 500 ms by nginx): a start-up effect, not the steady state.
        subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{ng.port}{path}"])
        for name, p in (("direct", port), ("nginx", ng.port)):
            for paced, conns in ((True, 100), (False, 50)):
                log.write_text("")
                pids = [web.pid] + ([ng.proc.pid] + children(ng.proc.pid) if p == ng.port else [])
                c0 = {pid: cpu_s(pid) for pid in pids}
                r = wrk(p, conns, args.http_seconds, path, tmp, paced)
                cpu = {pid: cpu_s(pid) - c0[pid] for pid in pids}
                r["hub_cpu"] = cpu[web.pid] / args.http_seconds
                r["nginx_cpu"] = sum(v for k, v in cpu.items() if k != web.pid) / args.http_seconds
                if p == ng.port:
                    seen = log.read_text().split()
                    hits = sum(s in ("HIT", "STALE", "UPDATING", "REVALIDATED") for s in seen)
                    r["cached"] = hits / max(1, len(seen))
                out.append((f"{name}, {'1,000 req/s offered' if paced else 'closed loop'}", r))
    finally:
        ng.stop()
        terminate(web)
    return out


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError):
                pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vans", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--backlog", type=int, default=30_000)
    ap.add_argument("--http-seconds", type=float, default=10)
    ap.add_argument("--skip-http", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    print(f"cores: {os.cpu_count()}, {args.vans} vans; data in {tmp}")
    print(f"\n== 1. backlog of {args.backlog} events, drained by 1 and 2 workers ==")
    base = None
    for n in (1, 2):
        (tmp / f"b{n}").mkdir()
        r = bench_backlog(tmp / f"b{n}", args, n)
        base = base or r
        print(f"   {n} worker(s): {r['events_s']:7.0f} events/s"
              f" ({r['events_s'] / base['events_s']:.2f}x), CPU {r['cpu_ms_per_1000']:.0f} ms"
              f" per 1,000 events")  # fmt: skip
    last_db = None
    for speed in (1, 10):
        print(f"\n== 2. {args.vans} vans live at {speed}x the real rates, {args.seconds:.0f} s ==")
        base = None
        for n in (1, 2):
            d = tmp / f"l{speed}-{n}"
            d.mkdir()
            r = bench_live(d, args, n, speed)
            base = base or r
            last_db = d / f"hub-{n}.db"
            print(f"   {n} worker(s): {r['events_s']:6.1f} events/s stored"
                  f" ({r['stored']} of {r['sent']} messages), lag p50 {r['lag_p50_ms']:.0f} ms,"
                  f" p99 {r['lag_p99_ms']:.0f} ms ({r['lag_p99_ms'] / base['lag_p99_ms']:.2f}x),"
                  f" CPU {r['cpu_ms_per_1000']:.0f} ms per 1,000 events")  # fmt: skip
    if args.skip_http or not shutil.which("wrk") or not shutil.which("nginx"):
        print("\n(HTTP part skipped: --skip-http, or wrk/nginx missing: apt-get install wrk nginx)")
        return
    print("\n== 3. /api/public/vans for 10,000 viewers polling every 10 s ==")
    d = tmp / "http"
    d.mkdir()
    res = bench_http(d, args, last_db)
    base = dict(res)
    for name, r in res:
        b = base["direct, " + name.split(", ", 1)[1]]
        cached = f", {r['cached'] * 100:.1f} % from the cache" if "cached" in r else ""
        print(f"   {name:32s} {r['req_s']:7.0f} req/s ({r['req_s'] / b['req_s']:.2f}x),"
              f" p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"
              f" ({r['p99_ms'] / b['p99_ms']:.2f}x){cached}; CPU hub {r['hub_cpu']:.2f},"
              f" nginx {r['nginx_cpu']:.2f} cores; errors {r['errors']}")  # fmt: skip


if __name__ == "__main__":
    main()
