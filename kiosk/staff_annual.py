"""The annual report for the funders at ``/staff/annual`` (box: its van; hub: one van or
all): a printable A4 page, a PDF made with fpdf2 and the files for the funders' offices.
The figures come from :func:`telemetry.annual.annual` (public: small cells hidden across
all its tables), and every output shows the same cells the same way ("<3").

URLs (``year`` = YYYY, default this year; ``van`` = one van's id or empty for all):

- ``/staff/annual?year=&van=`` the page (print it with Ctrl+P: A4 print CSS)
- ``/staff/annual.pdf?year=&van=`` the PDF
- ``/staff/annual.xlsx?year=&van=`` every table as a sheet, plus definitions and info
- ``/staff/annual.csv?year=&van=`` the key figures; ``/staff/annual/<table>.csv`` one table

The routes live on the staff blueprint (``staff.annual`` ...): :func:`register` adds
them before ``staff.init_app`` registers it, so login, CSRF and headers are the staff
area's.
"""

from __future__ import annotations

import re
from dataclasses import replace
from numbers import Real

from flask import Blueprint, Response, abort, render_template, request, url_for
from markupsafe import Markup

from telemetry import annual as annual_mod
from telemetry import reports
from telemetry.annual import MONTHS, Annual
from telemetry.config import MUNICIPALITIES, TOWN
from telemetry.metrics import DEFAULT_CREW
from telemetry.plan import current_plan, plan_vans

from . import annual_pdf, appctx, charts, exports, staff

AGE_LABELS_DE = {"under-15": "unter 15", "over-27": "über 27", "unsaid": "keine Angabe"}
SHEETS = {
    "kennzahlen": "Kennzahlen", "haltestellen": "Haltestellen", "gemeinden": "Gemeinden",
    "monate": "Monate", "einsatz": "Einsatz", "altersgruppen": "Altersgruppen",
    "themen": "Themen", "kontaktarten": "Kontaktarten", "vermittlungen": "Vermittlungen",
    "laendlich": "Ländlicher Raum", "budget": "Budget",
}  # fmt: skip
KPIS = (
    "besuche", "checkins", "kontakte", "erstkontakte", "vermittlungen", "halte_bedient",
    "einsatzstunden", "laendlich_besuche", "laendlich_kontakte", "kosten_je_kontakt",
)  # fmt: skip
CHART_SERIES = {
    "monate": lambda y: (f"Besuche {y}", f"Besuche {y - 1}", f"Beratungskontakte {y}",
                         f"Beratungskontakte {y - 1}"),
    "haltestellen": lambda y: ("Besuche", "Check-ins"),
    "gemeinden": lambda y: ("Besuche", "Check-ins", "Beratungskontakte (Wohnort)"),
    "laendlich": lambda y: ("Besuche",),
    "budget": lambda y: ("Betrag (€)",),
}  # fmt: skip
PDF_MIME = "application/pdf"


# --- the figures ------------------------------------------------------------------------


def _year() -> int:
    text = request.args.get("year")
    if not text:
        return staff._local_today().year
    if not re.fullmatch(r"[0-9]{4}", text) or not 2000 <= int(text) <= 2100:
        abort(400, "Ungültiges Jahr: bitte JJJJ zwischen 2000 und 2100.")
    return int(text)


def _plans(van: str | None) -> list:
    cfg = appctx.config()
    conn = appctx.store().reader()
    if van is None:
        vans = set(reports.vans(conn)) | set(plan_vans(conn))
        if appctx.mode() != "hub":
            vans.add(cfg.van["id"])
    else:
        vans = {van}
    return [current_plan(conn, v, cfg.tour if v == cfg.van["id"] else ()) for v in sorted(vans)]


