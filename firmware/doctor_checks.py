"""The checks ``vanbox doctor`` runs, each returning findings with a fix for the installer.

One function per check: the service user's groups (:func:`check_user`), the GPS serial
port and its baud rate (:func:`firmware.doctor_serial.check_serial`, with
:func:`firmware.doctor_serial.analyse_nmea`), the sensor's GPIO pins
(:func:`firmware.doctor_gpio.check_gpio`), the CA file and broker certificate and the
broker login (:func:`firmware.doctor_net.check_tls`,
:func:`firmware.doctor_net.check_broker`), the clock (:func:`check_clock`), free disk
(:func:`firmware.doctor_db.check_disk`) and the database file
(:func:`firmware.doctor_db.check_database`). The clock and user checks are here, the
others in their own modules; the :class:`Finding` they return and the :class:`Probes`
(everything on the machine they touch, so tests inject broken setups) are in
:mod:`firmware.doctor_probes`. Every name of those (but the database and network checks)
stays importable from here. The command itself, with the config check and the order of
the checks, is :mod:`firmware.doctor`.
"""

from __future__ import annotations

import grp
import pwd

from telemetry.config import Config

from . import gps_clock
from .doctor_gpio import OTHER_PINS as OTHER_PINS
from .doctor_gpio import UART_PINS as UART_PINS
from .doctor_gpio import check_gpio as check_gpio
from .doctor_probes import CERT_WARN_DAYS as CERT_WARN_DAYS
from .doctor_probes import DISK_FAIL_MB as DISK_FAIL_MB
from .doctor_probes import DISK_WARN_MB as DISK_WARN_MB
from .doctor_probes import FAIL as FAIL
from .doctor_probes import OK as OK
from .doctor_probes import SKIP as SKIP
from .doctor_probes import WARN as WARN
from .doctor_probes import Finding as Finding
from .doctor_probes import Probes as Probes
from .doctor_serial import NmeaSample as NmeaSample
from .doctor_serial import analyse_nmea as analyse_nmea
from .doctor_serial import check_serial as check_serial

# --- clock -----------------------------------------------------------


def check_clock(cfg: Config, probes: Probes) -> Finding:
    now = probes.now()
    if now < gps_clock.EARLIEST:
        return Finding(
            "clock",
            FAIL,
            f"the clock says {now:%Y-%m-%d}: far in the past",
            "connect to the internet once (NTP), or set gps.set_clock = true",
        )
    sync = probes.clock_synchronized()
    if sync:
        return Finding("clock", OK, "clock synchronised (NTP)")
    stamp = probes.gps_clock_stamp
    if stamp.exists():
        when = stamp.read_text(encoding="utf-8").strip()
        return Finding("clock", OK, f"clock set from GPS time ({when})")
    if sync is None:
        return Finding(
            "clock",
            WARN,
            "cannot tell whether the clock is synchronised",
            "check `timedatectl status`",
        )
    if cfg.gps["set_clock"]:
        return Finding(
            "clock",
            WARN,
            "clock not synchronised yet; the box sets it from GPS at the first fix",
            "wait for a GPS fix (antenna with sky view)",
        )
    return Finding(
        "clock",
        FAIL,
        "clock not synchronised (no NTP) and gps.set_clock is false",
        "get the Pi online so systemd-timesyncd can set the time (`timedatectl status`), "
        "or set gps.set_clock = true to take the time from GPS",
    )


def check_user(cfg: Config, probes: Probes) -> Finding:
    """The service user is in the groups that open the serial port and the GPIO pins."""
    u = probes.service_user
    try:
        pw = pwd.getpwnam(u)
    except KeyError:
        return Finding("user", SKIP, f"no user {u!r} here (deploy/install.sh creates it)")
    if pw.pw_uid == 0:
        return Finding("user", OK, f"{u} needs no groups")
    need = []
    if cfg.gps["port"].startswith("/dev/"):
        need.append(("dialout", "the GPS serial port"))
    if cfg.sensor["kind"] != "none":
        need.append(("gpio", "the GPIO pins"))
    missing = []
    for group, what in need:
        try:
            g = grp.getgrnam(group)
        except KeyError:
            continue  # no such group here (gpio exists on Raspberry Pi OS only)
        if u not in g.gr_mem and pw.pw_gid != g.gr_gid:
            missing.append((group, what))
    if missing:
        groups = ",".join(g for g, _ in missing)
        whats = " and ".join(w for _, w in missing)
        return Finding(
            "user",
            FAIL,
            f"user {u} is not in group {groups}: the box cannot open {whats}",
            f"sudo usermod -aG {groups} {u} && sudo systemctl restart vanbox",
        )
    return Finding("user", OK, f"user {u} may open the serial port and the GPIO pins")
