"""Accessors for what ``create_app`` put into the app: the config and the store."""

from __future__ import annotations

from flask import current_app

from telemetry.config import Config
from telemetry.store import Store


def config() -> Config:
    return current_app.extensions["vanbox_config"]


def store() -> Store:
    return current_app.extensions["vanbox_store"]


def mode() -> str:
    return current_app.config["VANBOX_MODE"]


def now():
    """The current time (UTC, aware) from the app's clock: the wall clock on the Pi, the
    simulated clock in the demo and the soak test. Views use this, never ``datetime.now``."""
    from telemetry.events import utcnow

    clock = current_app.extensions.get("vanbox_clock")
    return clock.now() if clock is not None else utcnow()


def record(event) -> None:
    """Record an event: through the box (which keeps it in memory and retries when the
    disk is full) when the app runs in the box, else straight into the store."""
    recorder = current_app.extensions.get("vanbox_record")
    if recorder is not None:
        recorder(event)
    else:
        store().record(event)
