"""The simulated van: a plausible route, valid NMEA, and a pty that reads like a receiver."""

import os
import time
from datetime import UTC, datetime, timedelta

import pynmea2
import serial

from firmware.simulator import DEMO_STOPS, NmeaFeeder, demo_day, demo_tour, epoch_sentences
from telemetry.clock import ScaledClock
from telemetry.config import default_config
from telemetry.geo import distance_m
from telemetry.tour import open_visit

START = datetime(2026, 6, 1, 6, 45, tzinfo=UTC)


def test_route_visits_all_seven_municipalities_and_returns():
    r = demo_day(START)
    munis = [leg.stop[1] for leg in r.stops()]
    assert sorted(munis) == sorted(m for _, m, _, _ in DEMO_STOPS)
    assert len(set(munis)) == 7
    assert r.legs[0].a == r.legs[-1].b  # back at the depot
    # Continuous: each leg starts where and when the previous ended.
    for a, b in zip(r.legs, r.legs[1:], strict=False):
        assert a.end == b.start and a.b == b.a
    # Driving speed is plausible (straight-line speed below 45 km/h).
    for leg in r.legs:
        if leg.driving:
            v = distance_m(*leg.a, *leg.b) / (leg.end - leg.start).total_seconds()
            assert 5 < v < 12.5


def test_route_positions_stand_still_at_stops_and_move_between():
    r = demo_day(START)
    stop = r.stops()[2]
    s = r.at(stop.start + timedelta(minutes=3))
    assert s.speed == 0 and s.stop == stop.stop
    assert (s.lat, s.lon) == stop.stop[2:]
    drive = r.legs[1]
    mid = r.at(drive.start + (drive.end - drive.start) / 2)
    assert mid.speed > 5 and mid.stop is None
    assert distance_m(mid.lat, mid.lon, *drive.a) > 1000


def test_demo_tour_makes_the_van_open_while_it_stands():
    cfg = default_config()
    r = demo_day(START)
    tour_cfg = default_config({"tour": {"stops": demo_tour(r, cfg.tz)}})
    stop = r.stops()[0]
    v = open_visit(tour_cfg.tour, stop.start + timedelta(minutes=5), cfg.tz)
    assert v is not None and v.stop.name == stop.stop[0]
    assert open_visit(tour_cfg.tour, r.legs[1].start + timedelta(minutes=2), cfg.tz) is None


def test_nmea_sentences_have_valid_checksums_and_values():
    r = demo_day(START)
    t = r.legs[1].start + timedelta(minutes=4)
    state = r.at(t)
    msgs = [pynmea2.parse(s.strip(), check=True) for s in epoch_sentences(t, state)]
    gga, gsa, rmc = msgs
    assert abs(gga.latitude - state.lat) < 1e-5 and abs(gga.longitude - state.lon) < 1e-5
    assert gga.gps_qual == 1 and gsa.mode_fix_type == "3"
    assert rmc.status == "A" and rmc.datestamp == t.date()
    assert abs(rmc.spd_over_grnd * 0.514444 - state.speed) < 0.01
    nofix = [pynmea2.parse(s.strip(), check=True) for s in epoch_sentences(t, None)]
    assert nofix[0].gps_qual == 0 and nofix[2].status == "V"


def test_feeder_writes_epochs_into_a_pty_and_survives_unplugging(tmp_path):
    r = demo_day(START)
    clock = ScaledClock(r.legs[1].start, speed=50)
    feeder = NmeaFeeder(r, clock, tmp_path / "gps", cold_start_s=0).start()
    try:
        port = serial.serial_for_url(str(tmp_path / "gps"), timeout=0.2)
        lines = []
        deadline = time.monotonic() + 5
        while len(lines) < 9 and time.monotonic() < deadline:
            line = port.readline()
            if line:
                lines.append(line.decode().strip())
        port.close()
        assert len(lines) >= 9
        types = [pynmea2.parse(x, check=True).sentence_type for x in lines[3:9]]
        assert set(types) == {"GGA", "GSA", "RMC"}
        feeder.unplug(sim_seconds=50)  # one real second at 50x
        assert not os.path.exists(tmp_path / "gps")
        deadline = time.monotonic() + 5
        while not os.path.exists(tmp_path / "gps") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.exists(tmp_path / "gps"), "the port did not come back"
    finally:
        feeder.stop()


def test_coordinates_round_as_a_whole():
    from firmware.simulator import _lat, _lon

    assert _lat(52.9999999) == ("5300.0000", "N")
    assert _lon(-10.5) == ("01030.0000", "W")
    assert _lat(52.3215) == ("5219.2900", "N")


def test_sim_clock_never_runs_ahead_of_its_ceiling():
    import time as _time
    from datetime import UTC, datetime

    from firmware.visitors import SimClock

    start = datetime.fromtimestamp(_time.time() - 5, UTC)  # 5 s ago, at 100x
    free = SimClock(start, 100)
    capped = SimClock(start, 100, ceiling=_time.time)
    _time.sleep(0.3)  # 30 simulated seconds: 25 s ahead of the wall clock without a ceiling
    assert free.time() > _time.time() + 20
    for _ in range(50):
        assert capped.time() <= _time.time()
    assert capped.caught_up and capped.factor == 1.0  # then at real time
    t0, w0 = capped.time(), _time.time()
    _time.sleep(0.2)
    assert abs((capped.time() - t0) - (_time.time() - w0)) < 0.05
    # A stepped walk is held at the ceiling too (30 simulated s in 0.03 real ones).
    fast = SimClock(datetime.fromtimestamp(_time.time() - 0.05, UTC), 1000, ceiling=_time.time)
    with fast.stepping():
        fast.sleep(30)
        assert fast.time() <= _time.time()


def test_demo_start_is_never_later_than_now():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from firmware.demo import sim_start

    tz = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 11, 23, 8, 45, 0, tzinfo=tz)
    assert sim_start("08:45", tz, now) == now  # just not later: today
    assert sim_start("08:44", tz, now).day == 23
    assert sim_start("08:46", tz, now) == datetime(2026, 11, 22, 8, 46, tzinfo=tz)
    assert sim_start("now", tz, now) == now


def test_demo_tour_is_a_valid_plan_for_a_stop_reached_around_midnight():
    """A demo started near midnight (the test suite's demo run at 00:5x) reached a stop at
    23:59, and the plan entry ended at 00:00: "end must be after start"."""
    from zoneinfo import ZoneInfo

    from firmware.simulator import Leg, Route

    tz = ZoneInfo("Europe/Berlin")
    here = (52.32, 10.23)
    for hh, mm in ((23, 59), (23, 58), (23, 40), (0, 0), (12, 0)):
        a = datetime(2026, 11, 29, hh, mm, 30, tzinfo=tz)
        leg = Leg(a, a + timedelta(minutes=20), here, here, ("Peine, Markt", "Peine", *here))
        (entry,) = demo_tour(Route([leg]), tz)
        assert entry["start"] < entry["end"], entry
        default_config({"tour": {"stops": [entry]}})  # ConfigError if the plan is invalid
