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
"""

from __future__ import annotations

import getpass
import html
import json
import logging
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path

from telemetry.config import default_config
from telemetry.errors import VanboxError

from .localnet import free_port, terminate, wait_port
from .simulator import DEPOT, NmeaFeeder, demo_day, demo_tour
from .visitors import SimClock

log = logging.getLogger("vanbox.soak")
VAN = "soak-van"
FAULT_KINDS = (
    "broker_outage",
    "power_cut",
    "gps_unplug",
    "nmea_garbage",
    "chatter",
    "beam_blocked",
    "disk_full",
    "clock_jump",
)


def add_arguments(parser) -> None:
    parser.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault schedule")
    parser.add_argument(
        "--minutes-per-day", type=float, default=1.0, help="real minutes per day (default 1)"
    )
    parser.add_argument("--workdir", help="keep the files here (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")


# --- the fault schedule -----------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    day: int
    at: float  # simulated seconds after the day's start
    kind: str
    duration: float = 0.0  # simulated seconds


def schedule(days: int, seed: int, day_s: float, stops: list[tuple[float, float]]) -> list[Fault]:
    """The faults of the whole run, drawn from ``seed``. ``stops`` are the (start, end)
    offsets of the stops within a day; some faults are placed inside them."""
    rng = random.Random(seed)
    out: list[Fault] = []
    blocked_day = rng.randrange(days)
    disk_day = rng.randrange(days)
    jump_day = rng.randrange(days)
    for d in range(days):
        out.append(Fault(d, rng.uniform(0.05, 0.3) * day_s, "broker_outage", rng.uniform(5, 120)))
        out.append(
            Fault(d, rng.uniform(0.35, 0.6) * day_s, "broker_outage", rng.uniform(1800, 7200))
        )
        for _ in range(2):
            out.append(Fault(d, rng.uniform(0.05, 0.9) * day_s, "power_cut"))
        out.append(Fault(d, rng.uniform(0.1, 0.9) * day_s, "gps_unplug", rng.uniform(30, 600)))
        for _ in range(3):
            out.append(Fault(d, rng.uniform(0.02, 0.95) * day_s, "nmea_garbage"))
        a, b = stops[rng.randrange(len(stops))]
        out.append(Fault(d, a, "chatter", b - a))
        if d == blocked_day:
            a, b = stops[rng.randrange(len(stops))]
            out.append(Fault(d, a - 60, "beam_blocked", 3600))
        if d == disk_day:
            out.append(Fault(d, rng.uniform(0.2, 0.7) * day_s, "disk_full", rng.uniform(900, 2400)))
        if d == jump_day:
            out.append(
                Fault(d, rng.uniform(0.2, 0.6) * day_s, "clock_jump", rng.uniform(600, 1800))
            )
    return sorted(out, key=lambda f: (f.day, f.at))


# --- pieces ----------------------------------------------------------------------------


class Broker:
    def __init__(self, work: Path) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(exe):
            raise VanboxError("mosquitto is not installed (apt-get install mosquitto)")
        self.exe, self.port, self.dir = exe, free_port(), work / "mosquitto"
        self.dir.mkdir()
        (self.dir / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.dir}/\nmax_queued_messages 0\n"
            "max_inflight_messages 0\nlog_dest stderr\nlog_type error\n"
            # Run as root, mosquitto would switch to its own user, which may not write
            # the persistence file in our folder; then sessions would not survive.
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if self.proc is not None:
            return
        with open(self.dir / "log", "ab") as logf:
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(self.dir / "mosquitto.conf")], stdout=logf, stderr=logf
            )
        try:
            wait_port(self.port, 15)
        except TimeoutError:
            raise VanboxError("the soak test's mosquitto did not start") from None

    def stop(self) -> None:
        terminate(self.proc, 15)
        self.proc = None


class Kiosk:
    """Posts check-ins to the box's real kiosk, as a visitor tapping through would."""

    def __init__(self, port: int, rng: random.Random) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.rng = rng

    def checkin(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        lang = self.rng.choice(["de", "de", "de", "en", "tr", "ar", "uk", "ru", "fa"])
        try:
            page = opener.open(f"{self.base}/{lang}/checkin", timeout=3).read().decode()
            token = html.unescape(re.search(r'name="csrf_token" value="([^"]+)"', page)[1])
            flow = re.search(r'name="flow" value="([^"]+)"', page)[1]
            first = self.rng.choice(["yes", "no", "no"])
            form = [
                ("csrf_token", token),
                ("flow", flow),
                ("step", "heard" if first == "yes" else "visit"),
                ("age", self.rng.choice(["15-17", "18-20", "21-24", "25-27", "unsaid"])),
                ("first_visit", first),
            ]
            topics = ["school", "training", "job", "money", "housing", "family", "health"]
            form += [("topic", t) for t in self.rng.sample(topics, self.rng.randint(1, 3))]
            if first == "yes":
                form.append(("heard_from", self.rng.choice(["friends", "school", "poster"])))
            body = urllib.parse.urlencode(form).encode()
            r = opener.open(f"{self.base}/{lang}/checkin", data=body, timeout=3)
            return r.status == 200 and "/thanks" in r.geturl()
        except (OSError, TypeError, AttributeError):
            return False  # the box is off (power cut) or the page is not there


@dataclass
class Stats:
    faults: Counter = field(default_factory=Counter)
    max_outbox: int = 0
    max_delay_s: float = 0.0
    checkins_posted: int = 0
    checkins_refused: int = 0
    public_samples: int = 0
    public_violations: list = field(default_factory=list)


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
        """Let the box drain everything to the hub, then count and compare."""
        from telemetry import reports

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

        box = sqlite3.connect(self.work / "box.db")
        hubc = hub_store.reader()
        result: dict = {"checks": {}}
        created, delivered = {}, {}
        for table in ("footfall", "checkins", "stop_visits", "positions"):
            b = {r[0] for r in box.execute(f"SELECT id FROM {table}")}
            h = {r[0] for r in hubc.execute(f"SELECT id FROM {table} WHERE van = ?", (VAN,))}
            created[table], delivered[table] = len(b), len(h & b)
            if table in ("footfall", "checkins"):
                result["checks"][f"every {table} event on the hub exactly once"] = b == h
        period = reports.Period(
            "year", self.first_day.date(), (last_day + timedelta(days=1)).date(), "soak"
        )
        per_stop_box = reports.report(box, "stops", period)
        per_stop_hub = reports.report(hubc, "stops", period, van=VAN)
        result["checks"]["per-stop counts on the hub equal the box's"] = (
            per_stop_box.rows == per_stop_hub.rows
        )
        result["checks"]["no public position outside service hours"] = (
            not self.stats.public_violations and self.stats.public_samples > 0
        )
        result["checks"]["box database integrity ok"] = (
            box.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        )
        result["checks"]["hub database integrity ok"] = hub_store.integrity_check() == "ok"
        s = self.stats
        rss = rss_by_day(self.work / "rss.log")
        result["checks"]["box memory did not keep growing"] = bool(rss) and all(
            d["end"] <= d["quarter"] * 1.25 + 4096 for d in rss.values()
        )
        box.close()
        result.update(
            created=created,
            delivered=delivered,
            duplicates_suppressed=hub.stats.get("duplicates", 0)
            if isinstance(hub.stats, dict)
            else getattr(hub.stats, "duplicates", 0),
            faults=dict(s.faults),
            max_outbox=s.max_outbox,
            max_delay_s=round(s.max_delay_s, 1),
            speed=round(self.speed),
            checkins_posted=s.checkins_posted,
            checkins_refused=s.checkins_refused,
            public_samples=s.public_samples,
            public_violations=s.public_violations[:5],
            rss_kb={f"day {d + 1}": v for d, v in rss.items() if d in (0, self.days - 1)},
            per_stop=[list(r) for r in per_stop_box.rows],
        )
        result["ok"] = all(result["checks"].values())
        return result

    def _hub_has_everything(self, box_db, hub_store) -> bool:
        hubc = hub_store.reader()
        for table in ("footfall", "checkins"):
            b = box_db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            h = hubc.execute(f"SELECT count(*) FROM {table} WHERE van = ?", (VAN,)).fetchone()[0]
            if b != h:
                return False
        return True


def rss_by_day(path: Path) -> dict[int, dict[str, int]]:
    """RSS of the box (kB) per day from ``rss.log``: a quarter into the day (after the
    start-up) and at its end, from the longest-running box process of that day."""
    runs: dict[tuple[int, str], list[int]] = {}
    if not path.exists():
        return {}
    for line in path.read_text().splitlines():
        day, pid, _t, kb = line.split()
        runs.setdefault((int(day), pid), []).append(int(kb))
    out: dict[int, dict[str, int]] = {}
    for (day, _pid), kbs in sorted(runs.items()):
        if len(kbs) >= 8 and len(kbs) > out.get(day, {}).get("samples", 0):
            out[day] = {"quarter": kbs[len(kbs) // 4], "end": kbs[-1], "samples": len(kbs)}
    return out


def print_summary(r: dict, days: int, seed: int) -> None:
    print(f"\nvanbox soak: {days} day(s), seed {seed}, {r['speed']}x real time")
    print(f"{'events':<14}{'created':>10}{'on hub':>10}")
    for t in ("footfall", "checkins", "stop_visits", "positions"):
        print(f"{t:<14}{r['created'][t]:>10}{r['delivered'][t]:>10}")
    print(f"duplicates suppressed on the hub: {r['duplicates_suppressed']}")
    print(f"check-ins posted to the kiosk: {r['checkins_posted']} "
          f"(refused while the box was off: {r['checkins_refused']})")  # fmt: skip
    print("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())))
    sim_min = r["max_delay_s"] * r["speed"] / 60
    print(f"largest outbox depth: {r['max_outbox']}; longest wait in the outbox: "
          f"{r['max_delay_s']} s real (~{sim_min:.0f} min simulated)")  # fmt: skip
    rss = ", ".join(f"{k}: {v['quarter']} kB a quarter in, {v['end']} kB at the end"
                    for k, v in r["rss_kb"].items())  # fmt: skip
    print(f"RSS of the box: {rss}")
    print(f"public API samples checked: {r['public_samples']}")
    for name, ok in r["checks"].items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    print("RESULT: " + ("all checks passed" if r["ok"] else "FAILED"))


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
