"""The staff pages for each van's tour plan, on the hub: ``/staff/plan`` (German).

Per van: the next visits (two weeks) with one "Absagen" button each (plus an optional
public reason), a delay or a move; the weekly template (add, change, remove a stop);
one-off visits (festival, school day) and closed periods (holidays); the list of
changes with a button to take each back. Every saved change is a new version of the
plan (``telemetry.plan.change_plan``: atomic, validated) and is published retained to
the van through ``app.extensions["vanbox_plan_published"]`` (hub/plans.py). Refused
input is shown as one clear line and the stored plan stays as it was.

Login and CSRF work as on the other staff pages (the guard of :mod:`kiosk.staff`).

- ``GET /staff/plan/``: the vans; ``GET /staff/plan/<van>``: one van's plan;
- ``POST /staff/plan/<van>/<action>`` with action = cancel | delay | move | extra |
  closed | stop | remove-stop | remove-exception.

The past stays as it was planned: a change of a weekly stop's weekdays or times, or its
removal, takes effect on a "Gilt ab" day (``effective``; empty: today, at most two years
ahead). A stop with visits before that day ends the day before and, for a change, a new
stop with the new hours starts that day (``Plan.with_stop_from``/``without_stop_from``);
a stop without earlier visits is changed or removed in place. Ended stops are listed
below the weekly plan and can no longer be changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta

from flask import Blueprint, Flask, abort, current_app, redirect, render_template, request, url_for

from telemetry.config import MUNICIPALITIES, WEEKDAYS
from telemetry.errors import PlanError
from telemetry.plan import (
    REASON_MAX,
    Plan,
    PlanException,
    PlanStop,
    change_plan,
    current_plan,
    new_id,
    slug,
    unique_key,
)
from telemetry.plan_history import keys_in_use
from telemetry.plan_json import clean_text, parse_date, parse_hhmm

from . import appctx, staff

log = logging.getLogger("vanbox.kiosk.plan")

bp = Blueprint("staff_plan", __name__, url_prefix="/staff/plan")
bp.before_request(staff._guard)

PUBLISHED = "vanbox_plan_published"  # app.extensions: callable(plan), see hub/plans.py
DAYS_SHOWN = 14
EFFECTIVE_MAX_DAYS = 731  # "Gilt ab" at most two years ahead
WEEKDAYS_DE = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")
STATUS_DE = {
    "planned": "geplant",
    "cancelled": "fällt aus",
    "delayed": "verspätet",
    "moved": "verlegt",
    "extra": "Sondertermin",
}
KIND_DE = {
    "cancel": "Absage",
    "delay": "Verspätung",
    "move": "Verlegung",
    "extra": "Sondertermin",
    "closed": "Schließzeit",
}
DONE_DE = {
    "cancel": "Abgesagt.",
    "delay": "Verspätung eingetragen.",
    "move": "Termin verlegt.",
    "extra": "Sondertermin eingetragen.",
    "closed": "Schließzeit eingetragen.",
    "stop": "Haltestelle gespeichert. Frühere Termine bleiben, wie sie geplant waren.",
    "remove-stop": "Haltestelle entfernt. Frühere Termine bleiben, wie sie geplant waren.",
    "remove-exception": "Änderung zurückgenommen.",
    "copy-tour": "Haltestellen aus der Konfiguration übernommen.",
}
SUFFIX_DONE = " Der Plan wird an den Bus gesendet (Version {v})."


# --- which vans ---------------------------------------------------------------------------


def _vans() -> list[tuple[str, str]]:
    """(id, label) of every van staff may plan for: the registry's vans that are not
    retired, and the van this hub's config describes."""
    cfg = appctx.config()
    out: dict[str, str] = {cfg.van["id"]: str(cfg.van["name"])}
    try:
        from telemetry import registry

        for v in registry.all_vans(appctx.store()):
            if v.state != "retired":
                out[v.id] = v.label
            elif v.id != cfg.van["id"]:
                out.pop(v.id, None)
    except Exception:  # noqa: BLE001 - no registry (an old schema): the config's van only
        log.debug("no van registry", exc_info=True)
    return sorted(out.items())


def _fallback(van: str):
    cfg = appctx.config()
    return cfg.tour if van == cfg.van["id"] else ()


def _plan(van: str) -> Plan:
    return current_plan(appctx.store().reader(), van, _fallback(van))


# --- reading the forms --------------------------------------------------------------------


def _form(name: str, default: str = "") -> str:
    return request.form.get(name, default).strip()


