"""The balanced scorecard at ``/staff/scorecard`` (box: its van; hub: each van and all).

Staff set yearly targets by perspective (reach, process, network, and targets of their
own), each with the actual figure, the expected figure to date, a forecast for the year,
a traffic light and a monthly trend chart (definitions in :mod:`telemetry.scorecard`).
Targets are versioned by year and every change is logged and shown (telemetry/targets.py).

Login and CSRF work as on the other staff pages (the guard of :mod:`kiosk.staff`).
Refused input is shown as one clear line (status 400) and nothing is stored.

- ``GET /staff/scorecard?year=&van=`` the scorecard (``van`` empty: all vans, hub only)
- ``POST /staff/scorecard/<action>`` with ``year``, ``van`` and action = target (set or
  change one: ``code``, ``value``, ``profile``; custom ones also ``name``, ``unit``,
  ``lower_better``) | custom (a new own target) | remove (``code``) | actuals (a custom
  target's monthly figures ``m1``..``m12``) | copy (the previous year's targets)
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, time

from flask import Blueprint, Flask, abort, g, redirect, render_template, request, url_for
from markupsafe import Markup

from telemetry import reports, scorecard, targets
from telemetry.plan import Plan, plan_vans
from telemetry.reports import Table
from telemetry.scorecard import GREEN, LIGHTS, PERSPECTIVES, PUNCTUAL_MIN, YELLOW
from telemetry.targets import TargetError, fmt_number, fmt_profile

from . import appctx, charts, staff

log = logging.getLogger("vanbox.kiosk.scorecard")

bp = Blueprint("staff_scorecard", __name__, url_prefix="/staff/scorecard")
bp.before_request(staff._guard)

DONE_DE = {
    "target": "Ziel gespeichert.",
    "custom": "Eigenes Ziel angelegt.",
    "remove": "Ziel entfernt.",
    "actuals": "Ist-Werte gespeichert.",
    "copy": "Ziele aus dem Vorjahr übernommen.",
    "same": "Nichts geändert: die Werte waren schon so gespeichert.",
}
FIELD_DE = {
    "value": "Jahresziel",
    "profile": "Monatsprofil",
    "label": "Name",
    "unit": "Einheit",
    "lower_better": "Richtung",
    "target": "Ziel",
}
REFERENCE_DE = {"checkins": "Check-ins", "visits": "Besuche"}
DEFINITIONS = (
    (
        "Beratungskontakte",
        "von den Mitarbeitenden erfasste Kontakte (Summe der erreichten"
        " Personen; ein Gruppenangebot zählt jede Person).",
    ),
    ("Check-ins", "anonyme Anmeldungen junger Menschen am Bildschirm im Bus."),
    ("Besuche", "Personen, die der Türsensor bei einem Halt zählt."),
)


# --- which van, which year ------------------------------------------------------------------


def _hub() -> bool:
    return appctx.mode() == "hub"


def _vans() -> list[str]:
    """Every van the hub knows: with data, with a plan, in the registry, the config's."""
    conn = appctx.store().reader()
    out = set(reports.vans(conn)) | set(plan_vans(conn)) | {appctx.config().van["id"]}
    try:
        from telemetry import registry

        out |= {v.id for v in registry.all_vans(appctx.store())}
    except Exception:  # noqa: BLE001 - no registry (an old schema)
        log.debug("no van registry", exc_info=True)
    return sorted(v for v in out if v)


def _van(text: str | None, vans: list[str]) -> str:
    """The targets' van key: the box's own van; on the hub a van id or "" (all)."""
    if not _hub():
        return appctx.config().van["id"]
    text = (text or "").strip()
    if text and text not in vans:
        raise TargetError(f"Fahrzeug: unbekannt ({text[:40]})")
    return text


def _today() -> date:
    return appctx.now().astimezone(appctx.config().tz).date()


def _until(year: int) -> datetime:
    """Figures count up to now (the current year), the year's end (a past year) or its
    start (a future year: nothing yet)."""
    tz = appctx.config().tz
    now = appctx.now().astimezone(tz)
    if year < now.year:
        return datetime.combine(date(year + 1, 1, 1), time(0), tzinfo=tz)
    if year > now.year:
        return datetime.combine(date(year, 1, 1), time(0), tzinfo=tz)
    return now


def _figures(year: int, van: str) -> tuple[list[scorecard.Figure], dict[str, targets.Target]]:
    cfg = appctx.config()
    have = targets.targets(appctx.store().reader(), year, van)
    partners = [
        p
        for p in cfg.contacts["partners"]
        if p.get("active", True) or f"referrals-{p['code']}" in have
    ]
    figs = scorecard.figures(cfg.reports["town"], cfg.reports["municipalities"], partners)
    figs += [scorecard.custom_figure(t) for t in have.values() if t.custom]
    return figs, have


