"""Stop-visit detection: a pure state machine over positions, checked against the
generator's truth and against hand-made tracks with made-up times."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from telemetry.config import Zone, default_config
from telemetry.events import Position
from telemetry.geo import distance_m
from telemetry.stops import MAX_GAP_S, PARK_RADIUS_M, StopDetector, open_visit

sys.path.insert(0, str(Path(__file__).parent))
import yeardata  # noqa: E402

CFG = default_config()
TZ = CFG.tz
T0 = datetime(2025, 5, 5, 8, 0, tzinfo=UTC)
ILSEDE = next(s for s in CFG.tour if s.municipality == "Ilsede")
PEINE = CFG.tour[0]


def north(lat: float, metres: float) -> float:
    return lat + metres / 111_320.0


def fixes(points):
    """[(seconds after T0, lat, lon)] -> positions."""
    return [Position(T0 + timedelta(seconds=s), lat, lon) for s, lat, lon in points]


def run(det: StopDetector, positions):
    out = []
    for p in positions:
        out.extend(det.feed(p))
    return out


def detector(**kw) -> StopDetector:
    return StopDetector(CFG.tour, CFG.stops, TZ, van="v1", **kw)


def park(lat, lon, t0, t1, every=10):
    return [(t, lat, lon) for t in range(t0, t1, every)]


def test_truth_year_sparse_and_dense():
    """Every visit of a generated stretch is found with the exact arrival and departure,
    with fixes every 5 minutes while parked (thinned, as on the hub) and every 5 s."""
    for park_s, drive_s in ((300.0, 10.0), (5.0, 2.0)):
        y = yeardata.generate(
            2025,
            seed=7,
            days=21 if park_s > 10 else 7,
            start=date(2025, 6, 2),
            park_interval_s=park_s,
            drive_interval_s=drive_s,
        )
        events = run(detector(), y.positions)
        closed = [v for v in events if v.left is not None]
        opened = [v for v in events if v.left is None]
        assert [v.id for v in opened] == [v.id for v in closed]  # each arrives, then leaves
        assert len(closed) == len(y.visits) > 5
        assert any(not v.planned for v in y.visits) or park_s < 10
        for got, want in zip(closed, sorted(y.visits, key=lambda v: v.arrived), strict=True):
            assert got.arrived.timestamp() == pytest.approx(want.arrived, abs=0.01)
            assert got.left.timestamp() == pytest.approx(want.left, abs=0.01)
            assert got.planned == want.planned
            assert got.municipality == want.municipality
            if want.planned:
                assert got.name == want.name
            else:
                assert got.name.startswith("bei ") and got.van == "v1"


def test_arrive_only_after_the_dwell_time():
    lat, lon = PEINE.lat, PEINE.lon
    # 170 s inside the radius, then away: no visit
    det = detector()
    track = park(lat, lon, 0, 171) + [(180 + i * 10, north(lat, 400 + 150 * i), lon)
                                      for i in range(20)]  # fmt: skip
    assert run(det, fixes(track)) == []
    # 190 s: a visit, arriving at the first fix inside
    det = detector()
    out = run(det, fixes(park(lat, lon, 0, 191)))
    assert len(out) == 1 and out[0].left is None
    assert out[0].arrived == T0 and out[0].name == PEINE.name and out[0].planned


def test_leave_after_leave_time_and_short_excursions_do_not_count():
    lat, lon = PEINE.lat, PEINE.lon
    away = north(lat, 300)
    det = detector()
    track = (
        park(lat, lon, 0, 600)
        + park(away, lon, 600, 640)  # 40 s outside: still there
        + park(lat, lon, 640, 1200)
        + park(away, lon, 1200, 1300)  # outside for 60 s and more: left at 1200
    )
    out = run(det, fixes(track))
    assert [v.left for v in out] == [None, T0 + timedelta(seconds=1200)]
    assert out[0].id == out[1].id


def test_unplanned_stop_named_after_the_nearest_stop():
    # Parked 1.2 km east of the Gebläsehalle, outside its radius, for 20 minutes.
    lat, lon = ILSEDE.lat, ILSEDE.lon + 0.0175
    assert distance_m(lat, lon, ILSEDE.lat, ILSEDE.lon) > 1000
    det = detector()
    track = park(lat, lon, 0, 900) + park(north(lat, 30), lon, 900, 1200, every=60)
    out = run(det, fixes(track))
    assert len(out) == 1
    v = out[0]
    assert (v.name, v.municipality, v.planned) == ("bei Ilsede, Gebläsehalle", "Ilsede", False)
    assert v.arrived == T0 and (v.lat, v.lon) == (lat, lon)
    # A short stop (under unplanned_after_s = 15 min) is no stop.
    det = detector()
    assert run(det, fixes(park(lat, lon, 0, 890))) == []
    # Moving on further than PARK_RADIUS_M ends it.
    out = run(det, fixes(park(lat, lon, 900, 2000) + park(north(lat, PARK_RADIUS_M + 50), lon,
                                                         2000, 2100)))  # fmt: skip
    assert out[-1].left == T0 + timedelta(seconds=2000)


def test_ignored_zones_and_no_tour():
    depot = Zone("depot", 52.33, 10.245, 200.0)
    det = StopDetector(CFG.tour, CFG.stops, TZ, ignore=[depot])
    assert run(det, fixes(park(depot.lat, depot.lon, 0, 3000, every=60))) == []
    det = StopDetector((), CFG.stops, TZ)
    out = run(det, fixes(park(52.2055, 10.3095, 0, 1000, every=60)))
    assert (out[0].name, out[0].municipality) == ("bei Lengede", "Lengede")


def test_sparse_fixes_and_a_long_gap_close_the_visit():
    lat, lon = PEINE.lat, PEINE.lon
    det = detector()
    # parked fixes every 5 minutes only
    out = run(det, fixes(park(lat, lon, 0, 1800, every=300)))
    assert len(out) == 1 and out[0].arrived == T0
    # the box was off for two hours; it comes back elsewhere: closed at the last fix seen
    gap = 1500 + MAX_GAP_S + 600
    out = run(det, fixes([(gap, north(lat, 5000), lon)]))
    assert len(out) == 1 and out[0].left == T0 + timedelta(seconds=1500)
    # out-of-order fixes are ignored
    assert det.feed(Position(T0, lat, lon)) == []


def test_resume_after_restart_and_open_visit(store):
    lat, lon = PEINE.lat, PEINE.lon
    det = detector()
    arrived = run(det, fixes(park(lat, lon, 0, 400)))[0]
    store.record(arrived)
    current = open_visit(store.reader(), "v1")
    assert current is not None and current.id == arrived.id and current.left is None
    # a new detector after a restart carries on with the same visit
    det2 = detector(current=current)
    out = run(det2, fixes(park(lat, lon, 400, 800) + park(north(lat, 500), lon, 800, 900)))
    assert [(v.id, v.left) for v in out] == [(arrived.id, T0 + timedelta(seconds=800))]
    store.record(out[0])
    assert open_visit(store.reader(), "v1") is None
    assert det2.close(T0) is None


def test_feed_is_pure(store):
    """The detector never writes: the store records what it returns."""
    det = detector()
    run(det, fixes(park(PEINE.lat, PEINE.lon, 0, 400)))
    assert store.count("stop_visits") == 0
