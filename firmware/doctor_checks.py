"""The checks ``vanbox doctor`` runs, each returning findings with a fix for the installer.

One function per check: the service user's groups (:func:`check_user`), the GPS serial
port and its baud rate (:func:`check_serial`, with :func:`analyse_nmea`), the sensor's
GPIO pins (:func:`check_gpio`), the CA file and broker certificate (:func:`check_tls`),
the broker login (:func:`check_broker`), the clock (:func:`check_clock`), free disk
(:func:`check_disk`) and the database file (:func:`check_database`). Also the
:class:`Finding` they return and the :class:`Probes` (everything on the machine they
touch, so tests inject broken setups). The command itself, with the config check and
the order of the checks, is :mod:`firmware.doctor`.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import sqlite3
import ssl
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


# --- TLS and broker ------------------------------------------------------------------


def _days_left(not_after: str, now: datetime) -> float:
    return (ssl.cert_time_to_seconds(not_after) - now.timestamp()) / 86400


def _cert_finding(what: str, not_after: str, now: datetime, fix: str) -> Finding | None:
    days = _days_left(not_after, now)
    if days < 0:
        return Finding("tls", FAIL, f"{what} expired on {not_after}", fix)
    if days < CERT_WARN_DAYS:
        return Finding("tls", WARN, f"{what} expires in {days:.0f} days ({not_after})", fix)
    return None


def check_tls(cfg: Config, probes: Probes) -> list[Finding]:
    mq = cfg.mqtt
    if not mq["enabled"] or (not mq["tls"] and not mq["ca_file"]):
        return [Finding("tls", SKIP, "mqtt.tls is false")]
    now = probes.now()
    out: list[Finding] = []
    ca = mq["ca_file"]
    try:
        ctx = ssl.create_default_context(cafile=ca or None)
    except FileNotFoundError:
        return [
            Finding(
                "tls",
                FAIL,
                f"mqtt.ca_file = {ca!r}: no such file",
                "copy the broker's CA certificate (PEM) there",
            )
        ]
    except (ssl.SSLError, OSError) as e:
        return [
            Finding(
                "tls",
                FAIL,
                f"mqtt.ca_file = {ca!r}: not a PEM certificate ({e})",
                "use the CA certificate in PEM format (-----BEGIN CERTIFICATE-----)",
            )
        ]
    if ca:
        certs = ctx.get_ca_certs()
        if not certs:
            out.append(
                Finding(
                    "tls",
                    FAIL,
                    f"mqtt.ca_file = {ca!r}: holds no CA certificate",
                    "use the certificate of the CA that signed the broker's",
                )
            )
        for c in certs:
            subj = dict(x[0] for x in c.get("subject", ()))
            f = _cert_finding(
                f"CA certificate {subj.get('commonName', '?')!r} in {ca}",
                c["notAfter"],
                now,
                "get the renewed CA certificate from the broker's admin",
            )
            if f:
                out.append(f)
    if not mq["tls"]:
        return out or [Finding("tls", OK, f"{ca} loads; mqtt.tls is false")]
    host, port = mq["host"], mq["port"]
    try:
        raw = socket.create_connection((host, port), timeout=probes.timeout)
    except OSError as e:
        return out + [Finding("tls", SKIP, f"{host}:{port} unreachable ({e}); see broker")]
    try:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            peer = s.getpeercert()
    except ssl.SSLCertVerificationError as e:
        why = e.verify_message or str(e)
        if "ostname" in why or "IP address mismatch" in why:
            fix = f"mqtt.host must be the name in the broker's certificate (not {host!r})"
        elif "expired" in why:
            fix = "the broker's certificate expired: its admin must renew it"
        else:
            fix = "set mqtt.ca_file to the CA that signed the broker's certificate"
        return out + [Finding("tls", FAIL, f"TLS failure at {host}:{port}: {why}", fix)]
    except OSError as e:  # SSLError, or the peer hung up on the handshake
        why = getattr(e, "reason", None) or e.strerror or str(e)
        return out + [
            Finding(
                "tls",
                FAIL,
                f"TLS failure at {host}:{port}: handshake failed ({why})",
                f"port {port} may not speak TLS: MQTT over TLS is usually 8883 "
                "(or set mqtt.tls = false)",
            )
        ]
    finally:
        raw.close()
    f = _cert_finding(
        f"the broker's certificate ({host})",
        peer["notAfter"],
        now,
        "ask the broker's admin to renew the certificate",
    )
    if f:
        out.append(f)
    if not any(x.status in (FAIL, WARN) for x in out):
        days = _days_left(peer["notAfter"], now)
        out.append(
            Finding("tls", OK, f"{host}:{port} certificate verifies, valid {days:.0f} more days")
        )
    return out


def check_broker(cfg: Config, probes: Probes) -> Finding:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    mq = cfg.mqtt
    if not mq["enabled"]:
        return Finding("broker", SKIP, "mqtt.enabled is false: the box records locally only")
    host, port = mq["host"], mq["port"]
    where = f"{host}:{port}"
    password = None
    if mq["password_file"]:
        try:
            password = Path(mq["password_file"]).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as e:
            return Finding(
                "broker",
                FAIL,
                f"mqtt.password_file = {mq['password_file']!r}: cannot read ({e})",
                "write the password into that file: chmod 600, owner vanbox",
            )
    # Its own client id: reusing the box's would disconnect the running box.
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"vanbox-doctor-{os.getpid()}")
    if mq["username"]:
        c.username_pw_set(mq["username"], password)
    if mq["tls"]:
        try:
            c.tls_set(ca_certs=mq["ca_file"] or None)
        except (OSError, ssl.SSLError) as e:
            return Finding("broker", FAIL, f"TLS failure: cannot use mqtt.ca_file ({e})", "see tls")
    c.connect_timeout = probes.timeout
    result: dict[str, Any] = {}
    c.on_connect = lambda client, userdata, flags, rc, props: result.setdefault("rc", rc)
    # Plain TCP first, so "unreachable" is never mistaken for a TLS or login problem.
    try:
        socket.create_connection((host, port), timeout=probes.timeout).close()
    except socket.gaierror:
        return Finding(
            "broker",
            FAIL,
            f"{where} unreachable: unknown host {host!r}",
            "check mqtt.host and that the Pi is online (ping the host)",
        )
    except ConnectionRefusedError:
        return Finding(
            "broker",
            FAIL,
            f"{where} unreachable: connection refused (nothing listens)",
            "check mqtt.port; is the broker running?",
        )
    except OSError as e:
        return Finding(
            "broker",
            FAIL,
            f"{where} unreachable: {e.strerror or e}",
            "check the mobile link and any firewall; the box buffers meanwhile",
        )
    try:
        c.connect(host, port, keepalive=10)
    except OSError as e:  # SSLError included; the port answered TCP a moment ago
        why = getattr(e, "verify_message", None) or getattr(e, "reason", None) or e
        if mq["tls"]:
            return Finding(
                "broker",
                FAIL,
                f"TLS failure at {where}: {why}",
                "see the tls finding; check mqtt.ca_file, mqtt.host and mqtt.port",
            )
        return Finding("broker", FAIL, f"{where}: connection failed ({why})", "check mqtt.port")
    deadline = time.monotonic() + probes.timeout
    try:
        while "rc" not in result and time.monotonic() < deadline:
            if c.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
    finally:
        c.disconnect()
    if "rc" not in result:
        hint = "" if mq["tls"] else " (does the port expect TLS? then set mqtt.tls = true)"
        return Finding(
            "broker",
            FAIL,
            f"{where} accepted the connection but sent no MQTT answer{hint}",
            "check mqtt.port and mqtt.tls",
        )
    rc = result["rc"]
    if rc.is_failure:
        if rc.value in (134, 135, 4, 5):
            who = f"user {mq['username']!r}" if mq["username"] else "anonymous login"
            return Finding(
                "broker",
                FAIL,
                f"{where} refused the login ({who}: {rc})",
                "check mqtt.username and the password in mqtt.password_file",
            )
        return Finding(
            "broker", FAIL, f"{where} refused the connection: {rc}", "ask the broker's admin"
        )
    who = f"as {mq['username']!r}" if mq["username"] else "anonymously"
    return Finding(
        "broker", OK, f"{where} accepts the login {who}{' over TLS' if mq['tls'] else ''}"
    )


# --- clock, disk, database -----------------------------------------------------------


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


def _existing_parent(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_disk(cfg: Config, probes: Probes) -> Finding:
    db = Path(cfg.database["path"])
    where = _existing_parent(db.parent)
    try:
        free_mb = probes.disk_usage(str(where)).free / 1e6
    except OSError as e:
        return Finding("disk", FAIL, f"cannot measure free space at {where}: {e}", "")
    msg = f"{free_mb:,.0f} MB free at {where}"
    fix = (
        "free space: sudo journalctl --vacuum-size=50M; sudo apt-get clean; "
        "`vanbox prune`; or use a bigger SD card"
    )
    if free_mb < DISK_FAIL_MB:
        return Finding(
            "disk", FAIL, f"{msg} (under {DISK_FAIL_MB} MB: the box will stop recording)", fix
        )
    if free_mb < DISK_WARN_MB:
        return Finding("disk", WARN, f"{msg} (under {DISK_WARN_MB} MB)", fix)
    return Finding("disk", OK, msg)


def check_database(cfg: Config, probes: Probes) -> Finding:
    path = Path(cfg.database["path"])
    if not path.exists():
        if not path.parent.is_dir():
            return Finding(
                "database",
                WARN,
                f"{path.parent} does not exist",
                "run deploy/install.sh (it creates /var/lib/vanbox) or fix database.path",
            )
        return Finding(
            "database", OK, f"{path} not created yet; the box creates it at its first start"
        )
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as e:
        return Finding(
            "database", FAIL, f"{path}: cannot open ({e})", "check the file's owner (vanbox)"
        )
    fix = (
        "stop the box (sudo systemctl stop vanbox), keep a copy of the file, then recover: "
        f"sqlite3 {path} '.recover' | sqlite3 {path}.recovered && mv {path}.recovered {path}; "
        "sudo chown vanbox: the file; start the box"
    )
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0].lower()
    except sqlite3.DatabaseError as e:
        return Finding("database", FAIL, f"{path}: not a readable SQLite database ({e})", fix)
    finally:
        conn.close()
    if rows != ["ok"]:
        return Finding(
            "database", FAIL, f"{path}: integrity check failed: {'; '.join(rows[:3])}", fix
        )
    if mode != "wal":
        return Finding(
            "database",
            WARN,
            f"{path}: integrity ok, but journal_mode is {mode}, not wal",
            "start the box once: it switches the file to WAL",
        )
    wrong = _not_owned_by(probes.service_user, [path.parent, path, *_wal_files(path)])
    if wrong:
        u = probes.service_user
        return Finding(
            "database",
            FAIL,
            f"{path}: integrity ok, but {', '.join(wrong)} not owned by {u}: the box cannot "
            "write (was vanbox started by hand as root?)",
            f"sudo chown -R {u}: {path.parent}",
        )
    size = path.stat().st_size / 1e6
    return Finding("database", OK, f"{path}: integrity ok, WAL mode, {size:,.1f} MB")


def _wal_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + s) for s in ("-wal", "-shm")]


def _not_owned_by(user: str, paths: list[Path]) -> list[str]:
    """The paths (that exist) not owned by ``user``; none when the user does not exist."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return []
    return [str(p) for p in paths if p.exists() and p.stat().st_uid != uid]


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
