"""The kiosk: a Flask app for the touchscreen check-in, staff reports and the public map.

``create_app(test_config=None, *, config=None, store=None, mode="box")``

- ``mode="box"`` (the Pi): ``/`` check-in, ``/map`` public map of this van, ``/staff``
  reports, ``/status`` the box's status page, ``/healthz`` for the watchdog.
- ``mode="hub"`` (the server): ``/`` public map of every van, ``/van/<id>``, ``/staff``.

Each feature module has an ``init_app(app)`` that registers its blueprint and whatever
else it needs; the factory only wires config and store into ``app.extensions``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from telemetry.config import Config, default_config
from telemetry.errors import ConfigError
from telemetry.store import Store

MODES = ("box", "hub")


def _secret_key(cfg: Config) -> str:
    path = cfg.kiosk.get("secret_key_file") or ""
    if not path:
        return secrets.token_hex(32)  # sessions and CSRF tokens end with the process
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"kiosk.secret_key_file = {path!r}: cannot read ({e.strerror})") from None
    if len(key) < 32:
        raise ConfigError(f"kiosk.secret_key_file = {path!r}: key too short; use 32+ characters")
    return key


def create_app(
    test_config: dict[str, Any] | None = None,
    *,
    config: Config | None = None,
    store: Store | None = None,
    mode: str = "box",
) -> Flask:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    cfg = config or default_config()
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY=_secret_key(cfg),
        VANBOX_MODE=mode,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    if test_config:
        app.config.update(test_config)
    if store is None:
        db_path = app.config.get("DATABASE") or (
            cfg.hub["database"] or cfg.database["path"] if mode == "hub" else cfg.database["path"]
        )
        os.makedirs(os.path.dirname(os.path.abspath(db_path)), exist_ok=True)
        store = Store(db_path, van="" if mode == "hub" else cfg.van["id"], tz=cfg.timezone,
                      tid=cfg.van["tid"])  # fmt: skip
    app.extensions["vanbox_config"] = cfg
    app.extensions["vanbox_store"] = store

    from . import checkin, public, staff, status

    for module in (status, checkin, staff, public):
        module.init_app(app)
    return app
