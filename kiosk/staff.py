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

This module holds the blueprint, the login guard and the headers; the views live in
:mod:`kiosk.staff_login`, :mod:`kiosk.staff_today`, :mod:`kiosk.staff_reports` and
:mod:`kiosk.staff_annual`, with :mod:`kiosk.staff_params` (request parameters) and
:mod:`kiosk.staff_format` (German labels and formatting). The helpers the other staff
modules use are importable from here as well.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, g, redirect, request, url_for

from . import auth, staff_login, staff_reports, staff_today
from .staff_format import LABELS_DE as LABELS_DE
from .staff_format import TITLES_DE as TITLES_DE
from .staff_format import de, fmt, raw
from .staff_format import period_title as period_title
from .staff_format import table_de as table_de
from .staff_login import _login_page
from .staff_params import _local_today as _local_today
from .staff_params import _min_cell as _min_cell
from .staff_params import _show_vans as _show_vans
from .staff_params import _van_arg as _van_arg
from .staff_reports import _file as _file

bp = Blueprint(
    "staff",
    __name__,
    url_prefix="/staff",
    static_folder="static/staff",
    static_url_path="/static",
)

OPEN_ENDPOINTS = ("staff.login", "staff.static")
FILE_ENDPOINTS = (
    "staff.export", "staff.chart_svg", "staff.today_tiles", "staff.annual_export",
    "staff.annual_pdf", "staff.annual_table_csv",
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


# The views: each module adds its routes to the blueprint, once, at import.
staff_login.register(bp)
staff_today.register(bp)
staff_reports.register(bp)


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
