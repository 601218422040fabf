"""The box process of the soak test: ``python -m firmware.soak_box SETTINGS.json``.

It is the real :class:`firmware.box.Box` on simulated hardware, in a process of its own
so that the soak harness can cut its power with SIGKILL. The harness owns the timeline
(simulated start, real start, speed) and the GPS (a pty it writes); this process runs
the visitors on its mock pins and obeys ``control.json``, which the harness rewrites:

``clock_offset`` (s)   the system clock is this far off (a jump, e.g. a Pi without RTC)
``disk_full``          the database may not grow (SQLite ``max_page_count``: a quota)
``chatter``            walks come with contact bounce
``block_beam``         something stands in the outer beam (counting pauses)

Every minute of simulated time it appends its RSS to ``rss.log``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from telemetry.config import default_config

from .box import Box
from .simulator import demo_day
from .visitors import PinDriver, SimClock, VisitorStream, crossings, run_stop

log = logging.getLogger("vanbox.soak.box")
UNLIMITED_PAGES = 1_073_741_823


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Control(threading.Thread):
    def __init__(self, path: Path, box: Box, clock: SimClock, driver: PinDriver) -> None:
        super().__init__(name="soak-control", daemon=True)
        self.path, self.box, self.clock, self.driver = path, box, clock, driver
        self.state: dict = {}
        self.offset = 0.0
        self.stop_event = threading.Event()

    def apply(self, new: dict) -> None:
        off = float(new.get("clock_offset", 0.0))
        if off != self.offset:
            self.clock.jump(off - self.offset)
            log.warning("system clock jumped by %+.0f s", off - self.offset)
            self.offset = off
        if new.get("disk_full") != self.state.get("disk_full"):
            conn = self.box.store._conn
            with self.box.store._lock:
                if new.get("disk_full"):
                    pages = conn.execute("PRAGMA page_count").fetchone()[0]
                    conn.execute(f"PRAGMA max_page_count = {pages}")
                else:
                    conn.execute(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
        if new.get("block_beam") != self.state.get("block_beam"):
            self.driver.set("a", bool(new.get("block_beam")))
        self.state = new

    def run(self) -> None:
        mtime = 0.0
        while not self.stop_event.wait(0.1):
            try:
                m = self.path.stat().st_mtime
                if m != mtime:
                    mtime = m
                    self.apply(json.loads(self.path.read_text()))
            except (OSError, ValueError):
                continue


def visitors(route, clock, driver, control: Control, rng, stop: threading.Event, rate: float):
    for leg in route.stops():
        if stop.is_set():
            return
        if leg.end.timestamp() <= clock.time():
            continue
        if not clock.sleep_until(leg.start.timestamp(), stop):
            return
        if control.state.get("block_beam"):
            continue  # nobody gets past the box in the doorway
        left = leg.end.timestamp() - clock.time()
        plan = crossings(VisitorStream(rate, rng).visits(left))
        bounce = 3 if control.state.get("chatter") else 0
        run_stop(driver, clock, plan, rng=rng, stop=stop, bounce=bounce)


def main(settings_path: str) -> int:
    s = json.loads(Path(settings_path).read_text())
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s box %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ["GPIOZERO_PIN_FACTORY"] = "mock"
    work = Path(s["workdir"])
    cfg = default_config(s["overrides"])
    # The harness's timeline: simulated = sim_start + (real - real_start) * speed.
    now_sim = s["sim_start"] + (time.time() - s["real_start"]) * s["speed"]
    clock = SimClock(now_sim, s["speed"])
    day_start = datetime.fromtimestamp(s["day_start"], UTC)
    route = demo_day(day_start, **s.get("route", {}))
    pins = MockFactory()
    box = Box(cfg, clock=clock, pin_factory=pins, gps_url=s["gps"], mqtt=True)
    box.start()
    driver = PinDriver.for_config(cfg.sensor, pins)
    driver.rest()
    control = Control(work / "control.json", box, clock, driver)
    if (work / "control.json").exists():
        control.apply(json.loads((work / "control.json").read_text()))
    control.start()
    box.install_signal_handlers()
    rng = random.Random(f"{s['seed']}-{s['day']}-{os.getpid()}")
    vthread = threading.Thread(
        target=visitors,
        args=(route, clock, driver, control, rng, box._stop, s.get("rate_per_h", 10.0)),
        name="visitors",
        daemon=True,
    )
    vthread.start()
    (work / "box.ready").write_text(str(os.getpid()))
    with open(work / "rss.log", "a") as rss:
        while not box._stop.wait(60 / s["speed"]):
            rss.write(f"{s['day']} {os.getpid()} {clock.time():.0f} {rss_kb()}\n")
            rss.flush()
    control.stop_event.set()
    box.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
