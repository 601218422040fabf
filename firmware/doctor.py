"""``vanbox doctor``: check what installers get wrong, and say how to fix each.

``vanbox doctor [--config PATH] [--json] [--seconds S]`` runs these checks in order:

========  ==============================================================================
config    the TOML file exists and is valid (else the rest runs with built-in defaults)
user      the vanbox user is in the groups for the serial port (dialout) and GPIO (gpio)
serial    the GPS port exists and sends NMEA with valid checksums at ``gps.baud``;
          garbage at that rate means a wrong baud: the other rates are tried and the
          one that works is named ("set gps.baud = 4800")
gpio      the sensor's pins can be claimed (not used by another program, not the
          GPS HAT's UART pins), through gpiozero (``GPIOZERO_PIN_FACTORY`` is honoured)
tls       the CA file loads and the broker's certificate verifies; neither expires
          within 30 days
broker    the broker accepts the configured login: tells "unreachable" from "login
          refused" from "TLS failure"
clock     the system clock is synchronised (NTP), or was set from GPS
disk      free space where the database lives (warn below 500 MB, fail below 100 MB)
database  the partition is not read-only, ``PRAGMA integrity_check`` is ok, the file
          is in WAL mode and owned by vanbox
========  ==============================================================================

Exit status 0 when nothing failed (warnings allowed), 1 when a check failed. Every
dependency on the machine (serial port, pin factory, disk usage, clock, whether the
box runs) is a field of :class:`Probes`, so tests inject broken setups. The checks
other than config live in :mod:`firmware.doctor_checks`, :mod:`firmware.doctor_net`
(tls, broker) and :mod:`firmware.doctor_db` (disk, database); this module re-exports
them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from telemetry.config import DEFAULT_PATH, Config, default_config, load_config
from telemetry.errors import ConfigError

from .doctor_checks import (
    CERT_WARN_DAYS,
    DISK_FAIL_MB,
    DISK_WARN_MB,
    FAIL,
    OK,
    OTHER_PINS,
    SKIP,
    UART_PINS,
    WARN,
    Finding,
    NmeaSample,
    Probes,
    analyse_nmea,
    check_clock,
    check_gpio,
    check_serial,
    check_user,
)
from .doctor_db import check_database, check_disk
from .doctor_net import check_broker, check_tls

# The checks moved to doctor_checks and doctor_db; these names stay importable from here.
__all__ = [
    "CERT_WARN_DAYS",
    "ConfigError",
    "DISK_FAIL_MB",
    "DISK_WARN_MB",
    "FAIL",
    "Finding",
    "NmeaSample",
    "OK",
    "OTHER_PINS",
    "Probes",
    "SKIP",
    "UART_PINS",
    "WARN",
    "add_arguments",
    "analyse_nmea",
    "check_broker",
    "check_clock",
    "check_config",
    "check_database",
    "check_disk",
    "check_gpio",
    "check_serial",
    "check_tls",
    "check_user",
    "default_config",
    "exit_status",
    "load_config",
    "render",
    "run",
    "run_checks",
]


# --- config --------------------------------------------------------------------------


def check_config(path: Path) -> tuple[Finding, Config]:
    try:
        cfg = load_config(path)
    except ConfigError as e:
        if not path.exists():
            fix = f"sudo cp /opt/vanbox/vanbox.example.toml {path} and edit it"
        elif "cannot read" in str(e):
            fix = "run it as root: sudo vanbox doctor (the file is readable by root and vanbox)"
        else:
            fix = f"edit {path} as the message says"
        msg = f"{e} (the checks below use the built-in defaults)"
        return Finding("config", FAIL, msg, fix), default_config()
    return Finding("config", OK, f"{path} is valid (van {cfg.van['id']})"), cfg


# --- running and reporting -----------------------------------------------------------


def run_checks(config_path: Path, probes: Probes | None = None) -> list[Finding]:
    probes = probes or Probes()
    first, cfg = check_config(Path(config_path))
    findings = [first, check_user(cfg, probes), check_serial(cfg, probes)]
    findings += check_gpio(cfg, probes)
    findings += check_tls(cfg, probes)
    findings += [check_broker(cfg, probes), check_clock(cfg, probes)]
    findings += [check_disk(cfg, probes), check_database(cfg, probes)]
    return findings


def exit_status(findings: list[Finding]) -> int:
    return 1 if any(f.status == FAIL for f in findings) else 0


def render(findings: list[Finding], config_path: Path) -> str:
    label = {OK: "ok  ", WARN: "warn", FAIL: "FAIL", SKIP: "skip"}
    lines = [f"vanbox doctor: {config_path}"]
    for f in findings:
        lines.append(f"  {label[f.status]}  {f.check:<8}  {f.message}")
        if f.fix and f.status != OK:
            lines.append(f"  {'':4}  {'':<8}  fix: {f.fix}")
    n = {s: sum(1 for f in findings if f.status == s) for s in (OK, WARN, FAIL, SKIP)}
    lines.append(f"{n[OK]} ok, {n[WARN]} warnings, {n[FAIL]} failed, {n[SKIP]} skipped")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PATH,
        help=f"configuration file (default {DEFAULT_PATH})",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="how long to listen to the GPS port (default 3)"
    )


def run(args) -> int:
    findings = run_checks(args.config, Probes(serial_seconds=args.seconds))
    status = exit_status(findings)
    if args.json:
        body = {
            "config": str(args.config),
            "ok": status == 0,
            "findings": [asdict(f) for f in findings],
        }
        print(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        print(render(findings, args.config))
    sys.stdout.flush()
    return status
