"""The checks ``vanbox doctor`` runs, each returning findings with a fix for the installer.

One function per check: the service user's groups (:func:`check_user`), the GPS serial
port and its baud rate (:func:`check_serial`, with :func:`analyse_nmea`), the sensor's
GPIO pins (:func:`check_gpio`), the CA file and broker certificate and the broker login
(:func:`firmware.doctor_net.check_tls`, :func:`firmware.doctor_net.check_broker`), the
clock (:func:`check_clock`), free disk
(:func:`firmware.doctor_db.check_disk`) and the database file
(:func:`firmware.doctor_db.check_database`, in their own module). Also the
:class:`Finding` they return and the :class:`Probes` (everything on the machine they
touch, so tests inject broken setups). The command itself, with the config check and
the order of the checks, is :mod:`firmware.doctor`.
"""

from __future__ import annotations

import grp
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telemetry.config import BAUD_RATES, Config

from . import gps_clock

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
DISK_WARN_MB = 500
DISK_FAIL_MB = 100
CERT_WARN_DAYS = 30
# Pins the Pi's interfaces use; a sensor there conflicts with them when they are on.
UART_PINS = {14: "UART TXD (the GPS HAT)", 15: "UART RXD (the GPS HAT)"}
OTHER_PINS = {
    2: "I2C SDA",
    3: "I2C SCL",
    4: "1-Wire",
    7: "SPI CE1",
    8: "SPI CE0",
    9: "SPI MISO",
    10: "SPI MOSI",
    11: "SPI SCLK",
}


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


# --- serial / NMEA -------------------------------------------------------------------


@dataclass(frozen=True)
class NmeaSample:
    nbytes: int
    valid: int  # sentences with a correct checksum
    bad: int  # sentences with a wrong checksum
    garbage: float  # share of bytes that are neither printable ASCII nor CR/LF
    fix: bool  # a GGA with quality > 0 or an RMC with status A
    talkers: tuple[str, ...] = ()


def _checksum_ok(line: bytes) -> bool | None:
    """True/False for a sentence with a checksum, None for anything else."""
    if line[:1] not in (b"$", b"!") or len(line) < 9 or line[-3:-2] != b"*":
        return None
    body = line[1:-3]
    calc = 0
    for b in body:
        calc ^= b
    try:
        return calc == int(line[-2:], 16)
    except ValueError:
        return False


def analyse_nmea(data: bytes) -> NmeaSample:
    """What a few seconds of bytes from the GPS port say about the receiver."""
    if not data:
        return NmeaSample(0, 0, 0, 0.0, False)
    noise = sum(1 for b in data if not (32 <= b < 127 or b in (10, 13)))
    valid = bad = 0
    fix = False
    talkers: set[str] = set()
    for raw in data.replace(b"\r", b"\n").split(b"\n"):
        line = raw.strip()
        start = max(line.rfind(b"$"), line.rfind(b"!"))
        if start > 0:
            line = line[start:]  # run-together or partial line: keep the last sentence
        ok = _checksum_ok(line)
        if ok is None:
            continue
        if not ok:
            bad += 1
            continue
        valid += 1
        fields = line[1:-3].decode("ascii", "replace").split(",")
        tag = fields[0]
        talkers.add(tag[:2])
        if tag.endswith("GGA") and len(fields) > 6 and fields[6] not in ("", "0"):
            fix = True
        if tag.endswith("RMC") and len(fields) > 2 and fields[2] == "A":
            fix = True
    return NmeaSample(len(data), valid, bad, noise / len(data), fix, tuple(sorted(talkers)))


def _read(port, seconds: float, enough: int = 6) -> bytes:
    buf = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        chunk = port.read(4096)
        if chunk:
            buf += chunk
            if buf.count(b"\n") >= enough and analyse_nmea(bytes(buf)).valid >= enough - 1:
                break
    return bytes(buf)


