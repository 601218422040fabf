"""A tiny sd_notify client, and a watchdog that only pets systemd while the box is healthy.

systemd starts ``vanbox run`` with ``Type=notify`` and ``WatchdogSec=``; it passes the
path of a datagram socket in ``$NOTIFY_SOCKET`` (a file path, or ``@name`` for the
abstract namespace). The box sends ``READY=1`` once it runs, ``STATUS=...`` lines for
``systemctl status``, and ``WATCHDOG=1`` heartbeats. Without the variable (tests, the
demo, a shell) every call is a no-op that returns ``False``.

:class:`Watchdog` runs a thread that sends ``WATCHDOG=1`` every ``interval`` seconds,
but only while every check in ``checks`` returns true. When a thread of the box hangs
(its check turns false, or raises), the heartbeats stop and systemd restarts the box
after ``WatchdogSec``. ``Watchdog.interval_from_env()`` reads ``$WATCHDOG_USEC`` and
returns half of it, the interval systemd recommends.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def _address() -> str | None:
    addr = os.environ.get("NOTIFY_SOCKET", "")
    if not addr or not (addr.startswith("/") or addr.startswith("@")):
        return None
    if addr.startswith("@"):
        return "\0" + addr[1:]  # abstract namespace
    return addr


def notify(*lines: str) -> bool:
    """Send ``KEY=value`` lines in one datagram. ``True`` when it was sent."""
    addr = _address()
    if addr is None or not lines:
        return False
    msg = "\n".join(lines).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(msg)
        return True
    except OSError as e:
        log.debug("sd_notify to %s failed: %s", addr, e)
        return False


def ready(status: str = "") -> bool:
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def status(text: str) -> bool:
    return notify(f"STATUS={text}")


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def stopping() -> bool:
    return notify("STOPPING=1")


def watchdog_interval(default: float = 10.0) -> float:
    """Half of ``$WATCHDOG_USEC`` in seconds (systemd's advice), else ``default``."""
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return default
    if usec <= 0:
        return default
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return default  # the watchdog is meant for another process
    return usec / 2e6


class Watchdog:
    """Sends ``WATCHDOG=1`` every ``interval`` seconds while every check is true.

    ``checks`` maps a name (``"gps"``, ``"publisher"``, ``"web"``) to a callable that
    says whether that part is alive. A failing check is logged once and reported in
    ``STATUS=``; the heartbeat resumes when all checks pass again (systemd restarts the
    box first if it takes longer than ``WatchdogSec``).
    """

    def __init__(
        self, checks: Mapping[str, Callable[[], bool]], interval: float | None = None
    ) -> None:
        self.checks = dict(checks)
        self.interval = interval if interval is not None else watchdog_interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failing: tuple[str, ...] = ()
        self.beats = 0

    def failed_checks(self) -> list[str]:
        bad = []
        for name, check in self.checks.items():
            try:
                ok = bool(check())
            except Exception:  # noqa: BLE001 - a check that raises is a failed check
                log.exception("watchdog check %s raised", name)
                ok = False
            if not ok:
                bad.append(name)
        return bad

    def tick(self) -> bool:
        """Run the checks once; send a heartbeat if all pass. ``True`` if it was sent."""
        bad = tuple(self.failed_checks())
        if bad != self.failing:
            if bad:
                log.warning("watchdog: not alive: %s; heartbeats stop", ", ".join(bad))
                status(f"unhealthy: {', '.join(bad)}")
            elif self.failing:
                log.info("watchdog: all parts alive again")
                status("running")
            self.failing = bad
        if bad:
            return False
        self.beats += 1
        return watchdog()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval)

    def start(self) -> Watchdog:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