def _date(name: str, label: str) -> date:
    try:
        return parse_date(_form(name), label)
    except PlanError:
        raise PlanError(f"{label}: bitte ein gültiges Datum angeben (TT.MM.JJJJ)") from None


def _hhmm(name: str, label: str):
    try:
        return parse_hhmm(_form(name), label)
    except PlanError:
        raise PlanError(f"{label}: bitte eine Uhrzeit wie 14:30 angeben") from None


def _reason() -> str:
    return clean_text(_form("reason"), "Grund", REASON_MAX)


def _float(name: str, label: str, lo: float, hi: float) -> float:
    raw = _form(name).replace(",", ".")
    try:
        v = float(raw)
    except ValueError:
        raise PlanError(f"{label}: bitte eine Zahl angeben") from None
    if not lo <= v <= hi:
        raise PlanError(f"{label} = {raw}: erlaubt sind {lo:g} bis {hi:g}")
    return v


def _int(name: str, label: str, lo: int, hi: int) -> int:
    raw = _form(name)
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise PlanError(f"{label} = {raw or '(leer)'}: erlaubt sind {lo} bis {hi}")
    return int(raw)


def _place(plan: Plan, key: str = "") -> PlanStop:
    name = clean_text(_form("name"), "Name", 80, empty=False)
    muni = _form("municipality")
    if muni not in MUNICIPALITIES:
        raise PlanError("Gemeinde: bitte eine der sieben Gemeinden des Landkreises wählen")
    lat_raw, lon_raw = _form("lat"), _form("lon")
    if not lat_raw and not lon_raw:  # no coordinates: the municipality's centre
        lat, lon = MUNICIPALITIES[muni]
    else:
        lat = _float("lat", "Breite", -90, 90)
        lon = _float("lon", "Länge", -180, 180)
    radius = _float("radius_m", "Radius (m)", 10, 5000) if _form("radius_m") else 150.0
    if not key:
        key = unique_key(slug(name), keys_in_use(plan))
    return PlanStop(key, name, muni, lat, lon, radius)


# --- the edits (each: plan -> next version) -----------------------------------------------


def _ts() -> float:
    """The change's time: the app's clock (simulated in the demo and the tests)."""
    return appctx.now().timestamp()


def _cancel(plan: Plan) -> Plan:
    ex = PlanException(new_id(), "cancel", _date("date", "Datum"), stop_key=_form("stop"),
                       reason=_reason())  # fmt: skip
    return plan.with_exception(ex, now=_ts())


def _delay(plan: Plan) -> Plan:
    ex = PlanException(
        new_id(), "delay", _date("date", "Datum"), stop_key=_form("stop"),
        delay_min=_int("delay_min", "Verspätung (Minuten)", 1, 600), reason=_reason(),
    )  # fmt: skip
    return plan.with_exception(ex, now=_ts())


def _move(plan: Plan) -> Plan:
    ex = PlanException(
        new_id(), "move", _date("date", "Datum"), stop_key=_form("stop"),
        new_date=_date("new_date", "Neues Datum"), start=_hhmm("start", "Beginn"),
        end=_hhmm("end", "Ende"), reason=_reason(),
    )  # fmt: skip
    return plan.with_exception(ex, now=_ts())


def _extra(plan: Plan) -> Plan:
    ex = PlanException(
        new_id(), "extra", _date("date", "Datum"), stop=_place(plan),
        start=_hhmm("start", "Beginn"), end=_hhmm("end", "Ende"), reason=_reason(),
    )  # fmt: skip
    return plan.with_exception(ex, now=_ts())


def _closed(plan: Plan) -> Plan:
    ex = PlanException(
        new_id(), "closed", _date("date_from", "Von"), date_to=_date("date_to", "Bis"),
        reason=_reason(),
    )  # fmt: skip
    return plan.with_exception(ex, now=_ts())


def _today() -> date:
    return appctx.now().astimezone(appctx.config().tz).date()


def _effective(plan: Plan, key: str = "") -> date:
    """The day a change of the weekly plan takes effect ("Gilt ab"): empty is today; not
    before today (the past stays as it was planned), at most ``EFFECTIVE_MAX_DAYS`` ahead.
    Today's visit of the stop ``key`` that has already begun stays as it was planned: the
    change then takes effect tomorrow (the page's "Gültig ab" column shows it)."""
    today = _today()
    day = _date("effective", "Gilt ab") if _form("effective") else today
    if day == today and key and _begun_today(plan, key):
        return today + timedelta(days=1)
    if day < today:
        raise PlanError(
            f"Gilt ab: {day:%d.%m.%Y} liegt in der Vergangenheit; "
            f"frühestens heute ({today:%d.%m.%Y})"
        )
    if day > today + timedelta(days=EFFECTIVE_MAX_DAYS):
        raise PlanError(
            f"Gilt ab: {day:%d.%m.%Y} liegt zu weit in der Zukunft (höchstens zwei Jahre)"
        )
    return day


