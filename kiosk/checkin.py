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

Every post is checked strictly: a bad CSRF token, an unknown field, an unknown code or
a field in the wrong step is a 400 and nothing is stored. The check-in itself is one
:class:`telemetry.events.CheckIn` per person (categories only, time rounded to the hour;
"Wir sind zu 3" records three) recorded with its outbox row. Repeated taps make one
check-in: the guard works per flow (a flow id records once), so two visitors who finish
within seconds of each other are two check-ins.

Nothing about the client (address, user agent, cookie) is stored or logged here.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

import segno
from babel import Locale
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
from telemetry.plan import current_plan, stored_version

from . import appctx, csrf, i18n


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
FIRST_VISIT = {"yes": True, "no": False, "unsaid": None}
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
SKIP = "skip"
GROUP_SIZES = tuple(str(n) for n in range(1, categories.GROUP_SIZE_MAX + 1))

# Which fields each step's post must and may carry (besides csrf_token, flow, step, back).
# The age screen may carry topics and group size too: it is shown again after "back".
STEPS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "age": (frozenset({"age"}), frozenset({"age", "topic", "group"})),
    "topics": (frozenset({"age"}), frozenset({"age", "topic", "group"})),
    "visit": (
        frozenset({"age", "first_visit"}),
        frozenset({"age", "topic", "group", "first_visit"}),
    ),
    "heard": (
        frozenset({"age", "first_visit", "heard_from"}),
        frozenset({"age", "topic", "group", "first_visit", "heard_from"}),
    ),
}
# The answer each step's own buttons give: a "back" post comes without it.
OWN_ANSWER = {"age": "age", "topics": "topic", "visit": "first_visit", "heard": "heard_from"}
PREVIOUS = {"topics": "age", "visit": "topics", "heard": "visit"}
# The steps as the counter shows them: the fourth (how heard) only follows a first visit,
# so the counter says "of 4" throughout and a visitor may finish after the third.
STEP_NO = {"age": 1, "topics": 2, "visit": 3, "heard": 4}
STEP_TOTAL = 4
ALWAYS = frozenset({csrf.FIELD, "flow", "step"})
FIELDS = frozenset({"age", "topic", "group", "first_visit", "heard_from", "back"})
FLOW_RE = re.compile(r"[A-Za-z0-9_-]{16,64}\Z")
LANG_RULE = "any(" + ", ".join(i18n.LANGUAGES) + "):lang"
STATE_KEY = "vanbox_checkin"
HEARTBEAT_KEY = "VANBOX_HEARTBEAT_S"  # Flask config: seconds between heartbeats (default 10)
THANKS_SECONDS = 10  # the thank-you screen goes back to the start after this
HOME_REFRESH_S = 900  # the idle start page reloads this often, so "next stops" stay current
# The staff login the touchscreen's PIN keypad signs in as (``vanbox passwd touchscreen``,
# a PIN of at least 8 digits); its staff pages offer the way back and return by themselves.
TOUCHSCREEN_LOGIN = "touchscreen"
PIN_RE = re.compile(r"[0-9]{1,64}\Z")

bp = Blueprint("checkin", __name__)
csrf.protect(bp)


class RepeatGuard:
    """Each flow (one visitor's pass through the screens) records at most once.

    Twenty fast taps on "done" (or a replayed post) carry the same flow id and make one
    check-in; two visitors carry two flow ids and make two, however close together. A
    flow id is remembered for at least ``min_interval`` seconds (and while it is among the
    last ``remember`` flows), so repeats are refused. ``clock`` is injectable so tests
    need not sleep.
    """

    def __init__(
        self, min_interval: float, clock: Callable[[], float] = time.monotonic, remember: int = 512
    ) -> None:
        self.min_interval = float(min_interval)
        self.clock = clock
        self.remember = remember
        self.lock = threading.Lock()
        self._flows: OrderedDict[str, float] = OrderedDict()

    def admit(self, flow: str, record: Callable[[], object]) -> bool:
        """Run ``record()`` unless this flow has recorded already; returns whether it ran."""
        with self.lock:
            now = self.clock()
            if flow in self._flows:
                return False
            record()
            self._flows[flow] = now
            while len(self._flows) > self.remember:
                oldest = next(iter(self._flows.values()))
                if now - oldest < self.min_interval:
                    break  # a burst: keep every flow of the last min_interval seconds
                self._flows.popitem(last=False)
            return True


def guard() -> RepeatGuard:
    return current_app.extensions[STATE_KEY]


# --- request checking ----------------------------------------------------------------


def _one(name: str) -> str | None:
    values = request.form.getlist(name)
    if len(values) > 1:
        abort(400)
    return values[0] if values else None


