"""The GPS serial port check of ``vanbox doctor`` (:mod:`firmware.doctor_checks`):
:func:`check_serial` opens the port, reads a few seconds of bytes and tries the other
baud rates when they are no NMEA; :func:`analyse_nmea` says what the bytes hold (valid
and bad sentences, non-text bytes, a position fix)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from telemetry.config import BAUD_RATES, Config

from .doctor_probes import FAIL, OK, SKIP, WARN, Finding, Probes

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
