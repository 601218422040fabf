"""A fleet simulator for sizing a hub: N lightweight vans as real MQTT clients.

    python -m hub.fleet_sim --vans 1000 --broker 127.0.0.1:1883 [--speed 1] [--duration S]
    vanbox fleet-sim --vans 1000 --broker HOST:PORT ...

Each van is its own MQTT connection (client id ``sim-<van>``, QoS 1, a retained
``status`` online with the last will ``offline``) and sends the box's real payloads
(the encoders of :mod:`telemetry.topics`) at the box's real rates: a fix every 30 s while
parked and every 5 s while driving (parked 20..60 min, then driving 5..20 min), a door
count about every 4 min while parked, a check-in about every 20 min while parked, and its
per-day tally (retained) every 5 min, counting only what the broker acknowledged.
``--speed F`` divides every interval by F (event times stay the wall clock: the hub
refuses events from the future). It is not a full box: no store, no outbox, no resend.

The vans are spread over ``--threads`` driver threads; each drives its clients' network
loops itself (no thread per van), so 1,000 vans are one process with a few threads.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import select
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from telemetry import tally, topics
from telemetry.categories import AGE_GROUPS
from telemetry.errors import ConfigError, VanboxError
from telemetry.events import CheckIn, Footfall, Position

log = logging.getLogger("vanbox.fleet_sim")

PARKED_FIX_S = 30.0
DRIVING_FIX_S = 5.0
PARKED_S = (20 * 60.0, 60 * 60.0)
DRIVING_S = (5 * 60.0, 20 * 60.0)
FOOTFALL_MEAN_S = 240.0
CHECKIN_MEAN_S = 1200.0
TALLY_S = 300.0
HOME = (52.3206, 10.2336)  # Peine
MAX_VANS = 20_000


@dataclass(frozen=True)
class SimOptions:
    vans: int
    host: str
    port: int
    speed: float = 1.0
    prefix: str = "vanbox"
    threads: int = 4
    seed: int = 1
    first: int = 0  # the first van's number (van ids sim-00000, ...)
    timezone: str = "Europe/Berlin"  # the hub's: a tally counts per local day

    def __post_init__(self) -> None:
        if not 1 <= self.vans <= MAX_VANS:
            raise ConfigError(f"--vans {self.vans}: use 1..{MAX_VANS}")
        if not (math.isfinite(self.speed) and 0.01 <= self.speed <= 1000):
            raise ConfigError(f"--speed {self.speed}: use 0.01..1000 (1 = real rates)")
        if not 1 <= self.threads <= 64:
            raise ConfigError(f"--threads {self.threads}: use 1..64")
        if not 1 <= self.port <= 65535 or not self.host:
            raise ConfigError(f"--broker {self.host}:{self.port}: use HOST:PORT")
        if not 0 <= self.first <= 99_999 - self.vans:
            raise ConfigError(f"--first {self.first}: use 0..{99_999 - self.vans}")


def parse_broker(text: str) -> tuple[str, int]:
    """``host:port`` (or ``host``, port 1883) -> (host, port); a clear error otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), "1883"
    if not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ConfigError(f"--broker {text!r}: use HOST:PORT, e.g. 127.0.0.1:1883")
    return host, int(port)


@dataclass
class Van:
    """One simulated van: its connection, where it is, and what the broker acknowledged."""

    id: str
    client: mqtt.Client
    rng: random.Random
    lat: float
    lon: float
    heading: float = 0.0
    driving: bool = False
    phase_end: float = 0.0
    next_fix: float = 0.0
    next_count: float = 0.0
    next_checkin: float = 0.0
    next_tally: float = 0.0
    next_due: float = 0.0  # the earliest of the above and phase_end
    inflight: dict[int, tuple[str, str]] = field(default_factory=dict)  # mid -> (day, kind)
    acked: Counter = field(default_factory=Counter)  # (day, kind) -> n
    lock: threading.Lock = field(default_factory=threading.Lock)