def build(year: int, van: str | None) -> Annual:
    cfg = appctx.config()
    rep = cfg.reports
    contacts = getattr(cfg, "contacts", None) or {}
    return annual_mod.annual(
        appctx.store().reader(), year, now=appctx.now(), tz=cfg.tz, van=van,
        town=rep.get("town", TOWN),
        municipalities=rep.get("municipalities") or list(MUNICIPALITIES),
        funders=[(f["name"], f["eur"]) for f in rep.get("funders", ())],
        budget_eur=float(rep.get("budget_eur", rep.get("annual_budget_eur", 0.0))),
        plans=_plans(van),
        kinds=[(k["code"], k["label"]) for k in contacts.get("kinds", ())],
        partners=[(p["code"], p["label"]) for p in contacts.get("partners", ())],
        labels={**staff.LABELS_DE, **AGE_LABELS_DE}, public=True, min_cell=staff._min_cell(),
        crew=int(rep.get("crew", DEFAULT_CREW)),
    )  # fmt: skip


# --- formatting: one look for page, PDF and files ------------------------------------------


def _german(x: float, decimals: int) -> str:
    return f"{x:,.{decimals}f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def cell(v, column: str = "", *, hidden: str = "<3", unit: str = "", sign: bool = False) -> str:
    """A cell as the page and the PDF show it: a hidden count as "<3", German numbers,
    euro with two decimals, percentages with one (``sign``: followed by "€" or "%")."""
    if v is None:
        return hidden
    if isinstance(v, str):
        return v
    if isinstance(v, Real) and not isinstance(v, bool):
        if "€" in column or unit == "€":
            return _german(float(v), 2) + ("\u00a0€" if sign else "")
        if "%" in column or unit == "%":
            return _german(float(v), 1) + ("\u00a0%" if sign else "")
        if isinstance(v, float):
            return _german(v, 1)
        return _german(v, 0)
    return staff.fmt(v)


def row_texts(a: Annual, t, row) -> list[str]:
    """A table row as the page, the PDF (and, for hidden cells, the files) show it; a key
    figure's value carries its unit (€, %)."""
    unit = row[2] if t.name == "kennzahlen" else ""
    hidden = f"<{a.min_cell}"
    return [
        cell(v, c, hidden=hidden, unit=unit if c == "Wert" else "")
        for c, v in zip(t.columns, row, strict=True)
    ]


def _title(a: Annual) -> tuple[str, str]:
    cfg = appctx.config()
    if a.van:
        who = f"{cfg.van['name']} ({a.van})"
    else:
        who = cfg.van["name"] + (" – alle Fahrzeuge" if appctx.mode() == "hub" else "")
    return (
        f"Jahresbericht {a.year}",
        f"{who} · mobile Beratung für junge Menschen im Landkreis Peine",
    )


def _chart(a: Annual, t) -> str:
    series = CHART_SERIES.get(t.name)
    if t.name == "monate":  # "Jan", "Feb", ...: twelve labels fit under an A4 chart
        t = replace(t, rows=tuple((r[0][:3], *r[1:]) for r in t.rows if r[0] in MONTHS))
    return charts.render(
        t, title=t.title, width=720, height=300 if t.name != "monate" else 320,
        series=series(a.year) if series else None, skip={annual_mod.TOTAL},
    )  # fmt: skip


# --- routes --------------------------------------------------------------------------------


def page():
    year = _year()
    van, vans = staff._van_arg()
    a = build(year, van)
    q = {"van": van} if van else {}
    title, subtitle = _title(a)
    kz = a.table("kennzahlen")
    kpi_rows = {key: i for i, (key, _, _) in enumerate(annual_mod.FIGURES)}
    kpis = []
    for key in KPIS:
        label, value, unit = kz.rows[kpi_rows[key]]
        text = cell(value, "Wert", hidden=f"<{a.min_cell}", unit=unit, sign=True)
        kpis.append((key, label, a.figures.get(key), text))
    sections = [
        (t, [list(zip(r, row_texts(a, t, r), strict=True)) for r in t.rows],
         Markup(_chart(a, t)))
        for t in a.tables
    ]  # fmt: skip
    files = [("PDF", url_for("staff.annual_pdf", year=year, **q))] + [
        (f"Alle Tabellen {f.upper()}", url_for("staff.annual_export", fmt=f, year=year, **q))
        for f in ("xlsx",)
    ] + [
        (f"{t.title} (CSV)", url_for("staff.annual_table_csv", table=t.name, year=year, **q))
        for t in a.tables
    ]  # fmt: skip
    return render_template(
        "staff/annual.html", a=a, year=year, van=van, vans=vans,
        show_vans=staff._show_vans(vans), title=title, subtitle=subtitle, kpis=kpis,
        sections=sections, files=files, page="annual", min_cell=a.min_cell,
        prev_url=url_for("staff.annual", year=year - 1, **q),
        next_url=url_for("staff.annual", year=year + 1, **q),
        created=appctx.now().astimezone(appctx.config().tz),
    )  # fmt: skip


