"""The footfall sensors end to end through gpiozero's MockFactory pins."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from gpiozero.pins.mock import MockFactory

from firmware.footfall import (
    BeamPairSensor,
    BeamSensor,
    DoorSensor,
    FootfallSensor,
    SensorError,
    open_sensor,
)
from firmware.visitors import (
    Crossing,
    ManualClock,
    PinDriver,
    SimClock,
    play,
    run_stop,
    walk,
    walk_edges,
)
from telemetry.clock import ScaledClock
from telemetry.events import Footfall, from_epoch

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 6, 1, 15, 0, tzinfo=BERLIN).timestamp()
CFG = {
    "kind": "beam-pair",
    "pin": 17,
    "pin_b": 27,
    "pull_up": True,
    "debounce_ms": 30,
    "max_pass_ms": 2000,
    "blocked_after_s": 60,
}


class Recorder:
    """Collects events; lets a test wait (bounded) for the n-th one."""

    def __init__(self) -> None:
        self.events: list[Footfall] = []
        self._cond = threading.Condition()

    def __call__(self, ev: Footfall) -> None:
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Footfall]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.events) >= n, timeout)
            return list(self.events)

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


@pytest.fixture
def factory() -> MockFactory:
    return MockFactory()


@pytest.fixture
def opened() -> Iterator[list[FootfallSensor]]:
    sensors: list[FootfallSensor] = []
    yield sensors
    for s in sensors:
        s.close()


def test_beam_pair_counts_exactly_through_mock_pins(factory, opened):
    clock = ManualClock(T0)
    rec = Recorder()
    sensor = open_sensor(CFG, on_event=rec, tz=BERLIN, pin_factory=factory, clock=clock)
    opened.append(sensor)
    assert isinstance(sensor, BeamPairSensor)
    driver = PinDriver.for_config(CFG, factory)
    rng = random.Random(11)
    truth, occ, expected_times = {"in": 0, "out": 0}, 0, []
    for _ in range(40):
        direction = rng.choice(["in", "in", "out"])
        start = clock()
        edges = walk(driver, clock, direction, rng, bounce=rng.randint(0, 3))
        expected_times.append(from_epoch(start + edges[-1].t))
        truth[direction] += 1
        occ = occ + 1 if direction == "in" else max(0, occ - 1)
        clock.sleep(rng.uniform(0.5, 20))
    sensor.tick()
    assert sensor.counts == {**truth, "pass": 0}
    assert sensor.occupancy == occ
    assert len(rec.events) == len(expected_times)
    for got, want in zip(rec.events, expected_times, strict=True):
        assert abs((got.time - want).total_seconds()) < 1e-5  # the planned time of the edge
    assert all(e.sensor == "beam-pair" for e in rec.events)
    assert sensor.discarded == 0


def test_electrical_convention_beam_broken_is_low_with_pull_up(factory, opened):
    clock = ManualClock(T0)
    rec = Recorder()
    sensor = BeamPairSensor(17, 27, clock=clock, on_event=rec, tz=BERLIN, pin_factory=factory)
    opened.append(sensor)
    a, b = factory.pin(17), factory.pin(27)
    assert a.state and b.state and sensor.value == (False, False)  # pulled up: clear
    a.drive_low()
    assert sensor.value == (True, False)
    clock.sleep(0.2)
    b.drive_low()
    clock.sleep(0.3)
    a.drive_high()
    clock.sleep(0.2)
    b.drive_high()
    clock.sleep(5)
    b.drive_low()
    clock.sleep(0.2)
    a.drive_low()
    clock.sleep(0.3)
    b.drive_high()
    clock.sleep(0.2)
    a.drive_high()
    clock.sleep(1)
    sensor.tick()
    assert [(e.kind, e.occupancy) for e in rec.events] == [("in", 1), ("out", 0)]


def test_door_open_is_high_with_pull_up(factory, opened):
    clock = ManualClock(T0)
    rec = Recorder()
    door = DoorSensor(5, clock=clock, on_event=rec, pin_factory=factory)
    opened.append(door)
    pin = factory.pin(5)
    assert door.is_open  # a mock pin with nothing on it reads HIGH: open
    pin.drive_low()  # the door is shut
    clock.sleep(1)
    door.tick()
    assert rec.events == [] and not door.is_open
    for _ in range(3):
        pin.drive_high()  # open ...
        clock.sleep(2.5)
        pin.drive_low()  # ... and shut
        clock.sleep(10)
    door.tick()
    assert rec.kinds == ["pass", "pass", "pass"]
    assert door.counts["pass"] == 3


def test_pull_down_wiring_swaps_the_levels(factory, opened):
    clock = ManualClock(T0)
    rec = Recorder()
    beam = BeamSensor(6, pull_up=False, clock=clock, on_event=rec, pin_factory=factory)
    opened.append(beam)
    pin = factory.pin(6)
    assert not pin.state and not beam.is_broken
    pin.drive_high()  # broken
    assert beam.is_broken
    clock.sleep(0.5)
    pin.drive_low()
    clock.sleep(1)
    beam.tick()
    assert rec.kinds == ["pass"]


def test_bounced_door_through_the_driver_counts_each_opening_once(factory, opened):
    cfg = {**CFG, "kind": "door", "pin": 22}
    clock = ManualClock(T0)
    rec = Recorder()
    door = open_sensor(cfg, on_event=rec, tz=BERLIN, pin_factory=factory, clock=clock)
    opened.append(door)
    driver = PinDriver.for_config(cfg, factory)
    driver.rest()
    clock.sleep(1)
    rng = random.Random(2)
    for _ in range(10):
        walk(driver, clock, "in", rng, bounce=4)
        clock.sleep(30)
    door.tick()
    assert rec.kinds == ["pass"] * 10


def test_the_background_ticker_reports_blocked_and_ok_without_edges(factory, opened):
    clock = ManualClock(T0)
    rec = Recorder()
    beam = BeamSensor(
        13, blocked_after_s=60, clock=clock, on_event=rec, tz=BERLIN, pin_factory=factory
    )
    opened.append(beam)
    pin = factory.pin(13)
    pin.drive_low()  # a box in the beam
    clock.sleep(61)  # time passes; no edge, no explicit tick
    [blocked] = rec.wait_for(1)
    assert blocked.kind == "sensor_blocked"
    assert blocked.time == from_epoch(T0 + 60)
    assert beam.blocked
    pin.drive_high()
    clock.sleep(0.1)
    assert [e.kind for e in rec.wait_for(2)] == ["sensor_blocked", "sensor_ok"]
    assert rec.events[1].time == from_epoch(T0 + 61)
    assert beam.counts["pass"] == 0 and not beam.blocked


def test_a_failing_event_handler_does_not_stop_counting(factory, opened):
    clock = ManualClock(T0)
    seen: list[str] = []

    def handler(ev: Footfall) -> None:
        seen.append(ev.kind)
        if len(seen) == 1:
            raise RuntimeError("disk full")

    sensor = BeamSensor(19, clock=clock, on_event=handler, pin_factory=factory)
    opened.append(sensor)
    driver = PinDriver("beam", factory, 19)
    for _ in range(3):
        walk(driver, clock, "in", random.Random(1))
        clock.sleep(2)
    sensor.tick()
    assert seen == ["pass", "pass", "pass"]


@pytest.mark.parametrize(
    ("speed", "n", "pass_as"), [(1.0, 2, "object"), (60.0, 40, "object"), (60.0, 40, "method")]
)
def test_counts_stay_exact_on_an_accelerated_clock(factory, opened, speed, n, pass_as):
    clock = SimClock(T0, speed)
    rec = Recorder()
    sensor = open_sensor(
        CFG,
        on_event=rec,
        tz=BERLIN,
        pin_factory=factory,
        clock=clock if pass_as == "object" else clock.time,  # as firmware.box passes it
    )
    opened.append(sensor)
    driver = PinDriver.for_config(CFG, factory)
    rng = random.Random(int(speed))
    plan, t = [], 0.5
    for i in range(n):
        plan.append(Crossing(t, "in" if i % 3 != 2 else "out"))
        t += rng.uniform(2.0, 4.0)
    result = run_stop(driver, clock, plan, rng=rng, bounce=2)
    rec.wait_for(n)
    assert result.walked_in == sensor.counts["in"]
    assert result.walked_out == sensor.counts["out"]
    assert rec.kinds == [c.direction for c in plan]
    assert sensor.discarded == 0


def test_a_plain_scaled_clock_without_stepping_also_drives_the_sensor(factory, opened):
    clock = ScaledClock(datetime.fromtimestamp(T0, BERLIN), 10.0)  # not callable, no stepping
    rec = Recorder()
    sensor = open_sensor(CFG, on_event=rec, tz=BERLIN, pin_factory=factory, clock=clock)
    opened.append(sensor)
    plan = [Crossing(0.2, "in"), Crossing(3.0, "in"), Crossing(6.0, "out")]
    result = run_stop(PinDriver.for_config(CFG, factory), clock, plan, rng=random.Random(5))
    rec.wait_for(3)
    assert (result.walked_in, result.walked_out) == (2, 1)
    assert rec.kinds == ["in", "in", "out"]


def test_sim_clock_stepping_gives_the_sensor_exact_durations(factory, opened):
    clock = SimClock(T0, 60)
    rec = Recorder()
    sensor = BeamPairSensor(23, 24, clock=clock, on_event=rec, pin_factory=factory)
    opened.append(sensor)
    driver = PinDriver("beam-pair", factory, 23, 24)
    edges = walk_edges("beam-pair", "in", break_s=0.5, offset_s=0.25)
    with clock.stepping():
        start = clock()
        play(edges, driver, clock)
        assert clock() == pytest.approx(start + 0.75)
        assert clock.speed == 0.0 and clock.factor == 60.0
    [ev] = rec.wait_for(1)
    assert ev.time == from_epoch(start + 0.75)
    assert clock() >= start + 0.75  # and it runs on, never backwards
    assert clock.speed == 60.0
    assert clock.now().timestamp() == pytest.approx(clock.time(), abs=1.0)


def test_open_sensor_kinds_and_errors(factory, opened):
    assert open_sensor({**CFG, "kind": "none"}, on_event=print, tz=BERLIN) is None
    door = open_sensor({**CFG, "kind": "door"}, on_event=print, tz=BERLIN, pin_factory=factory)
    opened.append(door)
    assert isinstance(door, DoorSensor)
    with pytest.raises(SensorError, match="GPIO pin 17"):
        open_sensor({**CFG, "kind": "beam"}, on_event=print, tz=BERLIN, pin_factory=factory)
    with pytest.raises(SensorError, match="unknown sensor kind"):
        open_sensor({**CFG, "kind": "laser"}, on_event=print, tz=BERLIN, pin_factory=factory)
    with pytest.raises(SensorError, match="sensor.pin_b is missing"):
        open_sensor({"kind": "beam-pair", "pin": 9}, on_event=print, tz=BERLIN)
    with pytest.raises(SensorError, match="two different pins"):
        BeamPairSensor(20, 20, pin_factory=factory)
    # a pair whose second pin is taken leaves the first pin free again
    with pytest.raises(SensorError):
        BeamPairSensor(21, 17, pin_factory=factory)
    opened.append(BeamSensor(21, pin_factory=factory))


def test_close_stops_the_ticker_and_frees_the_pins(factory):
    rec = Recorder()
    sensor = BeamSensor(26, on_event=rec, clock=ManualClock(T0), pin_factory=factory)
    ticker = sensor._ticker
    assert ticker is not None and ticker.is_alive()
    sensor.close()
    sensor.close()  # twice is fine
    assert sensor.closed and not ticker.is_alive()
    factory.pin(26).drive_low()
    factory.pin(26).drive_high()
    assert rec.events == []
    again = BeamSensor(26, pin_factory=factory)
    again.close()


def test_importing_footfall_does_not_import_gpiozero():
    code = "import sys, firmware.footfall, firmware.visitors; print('gpiozero' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