# --- the page -------------------------------------------------------------------------------


_SVG: dict[tuple, str] = {}
_SVG_MAX = 256
_SVG_LOCK = threading.Lock()


def _chart(r: scorecard.Result) -> Markup:
    """The trend chart (pygal, kiosk/charts.py); the same figures give the same SVG, so a
    chart is drawn once and kept (most months of a year do not change any more)."""
    key = (r.figure.label, r.chart_columns, r.chart)
    with _SVG_LOCK:
        svg = _SVG.get(key)
    if svg is None:
        table = Table(r.figure.code, r.figure.label, r.chart_columns, r.chart, "line")
        svg = charts.render(
            table,
            title=f"Verlauf: {r.figure.label}",
            width=420,
            height=240,
            series=r.chart_columns[1:],
        )
        with _SVG_LOCK:
            if len(_SVG) >= _SVG_MAX:
                _SVG.pop(next(iter(_SVG)))
            _SVG[key] = svg
    return Markup(svg)


def _results(year: int, van: str) -> tuple[list[scorecard.Result], scorecard.Data]:
    cfg = appctx.config()
    conn = appctx.store().reader()
    until = _until(year)
    own = cfg.van["id"]
    data = scorecard.collect(
        conn,
        year,
        van=van or None,
        until=until,
        tz=cfg.tz,
        town=cfg.reports["town"],
        municipalities=cfg.reports["municipalities"],
        vans=_vans() if not van else (),
        fallback={own: Plan.from_tour(own, cfg.tour)},
    )
    figs, have = _figures(year, van)
    entered = targets.actuals(conn, year, van)
    out = []
    zero = scorecard.Monthly((0.0,) * 12)
    for f in figs:
        t = have.get(f.code)
        if f.perspective == "custom":
            values = entered.get(f.code, {})
            monthly = scorecard.custom_monthly(values)
            at = scorecard.custom_until(year, values, until, cfg.tz)
        else:
            monthly = data.series.get(f.code, zero)
            if f.kind == "rate" and monthly.den is None:
                monthly = scorecard.Monthly(monthly.num, (0.0,) * 12)
            at = until
        ref = None
        if f.code == "contacts":
            ref = {REFERENCE_DE[k]: v for k, v in data.reference.items()}
        out.append(scorecard.evaluate(f, t, monthly, year=year, until=at, tz=cfg.tz, reference=ref))
    return out, data


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, appctx.config().tz).strftime("%d.%m.%Y %H:%M")


def _field_de(field: str) -> str:
    if field.startswith("actual-") and field[7:] in {str(m) for m in range(1, 13)}:
        return f"Ist-Wert {targets.MONTHS_SHORT[int(field[7:]) - 1]}"
    return FIELD_DE.get(field, field)


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "–"
    text = fmt_number(round(v, 1) if abs(v) < 1000 else round(v))
    return f"{text} %" if unit.startswith("%") else text


def _page(year: int, van: str, *, error: str = "", status: int = 200, form: dict | None = None):
    vans = _vans() if _hub() else [van]
    results, data = _results(year, van)
    conn = appctx.store().reader()
    labels = {r.figure.code: r.figure.label for r in results}
    entries = [
        (e, labels.get(e.code, e.code), _field_de(e.field)) for e in targets.log(conn, year, van)
    ]
    until = _until(year)
    prev_has = bool(targets.targets(conn, year - 1, van)) if year > targets.YEARS[0] else False
    q = {"van": van} if van else {}
    html = render_template(
        "staff/scorecard.html",
        page="scorecard",
        van=van or None,
        vans=vans,
        show_vans=_hub(),
        year=year,
        scope=van or "alle Busse",
        perspectives=[
            (k, label, [r for r in results if r.figure.perspective == k])
            for k, label in PERSPECTIVES.items()
        ],
        chart=_chart,
        fmt=_fmt,
        fmt_number=fmt_number,
        fmt_profile=fmt_profile,
        lights=LIGHTS,
        green=round(GREEN * 100),
        yellow=round(YELLOW * 100),
        punctual_min=PUNCTUAL_MIN,
        definitions=DEFINITIONS,
        entries=entries,
        when=_when,
        months=targets.MONTHS_SHORT,
        actuals=targets.actuals(conn, year, van),
        stand=until.strftime("%d.%m.%Y %H:%M"),
        started=until.year >= year
        and until > datetime.combine(date(year, 1, 1), time(0), tzinfo=until.tzinfo),
        elapsed=round(100 * scorecard.elapsed(year, until, appctx.config().tz), 1),
        planned=data.planned,
        cancelled=data.cancelled,
        prev_has=prev_has,
        prev_url=url_for("staff_scorecard.page", year=year - 1, **q),
        next_url=url_for("staff_scorecard.page", year=year + 1, **q),
        error=error,
        info=DONE_DE.get(request.args.get("done", ""), ""),
        form=form or {},
        name_max=targets.NAME_MAX,
        unit_max=targets.UNIT_MAX,
    )
    return html, status


