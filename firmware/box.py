"""The box process: GPS reader, door sensor, store, publisher and kiosk web server.

``vanbox run`` builds a :class:`Box` from the configuration and runs it until SIGTERM;
``vanbox demo`` builds the same Box with simulated hardware. Data flows one way::

    GpsReader --on_fix--> deadband, stop detection --> Store.record --> outbox
    sensor ----on_event-----------------------------> Store.record --> outbox
    kiosk (waitress) --check-ins--------------------> Store.record --> outbox
                                                       Publisher <-- outbox --> MQTT

Threads: the GPS reader, the sensor's callbacks and tick, the publisher, waitress,
the retry loop and the watchdog. :class:`firmware.box_record.Recorder` is the record
path: what the disk cannot take now waits in memory, what can never be stored is
dead-lettered. The health checks of :mod:`firmware.box_health` (a real heartbeat write,
the retry queue, the dead-letter rate, the GPS loop) feed both ``/healthz`` and the
systemd watchdog, so a box that cannot store gets restarted and its kiosk stops
thanking visitors.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from telemetry.clock import Clock
from telemetry.config import Config
from telemetry.deadband import Deadband
from telemetry.errors import StoreError, VanboxError
from telemetry.events import Event, Footfall, Position
from telemetry.store import Store

from . import box_health
from .box_record import RETRY_EVERY_S, RETRY_MAX, Outcome, Recorder

log = logging.getLogger("vanbox.box")

__all__ = ["RETRY_MAX", "WATCHDOG_STALL_S", "Box", "Outcome", "open_store", "run"]

# A part whose loop has not gone round for this long is hung: stop feeding the watchdog.
WATCHDOG_STALL_S = box_health.GPS_STALL_S
# Track points taken while driving wait in memory up to this long (the box's clock) and
# are committed together: one WAL write and fsync instead of one per fix
# (benchmarks/bench_sd_writes.py, docs/mobile-link.md). Any other event (count, check-in,
# stop visit) takes the waiting ones along in its own transaction, so those keep their
# commit-before-return promise; a power cut loses at most this much of the track.
TRACK_COMMIT_S = 30.0
# The publisher deletes acknowledged outbox rows in one transaction at most this often.
ACK_FLUSH_S = 10.0


def add_arguments(parser) -> None:
    parser.add_argument(
        "--config", default="/etc/vanbox/vanbox.toml", help="configuration file (TOML)"
    )


def run(args) -> int:
    from telemetry.config import load_config

    cfg = load_config(args.config)
    box = Box(cfg)  # raises VanboxError with one clear line for a read-only/corrupt database
    box.start()
    box.install_signal_handlers()
    box.wait()
    return 0


class Box:
    def __init__(
        self,
        cfg: Config,
        *,
        clock: Clock | None = None,
        pin_factory: Any = None,
        gps_url: str | None = None,
        mqtt: bool | None = None,
        web: bool = True,
        store: Store | None = None,
        track_commit_s: float = TRACK_COMMIT_S,
    ) -> None:
        self.cfg = cfg
        self.track_commit_s = float(track_commit_s)
        self._track: list[Event] = []
        self._track_since = 0.0
        self._track_lock = threading.Lock()
        self.clock = clock or Clock()
        self.pin_factory = pin_factory
        self.gps_url = gps_url or cfg.gps["port"]
        self.mqtt_enabled = cfg.mqtt["enabled"] if mqtt is None else mqtt
        self.web_enabled = web
        self.store = store or open_store(cfg)
        self.recorder = Recorder(self.store)
        self.deadband = Deadband.from_config(cfg.publish)
        self.gps = None
        self.sensor = None
        self.publisher = None
        self.server = None
        self.app = None
        self.watchdog = None
        self.detector = None
        self.gps_clock = None
        if cfg.gps["set_clock"]:
            from firmware.gps_clock import GpsClock

            self.gps_clock = GpsClock(True)
        self.last_fix = None
        self.fixes = 0
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._web_thread: threading.Thread | None = None
        self._retry_thread: threading.Thread | None = None
        self._reserve_at = time.monotonic()  # when the disk reserve was last checked

    # --- recording ----------------------------------------------------------------

    def record(self, ev: Event) -> Outcome:
        """Store an event (with the track points waiting, in one transaction); if the
        disk cannot take it now, keep it for a retry; if it can never be stored,
        dead-letter it. Never raises (see :class:`Recorder`)."""
        with self._track_lock:
            track, self._track = self._track, []
        if track:
            return self.recorder.record_many([*track, ev])[-1]
        return self.recorder.record(ev)

    def record_position(self, pos: Position) -> None:
        """A track point while driving: committed with the next event or
        ``track_commit_s`` after the first waiting one, whichever comes first. A fix of
        a parked van (rare: one every ``publish.parked_interval_s``) goes in at once,
        with any that wait."""
        if self.track_commit_s <= 0 or not self.deadband.driving(pos):
            self.record(pos)
            return
        now = self.clock.time()
        with self._track_lock:
            if not self._track:
                self._track_since = now
            self._track.append(pos)
        self.flush_track(now)

    def flush_track(self, now: float | None = None, *, force: bool = False) -> None:
        """Commit the waiting track points if they are due (or ``force``)."""
        now = self.clock.time() if now is None else now
        with self._track_lock:
            if not self._track or not (
                force or now - self._track_since >= self.track_commit_s or now < self._track_since
            ):
                return
            track, self._track = self._track, []
        self.recorder.record_many(track)

    def _retry_loop(self) -> None:
        while not self._stop.wait(RETRY_EVERY_S):
            try:
                self.flush_track()
                self.recorder.heartbeat()
                self.recorder.retry_once()
                if self.recorder.depth == 0 and time.monotonic() - self._reserve_at > 600:
                    self._reserve_at = time.monotonic()
                    from . import disk_reserve

                    disk_reserve.ensure(self.store.path)
            except Exception:  # noqa: BLE001 - the loop must go on; health shows it
                log.exception("retry loop")

    @property
    def retry_depth(self) -> int:
        return self.recorder.depth

    @property
    def _retry(self) -> deque[Event]:
        return self.recorder.queue

    @property
    def record_errors(self) -> int:
        return self.recorder.errors

    def health_checks(self) -> dict[str, box_health.Check]:
        """The checks of ``/healthz`` and the watchdog: name -> () -> (ok, reason)."""
        return {
            "database": box_health.database_check(self.recorder),
            "retry": box_health.retry_check(self.recorder),
            "deadletters": box_health.deadletter_check(self.store),
            "gps": box_health.gps_check(lambda: self.gps),
        }

    def healthy(self) -> tuple[bool, dict[str, str]]:
        """All checks at once: (every check ok, {name: reason} of the failing ones)."""
        failed = {}
        for name, fn in self.health_checks().items():
            try:
                ok, reason = fn()
            except Exception as e:  # noqa: BLE001 - a broken check is a failed check
                ok, reason = False, f"{type(e).__name__}: {e}"
            if not ok:
                failed[name] = reason
        return not failed, failed

    # --- callbacks from the drivers -----------------------------------------------

    def on_fix(self, fix) -> None:
        self.last_fix = fix
        self.fixes += 1
        if self.gps_clock is not None and fix.time is not None:
            self.gps_clock.offer(fix.time, fix.mode, time.monotonic())
        if fix.mode < 2 or fix.lat is None or fix.lon is None or fix.time is None:
            return
        pos = fix.to_position()
        if self.detector is not None and not pos.suspect:
            for visit in self.detector.feed(pos):
                self.record(visit)
        if self.deadband.accept(pos):
            self.record_position(pos)

    def on_footfall(self, ev: Footfall) -> None:
        self.record(ev)

    def on_plan(self, payload: bytes) -> None:
        """A plan from the hub (retained ``<prefix>/<van>/plan``): stored if newer, then
        used for stop detection; the kiosk reads the newest stored plan itself."""
        from telemetry.plan import receive_plan
        from telemetry.topics import topic

        van = self.cfg.van["id"]
        where = topic(self.cfg.mqtt["topic_prefix"], van, "plan")
        plan = receive_plan(self.store, van, payload, topic=where)
        if plan is not None and self.detector is not None:
            self.detector.set_plan(plan)

    # --- life cycle ---------------------------------------------------------------

    def start(self) -> Box:
        cfg = self.cfg
        from telemetry.plan import current_plan
        from telemetry.stops import StopDetector, open_visit

        # Hidden zones (depot, staff homes) never become stops; a visit still open in
        # the database (the power was cut while parked) is resumed, not started again.
        self.detector = StopDetector(
            cfg.tour,
            cfg.stops,
            cfg.tz,
            van=cfg.van["id"],
            ignore=cfg.hidden_zones,
            current=open_visit(self.store.reader(), cfg.van["id"]),
            plan=current_plan(self.store.reader(), cfg.van["id"], cfg.tour),  # works offline
        )
        self._retry_thread = threading.Thread(target=self._retry_loop, name="retry", daemon=True)
        self._retry_thread.start()

        from firmware.gps import FixFilter, GpsReader

        self.gps = GpsReader(
            self.gps_url,
            cfg.gps["baud"],
            on_fix=self.on_fix,
            fix_filter=FixFilter(
                max_speed_kmh=cfg.gps["max_speed_kmh"],
                max_hdop=cfg.gps["max_hdop"],
                stale_after_s=cfg.gps["stale_after_s"],
            ),
        )
        self.gps.start()

        if cfg.sensor["kind"] != "none":
            from firmware.footfall import open_sensor

            self.sensor = open_sensor(
                cfg.sensor,
                on_event=self.on_footfall,
                tz=cfg.tz,
                pin_factory=self.pin_factory,
                clock=self.clock.time,
            )

        if self.mqtt_enabled:
            from telemetry.publisher import Publisher

            self.publisher = Publisher(
                self.store,
                cfg.mqtt,
                van=cfg.van["id"],
                tid=cfg.van["tid"],
                track_batch=cfg.publish["track_batch"],
                on_plan=self.on_plan,
                ack_flush_s=ACK_FLUSH_S,
            )
            self.publisher.start()
            self.store.add_listener(self.publisher.wake)

        if self.web_enabled:
            self._start_web()

        from firmware.sdnotify import Watchdog, ready

        checks = {"publisher": self._publisher_alive, "web": self._web_alive}
        for name, fn in self.health_checks().items():
            checks[name] = lambda fn=fn: fn()[0]
        self.watchdog = Watchdog(checks).start()
        ready("running")
        log.info("box %s running", cfg.van["id"])
        return self

    # --- the watchdog's checks: progress, not just a thread that exists ----------------

    def _gps_alive(self) -> bool:
        return self.gps is not None and box_health.gps_check(lambda: self.gps)()[0]

    def _publisher_alive(self) -> bool:
        return self.publisher is None or self.publisher.is_alive()

    def _web_alive(self) -> bool:
        """The web server answers its own /healthz (a hung waitress does not). A 503
        still means the server works: the other checks say what is wrong."""
        import urllib.error
        import urllib.request

        url = self.web_url
        if url is None:
            return True
        if self._web_thread is None or not self._web_thread.is_alive():
            return False
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                return r.status == 200
        except urllib.error.HTTPError as e:
            return e.code == 503
        except OSError:
            return False

    def _start_web(self) -> None:
        from kiosk import create_app
        from kiosk.serve import make_server

        self.app = create_app(config=self.cfg, store=self.store, mode="box")
        self.app.extensions["vanbox_live"] = self.live
        self.app.extensions["vanbox_clock"] = self.clock
        self.app.extensions["vanbox_record"] = self.record  # check-ins survive a full disk
        from kiosk.status import register_check

        for name, fn in self.health_checks().items():
            register_check(self.app, name, fn)
        host, port = self.cfg.kiosk["bind"], self.cfg.kiosk["port"]
        try:
            self.server = make_server(self.app, host=host, port=port, role="box", threads=6,
                                      ident="vanbox")  # fmt: skip
        except OSError as e:
            raise VanboxError(
                f"kiosk.port = {port}: cannot listen on {host}:{port} ({e.strerror}); "
                "is another vanbox running? choose another port"
            ) from None
        self._web_thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self._web_thread.start()

    def _serve(self) -> None:
        """waitress's loop; closing the server from another thread ends it with EBADF."""
        try:
            self.server.run()
        except Exception:  # noqa: BLE001 - a dead web thread is the watchdog's business
            if not self._stop.is_set():
                log.exception("the web server stopped")

    @property
    def web_url(self) -> str | None:
        if self.server is None:
            return None
        host = self.cfg.kiosk["bind"]
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{host}:{self.server.effective_port}"

    def install_signal_handlers(self) -> None:
        def handler(signum, frame):
            log.info("signal %d: stopping", signum)
            self._stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def wait(self, timeout: float | None = None) -> None:
        try:
            self._stop.wait(timeout)
        finally:
            if timeout is None or self._stop.is_set():
                self.stop()

    def stop(self) -> None:
        self._stop.set()
        from firmware.sdnotify import stopping

        stopping()
        for part in (self.watchdog, self.sensor, self.gps):
            if part is not None:
                try:
                    (getattr(part, "close", None) or part.stop)()
                except Exception:  # noqa: BLE001
                    log.exception("stopping %s", part)
        self.flush_track(force=True)
        if self.publisher is not None:
            self.publisher.stop()
        if self.server is not None:
            self.server.close()
        if self._web_thread is not None:
            self._web_thread.join(5)
        if self._retry_thread is not None:
            self._retry_thread.join(5)
        self.recorder.flush()
        self.store.close()

    # --- what the status page shows -------------------------------------------------

    def live(self) -> dict[str, Any]:
        fix = self.last_fix
        pub = self.publisher.stats() if self.publisher is not None else None
        gps = self.gps
        return {
            "gps": {
                "port": self.gps_url,
                "open": bool(gps and gps.port_open),
                "fixes": self.fixes,
                "mode": None if fix is None else fix.mode,
                "last_time": None if fix is None or fix.time is None else fix.time.isoformat(),
            },
            "mqtt": None
            if pub is None
            else {
                "host": f"{self.cfg.mqtt['host']}:{self.cfg.mqtt['port']}",
                "connected": bool(self.publisher.connected),
                **{k: v for k, v in pub.items() if isinstance(v, int | float | str | None)},
            },
            "retry_queue": self.retry_depth,
            "record": {
                "dead_lettered": self.recorder.dead,
                "dropped": self.recorder.dropped,
                "gps_fields_rejected": gps.rejected_fields if gps is not None else 0,
            },
            "uptime_s": round(time.monotonic() - self.started),
        }


def open_store(cfg: Config) -> Store:
    """The box's store. A database the box cannot use (read-only partition, corrupt
    file) is one clear :class:`StoreError` line that says how to fix it. On a full disk
    the reserve (:mod:`firmware.disk_reserve`) is given back so the store opens and
    events wait in memory, as when the disk fills while the box runs."""
    from . import disk_reserve
    from .doctor_db import disk_full, explain_error, open_problem

    path = cfg.database["path"]
    problem = open_problem(path)
    if problem is not None:
        raise StoreError(problem)
    try:
        store = Store(path, van=cfg.van["id"], tz=cfg.timezone, tid=cfg.van["tid"])
    except StoreError as e:
        # A full disk: give back the reserve and try once more (events wait in memory)
        if not (disk_full(Path(path)) and disk_reserve.release(path)):
            raise StoreError(explain_error(e, path)) from None
        try:
            store = Store(path, van=cfg.van["id"], tz=cfg.timezone, tid=cfg.van["tid"])
        except StoreError as e2:
            raise StoreError(explain_error(e2, path)) from None
    disk_reserve.ensure(path)
    return store


def broker_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
