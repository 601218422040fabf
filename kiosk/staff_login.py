"""The staff login form and logout (``/staff/login``, ``/staff/logout``) on the staff
blueprint; the checking itself is :mod:`kiosk.auth`'s."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from . import appctx, auth


def register(bp: Blueprint) -> None:
    """Add the login and logout routes to the staff blueprint (``staff.login``,
    ``staff.logout``)."""
    bp.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", logout, methods=["POST"])


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


def logout():
    auth.logout()
    if request.form.get("to") == "kiosk" and "checkin.start" in current_app.view_functions:
        return redirect(url_for("checkin.start"))  # the touchscreen: back to the check-in
    return redirect(url_for("staff.login", why="out"))
