"""The ``vanbox`` command: a thin layer over the library.

Each subcommand lives in a module with ``add_arguments(parser)`` and ``run(args) -> int``.
Library errors (:class:`telemetry.errors.VanboxError`) become one clear line on stderr
and exit status 2; nothing prints a traceback at a user on purpose.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from telemetry.errors import VanboxError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("firmware.demo", "run the simulated van: GPS route, visitors, kiosk, MQTT"),
    "run": ("firmware.box", "run the box with the configured GPS port and GPIO pins"),
    "status": ("firmware.status", "print last fix, outbox depth, broker and today's counts"),
    "nmea": ("firmware.nmea_dump", "read NMEA from a file or port, print one JSON line per fix"),
    "hub": ("hub.server", "run the hub: subscribe to all vans, serve map and reports"),
    "passwd": ("firmware.passwd", "add or change a staff login"),
    "prune": ("firmware.prune", "delete raw events older than the retention period"),
    "doctor": ("firmware.doctor", "check the installation and say how to fix what is wrong"),
    "soak": ("firmware.soak", "simulate days in the van with every fault, and count"),
    "fleet-sim": ("hub.fleet_sim", "simulate N vans sending to a broker (sizing a hub)"),
}


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option)."""
    for a in argv:
        if not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser. Only the chosen subcommand's module is imported (``argv=None``: every
    one), so a package that one command needs (say, psycopg for a PostgreSQL hub) can never
    stop another (``vanbox run`` on the box)."""
    chosen = None if argv is None else _chosen(argv)
    p = argparse.ArgumentParser(
        prog="vanbox", description="Software for the JUNGregio outreach van."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (modname, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(_module=modname)
        if argv is None or name == chosen:
            importlib.import_module(modname).add_arguments(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except VanboxError as e:
        print(f"vanbox {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
