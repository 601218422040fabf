"""The public live map: where is the van now, is it open, where next.

Routes (registered by :func:`init_app`):

- mode ``hub``: ``/`` every van, ``/van/<id>`` one van;
- mode ``box``: ``/map`` this van only;
- both: ``/api/public/vans`` and ``/api/public/vans/<id>``: exactly what the page shows,
  as JSON (``{"vans": [...], "stops": [...], "today": "YYYY-MM-DD"}``), with an ETag so
  clients can poll cheaply (``If-None-Match`` gets ``304 Not Modified``; the page sends
  ``?since=<etag>`` and gets ``{"unchanged": true}``, which keeps the connection open)
  and ``Cache-Control: public, max-age=5, stale-while-revalidate=30`` (the pages too), so
  a caching proxy (deploy/nginx/vanbox-hub.conf) serves one copy to every viewer;
- ``/public/leaflet/<file>``: Leaflet from the ``xstatic-leaflet`` package (no CDN).

Only published vans (:func:`telemetry.registry.public_vans`; on a box its own van) are
shown, under their registry names; a new, retired or unknown van is a 404. Each van's
next visits come from its own plan, cancelled and delayed ones included and said in plain
words (:class:`kiosk.timetable.Words`, mirrored in ``public.js``); the map's stops are the
shown vans' plan stops. The pages link the weekly timetable (``kiosk/timetable.py``) and
the iCalendar feed (``kiosk/calendar.py``).

Everything shown goes through :func:`telemetry.privacy.public_view` and then
:func:`kiosk.public_service.service_view` (outside service hours a parked van: "Heute keine
Sprechzeit mehr – nächster Halt ...", no position, no online/offline, no "last seen"); each
van's next stop is highlighted in its list and on the map. The page is rendered on the
server (it works without JavaScript: list and a labelled outline map) and updated by
``static/public/public.js``; when the tiles fail, the map draws the Landkreis outline
shipped with the package (:mod:`kiosk.public_outline`). Its text is in the kiosk's seven
languages (:mod:`kiosk.public_text`; ``?lang=xx`` or a switcher, else the browser's
languages, else German; right to left for Arabic and Farsi); it is deliberately not in the
check-in's translation catalogs.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request

from telemetry.config import MUNICIPALITIES
from telemetry.plan import Plan
from telemetry.privacy import load_state, plan_of, public_stop, public_view
from telemetry.registry import Van

from . import appctx
from .public_outline import outline_map, outline_points
from .public_service import mark_next_stops, service_view
from .public_text import LANGS, TEXT, fill
from .timetable import Words, public_fleet

__all__ = ["TEXT", "LANGS", "init_app", "lang_of"]

CLOCK_KEY = "vanbox_clock"  # an injected clock (demo, tests): views are not cached then
CACHE_SECONDS = 2.0  # a view is rebuilt when the store changed, or at least this often
FRESH_SECONDS = 0.2  # ...but a view this young is served without even asking the store
POLL_MS = 1000
# The public tier is cacheable (issue 17, docs/scaling.md): browsers and a caching proxy
# (deploy/nginx/vanbox-hub.conf) may keep a public answer PUBLIC_MAX_AGE_S seconds, and
# serve it PUBLIC_SWR_S seconds longer while they fetch a fresh one; so a van's move shows
# through the cache within about PUBLIC_MAX_AGE_S. With a simulated clock (demo, tests)
# the answers are "no-cache". Staff pages are "no-store" (kiosk/staff.py).
PUBLIC_MAX_AGE_S = 5
PUBLIC_SWR_S = 30
PUBLIC_CACHE = f"public, max-age={PUBLIC_MAX_AGE_S}, stale-while-revalidate={PUBLIC_SWR_S}"


def public_cache_control() -> str:
    """The ``Cache-Control`` of a public answer (see :data:`PUBLIC_MAX_AGE_S`)."""
    if CLOCK_KEY in current_app.extensions:
        return "no-cache"
    return PUBLIC_CACHE


def public_page(html: str, *, vary: str = "Accept-Language") -> Response:
    """A public HTML page with its ETag (``If-None-Match`` gets a ``304``) and the public
    ``Cache-Control``; ``Vary`` names the request headers its text depends on."""
    body = html.encode("utf-8")
    etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": public_cache_control(), "Vary": vary}
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    return Response(body, mimetype="text/html", headers=headers)


def lang_of() -> str:
    """The page's language: ``?lang=``, else the browser's languages, else German."""
    asked = request.args.get("lang", "")
    if asked in TEXT:
        return asked
    return request.accept_languages.best_match(list(LANGS), default="de") or "de"


def _now() -> datetime:
    return appctx.now()


def _van_view(cfg, van: Van, now: datetime, box: bool) -> tuple[dict[str, Any], Plan]:
    """The public view of one published van, under its registry name: its state and its
    own next visits from its own plan (cancelled and delayed ones included)."""
    state = load_state(appctx.store(), van.id, box=box, now=now)
    plan = plan_of(cfg, state)
    view = service_view(public_view(cfg, state, now), plan, cfg.tz, now)
    view["name"] = van.name
    return view, plan


def _plan_stops(plans: list[Plan], today) -> list[dict[str, Any]]:
    """The places of the shown vans' plans (public by definition), once each."""
    out: dict[tuple, dict[str, Any]] = {}
    for plan in plans:
        for s in plan.tour(around=today):
            key = (s.name, round(s.lat, 5), round(s.lon, 5))
            if key not in out:
                out[key] = public_stop(s)
    return list(out.values())


