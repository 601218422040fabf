"""The staff area's reports: one report's page with its chart and table
(``/staff/reports/<name>``), the chart alone (``.svg``) and the table as a CSV or XLSX
file (``/staff/export/<name>.<fmt>``, :mod:`kiosk.exports`)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from markupsafe import Markup

from telemetry import reports
from telemetry.definitions import definition_lines

from . import appctx, charts, exports
from .staff_format import TITLES_DE, de, de_note, period_title, table_de, title_de
from .staff_params import _min_cell, _nav, _period_args, _query, _show_vans, _table, _van_arg

# Which columns each report's chart draws (people, not stop visits or shares).
CHART_SERIES = {
    "stops": ("Visitors", "Check-ins"),
    "municipalities": ("Visitors", "Check-ins"),
    "rural": ("Visitors",),
    "hours": ("Visitors", "Check-ins"),
    "weekdays": ("Visitors", "Check-ins"),
}

WIDE_TABLE = 5  # a table with more columns gets more room than its chart


def chart(table, *, width: int | None = None, height: int = 380) -> str:
    if width is None:
        width = 540 if len(table.columns) > WIDE_TABLE else 760
    return charts.render(
        table, series=CHART_SERIES.get(table.name), translate=de, title=title_de(table),
        width=width, height=height,
    )  # fmt: skip


def register(bp: Blueprint) -> None:
    """Add the reports' and exports' routes to the staff blueprint (``staff.reports_index``,
    ``staff.report``, ``staff.chart_svg``, ``staff.export``)."""
    bp.add_url_rule("/reports/", "reports_index", reports_index, methods=["GET"])
    bp.add_url_rule("/reports/<name>", "report", report, methods=["GET"])
    bp.add_url_rule("/reports/<name>.svg", "chart_svg", chart_svg, methods=["GET"])
    bp.add_url_rule("/export/<name>.<fmt>", "export", export, methods=["GET"])


def reports_index():
    return redirect(url_for("staff.report", name="summary", **request.args))


def report(name: str):
    p = _period_args()
    van, vans = _van_arg()
    table = _table(name, p, van, public=False)
    links = [
        (audience, f, url_for("staff.export", name=name, fmt=f, **_query(p, van, public=pub)))
        for audience, pub in (("intern", None), ("öffentlich", 1))
        for f in exports.FORMATS
    ]
    return render_template(
        "staff/report.html", name=name, table=table, title=title_de(table),
        columns=[de(c) for c in table.columns], note=de_note(table.note), svg=Markup(chart(table)),
        period=p, period_title=period_title(p), nav=_nav(p, van, "staff.report", name=name),
        reports=[(k, TITLES_DE.get(k, t)) for k, t in reports.REPORTS.items()],
        van=van, vans=vans, show_vans=_show_vans(vans), exports=links, min_cell=_min_cell(),
        page="reports", wide=len(table.columns) > WIDE_TABLE, definitions=definition_lines(),
    )  # fmt: skip


def chart_svg(name: str):
    p = _period_args()
    van, _ = _van_arg()
    svg = chart(_table(name, p, van, public=False))
    if not svg:
        abort(404)
    return Response('<?xml version="1.0" encoding="utf-8"?>\n' + svg, mimetype="image/svg+xml")


def _file(data: bytes, fmt_: str, filename: str) -> Response:
    return Response(
        data, content_type=exports.FORMATS[fmt_],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )  # fmt: skip


def _info(title: str, period_text: str, van: str | None, public: bool, note: str = "") -> list:
    cfg = appctx.config()
    info: list[tuple[str, object]] = [
        ("Bericht", title),
        ("Zeitraum", period_text),
        ("Fahrzeug", van or "alle"),
        ("Erstellt", appctx.now().astimezone(cfg.tz).replace(tzinfo=None, microsecond=0)),
        (
            "Verwendung",
            f"öffentlich: Zahlen von 1 bis {_min_cell() - 1} Personen unterdrückt"
            f" (angezeigt als <{_min_cell()})"
            if public
            else "intern: vollständige Zahlen, nur für den Mitarbeiterbereich",
        ),
    ]
    if note:
        info.append(("Hinweis", note))
    info.append(("Begriffe", " ".join(definition_lines())))
    return info


def export(name: str, fmt: str):
    if fmt not in exports.FORMATS:
        abort(404)
    p = _period_args()
    van, _ = _van_arg()
    public = request.args.get("public") in ("1", "true", "yes")
    table = table_de(_table(name, p, van, public=public))
    fname = exports.filename(name, exports.period_slug(p), fmt, van=van, public=public)
    hidden = f"<{_min_cell()}" if public else ""  # as the pages show a hidden cell
    if fmt == "csv":
        return _file(exports.table_csv(table, none=hidden), fmt, fname)
    info = _info(title_de(table), period_title(p), van, public, de_note(table.note))
    return _file(exports.table_xlsx(table, info, none=hidden), fmt, fname)
