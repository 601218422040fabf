"""The kiosk: a Flask app for the touchscreen check-in, staff reports and the public map.

``create_app(test_config=None, *, config=None, store=None, mode="box")``

- ``mode="box"`` (the Pi): ``/`` check-in, ``/map`` public map of this van, ``/staff``
  reports, ``/status`` the box's status page, ``/healthz`` for the watchdog.
- ``mode="hub"`` (the server): ``/`` public map of every van, ``/van/<id>``, ``/staff``.

Each feature module has an ``init_app(app)`` that registers its blueprint and whatever
else it needs; the factory only wires config and store into ``app.extensions``, and
adds what holds for every page: the security headers (Content-Security-Policy with a
per-response nonce for inline ``<style>`` blocks, X-Frame-Options, Referrer-Policy,
X-Content-Type-Options; HSTS over HTTPS), the session cookie's ``Secure`` flag over
HTTPS (or always with ``kiosk.cookie_secure``), and the signing key: from
``kiosk.secret_key_file``, else made once and kept in the database, so a restart or a
second web process on the same database keeps staff logged in.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request
from flask.sessions import SecureCookieSessionInterface

from telemetry.config import Config, default_config
from telemetry.errors import ConfigError
from telemetry.store import Store
from telemetry.stores import is_url, open_store

MODES = ("box", "hub")


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session whose cookie gets ``Secure`` when the page was
    requested over HTTPS (directly, or through ``hub.trusted_proxy``) or when
    ``kiosk.cookie_secure`` says so always. The touchscreen's http://127.0.0.1 keeps a
    cookie without it, which the browser would otherwise drop."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


# Every response: scripts, styles, images and fonts only from this server (Leaflet is
# served from /static; map tiles from hub.tile_url's host), no plugins, no framing by
# other sites, no referrer to other sites, no MIME sniffing. A blueprint may set a
# stricter policy of its own (the staff area does); it is kept.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'{nonce}; "
    "img-src 'self' data:{tiles}; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def _tile_origin(url: str) -> str:
    from urllib.parse import urlsplit

    if not url:
        return ""
    parts = urlsplit(url.replace("{s}", "a"))
    host = parts.netloc.replace("{s}.", "*.")
    return f" {parts.scheme}://{host}" if parts.scheme and host else ""


def csp_nonce() -> str:
    """A nonce for this response's inline ``<style nonce="...">`` (templates call
    ``{{ csp_nonce() }}``); the Content-Security-Policy then allows that one block."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _security_headers(resp: Response) -> Response:
    from flask import current_app

    h = resp.headers
    if "Content-Security-Policy" not in h:
        tiles = _tile_origin(current_app.extensions["vanbox_config"].hub.get("tile_url", ""))
        nonce = g.get("csp_nonce")
        h["Content-Security-Policy"] = CSP.format(
            tiles=tiles, nonce=f" 'nonce-{nonce}'" if nonce else ""
        )
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("X-Content-Type-Options", "nosniff")
    if request.is_secure:
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
    return resp


def _db_secret(store: Store) -> str:
    """The key made once and kept in the database (table ``web_secrets``): every web
    process on this database signs cookies alike, and a restart keeps staff logged in."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO web_secrets (name, value, created) VALUES (?, ?, ?)",
            ("session_key", secrets.token_hex(32), time.time()),
        )
        row = conn.execute("SELECT value FROM web_secrets WHERE name = 'session_key'").fetchone()
    return row[0]


def _secret_key(cfg: Config, store: Store) -> str:
    path = cfg.kiosk.get("secret_key_file") or ""
    if not path:
        return _db_secret(store)
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"kiosk.secret_key_file = {path!r}: cannot read ({why})") from None
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
    app.session_interface = SessionInterface()
    app.config.from_mapping(
        VANBOX_MODE=mode,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=bool(cfg.kiosk.get("cookie_secure")),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    if test_config:
        app.config.update(test_config)
    if store is None:
        db_path = app.config.get("DATABASE") or (
            cfg.hub["database"] or cfg.database["path"] if mode == "hub" else cfg.database["path"]
        )
        if not is_url(db_path):
            os.makedirs(os.path.dirname(os.path.abspath(db_path)), exist_ok=True)
        store = open_store(db_path, van="" if mode == "hub" else cfg.van["id"],
                           tz=cfg.timezone, tid=cfg.van["tid"])  # fmt: skip
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(cfg, store)
    app.extensions["vanbox_config"] = cfg
    app.extensions["vanbox_store"] = store
    app.after_request(_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    from . import (
        calendar,
        checkin,
        fleet_status,
        page_snapshot,
        public,
        staff,
        staff_contacts,
        staff_fleet,
        staff_plan,
        staff_scorecard,
        status,
        timetable,
    )

    for module in (status, checkin, staff, public, timetable, calendar, staff_fleet, staff_plan,
                   fleet_status, staff_contacts, staff_scorecard, page_snapshot):  # fmt: skip
        module.init_app(app)
    return app
