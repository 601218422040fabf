"""The one TOML configuration file, validated at start.

``load_config(path)`` reads ``/etc/vanbox/vanbox.toml`` (or any path), lays it over the
built-in defaults and checks every value. A bad value raises :class:`ConfigError` whose
message names the key and the fix, e.g.::

    gps.baud = 9601: not a standard rate; use 4800, 9600, 38400 or 115200

``default_config()`` is the built-in configuration the demo runs with (no file needed).
Unknown keys are errors too (with a "did you mean" hint), so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from datetime import time as dtime
from pathlib import Path
from typing import Any

from .config_funders import (
    DEFAULT_KINDS,
    DEFAULT_OUTCOMES,
    DEFAULT_PARTNERS,
    check_contacts,
    check_reports,
)
from .errors import ConfigError

DEFAULT_PATH = Path("/etc/vanbox/vanbox.toml")

BAUD_RATES = (4800, 9600, 19200, 38400, 57600, 115200)
SENSOR_KINDS = ("door", "beam", "beam-pair", "none")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# BCM numbers of the GPIO pins on the 40-pin header that are free for inputs.
GPIO_PINS = tuple(range(2, 28))
MAX_STRING = 1000  # characters in any string value (paths, names, URLs)

# Municipality centres of the Landkreis Peine (WGS84), from DESIGN.md.
MUNICIPALITIES = {
    "Peine": (52.320, 10.234),
    "Edemissen": (52.386, 10.261),
    "Hohenhameln": (52.259, 10.067),
    "Ilsede": (52.263, 10.184),
    "Lengede": (52.205, 10.309),
    "Vechelde": (52.261, 10.366),
    "Wendeburg": (52.328, 10.396),
}
TOWN = "Peine"  # the district town; everything else counts as rural for the funders

DEFAULT_TOUR = [
    # name, municipality, weekdays, start, end
    ("Peine, Marktplatz", "Peine", ["mon"], "10:00", "13:00"),
    ("Edemissen, Schulzentrum", "Edemissen", ["mon"], "14:30", "18:00"),
    ("Wendeburg, Rathaus", "Wendeburg", ["tue"], "14:00", "18:00"),
    ("Vechelde, Bahnhof", "Vechelde", ["wed"], "14:00", "18:00"),
    ("Ilsede, Gebläsehalle", "Ilsede", ["thu"], "10:00", "13:00"),
    ("Lengede, Jugendzentrum", "Lengede", ["thu"], "14:30", "18:00"),
    ("Hohenhameln, Marktplatz", "Hohenhameln", ["fri"], "14:00", "18:00"),
    ("Peine, Bahnhof", "Peine", ["fri", "sat"], "18:30", "21:00"),
]

DEFAULTS: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "van": {"id": "jungregio-1", "name": "JUNGregio-Mobil", "tid": "JR"},
    "gps": {
        "port": "/dev/serial0",
        "baud": 9600,
        "max_speed_kmh": 200.0,
        "max_hdop": 20.0,
        "stale_after_s": 10.0,
        "set_clock": False,
    },
    "sensor": {
        "kind": "beam-pair",
        "pin": 17,
        "pin_b": 27,
        "pull_up": True,
        "debounce_ms": 10,
        "max_pass_ms": 2000,
        "blocked_after_s": 60,
    },
    "mqtt": {
        "enabled": True,
        "host": "localhost",
        "port": 1883,
        "tls": False,
        "ca_file": "",
        "username": "",
        "password_file": "",
        "topic_prefix": "vanbox",
        "keepalive": 60,
        "rate_limit": 50.0,
        "outbox_max_rows": 200_000,
        "client_id": "",
        "reconnect_max_s": 60.0,
        "reconcile_days": 62,
        "tally_interval_s": 300.0,
    },
    "publish": {
        "parked_interval_s": 300.0,
        "driving_interval_s": 10.0,
        "driving_speed_ms": 2.0,
        "deadband_m": 30.0,
        "track_batch": 50,
    },
    "database": {"path": "/var/lib/vanbox/vanbox.db", "retention_days": 400},
    "kiosk": {
        "bind": "127.0.0.1",
        "port": 8080,
        "idle_seconds": 60,
        "min_checkin_interval_s": 2.0,
        "public_map_url": "",
        "secret_key_file": "",
        "cookie_secure": False,
        "languages": ["de", "en", "tr", "ar", "uk", "ru", "fa"],
    },
    "staff": {
        "passwd_file": "/etc/vanbox/staff.passwd",
        "session_minutes": 30,
        "max_failures": 5,
        "lockout_minutes": 15,
    },
    "privacy": {
        "coarsen_driving": False,
        "coarsen_m": 2000.0,
        "min_cell": 3,
        "hidden_zones": [],
    },
    "stops": {"arrive_after_s": 180.0, "unplanned_after_s": 900.0, "leave_after_s": 60.0},
    "reports": {
        "annual_budget_eur": 0.0,
        "town": TOWN,
        "municipalities": list(MUNICIPALITIES),
        "funders": [],  # [{"name": str, "eur": float}]: the budget is their sum
        "crew": 2,  # staff on board per service (their own door passes are no visits)
    },
    # Codes of the staff's counselling contacts (telemetry/contacts.py); stable slugs.
    "contacts": {
        "kinds": DEFAULT_KINDS,
        "partners": DEFAULT_PARTNERS,
        "outcomes": DEFAULT_OUTCOMES,
    },
    "hub": {
        "bind": "0.0.0.0",
        "port": 8090,
        "client_id": "vanbox-hub",
        "database": "",
        "tile_url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "tile_attribution": "© OpenStreetMap contributors",
        "homeassistant": False,
        "trusted_proxy": "",
        "workers": 1,  # ingest workers (MQTT 5 shared subscriptions, hub/workers.py)
        # hub/owntracks.py: every stored position once as OwnTracks messages
        "owntracks": {"enabled": False, "topic": "owntracks/vanbox/{van}", "public": False},
        # hub/forward.py: every stored position once to Traccar and/or a webhook
        "forward": {
            "traccar_url": "",
            "webhook_url": "",
            "topic": "vanbox/{van}",
            "timeout_s": 10.0,
            "retry_max_s": 300.0,
        },
    },
    "tour": {
        "stops": [
            {
                "name": name,
                "municipality": muni,
                "lat": MUNICIPALITIES[muni][0],
                "lon": MUNICIPALITIES[muni][1],
                "radius_m": 150.0,
                "weekdays": days,
                "start": start,
                "end": end,
            }
            for name, muni, days, start, end in DEFAULT_TOUR
        ]
    },
}
# A second Peine stop sits at the station, not the market, so the two differ.
DEFAULTS["tour"]["stops"][-1].update(lat=52.3197, lon=10.2255)
DEFAULTS["tour"]["stops"][0].update(lat=52.3215, lon=10.2335)


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


def default_config(overrides: dict[str, Any] | None = None) -> Config:
    return _checked(overrides or {}, "built-in defaults")


MAX_FILE_BYTES = 1 << 20  # a config file is a few KiB; more is a mistake


def load_config(path: str | Path = DEFAULT_PATH) -> Config:
    """The validated config from the file. Raises :class:`ConfigError` (one line naming
    the file or key and the fix) for every problem, never anything else."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; copy deploy/vanbox.example.toml there and edit it"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:  # e.g. a NUL byte in the path
        raise ConfigError(f"{_short(str(path))}: not a usable path ({e})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB; is it the right file?"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}, line {line}: not UTF-8 (byte 0x{raw[e.start]:02x}); save the file as UTF-8"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # any line ends, as text mode
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except (ValueError, RecursionError, MemoryError) as e:  # e.g. a number of 5,000 digits
        raise ConfigError(f"{path}: not usable TOML: {_short(str(e))}") from None
    return _checked(data, str(path))


