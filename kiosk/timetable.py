"""The public side of the tour plans: which vans the public sees, each van's own visits
(from its current plan, with cancellations and delays in plain words), and the weekly
timetable page.

Routes (registered by :func:`init_app`):

- mode ``hub``: ``/timetable`` (every public van) and ``/van/<id>/timetable``;
- mode ``box``: ``/map/timetable`` (this van).

``?week=N`` (0..8) shows the N-th week from this one; ``?lang=xx`` one of the kiosk's
seven languages (else the browser's, else German), like the public map. Only published
vans (:func:`telemetry.registry.public_vans`) are
ever shown, under their names; an unknown, new or retired van is a 404. The helpers here
(:func:`public_fleet`, :func:`van_plan`, :func:`visit_dict`, :class:`Words`) are shared
with the live map (``kiosk/public.py``) and the iCalendar feeds (``kiosk/calendar.py``).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, abort, render_template, request
from markupsafe import Markup

from telemetry import registry
from telemetry.errors import PlanError
from telemetry.plan import Plan, PlannedVisit, current_plan
from telemetry.registry import Van

from . import appctx
from .public_plural import fill, form

WEEKS_AHEAD = 8
log = logging.getLogger("vanbox.kiosk.timetable")


# --- who is public, and their plans -------------------------------------------------------


def public_fleet() -> list[Van]:
    """The vans the public may see: on a box its own van, on the hub the published ones."""
    if appctx.mode() == "box":
        return [registry.box_van(appctx.config())]
    return registry.public_vans(appctx.store())


def public_van(van: str) -> Van:
    """The public van ``van``, or a 404 (unknown, new, retired, or another box's)."""
    for v in public_fleet():
        if v.id == van:
            return v
    abort(404)


def van_plan(van: str) -> Plan:
    """``van``'s current plan. Without a stored plan, the TOML tour stands in only for the
    van this config describes (the box's own; on the hub never for another van)."""
    cfg = appctx.config()
    own = appctx.mode() == "box" or van == cfg.van["id"]
    fallback = cfg.tour if own else ()
    try:
        return current_plan(appctx.store().reader(), van, fallback, cfg.tz)
    except PlanError as e:  # cannot happen: plans are checked before they are stored
        log.error("the stored plan of %s cannot be read (%s); showing the initial plan", van, e)
        return Plan.from_tour(van, fallback)


def local_iso(t: datetime) -> str:
    return t.astimezone(appctx.config().tz).isoformat(timespec="minutes")


def visit_dict(v: PlannedVisit) -> dict[str, Any]:
    """A visit as the public sees it (JSON-ready)."""
    planned = v.planned_start or v.start
    return {
        "name": v.name,
        "municipality": v.municipality,
        "start": local_iso(v.start),
        "end": local_iso(v.end),
        "planned_start": local_iso(planned),
        "status": v.status,
        "delay_min": v.delay_min,
        "reason": v.reason,
    }


# --- wording -----------------------------------------------------------------------------


class Words:
    """Dates, times and a visit's status in plain words, in the page's language (its
    digits too: Arabic-Indic for Arabic, Persian for Farsi). The public map's JavaScript
    (``static/public/public.js``) says the same.

    A changed visit is said in one of two ways: :meth:`change` for a line that already
    shows the visit's day, time and place (the live map's and the timetable's lists: only
    what changed), :meth:`sentence` where the words stand alone (the iCalendar feed).
    :meth:`note` is the one for these words' place: ``in_list`` (the pages' lists) or
    not (the default, the calendar).

    A count is said in the form its language's plural rules pick (:meth:`counted`); in
    Arabic and Farsi every value put into a sentence is isolated (:meth:`fill`) and a
    name that stands alone in an HTML element is a ``<bdi>`` (:meth:`bdi`)."""

    def __init__(self, t: dict[str, Any], today: str, *, in_list: bool = False) -> None:
        self.t, self.today, self.in_list = t, today, in_list
        self.lang = t.get("lang", "de")
        self.rtl = t.get("dir") == "rtl"
        ds = t.get("digits", "0123456789")
        self._digits = str.maketrans("0123456789", ds) if ds != "0123456789" else None

    def num(self, text: object) -> str:
        """``text`` with the language's digits."""
        s = str(text)
        return s.translate(self._digits) if self._digits else s

    def fill(self, template: str, /, **values: object) -> str:
        """``template`` with ``values`` put in (isolated in a right-to-left language)."""
        return fill(self.t, template, **values)

    def counted(self, key: str, n: int, /, **values: object) -> str:
        """The counted text ``key`` for ``n`` (in the language's digits), in the form for
        ``n``'s plural category: "vor 1 Minute", "vor 2 Minuten", "21 минуту назад"."""
        return self.fill(form(self.t[key], self.lang, n), n=self.num(n), **values)

    def bdi(self, value: object) -> Markup | str:
        """A name standing alone in an HTML element: a ``<bdi>`` (its text escaped) in a
        right-to-left language, else the plain text (Jinja escapes it)."""
        if self.rtl:
            return Markup("<bdi>%s</bdi>") % str(value)
        return str(value)

    def date(self, d: date) -> str:
        return self.num(self.t.get("date", "{d}.{m}.").format(d=d.day, m=d.month))

    def full_date(self, d: date) -> str:
        """The day with its year: "7.12.2026", "7/12/2026", "7.12.2026"."""
        fmt = self.t.get("date", "{d}.{m}.")
        sep = "" if fmt.endswith(".") else fmt[3]
        return self.date(d) + sep + self.num(d.year)

    def day(self, iso: str, *, capital: bool = False) -> str:
        d = date.fromisoformat(iso[:10])
        today = date.fromisoformat(self.today)
        if d == today:
            return self.t["Today" if capital else "today"]
        if d == today + timedelta(days=1):
            return self.t["Tomorrow" if capital else "tomorrow"]
        return f"{self.t['weekdays'].split(',')[d.weekday()]} {self.date(d)}"

    def hm(self, iso: str | None) -> str:
        return self.num(iso[11:16]) if iso else ""

    def span(self, n: dict[str, Any]) -> str:
        return self.t["time_range"].format(a=self.hm(n["start"]), b=self.hm(n["end"]))

    def next_stop(self, n: dict[str, Any]) -> str:
        """ "Nächster Halt: Di 1.12. 10:00 Uhr, Peine, Marktplatz"."""
        return self.fill(self.t["next_stop"], when=self.day(n["start"]), t=self.hm(n["start"]),
                         place=n["name"])  # fmt: skip

    def note(self, n: dict[str, Any]) -> str:
        """A changed visit in the words for this place (see the class), else ""."""
        return self.change(n) if self.in_list else self.sentence(n)

    def change(self, n: dict[str, Any]) -> str:
        """Only what changed, for a line that shows the visit as it now takes place (its
        day, time and place): "Fällt aus. Grund: ...", "Verspätet um 20 Minuten (statt
        14:30 Uhr).", "Verlegt (statt heute 14:30 Uhr).", "Sondertermin."; else ""."""
        t, status = self.t, n.get("status", "planned")
        planned = n["planned_start"]
        if status == "cancelled":
            s = t["note_cancelled"]
        elif status == "delayed":
            s = self.counted("note_delayed", n.get("delay_min") or 0, t=self.hm(planned))
        elif status == "moved":
            s = self.fill(t["note_moved"], day=self.day(planned), t=self.hm(planned))
        elif status == "extra":
            s = t["say_extra"]
        else:
            return ""
        return self._with_reason(s, n)

    def sentence(self, n: dict[str, Any]) -> str:
        """ "Heute 14:30 Edemissen fällt aus. Grund: ..." for a changed visit, else ""."""
        t, status = self.t, n.get("status", "planned")
        when = f"{self.day(n['planned_start'], capital=True)} {self.hm(n['planned_start'])}"
        place = n["name"]
        if status == "cancelled":
            s = self.fill(t["say_cancelled"], when=when, place=place)
        elif status == "delayed":
            s = self.counted("say_delayed", n.get("delay_min") or 0, when=when, place=place,
                             t=self.hm(n["start"]))  # fmt: skip
        elif status == "moved":
            new = f"{self.day(n['start'])}{t.get('sep', ', ')}{self.span(n)}"
            s = self.fill(t["say_moved"], when=when, place=place, new=new)
        elif status == "extra":
            s = t["say_extra"]
        else:
            return ""
        return self._with_reason(s, n)

    def _with_reason(self, s: str, n: dict[str, Any]) -> str:
        if n.get("reason"):
            s += " " + self.fill(self.t["say_reason"], r=n["reason"])
        return s


# --- the page ----------------------------------------------------------------------------


def _week_start(today: date, offset: int) -> date:
    return today - timedelta(days=today.weekday()) + timedelta(weeks=offset)


def _page(vans: list[Van], one: bool) -> Response:
    from .public import lang_of, public_page
    from .public_text import TEXT

    cfg = appctx.config()
    lang = lang_of()
    t = TEXT[lang]
    try:
        week = int(request.args.get("week", "0"))
    except ValueError:
        week = 0
    week = max(0, min(WEEKS_AHEAD, week))
    now = appctx.now()
    today = now.astimezone(cfg.tz).date()
    first = _week_start(today, week)
    days = [first + timedelta(days=i) for i in range(7)]
    words = Words(t, today.isoformat(), in_list=True)
    sections = []
    for v in vans:
        by_day: dict[date, list[dict[str, Any]]] = {d: [] for d in days}
        for pv in van_plan(v.id).visits_between(days[0], days[-1], cfg.tz):
            d = pv.start.astimezone(cfg.tz).date()
            if d in by_day:
                by_day[d].append(visit_dict(pv))
        sections.append({"van": v, "days": by_day})
    title = words.fill(t["tt_title_one"], name=vans[0].name) if one else t["tt_title"]
    mode = appctx.mode()
    if mode == "box":
        back = "/map"
    elif one:
        back = f"/van/{vans[0].id}"
    else:
        back = "/"
    html = render_template(
        "public/timetable.html",
        t=t,
        lang=lang,
        title=title,
        sections=sections,
        days=days,
        today=today,
        week=week,
        weeks_ahead=WEEKS_AHEAD,
        words=words,
        langs=_langs(),
        back=back,
        hub=mode == "hub",
        one=one,
        feed=f"/van/{vans[0].id}/calendar.ics" if one and mode == "hub" else "/calendar.ics",
    )
    return public_page(html)


def _langs() -> list[tuple[str, str]]:
    from .public_text import LANGS, TEXT

    return [(code, TEXT[code]["lang_name"]) for code in LANGS]


def hub_timetable():
    return _page(public_fleet(), one=False)


def van_timetable(van: str):
    return _page([public_van(van)], one=True)


def box_timetable():
    return _page(public_fleet(), one=True)


def init_app(app: Flask) -> None:
    bp = Blueprint("timetable", __name__)
    if app.config["VANBOX_MODE"] == "hub":
        bp.add_url_rule("/timetable", "hub", hub_timetable, methods=["GET"])
        bp.add_url_rule("/van/<van>/timetable", "van", van_timetable, methods=["GET"])
    else:
        bp.add_url_rule("/map/timetable", "box", box_timetable, methods=["GET"])
    app.register_blueprint(bp)
