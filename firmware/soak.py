"""``vanbox soak --days N --seed S``: simulated days in the van with every fault at once.

The harness runs, on this machine only:

- a private mosquitto (persistence on, so the hub's queued session survives restarts);
- the real hub (``hub.ingest.Hub``) with its own SQLite file, and its public web app;
- the box as a child process (``firmware.soak_box``): the real Box on simulated GPS
  (a pty this harness writes) and mock GPIO pins with visitors walking through them;
- check-ins posted to the box's real kiosk over HTTP, as a touchscreen would.

Each simulated day is the demo route (depot, seven municipalities, depot), about
``--minutes-per-day`` of real time. A fault schedule drawn from the seed injects broker
outages (seconds to hours), power cuts (SIGKILL at random moments and every night),
the GPS port vanishing and bursts of NMEA garbage, contact chatter, a beam blocked for
an hour, a full disk (a database quota) and jumps of the system clock. At the end it
lets the box drain, checks that nothing was lost or doubled and prints a summary.

Its parts: the fault schedule (:mod:`firmware.soak_faults`), the broker and the kiosk
visitors (:mod:`firmware.soak_services`), the box process (:mod:`firmware.soak_box`)
and the final comparison and summary (:mod:`firmware.soak_report`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from telemetry.config import default_config
from telemetry.errors import VanboxError

from .localnet import free_port
from .sim_clock import SimClock
from .simulator import DEPOT, NmeaFeeder, demo_day, demo_tour
from .soak_faults import FAULT_KINDS as FAULT_KINDS
from .soak_faults import Fault, schedule
from .soak_report import Stats, compare, print_summary
from .soak_report import rss_by_day as rss_by_day
from .soak_services import Broker, Kiosk

log = logging.getLogger("vanbox.soak")
VAN = "soak-van"


def add_arguments(parser) -> None:
    parser.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault schedule")
    parser.add_argument(
        "--minutes-per-day", type=float, default=1.0, help="real minutes per day (default 1)"
    )
    parser.add_argument("--workdir", help="keep the files here (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")


# --- the run ---------------------------------------------------------------------------


class Soak:
    def __init__(self, days: int, seed: int, minutes_per_day: float, work: Path) -> None:
        self.days, self.seed, self.work = days, seed, work
        self.real_day = minutes_per_day * 60
        base = default_config()
        self.tz = base.tz
        # The simulated days lie in the past, ending yesterday: the hub refuses events
        # dated more than a few minutes ahead of its own (real) clock, and a simulated
        # clock runs much faster than the real one.
        first = datetime.now(self.tz).date() - timedelta(days=days)
        self.first_day = datetime(first.year, first.month, first.day, 8, 30, tzinfo=self.tz)
        probe = demo_day(self.first_day)
        self.day_s = (probe.end - probe.start).total_seconds()
        self.speed = self.day_s / self.real_day
        self.stats = Stats()
        tour: dict[tuple, dict] = {}
        for d in range(days):
            for s in demo_tour(demo_day(self.first_day + timedelta(days=d)), self.tz):
                key = (s["name"], s["start"], s["end"])
                if key in tour:
                    tour[key]["weekdays"] = sorted(set(tour[key]["weekdays"] + s["weekdays"]))
                else:
                    tour[key] = s
        self.tour = list(tour.values())
        self.stop_offsets = [
            ((leg.start - probe.start).total_seconds(), (leg.end - probe.start).total_seconds())
            for leg in probe.stops()
        ]
        self.faults = schedule(days, seed, self.day_s, self.stop_offsets)
        self.rng = random.Random(seed)
        self.broker = Broker(work)
        self.kiosk_port = free_port()
        self.child: subprocess.Popen | None = None
        self.control: dict = {}

    def overrides(self) -> dict:
        return {
            "van": {"id": VAN, "name": "Soak van", "tid": "SV"},
            "database": {"path": str(self.work / "box.db")},
            "staff": {"passwd_file": str(self.work / "staff.passwd")},
            "kiosk": {"bind": "127.0.0.1", "port": self.kiosk_port, "min_checkin_interval_s": 0},
            "mqtt": {
                "host": "127.0.0.1",
                "port": self.broker.port,
                "keepalive": 5,
                "rate_limit": 500.0,
            },
            "sensor": {
                "kind": "beam-pair",
                "pin": 17,
                "pin_b": 27,
                "debounce_ms": 10,
                "blocked_after_s": 120,
            },  # fmt: skip
            "tour": {"stops": self.tour},
            "privacy": {
                "hidden_zones": [
                    {"name": DEPOT[0], "lat": DEPOT[2], "lon": DEPOT[3], "radius_m": 300}
                ]  # fmt: skip
            },
        }

    # --- the box child ----------------------------------------------------------------

    def set_control(self, **kw) -> None:
        self.control.update(kw)
        tmp = self.work / "control.tmp"
        tmp.write_text(json.dumps(self.control))
        os.replace(tmp, self.work / "control.json")

    def start_box(self, day: int, day_start: datetime, clock: SimClock) -> None:
        settings = {
            "workdir": str(self.work),
            "overrides": self.overrides(),
            "sim_start": clock.time(),
            "real_start": time.time(),
            "speed": self.speed,
            "day_start": day_start.timestamp(),
            "day": day,
            "seed": self.seed,
            "gps": str(self.work / "gps"),
        }
        (self.work / "settings.json").write_text(json.dumps(settings))
        (self.work / "box.ready").unlink(missing_ok=True)
        self.boxlog = open(self.work / "box.log", "ab")
        self.child = subprocess.Popen(
            [sys.executable, "-m", "firmware.soak_box", str(self.work / "settings.json")],
            stdout=self.boxlog,
            stderr=self.boxlog,
        )
        deadline = time.monotonic() + 30
        while not (self.work / "box.ready").exists():
            if self.child.poll() is not None or time.monotonic() > deadline:
                raise VanboxError(f"the box did not start; see {self.work / 'box.log'}")
            time.sleep(0.05)

    def kill_box(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.kill()  # SIGKILL: the power is cut
            self.child.wait()
        self.child = None

    # --- watching ---------------------------------------------------------------------

    def sample(self, box_db: sqlite3.Connection) -> None:
        try:
            depth, oldest = box_db.execute("SELECT count(*), min(created) FROM outbox").fetchone()
        except sqlite3.Error:
            return
        self.stats.max_outbox = max(self.stats.max_outbox, depth)
        if oldest is not None:
            self.stats.max_delay_s = max(self.stats.max_delay_s, time.time() - oldest)

    def check_public(self, client, clock: SimClock) -> None:
        """Whatever the public API shows must be at an open stop of the tour plan."""
        from telemetry.geo import distance_m
        from telemetry.tour import open_visit

        r = client.get("/api/public/vans")
        if r.status_code != 200:
            return
        self.stats.public_samples += 1
        cfg = self._cfg
        for van in r.get_json().get("vans", []):
            pos = van.get("position")
            if not pos:
                continue
            now = clock.now()
            # The API may serve a snapshot up to 0.2 s (real) old: allow that much.
            slack = timedelta(seconds=0.3 * self.speed)
            ok = False
            for t in (now, now - slack):
                v = open_visit(cfg.tour, t, cfg.tz)
                if v and distance_m(pos["lat"], pos["lon"], v.stop.lat, v.stop.lon) <= (
                    v.stop.radius_m + 50
                ):
                    ok = True
            if not ok:
                self.stats.public_violations.append((now.isoformat(), pos))

    # --- main loop --------------------------------------------------------------------

    def run(self) -> dict:
        from hub.ingest import Hub
        from telemetry.store import Store

        self._cfg = default_config(self.overrides())
        self.broker.start()
        hub_store = Store(self.work / "hub.db", tz=self._cfg.timezone)
        from telemetry import registry

        van = self._cfg.van["id"]  # staff have published the van: the public API shows it
        registry.register(hub_store, [van])
        registry.rename(hub_store, van, str(self._cfg.van["name"]))
        registry.publish(hub_store, van)
        hub = Hub(hub_store, self._cfg.mqtt, client_id="soak-hub", prefix="vanbox")
        hub.start()
        from kiosk import create_app

        hub_clock = SimClock(self.first_day, self.speed)
        app = create_app(config=self._cfg, store=hub_store, mode="hub")
        app.extensions["vanbox_clock"] = hub_clock
        client = app.test_client()
        kiosk = Kiosk(self.kiosk_port, random.Random(self.seed + 1))
        self.set_control(clock_offset=0, disk_full=False, chatter=False, block_beam=False)
        pending_ends: list[tuple[float, str]] = []
        feeder = None
        try:
            for day in range(self.days):
                day_start = self.first_day + timedelta(days=day)
                route = demo_day(day_start)
                clock = SimClock(day_start, self.speed)
                hub_clock.jump(clock.time() - hub_clock.time())
                feeder = NmeaFeeder(route, clock, self.work / "gps", cold_start_s=20,
                                    rng=random.Random(self.seed * 100 + day)).start()  # fmt: skip
                self.start_box(day, day_start, clock)
                box_db = sqlite3.connect(f"file:{self.work / 'box.db'}?mode=ro", uri=True)
                faults = [f for f in self.faults if f.day == day]
                next_checkin = clock.time() + self.rng.expovariate(1 / 600)
                while clock.time() < route.end.timestamp():
                    now = clock.time() - day_start.timestamp()
                    while faults and faults[0].at <= now:
                        f = faults.pop(0)
                        self.inject(f, clock, feeder, pending_ends)
                    for end, what in list(pending_ends):
                        if end <= clock.time():
                            pending_ends.remove((end, what))
                            self.end_fault(what, day, day_start, clock)
                    if self.child is None and self.control.get("_restart_at", 0) <= clock.time():
                        self.start_box(day, day_start, clock)
                    if clock.time() >= next_checkin:
                        next_checkin = clock.time() + self.rng.expovariate(1 / 600)
                        if route.at(clock.now()).stop is not None:
                            if kiosk.checkin():
                                self.stats.checkins_posted += 1
                            else:
                                self.stats.checkins_refused += 1
                    self.sample(box_db)
                    self.check_public(client, hub_clock)
                    time.sleep(0.05)
                # Every evening the engine stops: the power goes with it.
                self.kill_box()
                self.stats.faults["power_cut (night)"] += 1
                for end, what in list(pending_ends):
                    pending_ends.remove((end, what))
                    self.end_fault(what, day, day_start, clock, restart=False)
                feeder.stop()
                feeder = None
                box_db.close()
            return self.finish(hub, hub_store)
        finally:
            if feeder is not None:
                feeder.stop()
            self.kill_box()
            hub.stop()
            hub_store.close()
            self.broker.stop()

    def inject(self, f: Fault, clock: SimClock, feeder: NmeaFeeder, pending: list) -> None:
        self.stats.faults[f.kind] += 1
        log.info("day %d %s: %s %.0f s", f.day + 1, clock.now().astimezone(self.tz)
                 .strftime("%H:%M"), f.kind, f.duration)  # fmt: skip
        end = clock.time() + f.duration
        if f.kind == "broker_outage":
            self.broker.stop()
            pending.append((end, "broker"))
        elif f.kind == "power_cut":
            self.kill_box()
            # Booting takes 20-90 s (simulated).
            self.control["_restart_at"] = clock.time() + self.rng.uniform(20, 90)
        elif f.kind == "gps_unplug":
            feeder.unplug(f.duration)
        elif f.kind == "nmea_garbage":
            feeder.garbage(self.rng.randint(500, 4000))
        elif f.kind == "chatter":
            self.set_control(chatter=True)
            pending.append((end, "chatter"))
        elif f.kind == "beam_blocked":
            self.set_control(block_beam=True)
            pending.append((end, "block_beam"))
        elif f.kind == "disk_full":
            self.set_control(disk_full=True)
            pending.append((end, "disk_full"))
        elif f.kind == "clock_jump":
            # The clock is suddenly an hour behind (no RTC, no network), until corrected.
            self.set_control(clock_offset=-3600)
            pending.append((end, "clock_offset"))

    def end_fault(self, what: str, day, day_start, clock, *, restart: bool = True) -> None:
        if what == "broker":
            self.broker.start()
        elif what == "clock_offset":
            self.set_control(clock_offset=0)
        else:
            self.set_control(**{what: False})

    # --- the end ----------------------------------------------------------------------

    def finish(self, hub, hub_store) -> dict:
        """Let the box drain everything to the hub, then count and compare
        (:func:`firmware.soak_report.compare`)."""
        self.broker.start()
        self.set_control(clock_offset=0, disk_full=False, chatter=False, block_beam=False)
        last_day = self.first_day + timedelta(days=self.days - 1)
        clock = SimClock(last_day + timedelta(hours=10), self.speed)
        self.start_box(self.days - 1, last_day, clock)
        box_db = sqlite3.connect(f"file:{self.work / 'box.db'}?mode=ro", uri=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            depth = box_db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            if depth == 0 and self._hub_has_everything(box_db, hub_store):
                break
            time.sleep(0.2)
        self.child.send_signal(signal.SIGTERM)
        self.child.wait(30)
        self.child = None
        box_db.close()
        return compare(
            self.work,
            hub,
            hub_store,
            self.stats,
            van=VAN,
            first_day=self.first_day,
            days=self.days,
            speed=self.speed,
        )

    def _hub_has_everything(self, box_db, hub_store) -> bool:
        hubc = hub_store.reader()
        for table in ("footfall", "checkins"):
            b = box_db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            h = hubc.execute(f"SELECT count(*) FROM {table} WHERE van = ?", (VAN,)).fetchone()[0]
            if b != h:
                return False
        return True


def run(args) -> int:
    if args.days < 1 or args.days > 60:
        raise VanboxError(f"--days {args.days}: use 1 to 60")
    if not 0.2 <= args.minutes_per_day <= 60:
        raise VanboxError(f"--minutes-per-day {args.minutes_per_day}: use 0.2 to 60")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="vanbox-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        raise VanboxError(f"--workdir {work}: must be empty")
    print(f"vanbox soak: files in {work}", flush=True)
    soak = Soak(args.days, args.seed, args.minutes_per_day, work)
    result = soak.run()
    (work / "result.json").write_text(json.dumps(result, indent=2, default=str))
    print_summary(result, args.days, args.seed)
    if not args.workdir and not args.keep and result["ok"]:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if result["ok"] else 1