def _checked(data: dict[str, Any], source: str) -> Config:
    """_build(_merge(...)), with any slip of the checks turned into a ConfigError."""
    try:
        return _build(_merge(DEFAULTS, data, ""), source)
    except ConfigError:
        raise
    except (ValueError, TypeError, OverflowError, KeyError, AttributeError, RecursionError) as e:
        raise ConfigError(f"{source}: a value cannot be used ({_short(str(e))})") from None


# --- merging -------------------------------------------------------------------------


def _merge(base: dict[str, Any], over: dict[str, Any], prefix: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        name = _short(f"{prefix}{key}")
        if key not in base:
            hint = difflib.get_close_matches(key, list(base), n=1)
            fix = f"; did you mean {prefix}{hint[0]}?" if hint else "; remove it"
            raise ConfigError(f"{name}: unknown key{fix}")
        if isinstance(base[key], dict) and base[key] and key != "tour":
            if not isinstance(value, dict):
                raise ConfigError(f"{name} must be a table ([{name}])")
            out[key] = _merge(base[key], value, f"{name}.")
        elif key == "tour":
            if not isinstance(value, dict) or set(value) - {"stops"}:
                raise ConfigError("tour: expected only [[tour.stops]] entries")
            out[key] = copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- checking ------------------------------------------------------------------------


def _short(text: str, limit: int = 80) -> str:
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    """A short, one-line, printable repr of a value (a huge number cannot even be
    printed in full: Python refuses ints of more than 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit number"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"
    return _short(text)


def _fail(key: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"{key} = {_show(value)}: {why}")


def _num(
    d: dict, sec: str, key: str, lo: float, hi: float, *, integer: bool = False
) -> float | int:
    v = d[key]
    name = f"{sec}.{key}"
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _fail(name, v, "must be a number")
    if isinstance(v, int) and v.bit_length() > 64:  # math.isfinite() would overflow
        raise _fail(name, v, f"out of range; use a value from {lo:g} to {hi:g}")
    if not math.isfinite(v):
        raise _fail(name, v, "must be a number")
    if integer and not isinstance(v, int):
        raise _fail(name, v, "must be a whole number")
    if not lo <= v <= hi:
        raise _fail(name, v, f"out of range; use a value from {lo:g} to {hi:g}")
    return v


def _bool(d: dict, sec: str, key: str) -> bool:
    v = d[key]
    if not isinstance(v, bool):
        raise _fail(f"{sec}.{key}", v, "must be true or false")
    return v


def _str(d: dict, sec: str, key: str, *, empty: bool = True) -> str:
    v = d[key]
    if not isinstance(v, str):
        raise _fail(f"{sec}.{key}", v, 'must be a string in quotes, e.g. "text"')
    if "\0" in v or len(v) > MAX_STRING:
        raise _fail(f"{sec}.{key}", v, f"no NUL characters and at most {MAX_STRING} characters")
    if not empty and not v.strip():
        raise _fail(f"{sec}.{key}", v, "must not be empty")
    return v


def _feed_topic(d: dict, sec: str, key: str) -> str:
    """A topic template with one ``{van}`` and no wildcards."""
    v = _str(d, sec, key, empty=False)
    rest = v.replace("{van}", "", 1)
    if "{van}" not in v or re.search(r"[{}+#\s]", rest) or v.startswith("/") or "//" in v:
        raise _fail(
            f"{sec}.{key}",
            v,
            'a topic with one {van} and no + # or spaces, e.g. "owntracks/vanbox/{van}"',
        )
    return v


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


def _hhmm(v: Any, key: str) -> dtime:
    if not isinstance(v, str) or not re.fullmatch(r"\d{1,2}:\d{2}", v):
        raise _fail(key, v, 'use 24-hour "HH:MM", e.g. "14:30"')
    h, m = map(int, v.split(":"))
    if h > 23 or m > 59:
        raise _fail(key, v, 'not a time of day; use "00:00" to "23:59"')
    return dtime(h, m)


def _latlon(d: dict, key: str) -> tuple[float, float]:
    for k, lim in (("lat", 90), ("lon", 180)):
        v = d.get(k)
        if isinstance(v, bool) or not isinstance(v, int | float) or not -lim <= v <= lim:
            raise _fail(f"{key}.{k}", v, f"must be decimal degrees from -{lim} to {lim}")
    if d["lat"] == 0 and d["lon"] == 0:
        raise _fail(f"{key}.lat", 0, "0,0 is not a place in the Landkreis; give real coordinates")
    return float(d["lat"]), float(d["lon"])


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
