"""The box's status page (``/status``, ``/status.json``) and the health answer ``/healthz``.

``/healthz`` (box and hub) answers 200 only while every registered health check passes,
else 503 with the failing checks' reasons as JSON; the box's watchdog and the kiosk
browser launcher poll it. Checks are registered by the process that knows the real work:

    register_check(app, "database", lambda: (True, ""))   # fn() -> (ok, reason)

which is ``app.extensions.setdefault("vanbox_health", {})[name] = fn``. Without any
registered check, ``/healthz`` still proves that the database answers a query.

``/status`` and ``/status.json`` exist on the box only (the hub has its fleet page).
The exact position is shown to logged-in staff only: anyone on the van's network can
open ``/status``, and an exact position would tell them where the van is or was (a
staff member's home, a home visit). Others see it rounded to about 1 km.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Blueprint, Flask, current_app, jsonify, render_template

from . import appctx

bp = Blueprint("status", __name__)  # /healthz: box and hub
box_bp = Blueprint("box_status", __name__)  # /status, /status.json: box only

# Set by the box process: a callable returning a dict of live figures (GPS, broker...).
LIVE_KEY = "vanbox_live"
HEALTH_KEY = "vanbox_health"

HealthCheck = Callable[[], tuple[bool, str]]
ANON_DECIMALS = 2  # decimals of lat/lon shown without a staff login (about 1 km)


def live() -> dict:
    fn = current_app.extensions.get(LIVE_KEY)
    return fn() if fn else {}


# --- health --------------------------------------------------------------------------


def register_check(app: Flask, name: str, fn: HealthCheck) -> None:
    """Add (or replace) a health check: ``fn() -> (ok, reason)``."""
    app.extensions.setdefault(HEALTH_KEY, {})[name] = fn


def run_checks(app: Flask | None = None) -> dict[str, tuple[bool, str]]:
    """Every registered check's result; a check that raises has failed, with its error."""
    app = app or current_app
    out: dict[str, tuple[bool, str]] = {}
    for name, fn in dict(app.extensions.get(HEALTH_KEY, {})).items():
        try:
            ok, reason = fn()
        except Exception as e:  # noqa: BLE001 - a broken check is a failed check
            ok, reason = False, f"{type(e).__name__}: {e}"
        out[name] = (bool(ok), str(reason))
    return out


def healthy(app: Flask | None = None) -> tuple[bool, dict[str, str]]:
    """(every check ok, {name: reason} of the failing checks)."""
    failed = {n: r for n, (ok, r) in run_checks(app).items() if not ok}
    return not failed, failed


@bp.get("/healthz")
def healthz():
    st = appctx.store()
    t0 = time.perf_counter()
    failed: dict[str, str] = {}
    try:
        st.reader().execute("SELECT 1").fetchone()
    except Exception as e:  # noqa: BLE001 - the watchdog wants a yes/no, not a traceback
        failed["database_read"] = f"{type(e).__name__}: {e}"
    db_ms = round((time.perf_counter() - t0) * 1000, 2)
    results = run_checks()
    failed |= {n: r for n, (ok, r) in results.items() if not ok}
    body = {
        "ok": not failed,
        "db_ms": db_ms,
        "mode": appctx.mode(),
        "checks": {n: {"ok": ok, "reason": r} for n, (ok, r) in results.items()},
        "failed": failed,
    }
    if appctx.mode() == "box":
        from .checkin import plan_version

        body["plan"] = plan_version()  # the start page reloads when this changes
    # (no Cache-Control: no-store here: Chromium then leaves the kiosk's heartbeat out of
    # its resource timing; the heartbeat fetch itself asks for no caching)
    return jsonify(body), 200 if not failed else 503


# --- the box's status page -----------------------------------------------------------


def is_staff() -> bool:
    """True for a logged-in staff member (never raises: no auth means anonymous)."""
    try:
        from .auth import current_user

        return current_user(active=False)[0] is not None
    except Exception:  # noqa: BLE001 - no staff area set up: nobody is staff
        return False


def _dead_letters() -> int | None:
    try:
        from telemetry import deadletter

        return deadletter.count(appctx.store())
    except Exception:  # noqa: BLE001 - an old schema or a broken file: shown as unknown
        return None


@box_bp.get("/status")
def status_page():
    st = appctx.store()
    cfg = appctx.config()
    ok, failed = healthy()
    return render_template(
        "status.html", van=cfg.van, today=st.today(appctx.now()), last=st.last_position(),
        depth=st.outbox_depth(), live=live(), now=appctx.now(), staff=is_staff(),
        healthy=ok, failed=failed, dead_letters=_dead_letters(), anon_decimals=ANON_DECIMALS,
    )  # fmt: skip


@box_bp.get("/status.json")
def status_json():
    st = appctx.store()
    last = st.last_position()
    now = appctx.now()
    ok, failed = healthy()
    last_fix = None
    if last is not None:
        last_fix = {
            "time": last.time.isoformat(),
            "age_s": round((now - last.time).total_seconds(), 1),
            "mode": last.mode,
        }
        if is_staff():
            last_fix |= {"lat": last.lat, "lon": last.lon}
        else:  # about 1 km: the area, not the house the van stands at
            last_fix |= {
                "lat": round(last.lat, ANON_DECIMALS),
                "lon": round(last.lon, ANON_DECIMALS),
                "rounded": True,
            }
    resp = jsonify(
        {
            "van": appctx.config().van["id"],
            "today": st.today(now),
            "outbox": st.outbox_depth(),
            "last_fix": last_fix,
            "healthy": ok,
            "failed": failed,
            "dead_letters": _dead_letters(),
            **live(),
        }
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    if app.config.get("VANBOX_MODE") == "box":
        app.register_blueprint(box_bp)