def check_serial(cfg: Config, probes: Probes) -> Finding:
    url, baud = cfg.gps["port"], cfg.gps["baud"]
    if probes.box_running():
        return Finding(
            "serial",
            SKIP,
            f"the box is running and reading {url}; `vanbox status` shows its last fix",
            "for this check stop it first: sudo systemctl stop vanbox",
        )
    try:
        port = probes.open_serial(url, baud)
    except Exception as e:  # noqa: BLE001 - pyserial wraps OSError in SerialException
        errno = getattr(e, "errno", None)
        text = str(e)
        if errno == 2 or "No such file" in text or "[Errno 2]" in text:
            return Finding(
                "serial",
                FAIL,
                f"gps.port = {url!r}: no such port",
                "GPS HAT: sudo deploy/install.sh --gps-hat, then reboot. USB receiver: plug it "
                'in and set gps.port = "/dev/vanbox-gps" (or see `ls /dev/ttyACM* /dev/ttyUSB*`)',
            )
        if errno == 13 or "Permission denied" in text:
            return Finding(
                "serial",
                FAIL,
                f"{url}: permission denied",
                "the vanbox user must be in the dialout group: sudo usermod -aG dialout vanbox",
            )
        return Finding("serial", FAIL, f"{url}: cannot open ({text})", "check gps.port")
    try:
        sample = analyse_nmea(_read(port, probes.serial_seconds))
        if sample.valid:
            return _nmea_finding(url, baud, sample)
        if sample.nbytes == 0:
            return Finding(
                "serial",
                FAIL,
                f"{url}: no data at all in {probes.serial_seconds:g} s",
                "is the receiver powered (its LED)? GPS HAT: the serial console must be off "
                "(install.sh --gps-hat does it). USB: try another port or cable",
            )
        # Data, but no NMEA: try the other rates (a wrong rate reads as garbage).
        per_rate = probes.rate_seconds
        for other in sorted(BAUD_RATES, key=lambda b: (b not in (4800, 9600), b)):
            if other == baud:
                continue
            try:
                port.baudrate = other
                port.reset_input_buffer()
            except Exception:  # noqa: BLE001 - loop:// and sockets have no baud
                break
            if analyse_nmea(_read(port, per_rate)).valid:
                return Finding(
                    "serial",
                    FAIL,
                    f"{url}: garbage at {baud} baud, valid NMEA at {other} baud",
                    f"try baud {other}: set gps.baud = {other} in the config",
                )
        what = (
            "looks like a wrong baud rate"
            if sample.garbage > 0.2
            else "text, but no NMEA sentence with a valid checksum"
        )
        return Finding(
            "serial",
            FAIL,
            f"{url}: {sample.nbytes} bytes but no valid NMEA at {baud} baud ({what}; "
            f"{sample.garbage:.0%} non-text bytes)",
            f"try baud 4800 or 9600 (gps.baud, now {baud}); if it still fails, the receiver "
            "may send a binary protocol only (u-blox UBX, SiRF binary): switch it to NMEA "
            "with its maker's tool",
        )
    finally:
        try:
            port.close()
        except Exception:  # noqa: BLE001, S110 - closing is best effort
            pass


def _nmea_finding(url: str, baud: int, s: NmeaSample) -> Finding:
    base = f"{url} at {baud} baud: {s.valid} valid NMEA sentences ({', '.join(s.talkers)})"
    if s.bad > s.valid // 4:
        return Finding(
            "serial",
            WARN,
            f"{base}, but {s.bad} with bad checksums",
            "a loose wire or interference: check the cable and the HAT's header contacts",
        )
    if not s.fix:
        return Finding(
            "serial",
            WARN,
            f"{base}; no position fix yet",
            "give the antenna a view of the sky (roof, windscreen); a cold start takes minutes",
        )
    return Finding("serial", OK, f"{base}, with a position fix")


# --- GPIO ----------------------------------------------------------------------------


def check_gpio(cfg: Config, probes: Probes) -> list[Finding]:
    sen = cfg.sensor
    if sen["kind"] == "none":
        return [Finding("gpio", SKIP, 'sensor.kind = "none": no door sensor')]
    pins = [("sensor.pin", sen["pin"])]
    if sen["kind"] == "beam-pair":
        pins.append(("sensor.pin_b", sen["pin_b"]))
    if probes.box_running():
        return [
            Finding(
                "gpio",
                SKIP,
                "the box is running and holds the sensor pins",
                "for this check stop it first: sudo systemctl stop vanbox",
            )
        ]
    try:
        from gpiozero import DigitalInputDevice
        from gpiozero.exc import GPIOPinInUse
    except ImportError as e:  # pragma: no cover - gpiozero is a dependency
        return [Finding("gpio", FAIL, f"gpiozero missing: {e}", "reinstall vanbox")]
    out = []
    uart_in_use = "serial0" in cfg.gps["port"] or "ttyAMA" in cfg.gps["port"]
    for key, pin in pins:
        if pin in UART_PINS and uart_in_use:
            out.append(
                Finding(
                    "gpio",
                    FAIL,
                    f"{key} = {pin} is {UART_PINS[pin]}, used by gps.port",
                    "move the sensor wire to GPIO 17 or 27 and set the pin in the config",
                )
            )
            continue
        try:
            dev = DigitalInputDevice(pin, pull_up=sen["pull_up"], pin_factory=probes.pin_factory)
        except GPIOPinInUse:
            out.append(
                Finding(
                    "gpio",
                    FAIL,
                    f"{key} = {pin}: GPIO{pin} is in use by another program",
                    "stop the other program (is the box running? `sudo systemctl stop vanbox`), "
                    "or move the sensor to a free pin",
                )
            )
            continue
        except Exception as e:  # noqa: BLE001 - BadPinFactory, PermissionError, ...
            name = type(e).__name__
            fix = (
                "the vanbox user must be in the gpio group: sudo usermod -aG gpio vanbox"
                if "ermission" in f"{name} {e}"
                else "no GPIO here: is this a Raspberry Pi? Off the Pi, set "
                "GPIOZERO_PIN_FACTORY=mock"
            )
            out.append(
                Finding("gpio", FAIL, f"{key} = {pin}: cannot claim GPIO{pin} ({name}: {e})", fix)
            )
            continue
        try:
            level = "high" if dev.value else "low"
        finally:
            dev.close()
        note = f"{key} = {pin}: GPIO{pin} is free, reads {level}"
        if pin in OTHER_PINS:
            out.append(
                Finding(
                    "gpio",
                    WARN,
                    f"{note}, but it is also {OTHER_PINS[pin]}",
                    "if that interface is on (raspi-config), move the sensor to GPIO 17 or 27",
                )
            )
        else:
            out.append(Finding("gpio", OK, note))
    return out


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
