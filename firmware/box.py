"""The box process: GPS reader, door sensor, store, publisher and kiosk web server.

``vanbox run`` builds a :class:`Box` from the configuration and runs it until SIGTERM;
``vanbox demo`` builds the same Box with simulated hardware. Data flows one way::

    GpsReader --on_fix--> deadband, stop detection --> Store.record --> outbox
    sensor ----on_event-----------------------------> Store.record --> outbox
    kiosk (waitress) --check-ins--------------------> Store.record --> outbox
                                                       Publisher <-- outbox --> MQTT

Threads: the GPS reader, the sensor's callbacks and tick, the publisher, waitress and
the watchdog. The watchdog feeds systemd only while GPS, publisher and web threads are
all alive, so a hung thread gets the box restarted.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections import deque
from typing import Any

from telemetry.clock import Clock
from telemetry.config import Config
from telemetry.deadband import Deadband
from telemetry.errors import VanboxError
from telemetry.events import Event, Footfall
from telemetry.store import Store

log = logging.getLogger("vanbox.box")

# Events that could not be written (disk full, database locked for too long) wait here
# and are retried; the oldest track points go first if it fills up.
RETRY_MAX = 10_000
# A part whose loop has not gone round for this long is hung: stop feeding the watchdog.
WATCHDOG_STALL_S = 60.0


def add_arguments(parser) -> None:
    parser.add_argument(
        "--config", default="/etc/vanbox/vanbox.toml", help="configuration file (TOML)"
    )


def run(args) -> int:
    from telemetry.config import load_config

    cfg = load_config(args.config)
    box = Box(cfg)
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
    ) -> None:
        self.cfg = cfg
        self.clock = clock or Clock()
        self.pin_factory = pin_factory
        self.gps_url = gps_url or cfg.gps["port"]
        self.mqtt_enabled = cfg.mqtt["enabled"] if mqtt is None else mqtt
        self.web_enabled = web
        self.store = store or Store(
            cfg.database["path"], van=cfg.van["id"], tz=cfg.timezone, tid=cfg.van["tid"]
        )
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
        self._retry: deque[Event] = deque()
        self._retry_lock = threading.Lock()
        self._web_thread: threading.Thread | None = None
        self._retry_thread: threading.Thread | None = None
        self.record_errors = 0

    # --- recording ----------------------------------------------------------------

    def record(self, ev: Event) -> None:
        """Store an event; if the store cannot take it now, keep it for a retry."""
        try:
            with self._retry_lock:
                if self._retry:  # keep the order: older failed events first
                    self._retry.append(ev)
                    return
            self.store.record(ev)
        except Exception as e:  # noqa: BLE001 - disk full, I/O error, locked: keep it
            self.record_errors += 1
            log.error("could not store %s %s (%s); keeping it for a retry", type(ev).__name__,
                      ev.id, e)  # fmt: skip
            with self._retry_lock:
                self._retry.append(ev)
                while len(self._retry) > RETRY_MAX:
                    self._drop_one_retry()

    def _drop_one_retry(self) -> None:
        for i, old in enumerate(self._retry):
            if type(old).__name__ == "Position":
                del self._retry[i]
                return
        log.critical("retry queue full of counts and check-ins; the disk needs attention")
        self._retry.popleft()

    def _retry_loop(self) -> None:
        while not self._stop.wait(2.0):
            with self._retry_lock:
                if not self._retry:
                    continue
                batch = list(self._retry)
            try:
                self.store.record_many(batch)
            except Exception as e:  # noqa: BLE001
                log.warning("retry of %d events failed: %s", len(batch), e)
                continue
            with self._retry_lock:
                for _ in batch:
                    self._retry.popleft()
            log.info("stored %d events that had waited for the disk", len(batch))

    @property
    def retry_depth(self) -> int:
        return len(self._retry)

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
            self.record(pos)

    def on_footfall(self, ev: Footfall) -> None:
        self.record(ev)

    # --- life cycle ---------------------------------------------------------------

    def start(self) -> Box:
        cfg = self.cfg
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
            )
            self.publisher.start()
            self.store.add_listener(self.publisher.wake)

        if self.web_enabled:
            self._start_web()

        from firmware.sdnotify import Watchdog, ready

        self.watchdog = Watchdog(
            {"gps": self._gps_alive, "publisher": self._publisher_alive, "web": self._web_alive}
        ).start()
        ready("running")
        log.info("box %s running", cfg.van["id"])
        return self

    # --- the watchdog's checks: progress, not just a thread that exists ----------------

    def _gps_alive(self) -> bool:
        gps = self.gps
        if gps is None or not gps.is_alive():
            return False
        loop = getattr(gps, "loop_monotonic", None)
        return loop is None or time.monotonic() - loop < WATCHDOG_STALL_S

    def _publisher_alive(self) -> bool:
        return self.publisher is None or self.publisher.is_alive()

    def _web_alive(self) -> bool:
        """The web server answers its own /healthz (a hung waitress does not)."""
        url = self.web_url
        if url is None:
            return True
        if self._web_thread is None or not self._web_thread.is_alive():
            return False
        import urllib.request

        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def _start_web(self) -> None:
        from waitress.server import create_server

        from kiosk import create_app

        self.app = create_app(config=self.cfg, store=self.store, mode="box")
        self.app.extensions["vanbox_live"] = self.live
        self.app.extensions["vanbox_clock"] = self.clock
        self.app.extensions["vanbox_record"] = self.record  # check-ins survive a full disk
        host, port = self.cfg.kiosk["bind"], self.cfg.kiosk["port"]
        try:
            self.server = create_server(self.app, host=host, port=port, threads=6,
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
        if self.publisher is not None:
            self.publisher.stop()
        if self.server is not None:
            self.server.close()
        if self._web_thread is not None:
            self._web_thread.join(5)
        if self._retry_thread is not None:
            self._retry_thread.join(5)
        if self._retry:
            try:
                self.store.record_many(list(self._retry))
                self._retry.clear()
            except Exception as e:  # noqa: BLE001
                log.error("%d events could not be stored at shutdown: %s", len(self._retry), e)
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
            "uptime_s": round(time.monotonic() - self.started),
        }


def broker_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
