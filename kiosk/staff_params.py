"""The staff pages' request parameters (``p`` period kind, ``d`` a date in the period,
``van``), the links between periods, and the report table they select."""

from __future__ import annotations

from datetime import date, timedelta

from flask import abort, request, url_for

from telemetry import reports

from . import appctx

PERIOD_KINDS = {"day": "Tag", "week": "Woche", "month": "Monat", "year": "Jahr"}
DEFAULT_KIND = "month"


def _local_today() -> date:
    return appctx.now().astimezone(appctx.config().tz).date()


def _van_arg() -> tuple[str | None, list[str]]:
    vans = reports.vans(appctx.store().reader())
    van = request.args.get("van") or None
    if van is not None and van not in vans:
        abort(400, f"Unbekanntes Fahrzeug {van!r}.")
    return van, vans


def _period_args():
    kind = request.args.get("p") or DEFAULT_KIND
    if kind not in PERIOD_KINDS:
        abort(400, f"Unbekannter Zeitraum {kind!r}: day, week, month oder year.")
    text = request.args.get("d")
    if text:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            abort(400, f"Ungültiges Datum {text!r}: JJJJ-MM-TT.")
        if not 2000 <= day.year <= 2100:
            abort(400, "Datum außerhalb 2000–2100.")
    else:
        day = _local_today()
    return reports.period(kind, day)


def _query(p, van: str | None, **extra) -> dict:
    q = {"p": p.kind, "d": p.start.isoformat()}
    if van:
        q["van"] = van
    q.update({k: v for k, v in extra.items() if v is not None})
    return q


def _nav(p, van: str | None, endpoint: str, **values) -> dict:
    prev = reports.period(p.kind, p.start - timedelta(days=1))
    nxt = reports.period(p.kind, p.end)
    now = reports.period(p.kind, _local_today())
    return {
        "prev": url_for(endpoint, **values, **_query(prev, van)),
        "next": url_for(endpoint, **values, **_query(nxt, van)),
        "now": url_for(endpoint, **values, **_query(now, van)),
        "is_now": now.start == p.start,
        "kinds": [
            (k, label, url_for(endpoint, **values, **_query(reports.period(k, p.start), van)))
            for k, label in PERIOD_KINDS.items()
        ],
    }


def _min_cell() -> int:
    return int(appctx.config().privacy["min_cell"])


def _table(name: str, p, van: str | None, public: bool):
    if name not in reports.REPORTS:
        abort(404)
    rep = appctx.config().reports
    return reports.report(
        appctx.store().reader(),
        name,
        p,
        van=van,
        public=public,
        min_cell=_min_cell(),
        town=rep["town"],
        crew=rep["crew"],
    )


def _show_vans(vans: list[str]) -> bool:
    return appctx.mode() == "hub" or len(vans) > 1
