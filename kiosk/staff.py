"""The staff area at ``/staff`` (box and hub): login, today at a glance, reports for any
day/week/month/year with an SVG chart and a table each, CSV/XLSX exports and the annual
report for the funders (made for printing).

Every page needs a login (:mod:`kiosk.auth`); without one, pages redirect to the login
form and exports and charts answer 401. Every POST carries the session's CSRF token.
Every response under ``/staff`` says ``Cache-Control: no-store``.

URLs (query: ``p`` = day|week|month|year, ``d`` = a date in the period (YYYY-MM-DD),
``van`` = one van's id or empty for all):

- ``/staff/`` today at a glance (refreshes itself every minute)
- ``/staff/reports/<name>?p=&d=&van=`` one report: chart, table, export links
- ``/staff/reports/<name>.svg?...`` the chart alone
- ``/staff/export/<name>.<csv|xlsx>?p=&d=&van=[&public=1]`` the table as a file (German
  headers, CSV with ``;`` and decimal comma: :mod:`kiosk.exports`); ``public=1``
  suppresses cells below ``privacy.min_cell`` (for outside the staff area), shown as "<3"
- ``/staff/annual...`` the annual report, its PDF and files (:mod:`kiosk.staff_annual`)
- ``/staff/login`` (GET, POST), ``/staff/logout`` (POST)
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from numbers import Real
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup

from telemetry import registry, reports
from telemetry.definitions import definition_lines
from telemetry.plan import Plan, plan_vans

from . import appctx, auth, charts, exports
from .timetable import van_plan

bp = Blueprint(
    "staff",
    __name__,
    url_prefix="/staff",
    static_folder="static/staff",
    static_url_path="/static",
)

PERIOD_KINDS = {"day": "Tag", "week": "Woche", "month": "Monat", "year": "Jahr"}
DEFAULT_KIND = "month"
REFRESH_S = 60
OPEN_ENDPOINTS = ("staff.login", "staff.static")
FILE_ENDPOINTS = (
    "staff.export", "staff.chart_svg", "staff.today_tiles", "staff.annual_export",
    "staff.annual_pdf", "staff.annual_table_csv",
)  # fmt: skip
WEEKDAYS_DE = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")
MONTHS_DE = (
    "Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
    "Oktober", "November", "Dezember",
)  # fmt: skip


# --- guard and headers -----------------------------------------------------------------


@bp.before_request
def _guard():
    if request.endpoint == "staff.static":
        return None
    if request.method == "POST" and not auth.csrf_ok(request.form.get(auth.CSRF_FIELD)):
        if request.endpoint == "staff.login":
            return _login_page("Die Anmeldeseite war veraltet. Bitte noch einmal anmelden.", 400)
        abort(400, "CSRF-Token fehlt oder ist falsch. Bitte die Seite neu laden.")
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    # The today page refreshes itself with ?auto=1: that is not the person being active, so
    # an unattended tablet still logs out after staff.session_minutes.
    user, why = auth.current_user(active=request.args.get("auto") != "1")
    if user is None:
        if request.endpoint in FILE_ENDPOINTS:
            return Response(
                "Anmeldung erforderlich: /staff/login\n", 401,
                {"Content-Type": "text/plain; charset=utf-8"},
            )  # fmt: skip
        args = {"next": request.full_path.rstrip("?")}
        if why:
            args["why"] = why
        return redirect(url_for("staff.login", **args))
    g.staff_user = user
    return None


def _headers(resp: Response) -> Response:
    if request.path == "/staff" or request.path.startswith("/staff/"):
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Pragma"] = "no-cache"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'"
            " 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none';"
            " base-uri 'none'",
        )
    return resp


# --- German labels for what telemetry.reports writes in English ---------------------------
# The pages and the exports (table_de) speak German; the figures stay as the reports make them.

TITLES_DE = {
    "summary": "Überblick",
    "stops": "Besuche je Haltestelle",
    "municipalities": "Besuche je Gemeinde",
    "rural": "Stadt und ländliche Gemeinden",
    "hours": "Besuche nach Tageszeit",
    "weekdays": "Besuche nach Wochentag",
    "topics": "Themen",
    "age_groups": "Altersgruppen",
    "first_visits": "Erstbesuche",
    "quality": "Datenqualität",
}
LABELS_DE = {
    # columns
    "Figure": "Kennzahl", "Value": "Wert", "Stop": "Haltestelle", "Municipality": "Gemeinde",
    "Planned": "Geplant", "Visits": "Halte", "Visitors": "Besuche", "Check-ins": "Check-ins",
    "First visits": "Erstbesuche", "Share of visitors (%)": "Anteil Besuche (%)",
    "Area": "Gebiet", "Hour": "Uhrzeit", "Weekday": "Wochentag", "Stop visits": "Halte",
    "Topic": "Thema", "Age group": "Altersgruppe", "Answer": "Antwort",
    "Share of check-ins (%)": "Anteil Check-ins (%)", "Day": "Tag",
    "Without GPS fix (min)": "Ohne GPS-Fix (min)", "Offline (min)": "Offline (min)",
    "Sensor blocked (min)": "Sensor blockiert (min)", "Blocked periods": "Blockierungen",
    "Counts outside stops": "Zählungen außerhalb von Halten",
    # row labels
    "Returning visitors": "Wiederkehrende Besucher", "Stop visits (tour)": "Halte laut Tourplan",
    "Unplanned stops": "Ungeplante Halte", "Places served": "Angefahrene Orte",
    "Total": "Summe", "yes": "ja", "no": "nein", "(not at a stop)": "(an keinem Halt)",
    "Rural municipalities": "Ländliche Gemeinden",
    "Monday": "Montag", "Tuesday": "Dienstag", "Wednesday": "Mittwoch",
    "Thursday": "Donnerstag", "Friday": "Freitag", "Saturday": "Samstag", "Sunday": "Sonntag",
    "First visit": "Erstbesuch", "Returning": "Wiederkehrend", "Not said": "keine Angabe",
    "under 15": "unter 15", "over 27": "über 27",
    # check-in codes (topics, age groups)
    "school": "Schule", "training": "Ausbildung", "job": "Job", "money": "Geld",
    "housing": "Wohnen", "family": "Familie", "health": "Gesundheit",
    "papers": "Aufenthalt, Papiere", "talk": "Einfach reden", "other": "Sonstiges",
    "unsaid": "keine Angabe",
}  # fmt: skip
NOTES_DE = (
    (r"Cells with fewer than (\d+) people are suppressed \(shown as <\d+\)\.",
     r"Zellen mit weniger als \1 Personen sind unterdrückt (angezeigt als <\1)."),
    (r"Counts from 1 to (\d+) are suppressed(?: \(shown as <\d+\))?\.",
     r"Zahlen von 1 bis \1 sind unterdrückt."),
    (r"Check-in times are rounded down to the hour\.",
     "Check-in-Zeiten sind auf die volle Stunde abgerundet."),
    (r"A check-in may name several topics; shares are of all check-ins\.",
     "Ein Check-in kann mehrere Themen nennen; Anteile beziehen sich auf alle Check-ins."),
    (r"Only days with a finding are listed\.", "Nur Tage mit Auffälligkeiten sind aufgeführt."),
    (r"Per stop visit: offline = more than 10 min with no record at all; without GPS fix ="
     r" more than 10 min between fixes, less offline time; sensor blocked = from"
     r" sensor_blocked to sensor_ok\. Counts outside stops are door counts not in any visit\.",
     "Je Halt: offline = mehr als 10 min ohne jede Aufzeichnung; ohne GPS-Fix = mehr als"
     " 10 min zwischen zwei Positionen, abzüglich der Offline-Zeit; Sensor blockiert = von"
     " „sensor_blocked“ bis „sensor_ok“. Zählungen außerhalb von Halten sind Türzählungen"
     " außerhalb jedes Halts (z. B. am Depot)."),
)  # fmt: skip
# Which columns each report's chart draws (people, not stop visits or shares).
CHART_SERIES = {
    "stops": ("Visitors", "Check-ins"),
    "municipalities": ("Visitors", "Check-ins"),
    "rural": ("Visitors",),
    "hours": ("Visitors", "Check-ins"),
    "weekdays": ("Visitors", "Check-ins"),
}


# Labels that name the district town (cfg.reports["town"]): any town's name.
TOWN_LABELS_DE = (
    (re.compile(r"^Visitors outside the town of (.+)$"), r"Besuche außerhalb der Stadt \1"),
    (re.compile(r"^Share outside the town of (.+) \(%\)$"), r"Anteil außerhalb der Stadt \1 (%)"),
    (re.compile(r"^Town of (.+)$"), r"Stadt \1"),
)


def de(text) -> str:
    """The German label for an English label or code of the reports (else unchanged)."""
    if not isinstance(text, str):
        return text
    if text in LABELS_DE:
        return LABELS_DE[text]
    for pattern, repl in TOWN_LABELS_DE:
        if pattern.match(text):
            return pattern.sub(repl, text)
    return text


def table_de(table):
    """The table as the exports give it to the funders' offices: German column names and
    labels, the same figures."""
    return replace(
        table,
        columns=tuple(de(c) for c in table.columns),
        rows=tuple(tuple(de(v) for v in row) for row in table.rows),
    )


def _de_dates(m: re.Match) -> str:
    return f"Zeitraum: {fmt(m.group(1))} bis {fmt(m.group(2))}."


def de_note(note: str) -> str:
    note = re.sub(r"\S+: (\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2})\.", _de_dates, note)
    for pattern, repl in NOTES_DE:
        note = re.sub(pattern, repl, note)
    return note


def title_de(table) -> str:
    return TITLES_DE.get(table.name, table.title)


WIDE_TABLE = 5  # a table with more columns gets more room than its chart


def chart(table, *, width: int | None = None, height: int = 380) -> str:
    if width is None:
        width = 540 if len(table.columns) > WIDE_TABLE else 760
    return charts.render(
        table, series=CHART_SERIES.get(table.name), translate=de, title=title_de(table),
        width=width, height=height,
    )  # fmt: skip


# --- formatting -------------------------------------------------------------------------


def fmt(v, none: str = "–") -> str:
    """A table cell as staff read it: German digit grouping and decimal comma; text
    labels of the reports in German."""
    if v is None:
        return none
    if isinstance(v, bool):
        return "ja" if v else "nein"
    if isinstance(v, int):
        return f"{v:,}".replace(",", ".")
    if isinstance(v, Real):
        s = f"{float(v):,.2f}".rstrip("0").rstrip(".")
        return s.replace(",", " ").replace(".", ",").replace(" ", ".")
    if isinstance(v, datetime):
        return v.strftime("%d.%m.%Y %H:%M")
    if isinstance(v, date):
        return v.strftime("%d.%m.%Y")
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        return f"{v[8:]}.{v[5:7]}.{v[:4]}"
    return de(v)


def raw(v) -> str:
    """The exact value for ``data-value`` (machine-readable, as in the CSV)."""
    if v is None:
        return ""
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def period_title(p) -> str:
    if p.kind == "day":
        return f"{WEEKDAYS_DE[p.start.weekday()]}, {p.start.strftime('%d.%m.%Y')}"
    if p.kind == "week":
        y, w, _ = p.start.isocalendar()
        last = p.end - timedelta(days=1)
        return f"KW {w}/{y} ({p.start.strftime('%d.%m.')}–{last.strftime('%d.%m.%Y')})"
    if p.kind == "month":
        return f"{MONTHS_DE[p.start.month - 1]} {p.start.year}"
    return str(p.start.year)


# --- request parameters -------------------------------------------------------------------


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


# --- login ------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/staff"):
            return target
    return url_for("staff.today")


def _login_page(error: str = "", status: int = 200, name: str = ""):
    why = request.args.get("why")
    info = {
        "expired": "Die Sitzung ist abgelaufen. Bitte wieder anmelden.",
        "changed": "Das Passwort wurde geändert. Bitte neu anmelden.",
        "out": "Abgemeldet.",
    }.get(why or "", "")
    html = render_template(
        "staff/login.html", error=error, info=info, name=name,
        next=_safe_next(request.values.get("next")),
    )  # fmt: skip
    return html, status


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if auth.current_user(active=False)[0]:
            return redirect(_safe_next(request.args.get("next")))
        return _login_page()
    name = (request.form.get("name") or "").strip()[:64]
    password = request.form.get("password") or ""
    result = auth.attempt_login(name, password)
    if result.ok:
        return redirect(_safe_next(request.form.get("next")))
    if result.locked_until is not None:
        until = datetime.fromtimestamp(result.locked_until, appctx.config().tz)
        minutes = max(1, round((result.locked_until - auth.clock()) / 60))
        msg = (
            f"Zu viele Fehlversuche: die Anmeldung als „{name}“ ist bis {until:%H:%M} Uhr"
            f" gesperrt (noch etwa {minutes} Minuten)."
        )
        return _login_page(msg, 429, name)
    return _login_page("Name oder Passwort ist falsch.", 401, name)


@bp.post("/logout")
def logout():
    auth.logout()
    if request.form.get("to") == "kiosk" and "checkin.start" in current_app.view_functions:
        return redirect(url_for("checkin.start"))  # the touchscreen: back to the check-in
    return redirect(url_for("staff.login", why="out"))


# --- pages ------------------------------------------------------------------------------


def _today_plans(van: str | None, vans: list[str]) -> list[Plan]:
    """The plans the today page reads: ``van``'s, or for the whole fleet every van's that
    has data or a stored plan and is not retired (on a box, its own van's too). Each is the
    van's current plan (:func:`kiosk.timetable.van_plan`: the TOML tour stands in only for
    the box's own van)."""
    if van is not None:
        return [van_plan(van)]
    st = appctx.store()
    ids = set(vans) | set(plan_vans(st))
    if appctx.mode() != "hub":
        ids.add(appctx.config().van["id"])
    ids -= {v.id for v in registry.all_vans(st) if v.state == "retired"}
    return [van_plan(v) for v in sorted(ids)]


def _today_context() -> dict:
    cfg = appctx.config()
    van, vans = _van_arg()
    now = appctx.now()
    q = {"van": van} if van else {}
    return dict(
        f=reports.today(appctx.store().reader(), now, cfg.tz, van=van,
                        plans=_today_plans(van, vans), crew=cfg.reports["crew"]),
        now=now.astimezone(cfg.tz), van=van, vans=vans, show_vans=_show_vans(vans), q=q,
    )  # fmt: skip


@bp.get("/")
def today():
    ctx = _today_context()
    q = ctx.pop("q")
    return render_template(
        "staff/today.html", **ctx, page="today", refresh_s=REFRESH_S,
        tiles_url=url_for("staff.today_tiles", auto=1, **q),
        login_url=url_for("staff.login", why="expired", next=url_for("staff.today", **q)),
        day_url=url_for("staff.report", name="summary", p="day",
                        d=ctx["now"].date().isoformat(), **q),
    )  # fmt: skip


@bp.get("/today/tiles")
def today_tiles():
    """The live part of the today page, fetched by today.js every minute (with ?auto=1,
    so an unattended page does not keep the session alive)."""
    ctx = _today_context()
    ctx.pop("q")
    return render_template("staff/_today_tiles.html", **ctx)


@bp.get("/reports/")
def reports_index():
    return redirect(url_for("staff.report", name="summary", **request.args))


@bp.get("/reports/<name>")
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


@bp.get("/reports/<name>.svg")
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


@bp.get("/export/<name>.<fmt>")
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


# --- wiring -------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    from . import staff_annual

    staff_annual.register(bp)
    auth.init_app(app, app.extensions["vanbox_config"].staff)
    app.register_blueprint(bp)
    app.after_request(_headers)
    app.jinja_env.filters.setdefault("staff_fmt", fmt)
    app.jinja_env.filters.setdefault("staff_raw", raw)
    app.jinja_env.filters.setdefault("staff_de", de)
    app.jinja_env.globals.setdefault("staff_csrf_token", auth.csrf_token)
