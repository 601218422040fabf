"""What the checks of ``vanbox doctor`` share (:mod:`firmware.doctor_checks`): the status
values, the thresholds of the disk and certificate checks, the :class:`Finding` a check
returns and the :class:`Probes`: everything on the machine the checks touch, so tests
inject broken setups."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import gps_clock

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
DISK_WARN_MB = 500
DISK_FAIL_MB = 100
CERT_WARN_DAYS = 30


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # ok | warn | fail | skip
    message: str
    fix: str = ""


def _box_running() -> bool:
    """True when ``vanbox.service`` is active (it holds the port and the pins)."""
    if not shutil.which("systemctl"):
        return False
    try:
        r = subprocess.run(
            ["systemctl", "is-active", "--quiet", "vanbox.service"], capture_output=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def _open_serial(url: str, baud: int):
    import serial  # hardware library: imported where the port is opened

    return serial.serial_for_url(url, baudrate=baud, timeout=0.2)


@dataclass
class Probes:
    """What the checks touch on the machine; tests replace any of these."""

    open_serial: Callable[[str, int], Any] = _open_serial
    serial_seconds: float = 3.0
    rate_seconds: float = 1.3  # per other baud rate tried (4800 baud: one burst a second)
    pin_factory: Any = None  # None: gpiozero's default (GPIOZERO_PIN_FACTORY)
    disk_usage: Callable[[str], Any] = shutil.disk_usage
    clock_synchronized: Callable[[], bool | None] = gps_clock.kernel_synchronized
    gps_clock_stamp: Path = gps_clock.STAMP
    box_running: Callable[[], bool] = _box_running
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    timeout: float = 5.0
    service_user: str = "vanbox"  # the user vanbox.service runs as
