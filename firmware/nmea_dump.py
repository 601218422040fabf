"""Placeholder for a subcommand being written (see the issue tracker)."""

from telemetry.errors import VanboxError


def add_arguments(parser) -> None:
    return None


def run(args) -> int:
    raise VanboxError("this command is not built yet")
