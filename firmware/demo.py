"""``vanbox demo``: the whole box with simulated hardware and no config file.

A day's route through the seven municipalities of the Landkreis Peine is replayed as
NMEA through a pty (the real GPS reader reads it), visitors walk through the simulated
infrared beams (gpiozero's MockFactory) while the van stands at a stop, and the kiosk,
the public map and the staff reports are served on http://127.0.0.1:8080. It publishes
to the MQTT broker on localhost:1883 when there is one and buffers in the outbox when
there is none. Simulated time runs ``--speed`` times faster than the wall clock, but
never ahead of it: a start later than now is taken from the day before, and once the
simulated clock has caught up with the wall clock it runs at real time (the hub refuses
events from more than a few minutes in the future). Some of the simulated visitors also
check in on the "touchscreen" (:class:`CheckIns`), so every report has data. The demo
works in a temp folder (database, staff login file, GPS pty link) that is removed when it
ends.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from telemetry.categories import HEARD_FROM, LANGUAGES, TOPICS
from telemetry.config import default_config
from telemetry.errors import VanboxError

from .box import Box, broker_reachable
from .simulator import DEPOT, NmeaFeeder, demo_day, demo_tour

log = logging.getLogger("vanbox.demo")


def add_arguments(parser) -> None:
    parser.add_argument("--mqtt", default="localhost:1883", metavar="HOST:PORT",
                        help="broker to publish to (default localhost:1883)")  # fmt: skip
    parser.add_argument("--no-mqtt", action="store_true", help="do not publish at all")
    parser.add_argument("--speed", type=float, default=10.0,
                        help="simulated seconds per real second (default 10)")  # fmt: skip
    parser.add_argument("--port", type=int, default=8080, help="web port (default 8080)")
    parser.add_argument("--db", help="database file (default: a new one in a temp folder)")
    parser.add_argument(
        "--start", default="08:45", help="simulated local start time HH:MM, or 'now'"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for the visitors")
    parser.add_argument(
        "--duration", type=float, default=None, help="stop after this many real seconds"
    )
    parser.add_argument("--van", default="jungregio-demo", help="van id (default jungregio-demo)")


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise VanboxError(f"--mqtt {text!r}: use HOST:PORT, e.g. localhost:1883")
    return host, int(port)


def sim_start(text: str, tz, now: datetime | None = None) -> datetime:
    """The simulated start: today at ``HH:MM``, or the day before if that is later than
    ``now`` (the simulated clock must never run ahead of the wall clock)."""
    now = now or datetime.now(tz)
    if text == "now":
        return now
    try:
        h, m = (int(x) for x in text.split(":"))
        start = now.replace(hour=h, minute=m, second=0, microsecond=0)
    except ValueError:
        raise VanboxError(f"--start {text!r}: use HH:MM (24 hours) or 'now'") from None
    return start - timedelta(days=1) if start > now else start


AGES = ("15-17", "18-20", "21-24", "25-27")


class CheckIns:
    """Some of the people who walk in also check in on the touchscreen: categories drawn
    at random (no person, no free text), recorded by the box like the kiosk's."""

    def __init__(self, box, clock, *, seed: int = 1, share: float = 0.6) -> None:
        self.box, self.clock = box, clock
        self.rng = random.Random(seed + 1)
        self.share = share
        self.count = 0

    def on_walk(self, direction: str) -> None:
        from telemetry.events import CheckIn

        if direction != "in" or self.rng.random() >= self.share:
            return
        rng = self.rng
        first = rng.random() < 0.4
        self.box.record(
            CheckIn(
                time=self.clock.now(),
                age_group=rng.choice(AGES),
                topics=tuple(sorted(rng.sample(TOPICS, rng.choice((1, 1, 2, 3))))),
                first_visit=first,
                heard_from=rng.choice(HEARD_FROM) if first else None,
                language=rng.choices(LANGUAGES, weights=(12, 2, 2, 2, 2, 1, 1))[0],
            )
        )
        self.count += 1


class Visitors(threading.Thread):
    """While the van stands at a stop, people walk in through the beams and later out
    (:mod:`firmware.visitors`: Poisson arrivals, friends in groups, stays of minutes).
    ``on_walk(direction)`` is called after each walk (the demo posts some check-ins)."""

    def __init__(self, route, clock, driver, *, seed: int = 1, rate_per_h: float = 8.0,
                 on_walk=None) -> None:  # fmt: skip
        super().__init__(name="visitors", daemon=True)
        self.route, self.clock, self.driver = route, clock, driver
        self.rng = random.Random(seed)
        self.rate = rate_per_h
        self.on_walk = on_walk
        self.stop_event = threading.Event()
        self.walked_in = 0
        self.walked_out = 0

    def run(self) -> None:
        from .visitors import VisitorStream, crossings, run_stop

        for leg in self.route.stops():
            if self.stop_event.is_set():
                return
            now = self.clock.now()
            if leg.end <= now:
                continue
            if leg.start > now and not self.clock.sleep_until(leg.start.timestamp(),
                                                              self.stop_event):  # fmt: skip
                return
            left = (leg.end - self.clock.now()).total_seconds()
            plan = crossings(VisitorStream(self.rate, self.rng).visits(left))
            result = run_stop(
                self.driver, self.clock, plan, rng=self.rng, stop=self.stop_event,
                on_walk=lambda c: self.on_walk(c.direction) if self.on_walk else None,
            )  # fmt: skip
            self.walked_in += result.walked_in
            self.walked_out += result.walked_out