# --- the cached public payload ----------------------------------------------------------

_local = threading.local()


def _payload(van: str | None) -> tuple[dict[str, Any], bytes, str]:
    """The public payload for one van (or all), its JSON bytes and ETag. Rebuilt when the
    store has changed since (``PRAGMA data_version`` of this thread's reader), or after
    ``CACHE_SECONDS`` (opening hours begin and end without any data changing)."""
    st, cfg = appctx.store(), appctx.config()
    cache = getattr(_local, "cache", None)
    if cache is None or cache[0] is not st:
        cache = _local.cache = (st, {})
    entries: dict = cache[1]
    hit = entries.get(van)
    mono = time.monotonic()
    cacheable = CLOCK_KEY not in current_app.extensions
    if cacheable and hit is not None and mono - hit[1] < FRESH_SECONDS:
        return hit[2], hit[3], hit[4]
    version = st.reader().execute("PRAGMA data_version").fetchone()[0]
    if cacheable and hit is not None and hit[0] == version and mono - hit[1] < CACHE_SECONDS:
        if van is None:
            current_app.extensions[FAST_KEY].snapshot = (mono, hit[3], hit[4])
        return hit[2], hit[3], hit[4]
    now = _now()
    box = appctx.mode() == "box"
    fleet = public_fleet()
    vans = fleet if van is None else [v for v in fleet if v.id == van]
    today = now.astimezone(cfg.tz).date()
    built = [_van_view(cfg, v, now, box) for v in vans]
    stops = _plan_stops([b[1] for b in built], today)
    mark_next_stops(stops, [b[0] for b in built])
    data = {"today": today.isoformat(), "vans": [b[0] for b in built], "stops": stops}
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    etag = hashlib.blake2b(body, digest_size=12).hexdigest()
    entries[van] = (version, mono, data, body, etag)
    if cacheable and van is None:
        current_app.extensions[FAST_KEY].snapshot = (mono, body, etag)
    return data, body, etag


UNCHANGED = b'{"unchanged":true}'
FAST_KEY = "vanbox_public_fast"


