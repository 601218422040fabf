"""Small geometry on the WGS84 sphere: distances, and where a point lies."""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial course from point 1 to point 2, degrees true (0..360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360


def interpolate(
    lat1: float, lon1: float, lat2: float, lon2: float, f: float
) -> tuple[float, float]:
    """The point a fraction ``f`` of the way from 1 to 2 (linear; fine over a few km)."""
    return lat1 + (lat2 - lat1) * f, lon1 + (lon2 - lon1) * f


def coarsen(lat: float, lon: float, cell_m: float) -> tuple[float, float]:
    """Snap a point to the centre of a grid cell about ``cell_m`` metres wide."""
    dlat = cell_m / 111_320.0
    clat = (math.floor(lat / dlat) + 0.5) * dlat
    # The longitude step follows the cell's centre latitude, so every point of a cell
    # snaps to the same centre.
    dlon = cell_m / (111_320.0 * max(0.01, math.cos(math.radians(clat))))
    return clat, (math.floor(lon / dlon) + 0.5) * dlon
