"""The built-in configuration and the fixed sets of allowed values.

:data:`DEFAULTS` is what every file is laid over (and what
:func:`telemetry.config.default_config` validates on its own): one table per section,
the default tour (:data:`DEFAULT_TOUR`, stops in every municipality of the Landkreis
Peine) and the funders' code lists from :mod:`telemetry.config_funders`. Beside it:
the standard baud rates, sensor kinds, weekdays, free GPIO pins, the longest allowed
string and the municipality centres of the district with its town (:data:`TOWN`,
everything else counts as rural).
"""

from __future__ import annotations

from typing import Any

from .config_funders import DEFAULT_KINDS, DEFAULT_OUTCOMES, DEFAULT_PARTNERS

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
