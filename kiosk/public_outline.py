"""The public map without tiles: a labelled outline of the Landkreis Peine drawn from
data shipped with the package (``static/public/landkreis-peine.json``, a schematic
outline around the municipality centres, CC0; see its LICENCE file).

:func:`outline_map` projects the outline, the municipality names, the stops and the
shown vans' public positions into one SVG picture (server-rendered, so it works without
JavaScript); :func:`outline_points` gives the same outline to the page's Leaflet map,
which draws it under the tiles and alone when the tiles fail.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from telemetry.config import MUNICIPALITIES

DATA = Path(__file__).parent / "static" / "public" / "landkreis-peine.json"
WIDTH = 400.0
PAD = 14.0


@cache
def outline_points() -> tuple[tuple[float, float], ...]:
    """The outline as (lat, lon) points."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    return tuple((float(a), float(b)) for a, b in data["outline"])


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    label: str
    kind: str  # "muni", "stop", "next" or "van-<state>"


@dataclass(frozen=True)
class OutlineMap:
    width: float
    height: float
    path: str
    marks: tuple[Mark, ...]


def outline_map(stops: list[dict[str, Any]], vans: list[dict[str, Any]]) -> OutlineMap:
    """The SVG picture of the outline with the municipalities, ``stops`` (the payload's
    stops; ``next`` ones highlighted) and the vans that have a public ``position``."""
    pts = list(outline_points())
    lats = [p[0] for p in pts] + [s["lat"] for s in stops]
    lons = [p[1] for p in pts] + [s["lon"] for s in stops]
    lat0, lat1, lon0, lon1 = min(lats), max(lats), min(lons), max(lons)
    kx = math.cos(math.radians((lat0 + lat1) / 2))
    scale = (WIDTH - 2 * PAD) / ((lon1 - lon0) * kx)
    height = (lat1 - lat0) * scale + 2 * PAD

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return (round(PAD + (lon - lon0) * kx * scale, 1), round(PAD + (lat1 - lat) * scale, 1))

    path = "M" + " L".join(f"{x},{y}" for x, y in (xy(*p) for p in pts)) + " Z"
    # A municipality whose next stop is named on the map is not named twice.
    named = {s["municipality"] for s in stops if s.get("next")}
    marks = [Mark(*xy(lat, lon), name, "muni") for name, (lat, lon) in MUNICIPALITIES.items()
             if name not in named]  # fmt: skip
    for s in stops:
        marks.append(Mark(*xy(s["lat"], s["lon"]), s["name"], "next" if s.get("next") else "stop"))
    for v in vans:
        p = v.get("position")
        if p:
            marks.append(Mark(*xy(p["lat"], p["lon"]), v["name"], f"van-{v['state']}"))
    return OutlineMap(WIDTH, round(height, 1), path, tuple(marks))