def _info(a: Annual) -> list[tuple[str, object]]:
    title, subtitle = _title(a)
    info: list[tuple[str, object]] = [
        ("Bericht", title),
        ("Zeitraum", f"01.01.{a.year} bis {a.as_of:%d.%m.%Y}"),
        ("Fahrzeug", a.van or "alle"),
        ("Erstellt", appctx.now().astimezone(appctx.config().tz).replace(tzinfo=None,
                                                                          microsecond=0)),
        ("Verwendung", f"öffentlich: Zahlen von 1 bis {a.min_cell - 1} Personen unterdrückt"
                       f" (angezeigt als <{a.min_cell})"),
    ]  # fmt: skip
    if a.provisional:
        info.append(("Stand", a.stand))
    return info


def _filename(a: Annual, name: str, ext: str) -> str:
    return exports.filename(name, str(a.year), ext, van=a.van, public=True)


def export(fmt: str):
    if fmt not in exports.FORMATS:
        abort(404)
    a = build(_year(), staff._van_arg()[0])
    hidden = f"<{a.min_cell}"
    if fmt == "csv":  # the key figures, each with what it means
        kz = a.table("kennzahlen")
        rows = [(*r, _meaning(a, r[0])) for r in kz.rows]
        data = exports.to_csv((*kz.columns, "Erläuterung"), rows, none=hidden)
        return staff._file(data, fmt, _filename(a, "annual", fmt))
    sheets = [(SHEETS.get(t.name, t.title), t.columns, t.rows) for t in a.tables]
    sheets.append(("Definitionen", ("Begriff", "Definition"), a.definitions))
    data = exports.to_xlsx(sheets, _info(a), none=hidden)
    return staff._file(data, fmt, _filename(a, "annual", fmt))


def _meaning(a: Annual, label: str) -> str:
    label = label.removeprefix("davon ")
    return next((text for term, text in a.definitions if label.startswith(term)), "")


def table_csv(table: str):
    a = build(_year(), staff._van_arg()[0])
    try:
        t = a.table(table)
    except KeyError:
        abort(404)
    data = exports.table_csv(t, none=f"<{a.min_cell}")
    return staff._file(data, "csv", _filename(a, f"annual-{table}", "csv"))


def pdf():
    a = build(_year(), staff._van_arg()[0])
    title, subtitle = _title(a)
    try:
        data = annual_pdf.render(
            a, title=title, subtitle=subtitle, texts=lambda t, r: row_texts(a, t, r),
            created=appctx.now().astimezone(appctx.config().tz),
        )  # fmt: skip
    except annual_pdf.PdfFontMissing as e:
        return Response(f"{e}\n", 503, {"Content-Type": "text/plain; charset=utf-8"})
    return Response(
        data, mimetype=PDF_MIME,
        headers={"Content-Disposition": f'attachment; filename="{_filename(a, "annual", "pdf")}"'},
    )  # fmt: skip


def register(bp: Blueprint) -> None:
    """Add the annual report's routes to the staff blueprint (once, before the first
    app registers it)."""
    if "annual" in getattr(bp, "_vanbox_added", ()):
        return
    bp._vanbox_added = {"annual"}  # type: ignore[attr-defined]
    bp.add_url_rule("/annual", "annual", page)
    bp.add_url_rule("/annual.pdf", "annual_pdf", pdf)
    bp.add_url_rule("/annual.<fmt>", "annual_export", export)
    bp.add_url_rule("/annual/<table>.csv", "annual_table_csv", table_csv)
