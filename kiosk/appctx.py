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
