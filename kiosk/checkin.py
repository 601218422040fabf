"""The touchscreen check-in: anonymous, a few taps, in the visitor's own language.

Screens (``<lang>`` is one of :data:`kiosk.i18n.LANGUAGES`; ``/`` is the German start)::

    GET  /  and  /<lang>/          start: pick a language; next stops; QR code to the map
    GET  /<lang>/checkin           step 1: age group
    POST /<lang>/checkin           steps 2-4 (topics and group size, first visit, how
                                   heard), "back" to the step before, then record
    GET  /<lang>/thanks            thank you, what happens next
    GET  /<lang>/privacy           "what happens with my answers?" (one tap from the start)
    GET  /<lang>/offline           the kiosk's own "one moment" screen (cached by the worker)
    GET  /sw.js                    the service worker: failed navigations show that screen
    GET  /staff-pin, POST          staff way in on the touchscreen (long press on the
                                   greeting): a PIN keypad for the login "touchscreen"

The flow is a plain server-rendered form: the answers so far travel in hidden fields,
so it works without JavaScript and without a session. ``kiosk.js`` only adds the idle
reset, the heartbeat to ``/healthz``, guards against double submits and double taps, and
registers the service worker that keeps browser error pages off the touchscreen.

This module holds the blueprint, its views and every text the screens translate (the
message catalog is extracted from it: babel.cfg). The rest lives alongside:

- :mod:`kiosk.checkin_form`: the steps and the strict check of every post. A bad CSRF
  token, an unknown field, an unknown code or a field in the wrong step is a 400 and
  nothing is stored.
- :mod:`kiosk.checkin_record`: the check-in itself is one
  :class:`telemetry.events.CheckIn` per person (categories only, time rounded to the
  hour; "Wir sind zu 3" records three) recorded with its outbox row. Repeated taps make
  one check-in: the guard works per flow (a flow id records once), so two visitors who
  finish within seconds of each other are two check-ins.
- :mod:`kiosk.checkin_page`: the page frame, the locale's digits, the QR code.

Nothing about the client (address, user agent, cookie) is stored or logged here.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from functools import lru_cache

from babel.dates import format_skeleton
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l  # extracted with: pybabel extract -k _l
from markupsafe import Markup

from telemetry import categories
from telemetry.events import CheckIn
from telemetry.plan import current_plan

from . import appctx, csrf, i18n
from .checkin_form import FIRST_VISIT as FIRST_VISIT
from .checkin_form import FLOW_RE as FLOW_RE
from .checkin_form import GROUP_SIZES, PREVIOUS, STEP_NO, _one, _parse
from .checkin_form import STEP_TOTAL as STEP_TOTAL
from .checkin_page import _DIGITS as _DIGITS
from .checkin_page import _map_url, _page
from .checkin_page import _qr_svg as _qr_svg
from .checkin_page import digits as digits
from .checkin_page import plan_version as plan_version
from .checkin_record import STATE_KEY as STATE_KEY
from .checkin_record import RepeatGuard as RepeatGuard
from .checkin_record import _record_kept
from .checkin_record import guard as guard


# Stable English codes (telemetry.categories: what is stored, published and accepted by
# the hub) with their labels here, translated, in the same order.
def _labelled(codes: tuple[str, ...], labels: tuple) -> dict:
    return dict(zip(codes, labels, strict=True))  # a missing label fails at import


AGE_GROUPS = _labelled(
    categories.AGE_GROUPS,
    (
        _l("Under 15"),
        _l("15 to 17"),
        _l("18 to 20"),
        _l("21 to 24"),
        _l("25 to 27"),
        _l("Over 27"),
        _l("I'd rather not say"),
    ),
)
TOPICS = _labelled(
    categories.TOPICS,
    (
        _l("School"),
        _l("Training or apprenticeship"),
        _l("Job"),
        _l("Money"),
        _l("Housing"),
        _l("Family"),
        _l("Health"),
        _l("Residence or papers"),
        _l("Just want to talk"),
        _l("Something else"),
    ),
)
HEARD_FROM = _labelled(
    categories.HEARD_FROM,
    (
        _l("Friends"),
        _l("School"),
        _l("Social media"),
        _l("Youth worker"),
        _l("Poster or flyer"),
        _l("Other"),
    ),
)
LANG_RULE = "any(" + ", ".join(i18n.LANGUAGES) + "):lang"
THANKS_SECONDS = 10  # the thank-you screen goes back to the start after this
HOME_REFRESH_S = 900  # the idle start page reloads this often, so "next stops" stay current
# The staff login the touchscreen's PIN keypad signs in as (``vanbox passwd touchscreen``,
# a PIN of at least 8 digits); its staff pages offer the way back and return by themselves.
TOUCHSCREEN_LOGIN = "touchscreen"
PIN_RE = re.compile(r"[0-9]{1,64}\Z")

bp = Blueprint("checkin", __name__)
csrf.protect(bp)


# --- the start screen's next stops ---------------------------------------------------


def _day_label(start: datetime, now: datetime) -> str:
    locale = get_locale()
    days = (start.date() - now.date()).days
    if days == 0:
        return gettext("Today")
    if days == 1:
        return gettext("Tomorrow")
    return digits(format_skeleton("MMMEd", start, locale=locale))


def _next_stops() -> list[dict]:
    """The next three visits of this van's newest plan (telemetry/plan.py; the TOML tour
    until the hub sends one); a cancelled visit stays in the list, marked as cancelled."""
    cfg = appctx.config()
    now = appctx.now().astimezone(cfg.tz)
    plan = current_plan(appctx.store().reader(), cfg.van["id"], cfg.tour)
    out = []
    for v in plan.next_visits(now, cfg.tz, 3):
        hours = digits(f"{v.start:%H:%M}–{v.end:%H:%M}")  # 24 h, as on the van's sign
        if v.cancelled:
            hours += " · " + gettext("Cancelled")
        out.append(
            {
                "name": v.name,
                "day": _day_label(v.start, now),
                "hours": hours,
                "open": v.is_open(now),
                "status": v.status,
            }
        )
    return out


# --- views ---------------------------------------------------------------------------


@bp.url_value_preprocessor
def _known_language(endpoint: str | None, values: dict | None) -> None:
    code = (values or {}).get("lang")
    if code is not None and all(lang.code != code for lang in i18n.languages()):
        abort(404)


@bp.get("/", defaults={"lang": i18n.DEFAULT})
@bp.get(f"/<{LANG_RULE}>/")
def start(lang: str):
    url = _map_url()
    return _page(
        "checkin/start.html",
        stops=_next_stops(),
        qr=Markup(_qr_svg(url)),
        map_url=url,
        home_url=url_for("checkin.start"),
        is_home=lang == i18n.DEFAULT,
        home_refresh_s=HOME_REFRESH_S,
        staff_url=url_for("checkin.staff_pin") if _touchscreen() else "",
    )


@bp.get(f"/<{LANG_RULE}>/checkin")
def step_age(lang: str):
    return _screen("age", secrets.token_urlsafe(16), {"age": None, "topics": (), "group": 1})


def _screen(step: str, flow: str, a: dict):
    """The screen that asks ``step``'s question, with the answers so far in ``a``."""
    ctx = {"flow": flow, "a": a, "step_no": STEP_NO[step], "back_step": step}
    if step == "age":
        return _page("checkin/age.html", ages=AGE_GROUPS, **ctx)
    if step == "topics":
        groups = [(n, digits(n)) for n in GROUP_SIZES]
        return _page("checkin/topics.html", topic_labels=TOPICS, groups=groups, **ctx)
    if step == "visit":
        return _page("checkin/visit.html", **ctx)
    return _page("checkin/heard.html", sources=HEARD_FROM, **ctx)


