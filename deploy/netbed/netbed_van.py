"""The van of the network test bed: ``python deploy/netbed/netbed_van.py SETTINGS.json``.

Runs inside the van's network namespace: the real store (SQLite, WAL) and the real
publisher (telemetry/publisher.py), fed by a simulated service day at ``speed`` times
real time (GPS at 1 Hz through the real deadband, stop visits, door counts and check-ins
at the stops). The network timers (keepalive, TCP, reconnects) run in real time.

It writes, for ``deploy/netbed.py`` to judge:

- ``events.jsonl``: every recorded event (wall time, id, kind);
- ``link.jsonl``: every change of the link as the van sees it (wall time, up/down,
  ``box`` = the publisher's connection, ``bridge`` = the local bridge's state);
- ``status.json``: generator done?, outbox depth, the publisher's figures.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from firmware.simulator import demo_day  # noqa: E402
from telemetry import kinds  # noqa: E402
from telemetry.deadband import Deadband  # noqa: E402
from telemetry.events import CheckIn, Footfall, Position, StopVisit  # noqa: E402
from telemetry.publisher import Publisher  # noqa: E402
from telemetry.store import Store  # noqa: E402

VISITS_PER_H = 12.0  # door counts: in and out per visit
CHECKINS_PER_H = 3.0


def service_day(start: datetime, seconds: float, seed: int):
    """(sim time, event) of a service day from ``start``, in time order: the demo tour
    stretched to 8 hours, GPS at 1 Hz through the deadband."""
    route = demo_day(start, stop_minutes=45, depot_minutes=20)
    rng = random.Random(seed)
    deadband = Deadband()
    visit: StopVisit | None = None
    inside: list[float] = []
    t0 = start.timestamp()
    for s in range(int(seconds)):
        t = start + timedelta(seconds=s)
        st = route.at(t)
        out: list = []
        pos = Position(time=t, lat=st.lat, lon=st.lon, speed=st.speed, track=st.track, hdop=0.9,
                       sats=9)  # fmt: skip
        if st.stop is not None and visit is None:
            visit = StopVisit(t, st.stop[0], st.stop[1], st.stop[2], st.stop[3])
            out.append(visit)
        elif st.stop is None and visit is not None:
            out.append(StopVisit(visit.arrived, visit.name, visit.municipality, visit.lat,
                                 visit.lon, left=t, id=visit.id))  # fmt: skip
            visit = None
        if deadband.accept(pos):
            out.append(pos)
        if st.stop is not None:
            if rng.random() < VISITS_PER_H / 3600:
                inside.append(t0 + s + rng.uniform(120, 1200))
                out.append(Footfall(t, "in", "beam-pair", occupancy=len(inside)))
            if rng.random() < CHECKINS_PER_H / 3600:
                out.append(
                    CheckIn(
                        t,
                        rng.choice(["15-17", "18-20", "21-24"]),
                        ("job",),
                        first_visit=rng.random() < 0.3,
                        language="de",
                    )
                )
        for when in [w for w in inside if w <= t0 + s or st.stop is None]:
            inside.remove(when)
            out.append(Footfall(t, "out", "beam-pair", occupancy=len(inside)))
        for ev in out:
            yield t0 + s, ev


class Van:
    def __init__(self, s: dict) -> None:
        self.s = s
        self.work = Path(s["work"])
        self.store = Store(self.work / "van.db", van=s["van"], tz="Europe/Berlin", tid="NB")
        self.pub = Publisher(self.store, s["mqtt"], van=s["van"], tid="NB",
                             reconcile=s.get("reconcile", True))  # fmt: skip
        self.stop = threading.Event()
        self.done = False
        self._linkf = open(self.work / "link.jsonl", "a", buffering=1)  # noqa: SIM115

    def note_link(self, src: str, up: bool) -> None:
        self._linkf.write(json.dumps({"t": time.time(), "src": src, "up": up}) + "\n")

    def watch_box(self) -> None:
        last = None
        while not self.stop.wait(0.01):
            up = self.pub.connected
            if up != last:
                self.note_link("box", up)
                last = up

    def watch_bridge(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"netbed-watch-{os.getpid()}")
        topic = f"vanbox/{self.s['van']}/bridge"
        c.on_connect = lambda cl, *_: cl.subscribe(topic, 1)
        c.on_message = lambda _c, _u, m: self.note_link("bridge", m.payload == b"1")
        c.connect_async("127.0.0.1", int(self.s["mqtt"]["port"]), 10)
        c.loop_start()

    def generate(self) -> None:
        s = self.s
        start = datetime.fromtimestamp(s["sim_start"], UTC)
        wall0 = time.time()
        with open(self.work / "events.jsonl", "a", buffering=1) as f:
            for sim_t, ev in service_day(start, s["sim_seconds"], s.get("seed", 1)):
                due = wall0 + (sim_t - s["sim_start"]) / s["speed"]
                delay = due - time.time()
                if delay > 0 and self.stop.wait(delay):
                    return
                self.store.record(ev)
                kind = kinds.of(ev).name
                f.write(json.dumps({"t": time.time(), "id": ev.id, "kind": kind}) + "\n")
        self.done = True

    def write_status(self) -> None:
        st = {"done": self.done, "outbox": self.store.outbox_depth(), "stats": self.pub.stats()}
        tmp = self.work / "status.tmp"
        tmp.write_text(json.dumps(st, default=str))
        os.replace(tmp, self.work / "status.json")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        self.pub.start()
        self.store.add_listener(self.pub.wake)
        threading.Thread(target=self.watch_box, daemon=True).start()
        if self.s.get("bridge"):
            self.watch_bridge()
        gen = threading.Thread(target=self.generate, daemon=True)
        gen.start()
        (self.work / "van.ready").write_text(str(os.getpid()))
        while not self.stop.wait(0.25):
            self.write_status()
        self.pub.stop()
        self.write_status()
        self.store.close()
        return 0


def untune() -> None:
    """The publisher as it was before the mobile-link tuning (the benchmark's baseline):
    no TCP keepalive or TCP_USER_TIMEOUT, a 10 s connect, the full backoff when dark."""
    from telemetry import publisher

    publisher.tune_socket = lambda sock, keepalive: None
    publisher.SILENT_RETRY_S = 1e9
    publisher.TCP_CONNECT_S = 10.0


def main(path: str) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s van %(levelname)s %(name)s: %(message)s")  # fmt: skip
    settings = json.loads(Path(path).read_text())
    if settings.get("untuned"):
        untune()
    return Van(settings).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