def _headers(etag: str, cache: str = PUBLIC_CACHE) -> dict[str, str]:
    # No Vary: the payload is the same in every language (the page has the words), so
    # one cached copy serves every viewer.
    return {"ETag": f'"{etag}"', "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}


class FastPoll:
    """WSGI shortcut for the hottest request, the all-vans poll: while the payload the
    last Flask request built or checked is younger than ``FRESH_SECONDS``, answer
    ``GET /api/public/vans`` (plain, ``?since=`` or ``If-None-Match``) from it without
    going through Flask. Anything else, or an older payload, goes to the app (which
    checks the store and renews the snapshot). The answers are the same bytes and
    headers as :func:`_json_response`'s."""

    PATH = "/api/public/vans"

    # Headers the app adds to every response (security policy and the like): learnt from
    # the app's own answer to PATH and sent again on the shortcut.
    OWN = {"content-type", "content-length", "etag", "cache-control", "vary", "x-vanbox-now",
           "set-cookie", "date", "server"}  # fmt: skip

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app
        self.snapshot: tuple[float, bytes, str] | None = None
        self.extra: list[tuple[str, str]] | None = None

    def _learn(self, start_response):
        def start(status, headers, exc_info=None):
            if status.startswith("200"):
                self.extra = [(k, v) for k, v in headers if k.lower() not in self.OWN]
            return start_response(status, headers, exc_info)

        return start

    def __call__(self, environ, start_response):
        snap = self.snapshot
        if environ.get("PATH_INFO") != self.PATH:
            return self.wsgi_app(environ, start_response)
        extra = self.extra
        if (
            snap is not None
            and extra is not None
            and environ.get("REQUEST_METHOD") == "GET"
            and time.monotonic() - snap[0] < FRESH_SECONDS
        ):
            _, body, etag = snap
            query = environ.get("QUERY_STRING", "")
            headers = _headers(etag)
            if f'"{etag}"' in environ.get("HTTP_IF_NONE_MATCH", ""):
                start_response("304 NOT MODIFIED", list(headers.items()) + extra)
                return [b""]
            if query in ("", f"since={etag}"):
                out = body if not query else UNCHANGED
                headers["Content-Type"] = "application/json"
                headers["Content-Length"] = str(len(out))
                start_response("200 OK", list(headers.items()) + extra)
                return [out]
        return self.wsgi_app(environ, self._learn(start_response))


def _json_response(body: bytes, etag: str) -> Response:
    """The payload with its ETag. ``If-None-Match`` with the current ETag gets a ``304``.
    ``?since=<etag>`` (what the page polls with) gets a short ``200 {"unchanged": true}``
    instead: waitress closes the connection after every 304 (it has no Content-Length),
    and a reconnect per poll costs more than the 18 bytes."""
    quoted = f'"{etag}"'
    headers = _headers(etag, public_cache_control())
    if CLOCK_KEY in current_app.extensions:
        # A simulated clock (demo, soak): the page reckons "last seen" from this, not
        # from the wall-clock Date header.
        headers["X-Vanbox-Now"] = _now().isoformat()
    if quoted in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    if request.args.get("since") == etag:
        return Response(UNCHANGED, mimetype="application/json", headers=headers)
    return Response(body, mimetype="application/json", headers=headers)


def _known(van: str) -> None:
    if van not in {v["van"] for v in _payload(None)[0]["vans"]}:
        abort(404)


# --- routes -----------------------------------------------------------------------------


def api_vans():
    _, body, etag = _payload(None)
    return _json_response(body, etag)


def api_van(van: str):
    _known(van)
    _, body, etag = _payload(van)
    return _json_response(body, etag)


def leaflet(filename: str):
    import xstatic.pkg.leaflet as leaflet_pkg
    from flask import send_from_directory

    return send_from_directory(leaflet_pkg.BASE_DIR, filename, max_age=7 * 86400)


def _page(van: str | None):
    cfg = appctx.config()
    lang = lang_of()
    t = TEXT[lang]
    data, _, etag = _payload(van)
    if van is None:
        api = "/api/public/vans"
        title = t["title"]
    else:
        api = f"/api/public/vans/{van}"
        title = fill(t, t["title_one"], name=data["vans"][0]["name"])
    client = {
        "api": api,
        "etag": etag,
        "poll_ms": POLL_MS,
        "lang": lang,
        "text": t,
        "tile_url": cfg.hub["tile_url"],
        "tile_attribution": cfg.hub["tile_attribution"],
        "outline": outline_points(),
        "munis": [(name, lat, lon) for name, (lat, lon) in MUNICIPALITIES.items()],
        "hub": appctx.mode() == "hub",
        "one": van is not None,
        "data": data,
    }
    html = render_template(
        "public/map.html",
        t=t,
        lang=lang,
        title=title,
        data=data,
        client=client,
        list_only=request.args.get("view") == "list",
        hub=appctx.mode() == "hub",
        one=van is not None,
        now=_now(),
        fmt=Formatter(t, data["today"], _now()),
        links=_links(van),
        langs=[(code, TEXT[code]["lang_name"]) for code in LANGS],
        outline=outline_map(data["stops"], data["vans"]),
    )
    return public_page(html)


def _links(van: str | None) -> dict[str, str]:
    """Where the page's timetable and calendar links go."""
    if appctx.mode() == "box":
        return {"timetable": "/map/timetable", "calendar": "/calendar.ics"}
    if van is None:
        return {"timetable": "/timetable", "calendar": "/calendar.ics"}
    return {"timetable": f"/van/{van}/timetable", "calendar": f"/van/{van}/calendar.ics"}


class Formatter(Words):
    """The same wording the page's JavaScript uses, for the first (server) render. Its
    list's lines show each visit's day, time and place, so a change's note says only
    what changed (:meth:`Words.change`)."""

    def __init__(self, t: dict[str, Any], today: str, now: datetime) -> None:
        super().__init__(t, today, in_list=True)
        self.now = now

    def ago(self, iso: str | None) -> str:
        if not iso:
            return self.t["never_seen"]
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        m = max(0, int((self.now - then).total_seconds() // 60))
        if m < 1:
            return self.t["just_now"]
        if m < 60:
            return self.counted("minutes_ago", m)
        h = m // 60
        if h < 48:
            return self.counted("hours_ago", h)
        return self.counted("days_ago", h // 24)

    def state(self, v: dict[str, Any]) -> str:
        """The van's badge: "Jetzt geöffnet", "Heute ab 14:00 Uhr geöffnet", ..."""
        if v["state"] != "closed":
            return self.t["state_" + v["state"]]
        kind = v.get("closed") or "none"
        if kind == "later":
            return self.fill(self.t["state_later"], t=self.hm(v.get("later_at")))
        return self.t["state_" + kind]

    def first_next(self, v: dict[str, Any]) -> str:
        """ "Nächster Halt: ..." for the van's next visit that takes place, else ""."""
        for n in v.get("next", []):
            if n.get("is_next"):
                return self.next_stop(n)
        return ""


def hub_index():
    return _page(None)


def hub_van(van: str):
    _known(van)
    return _page(van)


def box_map():
    return _page(appctx.config().van["id"])


_ROUTES = [
    ("/api/public/vans", "api_vans", api_vans, ("hub", "box")),
    ("/api/public/vans/<van>", "api_van", api_van, ("hub", "box")),
    ("/public/leaflet/<path:filename>", "leaflet", leaflet, ("hub", "box")),
    ("/", "hub_index", hub_index, ("hub",)),
    ("/van/<van>", "hub_van", hub_van, ("hub",)),
    ("/map", "box_map", box_map, ("box",)),
]


def init_app(app: Flask) -> None:
    """Register the public routes of the app's mode (the box's ``/`` is the check-in)."""
    mode = app.config["VANBOX_MODE"]
    bp = Blueprint("public", __name__)
    for rule, endpoint, view, modes in _ROUTES:
        if mode in modes:
            bp.add_url_rule(rule, endpoint, view, methods=["GET"])
    app.register_blueprint(bp)
    fast = FastPoll(app.wsgi_app)
    app.extensions[FAST_KEY] = fast
    app.wsgi_app = fast  # type: ignore[method-assign]
