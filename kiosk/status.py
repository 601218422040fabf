"""The box's status page (``/status``) and the watchdog's ``/healthz``."""

from __future__ import annotations

import time

from flask import Blueprint, Flask, jsonify, render_template

from . import appctx

bp = Blueprint("status", __name__)

# Set by the box process: a callable returning a dict of live figures (GPS, broker...).
LIVE_KEY = "vanbox_live"


def live() -> dict:
    from flask import current_app

    fn = current_app.extensions.get(LIVE_KEY)
    return fn() if fn else {}


@bp.get("/healthz")
def healthz():
    st = appctx.store()
    t0 = time.perf_counter()
    try:
        st.reader().execute("SELECT 1").fetchone()
        ok = True
    except Exception:  # noqa: BLE001 - the watchdog wants a yes/no, not a traceback
        ok = False
    body = {"ok": ok, "db_ms": round((time.perf_counter() - t0) * 1000, 2), "mode": appctx.mode()}
    return jsonify(body), 200 if ok else 503


@bp.get("/status")
def status_page():
    st = appctx.store()
    cfg = appctx.config()
    return render_template(
        "status.html", van=cfg.van, today=st.today(appctx.now()), last=st.last_position(),
        depth=st.outbox_depth(), live=live(), now=appctx.now(),
    )  # fmt: skip


@bp.get("/status.json")
def status_json():
    st = appctx.store()
    last = st.last_position()
    now = appctx.now()
    return jsonify(
        {
            "van": appctx.config().van["id"],
            "today": st.today(now),
            "outbox": st.outbox_depth(),
            "last_fix": None
            if last is None
            else {
                "lat": last.lat, "lon": last.lon, "time": last.time.isoformat(),
                "age_s": round((now - last.time).total_seconds(), 1), "mode": last.mode,
            },
            **live(),
        }
    )  # fmt: skip


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
