"""``vanbox nmea SOURCE [--json]``: read NMEA from a recording or a port, one line per epoch.

SOURCE is a recording file (lines starting with ``#`` are comments) or a pyserial URL
(``/dev/serial0``, ``/dev/ttyACM0``, ``socket://host:port``). It runs the same reader the
box runs (:mod:`firmware.gps`, decoding with :mod:`firmware.nmea`), with the jump/HDOP
filter of the built-in configuration.
With ``--json`` each epoch is a gpsd-style TPV object on one line: ``time`` (ISO 8601 UTC
with milliseconds), ``lat``, ``lon``, ``alt`` (metres above mean sea level), ``speed``
(m/s), ``track`` (degrees), ``mode`` (1 no fix, 2 2D, 3 3D), ``hdop``, ``sats``, absent
where unknown; ``suspect: true`` marks a fix the filter would not show live.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from telemetry.config import default_config
from telemetry.errors import VanboxError

from .gps import GpsReader
from .nmea import Fix, FixFilter, read_file

_MODES = {1: "no fix", 2: "2D", 3: "3D"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="recording file or serial port URL")
    parser.add_argument("--json", action="store_true", help="one gpsd-style JSON TPV per line")
    parser.add_argument(
        "--baud", type=int, default=None, help="baud rate for a serial port (default: config)"
    )


def format_fix(fix: Fix, as_json: bool) -> str:
    if as_json:
        return json.dumps(fix.to_json(), separators=(",", ":"))
    d = fix.to_json()
    parts = [d.get("time", "(no date yet)"), _MODES.get(fix.mode, str(fix.mode))]
    if fix.mode >= 2:
        parts.append(f"{fix.lat:.6f} {fix.lon:.6f}")
        if fix.alt is not None:
            parts.append(f"alt {fix.alt:.1f} m")
        if fix.speed is not None:
            parts.append(f"{fix.speed:.1f} m/s")
        if fix.track is not None:
            parts.append(f"track {fix.track:.1f}")
    if fix.hdop is not None:
        parts.append(f"hdop {fix.hdop:g}")
    if fix.sats is not None:
        parts.append(f"sats {fix.sats}")
    if fix.suspect:
        parts.append("SUSPECT")
    return "  ".join(parts)


def file_fixes(path: str | Path, fix_filter: FixFilter | None = None) -> Iterator[Fix]:
    """The epochs of a recording as ``vanbox nmea`` prints them (filter applied)."""
    flt = fix_filter if fix_filter is not None else _default_filter()
    for fix in read_file(path):
        yield flt.check(fix)


def _default_filter() -> FixFilter:
    return FixFilter.from_config(default_config().gps)


def dump_file(path: str | Path, out: TextIO, as_json: bool) -> int:
    n = 0
    for fix in file_fixes(path):
        out.write(format_fix(fix, as_json) + "\n")
        n += 1
    return n


def _is_file(source: str) -> bool:
    return "://" not in source and Path(source).is_file()


def run(args: argparse.Namespace) -> int:
    source: str = args.source
    if _is_file(source):
        try:
            dump_file(source, sys.stdout, args.json)
        except BrokenPipeError:  # e.g. piped into head
            return 0
        except OSError as e:
            raise VanboxError(f"{source}: cannot read ({e.strerror})") from None
        return 0
    if "://" not in source and not os.path.exists(source):
        raise VanboxError(f"{source}: no such file or port; give a recording or a port URL")
    baud = args.baud or default_config().gps["baud"]
    lock = threading.Lock()

    def on_fix(fix: Fix) -> None:
        with lock:
            print(format_fix(fix, args.json), flush=True)

    reader = GpsReader(source, baud, on_fix=on_fix, fix_filter=_default_filter())
    reader.start()
    try:
        while reader.is_alive():
            time.sleep(0.5)
    finally:
        reader.stop()
    return 0