@bp.post(f"/<{LANG_RULE}>/checkin")
def step_post(lang: str):
    step, flow, a = _parse()
    if a["back"]:
        return _screen(PREVIOUS[step], flow, a)
    if step == "age":
        return _screen("topics", flow, a)
    if step == "topics":
        return _screen("visit", flow, a)
    if step == "visit" and a["first_visit"] == "yes":
        return _screen("heard", flow, a)
    events = [
        CheckIn(
            time=appctx.now(),
            age_group=a["age"],
            topics=a["topics"],
            first_visit=FIRST_VISIT[a["first_visit"]],
            heard_from=a.get("heard_from"),
            language=lang,
        )
        for _person in range(a["group"])
    ]
    kept: list[bool] = []
    guard().admit(flow, lambda: kept.extend(_record_kept(e) for e in events))
    if kept and not all(kept):  # neither stored nor safely waiting: never say thank you
        return _page("checkin/ask_staff.html", idle_s=THANKS_SECONDS), 503
    return redirect(url_for("checkin.thanks", lang=lang), code=303)


@bp.get(f"/<{LANG_RULE}>/thanks")
def thanks(lang: str):
    # The next visitor should find the start screen, not someone else's "thank you".
    idle = int(appctx.config().kiosk["idle_seconds"])
    return _page("checkin/thanks.html", idle_s=min(idle, THANKS_SECONDS))


