"""The staff pages of the van registry, on the hub: ``/staff/fleet`` (German).

Every van the hub has heard from is listed: new ones first (not public yet), then the
published and the retired ones. Per van, staff set the public name and the OwnTracks
tracker id, publish it, retire it or publish it again. Login and CSRF work as on the
other staff pages (the guard of :mod:`kiosk.staff`); refused input is shown as one clear
line and changes nothing.

- ``GET /staff/fleet``: the list with one form per van;
- ``POST /staff/fleet/<van>``: ``name``, ``tid``, ``action`` = save | publish | retire.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Flask, abort, redirect, render_template, request, url_for

from telemetry import registry
from telemetry.registry import NAME_MAX, RegistryError

from . import appctx, staff

bp = Blueprint("staff_fleet", __name__, url_prefix="/staff/fleet")
bp.before_request(staff._guard)

STATE_DE = {"new": "neu (nicht öffentlich)", "public": "öffentlich", "retired": "ausgemustert"}
DONE_DE = {
    "save": "Gespeichert.",
    "publish": "Veröffentlicht: der Bus steht jetzt auf der öffentlichen Karte.",
    "retire": "Ausgemustert: der Bus ist nicht mehr öffentlich; seine Daten bleiben in den "
    "Berichten.",
}


def _last_seen() -> dict[str, float]:
    conn = appctx.store().reader()
    try:
        rows = conn.execute("SELECT van, last_seen FROM van_status WHERE last_seen IS NOT NULL")
    except Exception:  # noqa: BLE001 - an old schema: no column to show
        return {}
    return {r[0]: r[1] for r in rows}


def _when(ts: float | None) -> str:
    if not ts:
        return "–"
    return datetime.fromtimestamp(ts, appctx.config().tz).strftime("%d.%m.%Y %H:%M")


def _page(error: str = "", status: int = 200, failed: str = "", form: dict | None = None):
    vans = registry.all_vans(appctx.store())
    done = request.args.get("done", "")
    html = render_template(
        "staff/fleet.html",
        page="fleet",
        van=None,
        vans=vans,
        seen=_last_seen(),
        when=_when,
        states=STATE_DE,
        error=error,
        failed=failed,
        form=form or {},
        info=DONE_DE.get(done, ""),
        info_van=request.args.get("van", ""),
        name_max=NAME_MAX,
    )
    return html, status


@bp.get("/")
def index():
    return _page()


@bp.post("/<van>")
def change(van: str):
    st = appctx.store()
    current = registry.get(st, van)
    if current is None:
        abort(404, "Unbekannter Bus.")
    action = request.form.get("action", "save")
    if action not in DONE_DE:
        abort(400, "Unbekannte Aktion.")
    name = request.form.get("name", current.name)
    tid = request.form.get("tid", current.tid)
    state = {"save": current.state, "publish": "public", "retire": "retired"}[action]
    try:
        if action == "publish" and not " ".join(str(name).split()):
            raise RegistryError("Name: bitte zuerst einen Namen geben, dann veröffentlichen")
        registry.update(st, van, name=name, tid=tid, state=state)
    except RegistryError as e:
        return _page(str(e), 400, failed=van, form={"name": name, "tid": tid})
    return redirect(url_for("staff_fleet.index", done=action, van=van), code=303)


def init_app(app: Flask) -> None:
    """The registry pages exist on the hub only (a box's registry is its own van)."""
    if app.config["VANBOX_MODE"] == "hub":
        app.register_blueprint(bp)
