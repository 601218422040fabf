"""The box's status page (``/status``, ``/status.json``) and the health answer ``/healthz``.

``/healthz`` (box and hub) answers 200 only while every registered health check passes,
else 503 with the failing checks' reasons as JSON; the box's watchdog and the kiosk
browser launcher poll it. Checks are registered by the process that knows the real work:

    register_check(app, "database", lambda: (True, ""))   # fn() -> (ok, reason)

which is ``app.extensions.setdefault("vanbox_health", {})[name] = fn``. Without any
registered check, ``/healthz`` still proves that the database answers a query.

``/status`` and ``/status.json`` exist on the box only (the hub has its fleet page).
The position is shown to logged-in staff only: anyone on the van's network can open
``/status``, and even a rounded position, polled, is a track (a staff member's home, a
home visit). Today's counts below 3 are shown as "<3" without a login.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import (
    Blueprint,
    Flask,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from . import appctx

bp = Blueprint("status", __name__)  # /healthz: box and hub
box_bp = Blueprint("box_status", __name__)  # /status, /status.json: box only

# Set by the box process: a callable returning a dict of live figures (GPS, broker...).
LIVE_KEY = "vanbox_live"
HEALTH_KEY = "vanbox_health"

HealthCheck = Callable[[], tuple[bool, str]]
SMALL_CELL = 3  # counts below this are shown as "<3" (null in JSON) without a staff login


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


def suppress(today: dict[str, int]) -> dict[str, int | None]:
    """Today's counts for someone not logged in: a count of 1 or 2 becomes ``None``
    (shown "<3"), as in every report outside the staff area."""
    return {k: (v if not v or v >= SMALL_CELL else None) for k, v in today.items()}


def _from_the_box() -> bool:
    """The request comes from the box itself (its screen, `vanbox status --url`)."""
    return request.remote_addr in ("127.0.0.1", "::1")


@box_bp.before_request
def _lan_needs_a_login():
    """With ``kiosk.bind`` open to the van's network, /status needs a staff login from
    anywhere but the box itself: only the kiosk and the public map are open there."""
    if _from_the_box() or is_staff():
        return None
    if request.path.endswith(".json"):
        return jsonify({"error": "login required"}), 401
    return redirect(url_for("staff.login", next=request.path))


@box_bp.get("/status")
def status_page():
    st = appctx.store()
    cfg = appctx.config()
    ok, failed = healthy()
    staff = is_staff()
    today = st.today(appctx.now())
    return render_template(
        "status.html", van=cfg.van, today=today if staff else suppress(today),
        last=st.last_position(),
        depth=st.outbox_depth(), live=live(), now=appctx.now(), staff=staff,
        healthy=ok, failed=failed, dead_letters=_dead_letters(),
    )  # fmt: skip


@box_bp.get("/status.json")
def status_json():
    st = appctx.store()
    last = st.last_position()
    now = appctx.now()
    ok, failed = healthy()
    staff = is_staff()
    last_fix = None
    if last is not None:
        last_fix = {
            "time": last.time.isoformat(),
            "age_s": round((now - last.time).total_seconds(), 1),
            "mode": last.mode,
        }
        if staff:
            last_fix |= {"lat": last.lat, "lon": last.lon}
        else:
            last_fix["position"] = "staff only"
    today = st.today(now)
    resp = jsonify(
        {
            "van": appctx.config().van["id"],
            "today": today if staff else suppress(today),
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
