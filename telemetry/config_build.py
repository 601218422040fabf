"""The validated :class:`Config` and how it is built from the merged tables.

:func:`_build` checks every section of the defaults-plus-file tables (the funders'
``[reports]`` and ``[contacts]`` in :mod:`telemetry.config_funders`) and returns the
:class:`Config`: plain dicts of checked values per section, plus typed tuples for the
tour plan (:class:`TourStop`) and the hidden zones (:class:`Zone`).
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import time as dtime
from typing import Any

from .config_checks import _bool, _fail, _feed_topic, _hhmm, _latlon, _merge, _num, _str
from .config_defaults import BAUD_RATES, GPIO_PINS, SENSOR_KINDS, WEEKDAYS
from .config_funders import check_contacts, check_reports
from .errors import ConfigError


@dataclass(frozen=True)
class Zone:
    name: str
    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True)
class TourStop:
    name: str
    municipality: str
    lat: float
    lon: float
    radius_m: float
    weekdays: tuple[int, ...]  # 0 = Monday
    start: dtime
    end: dtime


@dataclass(frozen=True)
class Config:
    """The validated configuration. Sections are plain dicts of checked values,
    plus typed lists for the tour plan and hidden zones."""

    timezone: str
    van: dict[str, Any]
    gps: dict[str, Any]
    sensor: dict[str, Any]
    mqtt: dict[str, Any]
    publish: dict[str, Any]
    database: dict[str, Any]
    kiosk: dict[str, Any]
    staff: dict[str, Any]
    privacy: dict[str, Any]
    stops: dict[str, Any]
    reports: dict[str, Any]
    hub: dict[str, Any]
    contacts: dict[str, Any]
    tour: tuple[TourStop, ...] = ()
    hidden_zones: tuple[Zone, ...] = ()
    source: str = "built-in defaults"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def with_overrides(self, overrides: dict[str, Any]) -> Config:
        """A new validated config with ``{"section": {"key": value}}`` laid over this one."""
        return _build(_merge(self.raw, overrides, ""), self.source)


def _check_feeds(hub: dict, prefix: str) -> None:
    ot = hub["owntracks"]
    _bool(ot, "hub.owntracks", "enabled")
    _bool(ot, "hub.owntracks", "public")
    topic = _feed_topic(ot, "hub.owntracks", "topic")
    if topic.split("/")[0] == prefix.split("/")[0]:
        # The hub subscribes to <prefix>/+/#: it would hear its own messages.
        raise _fail("hub.owntracks.topic", topic, f'must not start with "{prefix.split("/")[0]}/"')
    fw = hub["forward"]
    for key in ("traccar_url", "webhook_url"):
        url = _str(fw, "hub.forward", key)
        if url and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
            raise _fail(
                f"hub.forward.{key}", url, 'an http(s) URL, e.g. "http://traccar:5144/", or ""'
            )
    _feed_topic(fw, "hub.forward", "topic")
    _num(fw, "hub.forward", "timeout_s", 0.5, 120)
    _num(fw, "hub.forward", "retry_max_s", 1, 3600)


def _build(d: dict[str, Any], source: str) -> Config:
    tzname = d["timezone"]
    try:
        zoneinfo.ZoneInfo(tzname)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise _fail("timezone", tzname, 'unknown time zone; use e.g. "Europe/Berlin"') from None

    van = d["van"]
    vid = _str(van, "van", "id", empty=False)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", vid):
        raise _fail(
            "van.id", vid, "use 1-40 lower-case letters, digits, - or _ (it is an MQTT topic level)"
        )
    _str(van, "van", "name", empty=False)
    tid = _str(van, "van", "tid")
    if not re.fullmatch(r"[A-Za-z0-9]{1,2}", tid):
        raise _fail("van.tid", tid, "OwnTracks tracker id: one or two letters or digits")

    gps = d["gps"]
    _str(gps, "gps", "port", empty=False)
    if gps["baud"] not in BAUD_RATES:
        raise _fail("gps.baud", gps["baud"], "not a standard rate; use 4800, 9600, 38400 or 115200")
    _num(gps, "gps", "max_speed_kmh", 10, 1000)
    _num(gps, "gps", "max_hdop", 1, 99.9)
    _num(gps, "gps", "stale_after_s", 1, 3600)
    _bool(gps, "gps", "set_clock")

    sen = d["sensor"]
    if sen["kind"] not in SENSOR_KINDS:
        raise _fail("sensor.kind", sen["kind"], f"use one of {', '.join(SENSOR_KINDS)}")
    for key in ("pin", "pin_b"):
        if sen[key] not in GPIO_PINS or isinstance(sen[key], bool):
            raise _fail(f"sensor.{key}", sen[key], "use a BCM GPIO number from 2 to 27")
    if sen["kind"] == "beam-pair" and sen["pin"] == sen["pin_b"]:
        raise _fail("sensor.pin_b", sen["pin_b"], "the two beams need two different pins")
    _bool(sen, "sensor", "pull_up")
    _num(sen, "sensor", "debounce_ms", 0, 1000, integer=True)
    _num(sen, "sensor", "max_pass_ms", 100, 60_000, integer=True)
    _num(sen, "sensor", "blocked_after_s", 1, 86_400)

    mq = d["mqtt"]
    _bool(mq, "mqtt", "enabled")
    _str(mq, "mqtt", "host", empty=False)
    _num(mq, "mqtt", "port", 1, 65535, integer=True)
    _bool(mq, "mqtt", "tls")
    for key in ("ca_file", "username", "password_file", "client_id"):
        _str(mq, "mqtt", key)
    if mq["password_file"] and not mq["username"]:
        raise _fail("mqtt.username", "", "a password_file needs a username too")
    prefix = _str(mq, "mqtt", "topic_prefix", empty=False)
    if any(c in prefix for c in "#+") or prefix.startswith("/") or prefix.endswith("/"):
        raise _fail("mqtt.topic_prefix", prefix, "no wildcards (+, #) and no leading/trailing /")
    _num(mq, "mqtt", "keepalive", 5, 3600, integer=True)
    _num(mq, "mqtt", "rate_limit", 0.1, 10_000)
    _num(mq, "mqtt", "outbox_max_rows", 1000, 100_000_000, integer=True)
    _num(mq, "mqtt", "reconnect_max_s", 1, 3600)
    _num(mq, "mqtt", "reconcile_days", 1, 400, integer=True)
    _num(mq, "mqtt", "tally_interval_s", 10, 86_400)

    pub = d["publish"]
    _num(pub, "publish", "parked_interval_s", 1, 86_400)
    _num(pub, "publish", "driving_interval_s", 0.5, 3600)
    _num(pub, "publish", "driving_speed_ms", 0.1, 50)
    _num(pub, "publish", "deadband_m", 0, 10_000)
    _num(pub, "publish", "track_batch", 1, 500, integer=True)  # the hub takes <= 500 points

    db = d["database"]
    _str(db, "database", "path", empty=False)
    _num(db, "database", "retention_days", 1, 36_500, integer=True)

    ki = d["kiosk"]
    _str(ki, "kiosk", "bind", empty=False)
    _num(ki, "kiosk", "port", 1, 65535, integer=True)
    _num(ki, "kiosk", "idle_seconds", 5, 3600, integer=True)
    _num(ki, "kiosk", "min_checkin_interval_s", 0, 600)
    _str(ki, "kiosk", "public_map_url")
    _str(ki, "kiosk", "secret_key_file")
    _bool(ki, "kiosk", "cookie_secure")
    langs = ki["languages"]
    if not isinstance(langs, list) or not langs or not all(isinstance(x, str) for x in langs):
        raise _fail("kiosk.languages", langs, 'a list of language codes, e.g. ["de", "en"]')
    if langs[0] != "de":
        raise _fail("kiosk.languages", langs, 'German comes first: start the list with "de"')

    st = d["staff"]
    _str(st, "staff", "passwd_file", empty=False)
    _num(st, "staff", "session_minutes", 1, 24 * 60, integer=True)
    _num(st, "staff", "max_failures", 1, 100, integer=True)
    _num(st, "staff", "lockout_minutes", 1, 24 * 60, integer=True)

    pr = d["privacy"]
    _bool(pr, "privacy", "coarsen_driving")
    _num(pr, "privacy", "coarsen_m", 100, 50_000)
    _num(pr, "privacy", "min_cell", 1, 100, integer=True)
    zones = []
    if not isinstance(pr["hidden_zones"], list):
        raise _fail("privacy.hidden_zones", pr["hidden_zones"], "use [[privacy.hidden_zones]]")
    for i, z in enumerate(pr["hidden_zones"]):
        key = f"privacy.hidden_zones[{i}]"
        if not isinstance(z, dict):
            raise _fail(key, z, "needs name, lat, lon, radius_m")
        unknown = set(z) - {"name", "lat", "lon", "radius_m"}
        if unknown:
            raise ConfigError(
                f"{key}.{sorted(unknown)[0]}: unknown key; use name, lat, lon, radius_m"
            )
        lat, lon = _latlon(z, key)
        r = z.get("radius_m", 300)
        if isinstance(r, bool) or not isinstance(r, int | float) or not 10 <= r <= 50_000:
            raise _fail(f"{key}.radius_m", r, "use metres from 10 to 50000")
        zones.append(Zone(str(z.get("name", f"zone {i + 1}")), lat, lon, float(r)))

    sp = d["stops"]
    _num(sp, "stops", "arrive_after_s", 10, 7200)
    _num(sp, "stops", "unplanned_after_s", 60, 86_400)
    _num(sp, "stops", "leave_after_s", 5, 3600)

    _num(d["reports"], "reports", "annual_budget_eur", 0, 1e9)
    reports = check_reports(d["reports"])
    contacts = check_contacts(d["contacts"])

    hub = d["hub"]
    _str(hub, "hub", "bind", empty=False)
    _num(hub, "hub", "port", 1, 65535, integer=True)
    _str(hub, "hub", "client_id", empty=False)
    _num(hub, "hub", "workers", 1, 16, integer=True)
    _str(hub, "hub", "database")
    tile = _str(hub, "hub", "tile_url")
    if tile and not (
        re.match(r"https?://", tile) and all(f"{{{k}}}" in tile for k in ("z", "x", "y"))
    ):
        raise _fail(
            "hub.tile_url", tile, "an http(s) URL template with {z}, {x} and {y} (or empty)"
        )
    _str(hub, "hub", "tile_attribution")
    _bool(hub, "hub", "homeassistant")
    _check_feeds(hub, d["mqtt"]["topic_prefix"])
    proxy = _str(hub, "hub", "trusted_proxy")
    if proxy and not re.fullmatch(r"[0-9A-Fa-f.:]{2,45}", proxy):
        raise _fail(
            "hub.trusted_proxy", proxy, 'the IP address of the reverse proxy, e.g. "127.0.0.1"'
        )

    tour = []
    stops = d["tour"].get("stops", [])
    if not isinstance(stops, list):
        raise _fail("tour.stops", stops, "use [[tour.stops]] tables")
    for i, s in enumerate(stops):
        key = f"tour.stops[{i}]"
        if not isinstance(s, dict):
            raise _fail(key, s, "needs name, municipality, lat, lon, weekdays, start, end")
        need = {"name", "municipality", "lat", "lon", "weekdays", "start", "end"}
        missing = need - set(s)
        if missing:
            raise ConfigError(f"{key}: missing {', '.join(sorted(missing))}")
        unknown = set(s) - need - {"radius_m"}
        if unknown:
            raise ConfigError(f"{key}.{sorted(unknown)[0]}: unknown key")
        lat, lon = _latlon(s, key)
        days = s["weekdays"]
        if not isinstance(days, list) or not days or any(x not in WEEKDAYS for x in days):
            raise _fail(f"{key}.weekdays", days, f"a list from {', '.join(WEEKDAYS)}")
        start, end = _hhmm(s["start"], f"{key}.start"), _hhmm(s["end"], f"{key}.end")
        if end <= start:
            raise _fail(f"{key}.end", s["end"], f"must be after start {s['start']}")
        r = s.get("radius_m", 150)
        if isinstance(r, bool) or not isinstance(r, int | float) or not 10 <= r <= 5000:
            raise _fail(f"{key}.radius_m", r, "use metres from 10 to 5000")
        if not isinstance(s["name"], str) or not s["name"].strip():
            raise _fail(f"{key}.name", s["name"], "give the stop a name")
        if not isinstance(s["municipality"], str) or not s["municipality"].strip():
            raise _fail(f"{key}.municipality", s["municipality"], "name the municipality")
        tour.append(
            TourStop(
                s["name"],
                s["municipality"],
                lat,
                lon,
                float(r),
                tuple(WEEKDAYS.index(x) for x in days),
                start,
                end,
            )
        )

    return Config(
        timezone=tzname,
        van=van,
        gps=gps,
        sensor=sen,
        mqtt=mq,
        publish=pub,
        database=db,
        kiosk=ki,
        staff=st,
        privacy=pr,
        stops=sp,
        reports=reports,
        hub=hub,
        contacts=contacts,
        tour=tuple(tour),
        hidden_zones=tuple(zones),
        source=source,
        raw=d,
    )
