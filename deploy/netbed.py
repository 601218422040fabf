#!/usr/bin/env python3
"""The network test bed: a van on a flaky mobile link, with no hardware.

    sudo .venv/bin/python deploy/netbed.py --profile lte --blackout 20:60
    sudo .venv/bin/python deploy/netbed.py --profile bad --mode bridge --flap 5:5:300

The van and the central broker live in two Linux network namespaces (``ip netns``,
iproute2) joined by one link, shaped like a mobile connection:

- with ``tc netem`` on a veth pair where the kernel has ``sch_netem``;
- else (``--shaper tun``, chosen by itself when netem is missing) by a user-space
  forwarder between two TUN devices (deploy/netbed/netbed_shaper.py) with the same profiles.

Profiles: ``lte`` (80 ms ±40 ms each way, 1 % loss), ``bad`` (600 ms ±300 ms, 5 % loss,
1 % duplicates, 5 % reordered), ``clean``. Faults: silent blackouts (every packet
dropped both ways, no RST: half-open TCP) and flapping (up/down/for).

In the central namespace run mosquitto and the real hub (deploy/netbed/netbed_centre.py); in the
van's the real store and publisher fed by a simulated service day at ``--speed`` times
real time (deploy/netbed/netbed_van.py), publishing straight to the central broker
(``--mode direct``) or through a local mosquitto with the bridge of
deploy/mosquitto/van-bridge.conf (``--mode bridge``; TLS left out).

It prints, and writes to ``result.json``: events lost and received twice, the time to
notice each dead link and to reconnect after it, whether the backlog went out by
priority, and the bytes on the wire (both ways, IP packets, retransmissions included)
scaled to an 8-hour service day. Namespaces, interfaces and processes get names unique
to the run and are removed at the end, also after an error or Ctrl-C.

Needs root, iproute2 (``apt-get install iproute2``), mosquitto and /dev/net/tun (or
netem). :func:`unavailable` says why not where it cannot run.
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "netbed"))

from netbed_bed import Bed, NetbedError, has_netem, unavailable  # noqa: E402, F401
from netbed_shaper import PROFILES, Profile  # noqa: E402, F401

SERVICE_DAY_S = 8 * 3600
BROKER_CHECK_S = 5.5  # mosquitto looks at its clients' keepalives about every 5 s
TALLIES_PER_DAY = SERVICE_DAY_S / 300  # mqtt.tally_interval_s while counts change
PY = sys.executable


@dataclass
class Scenario:
    profile: str = "lte"
    mode: str = "direct"  # or "bridge"
    keepalive: int = 10
    speed: float = 120.0
    sim_seconds: float = 7200.0
    blackouts: list[tuple[float, float]] = field(default_factory=list)  # (at s, for s)
    flap: tuple[float, float, float] | None = None  # (up s, down s, for s), from 5 s in
    reconnect_max_s: float = 60.0
    drain_timeout: float = 120.0
    idle_s: float = 0.0  # measure the idle link for this long at the end
    shaper: str = "auto"
    seed: int = 1
    untuned: bool = False  # the publisher without its mobile-link tuning (a baseline)


class Run:
    """One scenario on a fresh bed; :meth:`execute` returns the figures."""

    def __init__(self, sc: Scenario, work: Path) -> None:
        if sc.profile not in PROFILES:
            raise NetbedError(f"--profile {sc.profile}: use one of {', '.join(PROFILES)}")
        if sc.mode not in ("direct", "bridge"):
            raise NetbedError(f"--mode {sc.mode}: use direct or bridge")
        self.sc, self.work = sc, work
        self.bed = Bed(PROFILES[sc.profile], sc.shaper, sc.seed)
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.van = f"nb-{secrets.token_hex(3)}"
        self.windows: list[tuple[float, float]] = []  # (down at, up at), wall time

    # --- parts ------------------------------------------------------------------------

    def _spawn(self, name: str, side: str, *argv: str) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115
        p = subprocess.Popen(self.bed.exec(side, *argv), stdout=log, stderr=log, cwd=ROOT)
        self.procs.append((name, p))
        return p

    def _wait_file(self, path: Path, proc: subprocess.Popen, what: str, timeout=30.0) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise NetbedError(f"{what} did not start; see {self.work}")
            time.sleep(0.05)

    def _mosquitto(self, name: str, side: str, conf: str) -> None:
        d = self.work / name
        d.mkdir()
        (d / "mosquitto.conf").write_text(
            conf + f"\nuser {getpass.getuser()}\nlog_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        self._spawn(name, side, shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                    str(d / "mosquitto.conf"))  # fmt: skip
        probe = "import socket,sys,time\nfor _ in range(200):\n  try:\n" \
                "    socket.create_connection((sys.argv[1], 1883), 0.2); break\n" \
                "  except OSError: time.sleep(0.05)\nelse: sys.exit(1)"  # fmt: skip
        host = "127.0.0.1"
        if subprocess.run(self.bed.exec(side, PY, "-c", probe, host)).returncode:
            raise NetbedError(f"{name} (mosquitto) did not start; see {self.work}/{name}.log")

    def bridge_conf(self) -> str:
        """deploy/mosquitto/van-bridge.conf for this bed: plain TCP to the central
        namespace, this run's van id, this run's keepalive, its own persistence."""
        text = (ROOT / "deploy/mosquitto/van-bridge.conf").read_text()
        out = []
        for line in text.splitlines():
            key = line.split(" ", 1)[0]
            if key in ("bridge_cafile", "bridge_tls_version", "bridge_insecure",
                       "remote_username", "remote_password"):  # fmt: skip
                continue
            if key == "address":
                line = f"address {self.bed.addr['hub']}:1883"
            elif key == "keepalive_interval":
                line = f"keepalive_interval {self.sc.keepalive}"
            out.append(line.replace("jungregio-1", self.van))
        d = self.work / "vanmq"
        out += ["persistence true", f"persistence_location {d}/"]
        return "\n".join(out)

    def start(self) -> None:
        self.bed.start()
        self._mosquitto("central", "hub", "listener 1883 0.0.0.0\nallow_anonymous true\n"
                        "max_queued_messages 0\npersistence false")  # fmt: skip
        hs = {"work": str(self.work), "port": 1883, "van": self.van}
        (self.work / "hub.json").write_text(json.dumps(hs))
        hub = self._spawn(
            "hub", "hub", PY, str(HERE / "netbed/netbed_centre.py"), str(self.work / "hub.json")
        )
        self._wait_file(self.work / "hub.ready", hub, "the hub")
        sc = self.sc
        if sc.mode == "bridge":
            self._mosquitto("vanmq", "van", self.bridge_conf())
            host = "127.0.0.1"
        else:
            host = self.bed.addr["hub"]
        tz = ZoneInfo("Europe/Berlin")
        day = datetime.now(tz).date() - timedelta(days=1)  # the past: the hub refuses the future
        start = datetime(day.year, day.month, day.day, 8, 30, tzinfo=tz)
        vs = {
            "work": str(self.work), "van": self.van, "speed": sc.speed,
            "sim_start": start.timestamp(), "sim_seconds": sc.sim_seconds, "seed": sc.seed,
            "bridge": sc.mode == "bridge", "untuned": sc.untuned,
            "mqtt": {"host": host, "port": 1883, "keepalive": sc.keepalive, "rate_limit": 50.0,
                     "reconnect_max_s": sc.reconnect_max_s},
        }  # fmt: skip
        (self.work / "van.json").write_text(json.dumps(vs))
        van = self._spawn(
            "van", "van", PY, str(HERE / "netbed/netbed_van.py"), str(self.work / "van.json")
        )
        self._wait_file(self.work / "van.ready", van, "the van")

    def stop(self) -> None:
        for _name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _name, p in reversed(self.procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        self.bed.close()

    # --- the timeline -----------------------------------------------------------------

    def status(self) -> dict:
        try:
            return json.loads((self.work / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def _down(self, seconds: float) -> None:
        t = time.time()
        self.bed.set_down(True)
        time.sleep(seconds)
        self.bed.set_down(False)
        self.windows.append((t, time.time()))

    def execute(self) -> dict:
        sc = self.sc
        t0 = time.monotonic()
        events = sorted(sc.blackouts)
        if sc.flap:
            up, down, total = sc.flap
            at = 5.0
            while at < 5.0 + total:
                events.append((at + up, down))
                at += up + down
        for at, dur in events:
            wait = t0 + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._down(dur)
        deadline = time.monotonic() + sc.sim_seconds / sc.speed + sc.drain_timeout
        while time.monotonic() < deadline:
            st = self.status()
            if st.get("done") and st.get("outbox") == 0 and not self.missing():
                break
            time.sleep(0.5)
        c0, i0, w0 = self.bed.counters(), time.monotonic(), time.time()
        time.sleep(sc.idle_s)
        c1, i1 = self.bed.counters(), time.monotonic()
        result = self.judge(t0)
        # the link's own cost by the clock: pings and probes (messages, e.g. a tally,
        # that fell into the window are taken out; they are counted apart)
        idle = c1["up_bytes"] + c1["down_bytes"] - c0["up_bytes"] - c0["down_bytes"]
        msgs = sum(m["n"] + 120 for m in self._jsonl("wire.jsonl") if m["t"] >= w0)
        idle = max(0, idle - msgs)  # each crossed the link once, with headers and its ack
        result["idle_bytes_per_s"] = round(idle / (i1 - i0), 2) if sc.idle_s else None
        result["wire"] = c1
        result["bytes_per_day"] = self.per_day(result, c0, i0 - t0)
        return result

    # --- judging ----------------------------------------------------------------------

    def _ids(self, db: Path, van: str | None = None) -> dict[str, list[str]]:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            out = {}
            for t in ("footfall", "checkins", "stop_visits", "positions"):
                q = f"SELECT id FROM {t}" + (" WHERE van = ?" if van else "")
                out[t] = [r[0] for r in conn.execute(q, (van,) if van else ())]
            return out
        finally:
            conn.close()

    def missing(self) -> int:
        try:
            v, h = self._ids(self.work / "van.db"), self._ids(self.work / "hub.db", self.van)
        except sqlite3.Error:
            return -1
        return sum(len(set(v[t]) - set(h[t])) for t in v)

    def _jsonl(self, name: str) -> list[dict]:
        p = self.work / name
        return [json.loads(x) for x in p.read_text().splitlines() if x] if p.exists() else []

    def judge(self, t0: float) -> dict:
        v, h = self._ids(self.work / "van.db"), self._ids(self.work / "hub.db", self.van)
        lost = {t: len(set(v[t]) - set(h[t])) for t in v}
        stored_twice = {t: len(h[t]) - len(set(h[t])) for t in h}
        wire = self._jsonl("wire.jsonl")
        seen: dict[str, int] = {}
        for m in wire:
            for i in m["ids"]:
                seen[i] = seen.get(i, 0) + 1
        src = "bridge" if self.sc.mode == "bridge" else "box"
        link = [x for x in self._jsonl("link.jsonl") if x["src"] == src]
        # the centre's view: the box's last will (status offline), the bridge's (0)
        gone = {"status": "offline", "bridge": "0"}
        central = [m["t"] for m in wire if m["topic"] in gone and m.get("p") == gone[m["topic"]]]
        hello = {"status": "online", "bridge": "1"}
        welcome = [m["t"] for m in wire if m["topic"] in hello and m.get("p") == hello[m["topic"]]]
        outages = []
        for down_at, up_at in self.windows:
            noticed = next((x["t"] for x in link if not x["up"] and x["t"] >= down_at), None)
            if noticed is not None and noticed > up_at:
                noticed = None
            c_noticed = next((t for t in central if down_at <= t <= up_at), None)
            before = [x for x in link if x["t"] <= up_at]
            down_then = bool(before) and not before[-1]["up"]
            back = next((x["t"] for x in link if x["up"] and x["t"] >= up_at), None)
            c_back = next((t for t in welcome if t >= up_at), None) if c_noticed else None
            outages.append({
                "down_s": round(up_at - down_at, 1),
                "noticed_after_s": None if noticed is None else round(noticed - down_at, 1),
                "central_noticed_after_s": None if c_noticed is None
                else round(c_noticed - down_at, 1),
                # only where the van was without a connection when the link came back
                "reconnected_after_s": round(back - up_at, 1) if down_then and back else None,
                "down_when_link_returned": down_then,
                # the centre's view: the van (or its bridge) online again
                "central_back_after_s": None if c_back is None else round(c_back - up_at, 1),
            })  # fmt: skip
        return {
            "scenario": asdict(self.sc),
            "shaper": self.bed.kind,
            "events": {t: len(x) for t, x in v.items()},
            "lost": lost,
            "stored_twice": stored_twice,
            "delivered_twice": sum(1 for n in seen.values() if n > 1),
            "messages": len(wire),
            "outages": outages,
            "priority_ok": self.priority_ok(wire),
            "publisher": self.status().get("stats", {}),
            "wall_s": round(time.monotonic() - t0, 1),
        }

    def priority_ok(self, wire: list[dict]) -> bool | None:
        """After each outage: everything but positions that waited went out before the
        positions that waited (None: no outage with both waiting)."""
        kinds = {e["id"]: (e["kind"], e["t"]) for e in self._jsonl("events.jsonl")}
        verdict = None
        for down_at, up_at in self.windows:
            first_at: dict[str, int] = {}
            for n, m in enumerate(wire):
                if m["t"] >= up_at:
                    for i in m["ids"]:
                        first_at.setdefault(i, n)
            waited = [(kinds[i][0], n) for i, n in first_at.items()
                      if i in kinds and down_at <= kinds[i][1] < up_at]  # fmt: skip
            pos = [n for k, n in waited if k == "position"]
            other = [n for k, n in waited if k != "position"]
            if pos and other:
                ok = max(other) < sorted(pos)[1 if len(pos) > 1 else 0]  # the newest fix
                verdict = ok if verdict is None else verdict and ok  # may lead as location
        return verdict

    def per_day(self, r: dict, c: dict, wall_s: float) -> dict:
        """Bytes on the wire scaled to an 8-hour service day: what the events cost
        (measured at speed-up, scaled by simulated time) plus what the link costs by
        the clock (keepalive, measured idle) and the tallies (one per 5 min)."""
        total = c["up_bytes"] + c["down_bytes"]
        idle = r.get("idle_bytes_per_s") or 0.0
        tallies = [m for m in self._jsonl("wire.jsonl") if m["topic"] == "tally"]
        tally_each = sum(m["n"] for m in tallies) / len(tallies) if tallies else 0
        events_part = max(0.0, total - idle * wall_s) * SERVICE_DAY_S / self.sc.sim_seconds
        payload = sum(m["n"] for m in self._jsonl("wire.jsonl")) or 1
        overhead = total / payload
        day = events_part + idle * SERVICE_DAY_S + tally_each * overhead * TALLIES_PER_DAY
        return {"total": round(day), "events": round(events_part),
                "clock": round(idle * SERVICE_DAY_S),
                "tallies": round(tally_each * overhead * TALLIES_PER_DAY),
                "wire_per_payload_byte": round(overhead, 2)}  # fmt: skip


def run_scenario(sc: Scenario, work: Path | None = None, keep: bool = False) -> dict:
    reason = unavailable()
    if reason:
        raise NetbedError(reason)
    tmp = work is None
    work = work or Path(tempfile.mkdtemp(prefix="vanbox-netbed-"))
    run = Run(sc, work)
    old = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        run.start()
        result = run.execute()
    finally:
        run.stop()
        signal.signal(signal.SIGTERM, old)
    (work / "result.json").write_text(json.dumps(result, indent=2))
    result["work"] = str(work)
    if tmp and not keep and result_ok(result):
        shutil.rmtree(work, ignore_errors=True)
    return result


def result_ok(r: dict, keepalive: float | None = None) -> bool:
    ka = keepalive or r["scenario"]["keepalive"]
    # The van must notice (in bridge mode: the centre, see docs/mobile-link.md).
    bridge = r["scenario"]["mode"] == "bridge"
    key = "central_noticed_after_s" if bridge else "noticed_after_s"
    limit = 1.5 * ka + (BROKER_CHECK_S if bridge else 0.0)
    outages_ok = all(
        o[key] is not None
        and o[key] <= limit
        and (
            (o["central_back_after_s"] is not None and o["central_back_after_s"] <= 10.0)
            if bridge
            else not o["down_when_link_returned"]
            or (o["reconnected_after_s"] is not None and o["reconnected_after_s"] <= 10.0)
        )
        for o in r["outages"]
        if o["down_s"] >= 1.5 * ka
    )
    return (
        not any(r["lost"].values())
        and not any(r["stored_twice"].values())
        and outages_ok
        and r["priority_ok"] is not False
    )


def summary(r: dict) -> str:
    sc = r["scenario"]
    o = r["outages"]
    noticed = [x["noticed_after_s"] for x in o if x["noticed_after_s"] is not None]
    central = [x["central_noticed_after_s"] for x in o if x["central_noticed_after_s"] is not None]
    back = [x["reconnected_after_s"] for x in o if x["reconnected_after_s"] is not None]
    c_back = [x["central_back_after_s"] for x in o if x["central_back_after_s"] is not None]
    bd = r["bytes_per_day"]
    lines = [
        f"profile {sc['profile']} ({r['shaper']}), {sc['mode']}, keepalive {sc['keepalive']} s,"
        f" {len(o)} outage(s), {r['wall_s']} s",
        f"  events {sum(r['events'].values())}: lost {sum(r['lost'].values())}, stored twice"
        f" {sum(r['stored_twice'].values())}, delivered twice {r['delivered_twice']}",
        f"  dead link noticed by the van after {_span(noticed)} s, by the centre after"
        f" {_span(central)} s; reconnected {_span(back)} s after the link returned"
        f" ({sum(x['down_when_link_returned'] for x in o)} time(s)), online at the centre"
        f" again after {_span(c_back)} s;"
        f" priority order {r['priority_ok']}",
        f"  bytes per service day {bd['total'] / 1e6:.2f} MB (events {bd['events'] / 1e6:.2f},"
        f" clock {bd['clock'] / 1e6:.2f}, tallies {bd['tallies'] / 1e6:.2f};"
        f" {bd['wire_per_payload_byte']} wire bytes per payload byte)",
    ]
    return "\n".join(lines)


def _span(xs: list[float]) -> str:
    if not xs:
        return "-"
    return (
        f"{min(xs)}"
        if len(xs) == 1
        else f"{min(xs)}..{max(xs)} (median {sorted(xs)[len(xs) // 2]})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="lte", choices=sorted(PROFILES))
    ap.add_argument("--mode", default="direct", choices=["direct", "bridge"])
    ap.add_argument("--keepalive", type=int, default=10)
    ap.add_argument("--speed", type=float, default=120.0, help="simulated/real time")
    ap.add_argument("--sim-minutes", type=float, default=120.0, help="simulated service time")
    ap.add_argument(
        "--blackout",
        action="append",
        default=[],
        metavar="AT:FOR",
        help="seconds after the start : seconds dark (repeatable)",
    )
    ap.add_argument("--flap", metavar="UP:DOWN:FOR", help="e.g. 5:5:300")
    ap.add_argument("--shaper", default="auto", choices=["auto", "netem", "tun"])
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle link to measure")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    try:
        blackouts = [tuple(float(x) for x in b.split(":")) for b in a.blackout]
        flap = tuple(float(x) for x in a.flap.split(":")) if a.flap else None
        if any(len(b) != 2 for b in blackouts) or (flap and len(flap) != 3):
            raise ValueError
    except ValueError:
        print("--blackout AT:FOR, --flap UP:DOWN:FOR (seconds)", file=sys.stderr)
        return 2
    sc = Scenario(a.profile, a.mode, a.keepalive, a.speed, a.sim_minutes * 60,
                  blackouts, flap, idle_s=a.idle, shaper=a.shaper)  # type: ignore[arg-type]  # fmt: skip
    reason = unavailable()
    if reason:
        print(f"netbed: skipped: {reason}")
        return 0
    if a.workdir:
        a.workdir.mkdir(parents=True, exist_ok=True)
    try:
        r = run_scenario(sc, a.workdir, a.keep)
    except KeyboardInterrupt:
        print("netbed: interrupted; namespaces and processes removed", file=sys.stderr)
        return 130
    except NetbedError as e:
        print(f"netbed: {e}", file=sys.stderr)
        return 2
    print(summary(r))
    print(f"files: {r['work']}" if Path(r["work"]).exists() else "")
    return 0 if result_ok(r) else 1


if __name__ == "__main__":
    sys.exit(main())
