"""The hub's status page: every van at a glance (``/status``, ``/status.json``, hub only).

Per van: online or offline and since when, last contact, the age of its last fix, the
outbox depth as the van last reported it (its tally), and per-day completeness from the
reconciliation (telemetry/tally.py, hub/reconcile.py): for each day of the van's last
tally, whether the hub holds every event the van has sent, counted now. The exact
position is shown to logged-in staff only (:func:`kiosk.status.is_staff`): anyone who
can open ``/status`` must not learn where a van is.

``vanbox status --url HUB`` prints the same JSON as a table (firmware/status.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, jsonify, render_template

from telemetry import deadletter
from telemetry.delivery import fleet_delivery
from telemetry.store import Store

from . import appctx
from .status import healthy, is_staff

bp = Blueprint("fleet_status", __name__)

MAX_DAYS_SHOWN = 14  # incomplete days listed per van on the HTML page (JSON: all)


def _names(store: Store) -> dict[str, tuple[str, str]]:
    """van -> (name, state) from the registry, if this database has one."""
    try:
        from telemetry.registry import all_vans

        return {v.id: (v.name, v.state) for v in all_vans(store)}
    except Exception:  # noqa: BLE001 - no registry yet: ids only
        return {}


def fleet(store: Store, now: datetime, *, staff: bool) -> list[dict[str, Any]]:
    """One dict per van the hub knows (see the module docstring), ordered by id; without a
    staff login only the published vans."""
    db = store.reader()
    status = {
        r[0]: r
        for r in db.execute(
            "SELECT van, status, status_since, last_seen, messages, malformed FROM van_status"
        )
    }
    delivery = fleet_delivery(store)
    names = _names(store)
    t = now.timestamp()
    out = []
    for van in sorted(set(status) | set(delivery) | set(names)):
        if not van:
            continue
        s = status.get(van)
        d = delivery.get(van, {})
        name, state = names.get(van, ("", ""))
        if not staff and state != "public":
            continue  # a new or retired van's id, name and activity are for staff only
        last = store.last_position(van)
        fix: dict[str, Any] | None = None
        if last is not None:
            fix = {
                "time": last.time.isoformat(),
                "age_s": round(max(0.0, t - last.time.timestamp()), 1),
                "mode": last.mode,
            }
            if staff:
                fix |= {"lat": last.lat, "lon": last.lon}
            else:
                fix["position"] = "staff only"
        days = d.get("days", {})
        incomplete = {day: v["missing"] for day, v in sorted(days.items()) if not v["complete"]}
        out.append(
            {
                "van": van,
                "name": name,
                "state": state,
                "status": s[1] if s else "unknown",
                "status_since": s[2] if s else None,
                "last_contact": s[3] if s else None,
                "last_contact_age_s": None if not s or s[3] is None else round(t - s[3], 1),
                "messages": s[4] if s else 0,
                "malformed": s[5] if s else 0,
                "last_fix": fix,
                "outbox": d.get("outbox"),
                "tally_age_s": None
                if d.get("tally_received") is None
                else round(t - d["tally_received"], 1),
                "days": len(days),
                "days_complete": len(days) - len(incomplete),
                "incomplete": incomplete,
            }
        )
    return out


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.0f} Tage"


@bp.get("/status")
def status_page():
    st = appctx.store()
    ok, failed = healthy()
    vans = fleet(st, appctx.now(), staff=is_staff())
    return render_template(
        "fleet_status.html", vans=vans, healthy=ok, failed=failed, age=age_text,
        dead_letters=deadletter.count(st), max_days=MAX_DAYS_SHOWN,
    )  # fmt: skip


@bp.get("/status.json")
def status_json():
    st = appctx.store()
    ok, failed = healthy()
    now = appctx.now()
    resp = jsonify(
        {
            "mode": "hub",
            "time": now.isoformat(),
            "healthy": ok,
            "failed": failed,
            "dead_letters": deadletter.count(st),
            "vans": fleet(st, now, staff=is_staff()),
        }
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


def init_app(app: Flask) -> None:
    if app.config.get("VANBOX_MODE") == "hub":
        app.register_blueprint(bp)
