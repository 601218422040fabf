"""Set the system clock from GPS time when there is no network time (optional).

A Raspberry Pi has no battery-backed clock: after a power cut it boots with the time
``fake-hwclock`` saved at the last shutdown, and the van's mobile link may be down for
hours. With ``gps.set_clock = true`` the box sets the clock from the first good fix
while the kernel reports the clock as unsynchronised (no NTP yet).

The decision is a pure function (:func:`decide`), tested with made-up inputs; the one
call that changes the clock (:func:`set_system_clock`, ``clock_settime``) is isolated
and needs ``CAP_SYS_TIME`` (``vanbox.service`` grants it). When the clock was set, a
stamp file (``/run/vanbox/clock-from-gps``) records it for ``vanbox doctor``.

Accuracy: NMEA time is the start of the epoch the sentence describes and arrives a
few hundred milliseconds later, so the clock is good to about a second: fine for
event times and TLS, not for a time server (use gpsd + chrony with PPS for that).
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

STAMP = Path("/run/vanbox/clock-from-gps")
# GPS dates before this are a receiver with the week-number rollover bug (it reports a
# date 1024 weeks = 19.6 years in the past), never the real time.
EARLIEST = datetime(2024, 1, 1, tzinfo=UTC)
TIME_ERROR = 5  # adjtimex(2) return value: clock not synchronised


@dataclass(frozen=True)
class Decision:
    set_clock: bool
    reason: str
    target: datetime | None = None  # the time to set, when set_clock


def decide(
    *,
    enabled: bool,
    synchronized: bool | None,
    fix_time: datetime | None,
    fix_mode: int,
    fix_age_s: float,
    system_time: datetime,
    already_set: bool = False,
    min_offset_s: float = 2.0,
    max_fix_age_s: float = 2.0,
) -> Decision:
    """Whether to set the system clock from this fix, and to what.

    ``fix_age_s`` is how long ago (monotonic) the fix was read; it is added to the fix
    time. ``synchronized`` is the kernel's view (``None`` = unknown: treated as
    synchronised, so an unknown state never makes the box fight NTP).
    """
    if not enabled:
        return Decision(False, "gps.set_clock is false")
    if synchronized is None:
        return Decision(False, "clock state unknown; leaving it to NTP")
    if synchronized:
        return Decision(False, "clock already synchronised (NTP)")
    if already_set:
        return Decision(False, "clock already set from GPS")
    if fix_time is None or fix_mode < 2:
        return Decision(False, "no GPS fix yet")
    if fix_time.tzinfo is None:
        return Decision(False, "fix time has no time zone")
    if not 0 <= fix_age_s <= max_fix_age_s:
        return Decision(False, f"fix is {fix_age_s:.1f} s old; waiting for a fresh one")
    if fix_time < EARLIEST:
        return Decision(False, f"GPS date {fix_time:%Y-%m-%d} is implausible (week rollover)")
    target = fix_time + timedelta(seconds=fix_age_s)
    offset = (target - system_time).total_seconds()
    if abs(offset) < min_offset_s:
        return Decision(False, f"clock within {abs(offset):.1f} s of GPS; good enough")
    return Decision(True, f"clock off by {offset:+.1f} s; setting it from GPS", target)


def kernel_synchronized() -> bool | None:
    """The kernel's NTP state: ``timedatectl show -p NTPSynchronized`` where systemd
    runs, else ``adjtimex(2)``. ``None`` when neither answers."""
    if shutil.which("timedatectl"):
        try:
            out = subprocess.run(
                ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
                return out.stdout.strip() == "yes"
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


def set_system_clock(t: datetime) -> None:
    """Set CLOCK_REALTIME (needs CAP_SYS_TIME). Raises ``PermissionError`` without it."""
    time.clock_settime(time.CLOCK_REALTIME, t.timestamp())


class GpsClock:
    """Feed it fixes (``offer``); it sets the clock at most once per boot."""

    def __init__(
        self,
        enabled: bool,
        *,
        synchronized=kernel_synchronized,
        setter=set_system_clock,
        stamp: Path | None = STAMP,
        check_every_s: float = 30.0,
    ) -> None:
        self.enabled = enabled
        self._synchronized = synchronized
        self._setter = setter
        self.stamp = stamp
        self.check_every_s = check_every_s
        self.done = False
        self.last: Decision | None = None
        self._next_check = 0.0

    def offer(self, fix_time: datetime | None, fix_mode: int, received_monotonic: float) -> bool:
        """Call with every fix (cheap): the clock state is asked at most every
        ``check_every_s`` seconds, and only fixes with a time count."""
        if not self.enabled or self.done or fix_time is None or fix_mode < 2:
            return False
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self.check_every_s
        d = decide(
            enabled=self.enabled,
            synchronized=self._synchronized(),
            fix_time=fix_time,
            fix_mode=fix_mode,
            fix_age_s=now - received_monotonic,
            system_time=datetime.now(UTC),
        )
        if d != self.last:
            log.debug("gps clock: %s", d.reason)
        self.last = d
        if not d.set_clock or d.target is None:
            return False
        try:
            self._setter(d.target)
        except OSError as e:
            log.warning("gps clock: cannot set the clock (%s); needs CAP_SYS_TIME", e)
            self.done = True  # do not retry every second
            return False
        self.done = True
        log.warning("gps clock: %s (now %s)", d.reason, d.target.isoformat())
        if self.stamp is not None:
            try:
                self.stamp.parent.mkdir(parents=True, exist_ok=True)
                self.stamp.write_text(d.target.isoformat() + "\n")
            except OSError as e:
                log.debug("gps clock: cannot write %s: %s", self.stamp, e)
        return True