def _parse() -> tuple[str, str, dict]:
    """The posted step, flow id and answers, strictly checked (400 on anything odd)."""
    form = request.form
    if request.files or not set(form) <= ALWAYS | FIELDS:
        abort(400)
    step, flow = _one("step"), _one("flow")
    if step not in STEPS or flow is None or not FLOW_RE.match(flow):
        abort(400)
    back = _one("back")
    if back not in (None, "1") or (back and step not in PREVIOUS):
        abort(400)
    required, allowed = STEPS[step]
    if back:  # "Zurück": the step's own answer is not given
        required = required - {OWN_ANSWER[step]}
        allowed = allowed - {OWN_ANSWER[step]} | ({"topic"} if step == "topics" else set())
    present = set(form) - ALWAYS - {"back"}
    if not required <= present or not present <= allowed:
        abort(400)
    age = _one("age")
    if age not in AGE_GROUPS:
        abort(400)
    topics = form.getlist("topic")
    if len(set(topics)) != len(topics) or not set(topics) <= set(TOPICS):
        abort(400)
    group = _one("group") or "1"
    if group not in GROUP_SIZES:
        abort(400)
    answers: dict = {
        "age": age,
        "topics": tuple(t for t in TOPICS if t in topics),
        "group": int(group),
        "back": bool(back),
    }
    if "first_visit" in required:
        fv = _one("first_visit")
        if fv not in FIRST_VISIT:
            abort(400)
        answers["first_visit"] = fv
    if "heard_from" in required:
        hf = _one("heard_from")
        if answers["first_visit"] != "yes" or (hf not in HEARD_FROM and hf != SKIP):
            abort(400)
        answers["heard_from"] = None if hf == SKIP else hf
    return step, flow, answers


# --- locale digits -------------------------------------------------------------------

# The digits of the numbering systems CLDR names as a kiosk language's default (Babel
# knows which system a locale uses, but formats every system with Latin digits).
_DIGITS = {"arab": "٠١٢٣٤٥٦٧٨٩", "arabext": "۰۱۲۳۴۵۶۷۸۹"}


@lru_cache(maxsize=16)
def _digit_table(locale: str) -> dict[int, str]:
    digits = _DIGITS.get(Locale.parse(locale).default_numbering_system)
    return str.maketrans("0123456789", digits) if digits else {}


def digits(text: object) -> str:
    """``text`` with its digits in the current locale's own (Persian digits in Farsi)."""
    return str(text).translate(_digit_table(str(get_locale())))


# --- start screen helpers ------------------------------------------------------------


def _map_url() -> str:
    return appctx.config().kiosk["public_map_url"] or request.url_root.rstrip("/") + "/map"


@lru_cache(maxsize=8)
def _qr_svg(url: str) -> str:
    qr = segno.make(url, error="m")
    return qr.svg_inline(scale=4, border=2, dark="#000", light="#fff", omitsize=True)


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


def _page(template: str, **ctx) -> str:
    cfg = appctx.config()
    lang = i18n.current()
    ctx.setdefault("home_url", url_for("checkin.start"))
    ctx.setdefault("idle_s", int(cfg.kiosk["idle_seconds"]))
    ctx.setdefault("plan_version", plan_version())
    return render_template(
        template,
        van_name=cfg.van["name"],
        lang=lang,
        heartbeat_s=float(current_app.config.get(HEARTBEAT_KEY, 10)),
        digits=digits,
        step_total=STEP_TOTAL,
        sw_url=url_for("checkin.service_worker"),
        **ctx,
    )


def plan_version() -> int:
    """The version of the van's newest stored plan (0: the TOML tour). The start page
    carries it, the heartbeat reports it, and the page reloads when they differ, so a
    cancelled stop shows on the touchscreen within one heartbeat."""
    try:
        return stored_version(appctx.store().reader(), appctx.config().van["id"])
    except Exception:  # noqa: BLE001 - an old schema or a broken file: no plan known
        return 0


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


def _record_kept(event: CheckIn) -> bool:
    """Record the check-in; True when it is stored, or waits in the box's retry queue
    while the box is healthy (a full disk); False when the box cannot store."""
    from .status import healthy

    recorder = current_app.extensions.get("vanbox_record")
    try:
        outcome = str(recorder(event)) if recorder is not None else str(appctx.record(event))
    except Exception:  # noqa: BLE001 - the visitor gets the staff screen, not a 500
        current_app.logger.exception("check-in could not be recorded")
        return False
    if outcome == "queued":
        return healthy()[0]
    return outcome not in ("dead", "dropped")


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
