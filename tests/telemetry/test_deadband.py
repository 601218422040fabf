"""The deadband keeps few fixes while parked, more while driving, and every transition."""

from datetime import UTC, datetime, timedelta

from telemetry.deadband import Deadband
from telemetry.events import Position

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def fix(s: float, speed: float, lat: float = 52.3, **kw) -> Position:
    return Position(time=T0 + timedelta(seconds=s), lat=lat, lon=10.2, speed=speed, **kw)


def test_parked_one_per_interval():
    d = Deadband(parked_interval_s=300, driving_interval_s=10)
    kept = [s for s in range(3600) if d.accept(fix(s, 0.0))]
    assert kept == list(range(0, 3600, 300))


def test_driving_one_per_interval_and_transitions_kept():
    d = Deadband(parked_interval_s=300, driving_interval_s=10, driving_speed_ms=2)
    kept = []
    for s in range(0, 100):
        speed = 0.0 if s < 30 or s >= 75 else 13.9
        lat = 52.3 + (s * 13.9 / 111_000 if 30 <= s < 75 else 0)
        if d.accept(fix(s, speed, lat)):
            kept.append(s)
    assert kept == [0, 30, 40, 50, 60, 70, 75]


def test_a_slow_move_while_parked_beyond_the_deadband_is_kept():
    d = Deadband(parked_interval_s=300, driving_interval_s=10, deadband_m=30)
    assert d.accept(fix(0, 0.5))
    assert not d.accept(fix(5, 0.5, lat=52.3 + 40 / 111_000))  # moved, but too soon
    assert d.accept(fix(12, 0.5, lat=52.3 + 40 / 111_000))
    assert not d.accept(fix(30, 0.5, lat=52.3 + 45 / 111_000))


def test_suspect_fixes_rate_limited_separately():
    d = Deadband(driving_interval_s=10)
    kept = [s for s in range(30) if d.accept(fix(s, 50.0, suspect=True))]
    assert kept == [0, 10, 20]
    assert d.accept(fix(30, 0.0))  # a good fix after suspect ones is the first one


def test_clock_going_back_restarts():
    d = Deadband()
    assert d.accept(fix(1000, 0.0))
    assert d.accept(fix(10, 0.0))


def test_an_8_hour_day_at_1_hz_keeps_about_a_thousand_fixes():
    """The budget behind the 1 MB/day goal: 6 h parked and 2 h driving."""
    d = Deadband.from_config(
        {"parked_interval_s": 300, "driving_interval_s": 10, "driving_speed_ms": 2,
         "deadband_m": 30}
    )  # fmt: skip
    kept = 0
    for s in range(8 * 3600):
        driving = (s // 1800) % 4 == 1  # 30 min of every 2 h
        lat = 52.3 + (s * 12 / 111_000 if driving else 0)
        kept += d.accept(fix(s, 12.0 if driving else 0.0, lat))
    assert 700 <= kept <= 800
