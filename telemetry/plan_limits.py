"""The limits every tour plan keeps (see telemetry/plan.py): its sizes, its id and key
formats, its years, and the area its places must lie in (the Landkreis Peine, from the
municipality centres plus a margin). Checked by :mod:`telemetry.plan_rules`."""

from __future__ import annotations

import math
import re

from .config import MUNICIPALITIES

KINDS = ("cancel", "delay", "move", "extra", "closed")
STATUSES = ("planned", "cancelled", "delayed", "moved", "extra")
VAN_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
KEY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
REASON_MAX = 200
NAME_MAX = 80
MAX_STOPS = 100
MAX_EXCEPTIONS = 1000
MAX_JSON = 1024 * 1024  # a full plan (100 stops, 1000 exceptions) is about 600 KB
KEEP_PAST_DAYS = 90  # past exceptions kept at least this long when a plan holds too many
DELAY_MIN, DELAY_MAX = 1, 600
MAX_CLOSED_DAYS = 366
MAX_SPAN_DAYS = 800  # visits_between looks at most this far
YEARS = (2000, 2099)
RADIUS_M = (10.0, 5000.0)
MARGIN_KM = 15.0


def _bbox(margin_km: float = MARGIN_KM) -> tuple[float, float, float, float]:
    """(south, west, north, east) around the seven municipality centres plus a margin."""
    lats = [p[0] for p in MUNICIPALITIES.values()]
    lons = [p[1] for p in MUNICIPALITIES.values()]
    dlat = margin_km / 111.32
    dlon = margin_km / (111.32 * math.cos(math.radians(sum(lats) / len(lats))))
    return min(lats) - dlat, min(lons) - dlon, max(lats) + dlat, max(lons) + dlon


LANDKREIS_BBOX = _bbox()


def in_landkreis(lat: float, lon: float) -> bool:
    s, w, n, e = LANDKREIS_BBOX
    return s <= lat <= n and w <= lon <= e