class FleetSim:
    """Run ``opts.vans`` vans until :meth:`stop`. ``sent`` counts messages per topic kind;
    ``on_send(van, kind, event_id, t)`` (optional) sees every event as it is published."""

    def __init__(self, opts: SimOptions, on_send=None) -> None:
        self.opts = opts
        self.on_send = on_send
        self.sent: Counter = Counter()
        self.acked = 0
        self.errors = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.vans: list[Van] = []
        self._lock = threading.Lock()
        self.tz = ZoneInfo(opts.timezone)

    def _scale(self, seconds: float) -> float:
        return seconds / self.opts.speed

    def _make_van(self, n: int, now: float) -> Van:
        o = self.opts
        vid = f"sim-{o.first + n:05d}"
        rng = random.Random(o.seed * 1_000_003 + n)
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=vid, clean_session=True)
        status = topics.topic(o.prefix, vid, "status")
        c.will_set(status, topics.OFFLINE, qos=1, retain=True)
        c.max_inflight_messages_set(100)
        lat = HOME[0] + rng.uniform(-0.15, 0.15)
        lon = HOME[1] + rng.uniform(-0.2, 0.2)
        van = Van(vid, c, rng, lat, lon, heading=rng.uniform(0, 360))
        van.driving = rng.random() < 0.3
        van.phase_end = now + self._scale(rng.uniform(*(DRIVING_S if van.driving else PARKED_S)))
        # Spread the first messages over one interval, so 1,000 vans do not start in step.
        van.next_fix = now + self._scale(rng.uniform(0, PARKED_FIX_S))
        van.next_count = now + self._scale(rng.expovariate(1 / FOOTFALL_MEAN_S))
        van.next_checkin = now + self._scale(rng.expovariate(1 / CHECKIN_MEAN_S))
        van.next_tally = now + self._scale(rng.uniform(0, TALLY_S))
        c.on_publish = lambda client, userdata, mid, rc, props, v=van: self._acked(v, mid)
        c.connect(o.host, o.port, keepalive=60)
        c.publish(status, topics.ONLINE, qos=1, retain=True)
        return van

    def _acked(self, van: Van, mid: int) -> None:
        with van.lock:
            key = van.inflight.pop(mid, None)
            if key is not None:
                van.acked[key] += 1
        with self._lock:
            self.acked += 1

    def start(self) -> None:
        now = time.monotonic()
        self.vans = [self._make_van(i, now) for i in range(self.opts.vans)]
        shares = [self.vans[i :: self.opts.threads] for i in range(self.opts.threads)]
        for i, share in enumerate(s for s in shares if s):
            t = threading.Thread(target=self._drive, args=(share,), name=f"sim-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, offline: bool = True) -> None:
        """Stop the drivers; each van says ``offline`` (retained) and disconnects."""
        self._stop.set()
        for t in self._threads:
            t.join(10)
        for v in self.vans:
            try:
                if offline:
                    topic = topics.topic(self.opts.prefix, v.id, "status")
                    v.client.publish(topic, topics.OFFLINE, qos=1, retain=True)
                v.client.disconnect()  # after the offline message: TCP keeps the order
                for _ in range(100):
                    if not v.client.want_write():
                        break
                    v.client.loop_write()
            except Exception:  # noqa: BLE001 - a van already gone
                pass
        self._threads = []

    def run_for(self, seconds: float) -> None:
        self.start()
        try:
            self._stop.wait(seconds)
        finally:
            self.stop()

    # --- the driver threads ---------------------------------------------------------

    def _drive(self, vans: list[Van]) -> None:
        """One thread's vans: their due messages, then one poll() over their sockets (no
        fd limit, unlike select) and paho's read/write/keepalive for each."""
        last_misc = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            poller = select.poll()
            socks: dict[int, Van] = {}
            for v in vans:
                try:
                    if now >= v.next_due:
                        self._step(v, now)
                    sock = v.client.socket()
                    if sock is not None:
                        fd = sock.fileno()
                        socks[fd] = v
                        poller.register(
                            fd, select.POLLIN | (select.POLLOUT if v.client.want_write() else 0)
                        )
                except Exception:  # noqa: BLE001 - one van's fault is counted, not fatal
                    self.errors += 1
                    log.exception("van %s", v.id)
            for fd, ev in poller.poll(50):
                c = socks[fd].client
                if ev & (select.POLLIN | select.POLLERR | select.POLLHUP):
                    c.loop_read()
                if ev & select.POLLOUT:
                    c.loop_write()
            if now - last_misc >= 1.0:  # keepalive pings, reconnect bookkeeping
                last_misc = now
                for v in vans:
                    v.client.loop_misc()

    def _publish(self, v: Van, kind: str, payload: dict, *, tally_kind: str = "",
                 event_id: str = "", retain: bool = False) -> None:  # fmt: skip
        topic = topics.topic(self.opts.prefix, v.id, kind)
        info = v.client.publish(topic, topics.dumps(payload), qos=1, retain=retain)
        with self._lock:
            self.sent[kind] += 1
        if tally_kind:
            day = datetime.now(self.tz).date().isoformat()
            with v.lock:
                v.inflight[info.mid] = (day, tally_kind)
        if event_id and self.on_send is not None:
            self.on_send(v.id, kind, event_id, time.time())

    def _step(self, v: Van, now: float) -> None:
        rng = v.rng
        if now >= v.phase_end:
            v.driving = not v.driving
            v.heading = rng.uniform(0, 360)
            v.phase_end = now + self._scale(rng.uniform(*(DRIVING_S if v.driving else PARKED_S)))
        wall = datetime.now(UTC)
        if now >= v.next_fix:
            interval = DRIVING_FIX_S if v.driving else PARKED_FIX_S
            v.next_fix = now + self._scale(interval)
            speed = rng.uniform(8, 22) if v.driving else 0.0
            if v.driving:  # move the real distance of one interval (about 10..100 m)
                d = speed * interval / 111_000
                v.lat += d * math.cos(math.radians(v.heading))
                v.lon += d * math.sin(math.radians(v.heading)) / math.cos(math.radians(v.lat))
                v.lat = min(max(v.lat, HOME[0] - 0.3), HOME[0] + 0.3)
                v.lon = min(max(v.lon, HOME[1] - 0.4), HOME[1] + 0.4)
            p = Position(time=wall, lat=v.lat, lon=v.lon, speed=speed, hdop=0.9, sats=9,
                         track=v.heading, van=v.id)  # fmt: skip
            self._publish(v, "location", topics.location_payload(p, v.id[-2:]),
                          tally_kind="position", event_id=p.id, retain=True)  # fmt: skip
        if not v.driving and now >= v.next_count:
            v.next_count = now + self._scale(rng.expovariate(1 / FOOTFALL_MEAN_S))
            ev = Footfall(time=wall, kind=rng.choice(("in", "out")), van=v.id)
            self._publish(v, "footfall", topics.footfall_payload(ev, {}), tally_kind="footfall",
                          event_id=ev.id)  # fmt: skip
        if not v.driving and now >= v.next_checkin:
            v.next_checkin = now + self._scale(rng.expovariate(1 / CHECKIN_MEAN_S))
            ci = CheckIn(time=wall, age_group=rng.choice(AGE_GROUPS), van=v.id)
            self._publish(v, "checkin", topics.checkin_payload(ci), tally_kind="checkin",
                          event_id=ci.id)  # fmt: skip
        if now >= v.next_tally:
            v.next_tally = now + self._scale(TALLY_S)
            self.publish_tally(v)
        v.next_due = min(v.phase_end, v.next_fix, v.next_tally,
                         v.next_count if not v.driving else v.phase_end,
                         v.next_checkin if not v.driving else v.phase_end)  # fmt: skip

    def publish_tally(self, v: Van) -> None:
        """The van's tally (retained): what the broker acknowledged, per day and kind."""
        with v.lock:
            days: dict[str, dict[str, int]] = {}
            for (day, kind), n in v.acked.items():
                days.setdefault(day, {})[kind] = n
            queued = len(v.inflight)
        out = tally.encode(days, tst=time.time(), outbox=queued)
        topic = topics.topic(self.opts.prefix, v.id, "tally")
        v.client.publish(topic, out, qos=1, retain=True)
        with self._lock:
            self.sent["tally"] += 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vans", type=int, default=100, help="how many vans (default 100)")
    p.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT (default 127.0.0.1:1883)")
    p.add_argument("--speed", type=float, default=1.0, help="rates times F (default 1: real)")
    p.add_argument("--duration", type=float, default=0, help="seconds to run (default: until ^C)")
    p.add_argument("--threads", type=int, default=4, help="driver threads (default 4)")
    p.add_argument("--prefix", default="vanbox", help="topic prefix (default vanbox)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--first", type=int, default=0, help="number of the first van (default 0)")


def run(args: argparse.Namespace) -> int:
    """The command; a wrong option or an unreachable broker is a :class:`ConfigError`."""
    host, port = parse_broker(args.broker)
    opts = SimOptions(args.vans, host, port, args.speed, args.prefix, args.threads,
                      args.seed, args.first)  # fmt: skip
    if not (math.isfinite(args.duration) and args.duration >= 0):
        raise ConfigError(f"--duration {args.duration}: use seconds >= 0 (0: until ^C)")
    sim = FleetSim(opts)
    t0 = time.monotonic()
    try:
        sim.start()
    except OSError as e:
        sim.stop(offline=False)
        raise ConfigError(
            f"--broker {args.broker}: cannot connect ({e.strerror or e}); is mosquitto running?"
        ) from None
    print(f"{opts.vans} vans connected to {host}:{port} in {time.monotonic() - t0:.1f} s")
    end = t0 + args.duration if args.duration else math.inf
    try:
        while time.monotonic() < end:
            time.sleep(min(10.0, max(0.1, end - time.monotonic())))
            el = time.monotonic() - t0
            total = sum(sim.sent.values())
            print(f"{el:7.0f} s  sent {total} ({total / el:.1f}/s)  acked {sim.acked}  "
                  f"{dict(sim.sent)}  errors {sim.errors}", flush=True)  # fmt: skip
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hub.fleet_sim", description=__doc__.split("\n")[0])
    add_arguments(ap)
    logging.basicConfig(level=logging.WARNING)
    try:
        return run(ap.parse_args(argv))
    except VanboxError as e:
        print(f"fleet_sim: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