def _begun_today(plan: Plan, key: str) -> bool:
    """Has a visit of the stop ``key`` begun today (as planned, before any delay)?"""
    tz = appctx.config().tz
    now = appctx.now().astimezone(tz)
    return any(
        v.stop_key == key and (v.planned_start or v.start) <= now
        for v in plan.visits_on(now.date(), tz)
    )


def _stop(plan: Plan) -> Plan:
    key = _form("key")
    old = plan.stop(key) if key else None
    if key and old is None:
        raise PlanError("Haltestelle: nicht (mehr) im Plan; bitte die Seite neu laden")
    effective = _effective(plan, key)
    if old is not None and old.valid_to is not None and old.valid_to < effective:
        raise PlanError(f"Haltestelle: endet schon am {old.valid_to:%d.%m.%Y}; nicht mehr änderbar")
    place = _place(plan, key)
    days = request.form.getlist("weekdays")
    if not days or any(d not in WEEKDAYS for d in days):
        raise PlanError("Wochentage: bitte mindestens einen Wochentag wählen")
    stop = PlanStop(
        place.key, place.name, place.municipality, place.lat, place.lon, place.radius_m,
        tuple(sorted({WEEKDAYS.index(d) for d in days})), _hhmm("start", "Beginn"),
        _hhmm("end", "Ende"),
    )  # fmt: skip
    return plan.with_stop_from(stop, effective, now=_ts())


def _copy_tour(plan: Plan) -> Plan:
    """A new van's plan starts empty on the hub (each van has its own tour); this takes the
    hub config's ``[[tour.stops]]`` as its weekly stops, in one version, from today on."""
    template = Plan.from_tour(plan.van, appctx.config().tour)
    if plan.stops:
        raise PlanError("Wochenplan: hat schon Haltestellen; bitte einzeln ändern")
    if not template.stops:
        raise PlanError("Konfiguration: enthält keine Haltestellen ([[tour.stops]])")
    start = _today()  # like any new stop: from today on, the past weeks stay empty
    return plan.changed(stops=[replace(s, valid_from=start) for s in template.stops], now=_ts())


def _remove_stop(plan: Plan) -> Plan:
    old = plan.stop(_form("key"))
    if old is None:
        raise PlanError("Haltestelle: nicht (mehr) im Plan; bitte die Seite neu laden")
    effective = _effective(plan, old.key)
    if old.valid_to is not None and old.valid_to < effective:
        raise PlanError(f"Haltestelle: endet schon am {old.valid_to:%d.%m.%Y}")
    return plan.without_stop_from(old.key, effective, now=_ts())


def _remove_exception(plan: Plan) -> Plan:
    return plan.without_exception(_form("id"), now=_ts())


EDITS: dict[str, Callable[[Plan], Plan]] = {
    "cancel": _cancel,
    "delay": _delay,
    "move": _move,
    "extra": _extra,
    "closed": _closed,
    "stop": _stop,
    "copy-tour": _copy_tour,
    "remove-stop": _remove_stop,
    "remove-exception": _remove_exception,
}


# --- pages ----------------------------------------------------------------------------------


def _when(ts: float) -> str:
    if not ts:
        return "–"
    return datetime.fromtimestamp(ts, appctx.config().tz).strftime("%d.%m.%Y %H:%M")


def _day(d: date, today: date) -> str:
    label = f"{WEEKDAYS_DE[d.weekday()]} {d:%d.%m.}"
    if d == today:
        return f"Heute, {label}"
    if d == today + timedelta(days=1):
        return f"Morgen, {label}"
    return label


def _describe(plan: Plan, e: PlanException) -> str:
    name = plan.stop_name(e.stop_key) if e.stop_key else ""
    if e.kind == "cancel":
        return f"{e.date:%d.%m.%Y} {name}: fällt aus"
    if e.kind == "delay":
        return f"{e.date:%d.%m.%Y} {name}: {e.delay_min} Minuten später"
    if e.kind == "move" and e.new_date and e.start and e.end:
        return (
            f"{e.date:%d.%m.%Y} {name}: verlegt auf {e.new_date:%d.%m.%Y} "
            f"{e.start:%H:%M}–{e.end:%H:%M}"
        )
    if e.kind == "extra" and e.start and e.end:
        muni = e.stop.municipality if e.stop else ""
        return f"{e.date:%d.%m.%Y} {e.start:%H:%M}–{e.end:%H:%M} {name} ({muni})"
    if e.kind == "closed" and e.date_to:
        return f"{e.date:%d.%m.%Y} bis {e.date_to:%d.%m.%Y}: geschlossen"
    return KIND_DE.get(e.kind, e.kind)