@bp.get(f"/<{LANG_RULE}>/privacy")
def privacy(lang: str):
    days = int(appctx.config().database["retention_days"])
    return _page("checkin/privacy.html", rows=_privacy_rows(), retention_days=days)


def _privacy_rows() -> list[tuple[str, str]]:
    """What one check-in stores, field by field, in plain words (see telemetry.events)."""
    return [
        (gettext("Your age group"), gettext("for example “18 to 20” – not your birthday")),
        (gettext("Your topics"), gettext("what you tapped, for example “Job” or “Housing”")),
        (
            gettext("First time or not"),
            gettext("and, if it is your first time, how you heard of us"),
        ),
        (gettext("Your language"), gettext("the language you chose on this screen")),
        (
            gettext("The day and the hour"),
            gettext("for example “Tuesday, 10 to 11” – not the minute; so we know the stop"),
        ),
    ]


@bp.get(f"/<{LANG_RULE}>/offline")
def offline(lang: str):
    """The kiosk's own "one moment" screen. The service worker keeps a copy of it in every
    language and shows it whenever a navigation fails (the box restarting); its script asks
    ``/healthz`` every second and goes back to the start as soon as the box answers."""
    return _page("checkin/offline.html", offline=True)


def _touchscreen() -> bool:
    """The request comes from the box's own screen (loopback) and a staff area exists.
    Over the LAN (``kiosk.bind``) staff use the ordinary login with name and password."""
    local = request.remote_addr in ("127.0.0.1", "::1")
    return local and "staff.today" in current_app.view_functions


@bp.route("/staff-pin", methods=["GET", "POST"])
def staff_pin():
    """The touchscreen's staff way in: a PIN on an on-screen keypad, checked as the
    password of the staff login ``touchscreen`` (with the staff area's lockout)."""
    from . import auth

    if not _touchscreen():
        abort(404)
    error = ""
    status = 200
    if request.method == "POST":
        pin = _one("pin") or ""
        result = (
            auth.attempt_login(TOUCHSCREEN_LOGIN, pin)
            if PIN_RE.match(pin)
            else auth.LoginResult(False)
        )
        if result.ok:
            return redirect(url_for("staff.today"), code=303)
        status = 429 if result.locked_until is not None else 401
        error = (
            "Zu viele Fehlversuche – bitte später noch einmal."
            if result.locked_until is not None
            else "Die PIN stimmt nicht."
        )
    return _page("checkin/staff_pin.html", error=error), status


@bp.get("/sw.js")
def service_worker():
    pages = [url_for("checkin.offline", lang=lang.code) for lang in i18n.languages()]
    assets = [url_for("static", filename=f) for f in ("kiosk/kiosk.css", "kiosk/kiosk.js")]
    body = render_template(
        "checkin/sw.js",
        pages=pages,
        assets=assets,
        langs=[lang.code for lang in i18n.languages()],
        default=i18n.DEFAULT,
        version=_sw_version(tuple(pages)),
    )
    resp = current_app.response_class(body, mimetype="text/javascript")
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@lru_cache(maxsize=4)
def _sw_version(pages: tuple[str, ...]) -> str:
    """Changes when the offline pages or the kiosk's static files change, so a box update
    replaces the cached copies."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256(repr(pages).encode())
    here = Path(__file__).parent
    for rel in (
        "static/kiosk/kiosk.css",
        "static/kiosk/kiosk.js",
        "templates/checkin/offline.html",
    ):
        h.update((here / rel).read_bytes())
    for lang in i18n.LANGUAGES:
        mo = i18n.TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.mo"
        if mo.exists():
            h.update(mo.read_bytes())
    return h.hexdigest()[:12]


@bp.errorhandler(400)
@bp.errorhandler(413)  # a post larger than MAX_CONTENT_LENGTH is just another bad post
def bad_request(e):
    return _page("checkin/error.html"), 400


@bp.after_request
def _no_store(resp):
    resp.headers.setdefault("Cache-Control", "no-store")
    if request.endpoint == "checkin.service_worker":
        return resp
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    return resp


def init_app(app: Flask) -> None:
    """Set up languages everywhere; the check-in screens only on the box (``mode="box"``)."""
    i18n.init_babel(app)
    if app.config.get("VANBOX_MODE") != "box":
        return
    cfg = app.extensions["vanbox_config"]
    app.extensions[STATE_KEY] = RepeatGuard(cfg.kiosk["min_checkin_interval_s"])
    app.register_blueprint(bp)


__all__ = ["AGE_GROUPS", "TOPICS", "FIRST_VISIT", "HEARD_FROM", "RepeatGuard", "bp", "init_app"]
