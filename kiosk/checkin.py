"""The touchscreen check-in: anonymous, a few taps, in the visitor's own language.

Screens (``<lang>`` is one of :data:`kiosk.i18n.LANGUAGES`; ``/`` is the German start)::

    GET  /  and  /<lang>/          start: pick a language; next stops; QR code to the map
    GET  /<lang>/checkin           step 1: age group
    POST /<lang>/checkin           steps 2-4 (topics, first visit, how heard), then record
    GET  /<lang>/thanks            thank you, what happens next

The flow is a plain server-rendered form: the answers so far travel in hidden fields,
so it works without JavaScript and without a session. ``kiosk.js`` only adds the idle
reset, the heartbeat to ``/healthz`` and a guard against double submits.

Every post is checked strictly: a bad CSRF token, an unknown field, an unknown code or
a field in the wrong step is a 400 and nothing is stored. The check-in itself is one
:class:`telemetry.events.CheckIn` (categories only, time rounded to the hour) recorded
with its outbox row. Repeated taps make one check-in: a flow id is used once, and the
box records at most one check-in per ``kiosk.min_checkin_interval_s``.

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
    (_l("15 to 17"), _l("18 to 20"), _l("21 to 24"), _l("25 to 27"), _l("I'd rather not say")),
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

# Which fields each step's post must and may carry (besides csrf_token, flow, step).
STEPS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "age": (frozenset({"age"}), frozenset({"age"})),
    "topics": (frozenset({"age"}), frozenset({"age", "topic"})),
    "visit": (frozenset({"age", "first_visit"}), frozenset({"age", "topic", "first_visit"})),
    "heard": (
        frozenset({"age", "first_visit", "heard_from"}),
        frozenset({"age", "topic", "first_visit", "heard_from"}),
    ),
}
ALWAYS = frozenset({csrf.FIELD, "flow", "step"})
FLOW_RE = re.compile(r"[A-Za-z0-9_-]{16,64}\Z")
LANG_RULE = "any(" + ", ".join(i18n.LANGUAGES) + "):lang"
STATE_KEY = "vanbox_checkin"
HEARTBEAT_KEY = "VANBOX_HEARTBEAT_S"  # Flask config: seconds between heartbeats (default 10)
THANKS_SECONDS = 10  # the thank-you screen goes back to the start after this
HOME_REFRESH_S = 900  # the idle start page reloads this often, so "next stops" stay current

bp = Blueprint("checkin", __name__)
csrf.protect(bp)


class RepeatGuard:
    """At most one check-in per ``min_interval`` seconds, and each flow id only once.

    Twenty fast taps on "done" (or a replayed post) make one check-in. ``clock`` is
    injectable so tests need not sleep.
    """

    def __init__(
        self, min_interval: float, clock: Callable[[], float] = time.monotonic, remember: int = 512
    ) -> None:
        self.min_interval = float(min_interval)
        self.clock = clock
        self.remember = remember
        self.lock = threading.Lock()
        self._last: float | None = None
        self._flows: OrderedDict[str, None] = OrderedDict()

    def admit(self, flow: str, record: Callable[[], object]) -> bool:
        """Run ``record()`` unless this is a repeat; returns whether it ran."""
        with self.lock:
            now = self.clock()
            if flow in self._flows:
                return False
            if self._last is not None and now - self._last < self.min_interval:
                return False
            record()
            self._last = now
            self._flows[flow] = None
            while len(self._flows) > self.remember:
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
    if request.files or not set(form) <= ALWAYS | {"age", "topic", "first_visit", "heard_from"}:
        abort(400)
    step, flow = _one("step"), _one("flow")
    if step not in STEPS or flow is None or not FLOW_RE.match(flow):
        abort(400)
    required, allowed = STEPS[step]
    present = set(form) - ALWAYS
    if not required <= present or not present <= allowed:
        abort(400)
    age = _one("age")
    if age not in AGE_GROUPS:
        abort(400)
    topics = form.getlist("topic")
    if len(set(topics)) != len(topics) or not set(topics) <= set(TOPICS):
        abort(400)
    answers: dict = {"age": age, "topics": tuple(t for t in TOPICS if t in topics)}
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
    return format_skeleton("MMMEd", start, locale=locale)


def _next_stops() -> list[dict]:
    """The next three visits of this van's newest plan (telemetry/plan.py; the TOML tour
    until the hub sends one); a cancelled visit stays in the list, marked as cancelled."""
    cfg = appctx.config()
    now = appctx.now().astimezone(cfg.tz)
    plan = current_plan(appctx.store().reader(), cfg.van["id"], cfg.tour)
    out = []
    for v in plan.next_visits(now, cfg.tz, 3):
        hours = f"{v.start:%H:%M}–{v.end:%H:%M}"  # 24 h, as on the van's sign
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
    )


@bp.get(f"/<{LANG_RULE}>/checkin")
def step_age(lang: str):
    return _page("checkin/age.html", flow=secrets.token_urlsafe(16), ages=AGE_GROUPS, step_no=1)


@bp.post(f"/<{LANG_RULE}>/checkin")
def step_post(lang: str):
    step, flow, a = _parse()
    ctx = {"flow": flow, "a": a, "topic_labels": TOPICS}
    if step == "age":
        return _page("checkin/topics.html", step_no=2, **ctx)
    if step == "topics":
        return _page("checkin/visit.html", step_no=3, **ctx)
    if step == "visit" and a["first_visit"] == "yes":
        return _page("checkin/heard.html", step_no=4, sources=HEARD_FROM, **ctx)
    event = CheckIn(
        time=appctx.now(),
        age_group=a["age"],
        topics=a["topics"],
        first_visit=FIRST_VISIT[a["first_visit"]],
        heard_from=a.get("heard_from"),
        language=lang,
    )
    kept: list[bool] = []
    guard().admit(flow, lambda: kept.append(_record_kept(event)))
    if kept and not kept[0]:  # neither stored nor safely waiting: never say thank you
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


@bp.errorhandler(400)
@bp.errorhandler(413)  # a post larger than MAX_CONTENT_LENGTH is just another bad post
def bad_request(e):
    return _page("checkin/error.html"), 400


@bp.after_request
def _no_store(resp):
    resp.headers.setdefault("Cache-Control", "no-store")
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