def _van_page(van: str, *, error: str = "", status: int = 200, form: dict | None = None):
    cfg = appctx.config()
    plan = _plan(van)
    now = appctx.now().astimezone(cfg.tz)
    today = now.date()
    visits = [
        v
        for v in plan.visits_between(today, today + timedelta(days=DAYS_SHOWN), cfg.tz)
        if v.end > now
    ]
    cancels = {(e.stop_key, e.date): e.id for e in plan.exceptions if e.kind == "cancel"}
    labels = dict(_vans())
    done = request.args.get("done", "")
    info = DONE_DE.get(done, "")
    if info and request.args.get("v", "").isdigit():
        info += SUFFIX_DONE.format(v=request.args["v"])
    current = [s for s in plan.stops if s.valid_to is None or s.valid_to >= today]
    ended = [s for s in plan.stops if s.valid_to is not None and s.valid_to < today]
    html = render_template(
        "staff/plan.html",
        current_stops=current,
        ended_stops=sorted(ended, key=lambda s: s.valid_to or today, reverse=True),
        config_stops=0 if plan.stops else len(appctx.config().tour),
        page="plan",
        van=None,
        plan_van=van,
        van_label=labels.get(van, van),
        plan=plan,
        visits=visits,
        today=today,
        day=_day,
        describe=_describe,
        when=_when,
        status_de=STATUS_DE,
        kind_de=KIND_DE,
        weekdays=list(zip(WEEKDAYS, WEEKDAYS_DE, strict=True)),
        municipalities=list(MUNICIPALITIES),
        exceptions=sorted(plan.exceptions, key=lambda e: (e.date, e.kind), reverse=True),
        cancel_of=lambda v: cancels.get((v.stop_key, (v.planned_start or v.start).date())),
        error=error,
        info=info,
        form=form or {},
        reason_max=REASON_MAX,
    )
    return html, status


@bp.get("/")
def index():
    vans = _vans()
    if len(vans) == 1:  # one van: straight to its plan (one tap less to cancel a visit)
        return redirect(url_for("staff_plan.van_plan", van=vans[0][0]))
    plans = {v: _plan(v) for v, _ in vans}
    return render_template("staff/plan_index.html", page="plan", van=None, vans=vans,
                           plans=plans, when=_when)  # fmt: skip


@bp.get("/<van>")
def van_plan(van: str):
    if van not in dict(_vans()):
        abort(404, "Unbekannter Bus.")
    return _van_page(van)


@bp.post("/<van>/<action>")
def change(van: str, action: str):
    edit = EDITS.get(action)
    if edit is None:
        abort(404)
    vans = dict(_vans())
    try:
        plan = change_plan(appctx.store(), van, edit, fallback_tour=_fallback(van),
                           known_vans=vans, now=_ts())  # fmt: skip
    except PlanError as e:
        if van not in vans:
            abort(404, f"Unbekannter Bus: {van}")
        return _van_page(van, error=f"Nicht gespeichert: {e}", status=400,
                         form=dict(request.form) | {"action": action})  # fmt: skip
    log.info("plan of %s: version %d (%s by %s)", van, plan.version, action, _user())
    published = current_app.extensions.get(PUBLISHED)
    if published is not None:
        try:
            published(plan)
        except Exception:  # noqa: BLE001 - saved is saved; the hub republishes on reconnect
            log.exception("publishing the plan of %s failed", van)
    return redirect(url_for("staff_plan.van_plan", van=van, done=action, v=plan.version)
                    + f"#{_anchor(action)}", code=303)  # fmt: skip


def _anchor(action: str) -> str:
    anchors = {"stop": "vorlage", "remove-stop": "vorlage", "extra": "sonder", "closed": "sonder",
               "remove-exception": "aenderungen"}  # fmt: skip
    return anchors.get(action, "termine")


def _user() -> str:
    from flask import g

    return str(g.get("staff_user", "?"))


def init_app(app: Flask) -> None:
    """The plan pages exist on the hub only: the box receives its plan from the hub."""
    if app.config["VANBOX_MODE"] == "hub":
        app.register_blueprint(bp)


__all__ = ["EDITS", "PUBLISHED", "bp", "init_app"]