def run(args) -> int:
    if args.speed <= 0 or args.speed > 600:
        raise VanboxError(f"--speed {args.speed}: use a factor from 0.1 to 600")
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    base = default_config()
    tz = base.tz
    start = sim_start(args.start, tz)
    from .visitors import SimClock

    clock = SimClock(start, args.speed, ceiling=time.time)
    route = demo_day(start)
    work = Path(tempfile.mkdtemp(prefix="vanbox-demo-"))
    try:
        return _run(args, base, tz, start, clock, route, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args, base, tz, start, clock, route, work: Path) -> int:
    from gpiozero.pins.mock import MockFactory

    from .visitors import PinDriver

    db = args.db or str(work / "vanbox.db")
    overrides: dict = {
        "van": {"id": args.van, "name": "JUNGregio-Mobil (Demo)", "tid": "JR"},
        "database": {"path": db},
        "staff": {"passwd_file": str(work / "staff.passwd")},
        "kiosk": {"bind": "127.0.0.1", "port": args.port},
        "sensor": {"kind": "beam-pair", "pin": 17, "pin_b": 27},
        "tour": {"stops": demo_tour(route, tz)},
        "privacy": {
            "hidden_zones": [{"name": DEPOT[0], "lat": DEPOT[2], "lon": DEPOT[3], "radius_m": 300}]
        },
    }
    mqtt_on = not args.no_mqtt
    if mqtt_on:
        host, port = parse_hostport(args.mqtt)
        overrides["mqtt"] = {"host": host, "port": port, "keepalive": 30}
    cfg = default_config(overrides)

    print(f"vanbox demo: van {args.van}, simulated time {start:%Y-%m-%d %H:%M} "
          f"({tz.key}), {args.speed:g}x real time")  # fmt: skip
    if not mqtt_on:
        print("MQTT: off (--no-mqtt); events stay in the outbox")
    elif broker_reachable(host, port):
        print(f"MQTT: publishing to {host}:{port} (topics vanbox/{args.van}/...)")
    else:
        print(f"MQTT: no broker at {host}:{port}; events wait in the outbox and are sent "
              "when one appears")  # fmt: skip
    caught = datetime.now(tz) + (datetime.now(tz) - start) / max(args.speed - 1, 1e-9)
    if args.speed > 1:
        print(f"The simulated clock catches up with real time at about {caught:%H:%M} and "
              "then runs at real time (it never runs ahead).")  # fmt: skip
    print(f"database: {db}")
    print(f"staff login file: {cfg.staff['passwd_file']} (removed when the demo ends)")

    _demo_login(cfg)
    feeder = NmeaFeeder(route, clock, work / "gps")
    feeder.start()
    pin_factory = MockFactory()
    box = Box(cfg, clock=clock, pin_factory=pin_factory, gps_url=str(work / "gps"), mqtt=mqtt_on)
    try:
        box.start()
    except BaseException:
        feeder.stop()
        raise
    box.install_signal_handlers()
    url = box.web_url
    print(f"kiosk (check-in):   {url}/")
    print(f"public live map:    {url}/map")
    print(f"staff reports:      {url}/staff   (login: {DEMO_USER} / {DEMO_PASSWORD})")
    print(f"box status:         {url}/status")
    driver = PinDriver.for_config(cfg.sensor, pin_factory)
    driver.rest()
    checkins = CheckIns(box, clock, seed=args.seed)
    visitors = Visitors(route, clock, driver, seed=args.seed, on_walk=checkins.on_walk)
    visitors.start()
    print("Ctrl-C stops the demo.", flush=True)

    deadline = None if args.duration is None else time.monotonic() + args.duration
    day_over = False
    try:
        while not box._stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            box._stop.wait(min(5.0, max(0.1, (deadline or 1e18) - time.monotonic())))
            now = clock.now().astimezone(tz)
            s = route.at(now)
            where = s.stop[0] if s.stop else ("driving" if s.speed > 0 else "at the depot")
            t = box.store.today(clock.now())
            print(f"{now:%H:%M:%S} {where:<28} in {t['in']:3d} out {t['out']:3d} "
                  f"inside {t['occupancy']:2d} check-ins {t['checkins']:3d} "
                  f"outbox {box.store.outbox_depth():5d}", flush=True)  # fmt: skip
            if not day_over and now > route.end:
                day_over = True
                print("The simulated day is over; the van stays at the depot. Ctrl-C stops.")
    finally:
        visitors.stop_event.set()
        visitors.join(5)
        box.stop()
        feeder.stop()
    return 0


DEMO_USER, DEMO_PASSWORD = "staff", "vanbox-demo"


def _demo_login(cfg) -> None:
    """A staff login for the demo only, in the demo's own temp folder."""
    from kiosk.auth import hash_password, set_user

    set_user(cfg.staff["passwd_file"], DEMO_USER, hash_password(DEMO_PASSWORD))