@bp.get("")
@bp.get("/")
def page():
    try:
        year = targets.parse_year(request.args.get("year") or _today().year)
        van = _van(request.args.get("van"), _vans() if _hub() else [])
    except TargetError as e:
        abort(400, str(e))
    return _page(year, van)


# --- the changes ----------------------------------------------------------------------------


def _form(name: str) -> str:
    return request.form.get(name, "")


def _value(fig: scorecard.Figure) -> float:
    label = f"Jahresziel {fig.label}" if fig.perspective != "custom" else "Jahresziel"
    return targets.parse_number(_form("value"), label, hi=fig.max_value)


def _custom_fields() -> dict:
    lower = _form("lower_better")
    if lower not in ("", "0", "1"):
        raise TargetError("Richtung: höher oder niedriger ist besser")
    return dict(
        label=targets.parse_text(_form("name"), "Name", targets.NAME_MAX),
        unit=targets.parse_text(_form("unit"), "Einheit", targets.UNIT_MAX, empty=True),
        lower_better=lower == "1",
    )


def _do(action: str, year: int, van: str) -> bool:
    user, now = str(g.get("staff_user", "?")), appctx.now().timestamp()
    st = appctx.store()
    figs, have = _figures(year, van)
    by_code = {f.code: f for f in figs}
    if action == "copy":
        return targets.copy_year(st, year - 1, year, van, user=user, now=now) > 0
    if action == "custom":
        fig = scorecard.custom_figure(targets.Target(year, van, "custom-x", 0, label="x"))
        fields = _custom_fields()
        t = targets.Target(
            year,
            van,
            targets.custom_code(fields["label"], have),
            _value(fig),
            targets.parse_profile(_form("profile")),
            **fields,
        )
        return targets.save(st, t, user=user, now=now)
    code = _form("code").strip()
    fig = by_code.get(code)
    if fig is None:
        raise TargetError("Ziel: unbekannt oder nicht mehr vorhanden; bitte die Seite neu laden")
    if action == "remove":
        return targets.remove(st, year, van, code, user=user, now=now)
    if action == "actuals":
        if fig.perspective != "custom":
            raise TargetError(
                "Ist-Werte: nur für eigene Ziele; die anderen Zahlen kommen aus den Daten"
            )
        values: dict[int, float | None] = {}
        for m in range(1, 13):
            raw = _form(f"m{m}").strip()
            label = f"Ist-Wert {targets.MONTHS_SHORT[m - 1]}"
            values[m] = targets.parse_number(raw, label) if raw else None
        return targets.save_actuals(st, year, van, code, values, user=user, now=now) > 0
    # action == "target": set or change one
    extra = _custom_fields() if fig.perspective == "custom" else {}
    t = targets.Target(
        year, van, code, _value(fig), targets.parse_profile(_form("profile")), **extra
    )
    return targets.save(st, t, user=user, now=now)


ACTIONS = ("target", "custom", "remove", "actuals", "copy")


@bp.post("/<action>")
def change(action: str):
    if action not in ACTIONS:
        abort(404)
    vans = _vans() if _hub() else []
    try:
        year = targets.parse_year(_form("year"))
        van = _van(_form("van"), vans)
    except TargetError as e:
        abort(400, f"Nicht gespeichert: {e}")
    try:
        changed = _do(action, year, van)
    except TargetError as e:
        return _page(
            year,
            van,
            error=f"Nicht gespeichert: {e}",
            status=400,
            form=dict(request.form) | {"action": action},
        )
    log.info("scorecard %s %s: %s by %s", year, van or "(all)", action, g.get("staff_user"))
    q = {"van": van} if van else {}
    done = action if changed else "same"
    anchor = _form("code") or ("eigene" if action == "custom" else "ziele")
    return redirect(
        url_for("staff_scorecard.page", year=year, done=done, **q) + f"#{anchor}", code=303
    )


def init_app(app: Flask) -> None:
    """The scorecard exists on the box (its van) and on the hub (each van and all)."""
    app.register_blueprint(bp)


__all__ = ["ACTIONS", "bp", "init_app"]
