"""iCalendar feeds of the tour plans (RFC 5545), so that phone calendars can subscribe.

Routes (hub and box): ``/calendar.ics`` (every public van; on a box its own van) and
``/van/<id>/calendar.ics`` (one public van; an unknown, new or retired van is a 404).

One VEVENT per planned visit from ``WEEKS_BACK`` weeks ago to ``WEEKS_AHEAD`` weeks ahead,
from the van's current plan (:func:`kiosk.timetable.van_plan`):

- ``UID`` the visit's stable uid (the same across plan versions), ``SEQUENCE`` the visit's
  sequence (raised only when that visit changed), ``STATUS:CANCELLED`` for a cancelled
  visit (it stays in the feed, so calendars mark it instead of silently dropping it),
  else ``CONFIRMED``;
- ``DTSTART``/``DTEND`` in UTC, ``SUMMARY`` (van and stop, with "Fällt aus" or the delay),
  ``LOCATION`` (stop and municipality), ``GEO``, the public reason in ``DESCRIPTION``;
- ``DTSTAMP`` is the plan's last change, so the feed's bytes (and its ETag) stay the
  same until the plan changes; the built feed is kept until a shown van's name or
  plan version changes or the day ends (a public URL that phone calendars poll).

The response has an ETag (``If-None-Match`` gets a 304) and a short Cache-Control.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta

import icalendar
from flask import Blueprint, Flask, Response, current_app, request

from telemetry.plan import Plan, PlannedVisit
from telemetry.registry import Van

from . import appctx
from .timetable import Words, public_fleet, public_van, van_plan, visit_dict

WEEKS_BACK = 1
WEEKS_AHEAD = 8
MAX_AGE_S = 300
PRODID = "-//Paritaetischer Peine//vanbox JUNGregio//DE"


def _summary(van: Van, v: PlannedVisit) -> str:
    base = f"{van.name}: {v.name}"
    if v.status == "cancelled":
        return f"Fällt aus – {base}"
    if v.status == "delayed":
        return f"{base} (verspätet, +{v.delay_min} Min.)"
    if v.status == "moved":
        return f"{base} (verlegt)"
    if v.status == "extra":
        return f"{base} (Sondertermin)"
    return base


def _stamp(plan: Plan, today_utc: datetime) -> datetime:
    if plan.updated > 0:
        return datetime.fromtimestamp(int(plan.updated), UTC)
    return today_utc  # the TOML tour: no change time; midnight UTC of today


def build(vans: list[Van], name: str) -> bytes:
    """The calendar of ``vans`` as bytes (CRLF lines, folded, UTF-8)."""
    from .public_text import TEXT

    cfg = appctx.config()
    now = appctx.now()
    today = now.astimezone(cfg.tz).date()
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    first, last = today - timedelta(weeks=WEEKS_BACK), today + timedelta(weeks=WEEKS_AHEAD)
    # Absolute dates in a calendar entry ("Mo 30.11. 14:30 ... fällt aus"): "heute" would
    # be wrong the next day.
    words = Words(TEXT["de"], "1900-01-01")
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", cfg.timezone)
    cal.add("x-published-ttl", "PT1H")
    for van in vans:
        plan = van_plan(van.id)
        stamp = _stamp(plan, midnight)
        for v in plan.visits_between(first, last, cfg.tz):
            ev = icalendar.Event()
            ev.add("uid", v.uid)
            ev.add("dtstamp", stamp)
            ev.add("dtstart", v.start.astimezone(UTC))
            ev.add("dtend", v.end.astimezone(UTC))
            ev.add("summary", _summary(van, v))
            ev.add(
                "location", v.name if v.municipality in v.name else f"{v.name}, {v.municipality}"
            )
            ev.add("geo", (round(v.lat, 5), round(v.lon, 5)))
            ev.add("sequence", int(v.sequence))
            ev.add("status", "CANCELLED" if v.cancelled else "CONFIRMED")
            ev.add("transp", "TRANSPARENT")
            note = words.note(visit_dict(v))
            if note:
                ev.add("description", note)
            cal.add_component(ev)
    return cal.to_ical()


CACHE_KEY = "vanbox_calendar_cache"


def _plan_versions() -> dict[str, int]:
    """Each van's newest plan version (cheap: the primary key)."""
    try:
        rows = appctx.store().reader().execute("SELECT van, max(version) FROM plans GROUP BY van")
    except sqlite3.OperationalError:  # no plans table: an old schema
        return {}
    return {r[0]: r[1] for r in rows}


def cached(vans: list[Van], name: str) -> tuple[bytes, str]:
    """The calendar and its ETag, built again only when a shown van's name or plan
    version changed, or the local date moved on; events arriving at the hub (which
    change the database all the time) do not throw it away."""
    cache: dict = current_app.extensions.setdefault(CACHE_KEY, {})
    versions = _plan_versions()
    key = (tuple((v.id, v.name, versions.get(v.id, 0)) for v in vans), name)
    today = appctx.now().astimezone(appctx.config().tz).date()
    hit = cache.get(key)
    if hit is not None and hit[0] == today:
        return hit[1], hit[2]
    body = build(vans, name)
    etag = hashlib.blake2b(body, digest_size=12).hexdigest()
    if len(cache) > 256:
        cache.clear()
    cache[key] = (today, body, etag)
    return body, etag


def _response(body: bytes, etag: str, filename: str) -> Response:
    headers = {
        "ETag": f'"{etag}"',
        "Cache-Control": f"public, max-age={MAX_AGE_S}",
        "Content-Disposition": f'inline; filename="{filename}"',
        "X-Content-Type-Options": "nosniff",
    }
    if f'"{etag}"' in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    return Response(body, mimetype="text/calendar", headers=headers)


def all_vans():
    fleet = public_fleet()
    name = fleet[0].name if appctx.mode() == "box" else "JUNGregio – alle Busse"
    return _response(*cached(fleet, name), "vanbox.ics")


def one_van(van: str):
    v = public_van(van)
    return _response(*cached([v], v.name), f"{v.id}.ics")


def init_app(app: Flask) -> None:
    bp = Blueprint("calendar", __name__)
    bp.add_url_rule("/calendar.ics", "all", all_vans, methods=["GET"])
    bp.add_url_rule("/van/<van>/calendar.ics", "one", one_van, methods=["GET"])
    app.register_blueprint(bp)
