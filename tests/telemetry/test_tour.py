"""Tour plan: open now, next visits, stops by position; geometry helpers."""

from datetime import UTC, datetime

from telemetry import geo, tour
from telemetry.config import default_config

CFG = default_config()
# Monday 2026-06-01, 12:30 in Berlin: the Peine market stop (10:00-13:00) is open.
MON_1230 = datetime(2026, 6, 1, 10, 30, tzinfo=UTC)


def test_open_visit_and_next_visits():
    v = tour.open_visit(CFG.tour, MON_1230, CFG.tz)
    assert v is not None and v.stop.name == "Peine, Marktplatz"
    nxt = tour.next_visits(CFG.tour, MON_1230, CFG.tz, 3)
    assert [x.stop.name for x in nxt] == [
        "Peine, Marktplatz",
        "Edemissen, Schulzentrum",
        "Wendeburg, Rathaus",
    ]
    assert nxt[2].start.isoformat() == "2026-06-02T14:00:00+02:00"


def test_closed_on_sunday_evening_and_next_is_monday():
    sun = datetime(2026, 6, 7, 19, 0, tzinfo=UTC)
    assert tour.open_visit(CFG.tour, sun, CFG.tz) is None
    assert tour.next_visits(CFG.tour, sun, CFG.tz, 1)[0].start.weekday() == 0


def test_stop_at_and_nearest():
    s = tour.stop_at(CFG.tour, 52.3216, 10.2336)
    assert s is not None and s.name == "Peine, Marktplatz"
    assert tour.stop_at(CFG.tour, 52.30, 10.30) is None
    near, d = tour.nearest_stop(CFG.tour, 52.262, 10.186)
    assert near.municipality == "Ilsede" and d < 300


def test_geo():
    # Peine to Edemissen, about 7.6 km.
    d = geo.distance_m(52.320, 10.234, 52.386, 10.261)
    assert 7_400 < d < 7_600
    assert abs(geo.bearing_deg(52.0, 10.0, 53.0, 10.0)) < 1e-9
    assert abs(geo.bearing_deg(52.0, 10.0, 52.0, 10.1) - 90) < 0.1
    lat, lon = geo.coarsen(52.3216, 10.2336, 2000)
    assert geo.distance_m(lat, lon, 52.3216, 10.2336) < 2000
    assert geo.coarsen(52.3217, 10.2337, 2000) == (lat, lon)
