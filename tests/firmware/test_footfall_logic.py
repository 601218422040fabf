"""The footfall state machines, fed with made-up timestamps (no gpiozero, no clock)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.footfall_logic import Debouncer, LineMonitor, PairCounter, SingleCounter
from firmware.visitors import VisitorStream, crossings, walk_edges
from telemetry.events import Footfall, from_epoch

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=BERLIN).timestamp()


def kinds(events: list[Footfall]) -> list[str]:
    return [e.kind for e in events]


def feed_pair(pc: PairCounter, start: float, edges) -> list[Footfall]:
    out = []
    for e in edges:
        out += pc.feed(start + e.t, e.line, e.active)
    return out


def feed_single(sc: SingleCounter, start: float, edges) -> list[Footfall]:
    out = []
    for e in edges:
        out += sc.feed(start + e.t, e.active)
    return out


# --- debouncer -------------------------------------------------------------------------


def test_bounces_inside_the_window_give_one_change_at_the_settling_edge():
    d = Debouncer(30, start=T0)
    for t, lvl in [(0.000, True), (0.001, False), (0.002, True), (0.004, False), (0.005, True)]:
        assert d.feed(T0 + t, lvl) == []
    assert d.advance(T0 + 0.034) == []  # 29 ms after the last edge: not yet
    assert d.deadline() == pytest.approx(T0 + 0.035)
    assert d.advance(T0 + 0.035) == [(T0 + 0.005, True)]
    assert d.level is True and not d.pending


def test_a_glitch_shorter_than_the_debounce_is_ignored():
    d = Debouncer(30, start=T0)
    assert d.feed(T0 + 1.0, True) == []
    assert d.feed(T0 + 1.02, False) == []
    assert d.advance(T0 + 10) == []
    assert d.level is False


def test_the_next_edge_confirms_a_level_that_was_stable_long_enough():
    d = Debouncer(30, start=T0)
    d.feed(T0 + 1.0, True)
    assert d.feed(T0 + 1.5, False) == [(T0 + 1.0, True)]
    assert d.advance(T0 + 1.53) == [(T0 + 1.5, False)]


def test_zero_debounce_confirms_every_edge_and_repeats_are_ignored():
    d = Debouncer(0, start=T0)
    assert d.feed(T0 + 1, True) == [(T0 + 1, True)]
    assert d.feed(T0 + 2, True) == []
    assert d.feed(T0 + 2.001, False) == [(T0 + 2.001, False)]


def test_line_monitor_deadline_is_when_blocking_can_be_decided():
    m = LineMonitor(30, 60, start=T0, name="a")
    assert m.deadline() is None
    m.feed(T0 + 5, True)
    assert m.deadline() == pytest.approx(T0 + 5.03)  # confirmation first
    m.advance(T0 + 5.03)
    assert m.deadline() == pytest.approx(T0 + 65.03)
    assert m.advance(T0 + 65.02) == []
    [ev] = m.advance(T0 + 65.03)
    assert (ev.what, ev.t, ev.line) == ("blocked", T0 + 65, "a")


# --- door and single beam --------------------------------------------------------------


def test_door_counts_each_opening_once_despite_contact_bounce():
    sc = SingleCounter("door", debounce_ms=30, blocked_after_s=60, start=T0)
    rng = random.Random(1)
    events, t = [], T0
    for _ in range(5):
        edges = walk_edges("door", "in", rng, bounce=3)
        events += feed_single(sc, t, edges)
        t += edges[-1].t + 5
    events += sc.tick(t)
    assert kinds(events) == ["pass"] * 5
    assert sc.counts == {"in": 0, "out": 0, "pass": 5}
    assert all(e.sensor == "door" and e.occupancy == 0 for e in events)


def test_door_pass_is_timed_at_the_opening_as_a_utc_datetime():
    sc = SingleCounter("door", debounce_ms=30, start=T0)
    sc.feed(T0 + 10.0, True)
    [ev] = sc.feed(T0 + 12.0, False)
    assert ev.kind == "pass"
    assert ev.time == from_epoch(T0 + 10.0)
    assert ev.time.tzinfo is UTC


def test_door_held_open_blocks_then_ok_and_counts_again():
    sc = SingleCounter("door", debounce_ms=30, blocked_after_s=60, start=T0)
    events = sc.feed(T0 + 1, True)
    assert kinds(events) == []  # the opening is known only once stable for 30 ms
    events += sc.tick(T0 + 30)
    assert kinds(events) == ["pass"]
    events += sc.tick(T0 + 61.0)
    assert kinds(events) == ["pass"]  # blocking cannot be decided before 61.03
    events += sc.tick(T0 + 61.03)
    assert kinds(events) == ["pass", "sensor_blocked"]
    assert events[1].time == from_epoch(T0 + 61)
    assert sc.blocked
    events += sc.feed(T0 + 200, False)
    events += sc.tick(T0 + 200.03)
    assert kinds(events) == ["pass", "sensor_blocked", "sensor_ok"]
    assert events[2].time == from_epoch(T0 + 200)
    events += sc.feed(T0 + 300, True) + sc.feed(T0 + 302, False)
    assert kinds(events)[-1] == "pass"
    assert sc.counts["pass"] == 2


def test_chatter_faster_than_the_debounce_counts_nothing_and_ends_blocked():
    sc = SingleCounter("door", debounce_ms=30, blocked_after_s=2, start=T0)
    events = []
    t = T0 + 1
    level = False
    while t < T0 + 6:  # a loose wire: a toggle every 10 ms for 5 s
        level = not level
        events += sc.feed(t, level)
        t += 0.010
    if level:
        events += sc.feed(t, False)
    events += sc.tick(t + 1)
    assert kinds(events) == ["sensor_blocked", "sensor_ok"]
    assert events[0].time == from_epoch(T0 + 3)
    assert sc.counts["pass"] == 0


def test_short_chatter_is_neither_a_pass_nor_blocked():
    sc = SingleCounter("beam", debounce_ms=30, blocked_after_s=60, start=T0)
    events = []
    for i in range(100):  # 1 s of 10 ms flicker, then quiet
        events += sc.feed(T0 + 1 + i * 0.01, i % 2 == 0)
    events += sc.tick(T0 + 100)
    assert events == []
    assert not sc.blocked


def test_beam_counts_a_pass_when_it_clears():
    sc = SingleCounter("beam", debounce_ms=30, start=T0)
    assert sc.feed(T0 + 1.0, True) == []
    assert sc.feed(T0 + 1.5, False) == []
    [ev] = sc.tick(T0 + 1.53)
    assert (ev.kind, ev.sensor, ev.time) == ("pass", "beam", from_epoch(T0 + 1.5))


def test_a_beam_break_that_ends_blocked_is_not_a_pass():
    sc = SingleCounter("beam", debounce_ms=30, blocked_after_s=60, start=T0)
    events = sc.feed(T0 + 1, True) + sc.feed(T0 + 100, False) + sc.tick(T0 + 101)
    assert kinds(events) == ["sensor_blocked", "sensor_ok"]
    assert sc.discarded == 1
    assert sc.counts["pass"] == 0


# --- beam pair -------------------------------------------------------------------------


def pair(**kw) -> PairCounter:
    kw.setdefault("start", T0)
    kw.setdefault("tz", BERLIN)
    return PairCounter(**kw)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        # overlapping breaks: a, b, a clears, b clears
        ([(0.0, "a", 1), (0.2, "b", 1), (0.5, "a", 0), (0.7, "b", 0)], ["in"]),
        # a gap between the two beams
        ([(0.0, "a", 1), (0.3, "a", 0), (0.45, "b", 1), (0.8, "b", 0)], ["in"]),
        ([(0.0, "b", 1), (0.2, "a", 1), (0.5, "b", 0), (0.7, "a", 0)], ["out"]),
        ([(0.0, "b", 1), (0.3, "b", 0), (0.6, "a", 1), (0.9, "a", 0)], ["out"]),
        # in on a, reached b, went back out over a: nobody came in
        ([(0.0, "a", 1), (0.2, "b", 1), (0.4, "b", 0), (0.7, "a", 0)], []),
        # a longer wobble that still ends on the inside
        (
            [
                (0, "a", 1),
                (0.2, "b", 1),
                (0.3, "a", 0),
                (0.5, "a", 1),
                (0.7, "a", 0),
                (0.9, "b", 0),
            ],
            ["in"],
        ),
    ],
)
def test_direction_comes_from_the_order_of_the_breaks(edges, expected):
    pc = pair()
    events = []
    for t, line, lvl in edges:
        events += pc.feed(T0 + t, line, bool(lvl))
    events += pc.tick(T0 + 10)
    assert kinds(events) == expected
    if expected:
        assert events[0].time == from_epoch(T0 + edges[-1][0])  # when the last beam cleared
        assert events[0].sensor == "beam-pair"
    else:
        assert pc.discarded == 1


def test_bounced_random_walks_count_exactly():
    pc = pair()
    rng = random.Random(7)
    truth = {"in": 0, "out": 0}
    occ = 0
    events, t = [], T0
    for _ in range(200):
        direction = rng.choice(["in", "in", "out"])
        truth[direction] += 1
        occ = occ + 1 if direction == "in" else max(0, occ - 1)
        edges = walk_edges("beam-pair", direction, rng, bounce=rng.randint(0, 4))
        events += feed_pair(pc, t, edges)
        t += edges[-1].t + rng.uniform(0.1, 30)
    events += pc.tick(t)
    assert pc.counts == {**truth, "pass": 0}
    assert pc.occupancy == occ
    assert len(events) == 200 and pc.discarded == 0


def test_a_pass_must_complete_within_max_pass():
    pc = pair(max_pass_ms=2000)
    slow = [(0.0, "a", 1), (1.5, "b", 1), (1.8, "a", 0), (2.6, "b", 0)]
    events = []
    for t, line, lvl in slow:
        events += pc.feed(T0 + t, line, bool(lvl))
    events += pc.tick(T0 + 5)
    assert events == [] and pc.discarded == 1
    # just inside the limit counts
    events = []
    for t, line, lvl in [(10.0, "a", 1), (11.0, "b", 1), (11.5, "a", 0), (11.99, "b", 0)]:
        events += pc.feed(T0 + t, line, bool(lvl))
    events += pc.tick(T0 + 15)
    assert kinds(events) == ["in"]


def test_a_half_pass_expires_and_does_not_spoil_the_next():
    pc = pair(max_pass_ms=2000)
    # someone breaks the outer beam and turns away
    events = pc.feed(T0 + 1.0, "a", True) + pc.feed(T0 + 1.4, "a", False)
    events += pc.tick(T0 + 3.02)
    assert events == [] and pc._pass is not None  # not decidable before 3.0 + 0.03
    events += pc.tick(T0 + 3.03)
    assert events == [] and pc._pass is None and pc.discarded == 1
    # someone leaves 5 s later: an out, not an in built from the old half pass
    for t, line, lvl in [(8.0, "b", 1), (8.3, "a", 1), (8.6, "b", 0), (8.9, "a", 0)]:
        events += pc.feed(T0 + t, line, bool(lvl))
    events += pc.tick(T0 + 9)
    assert kinds(events) == ["out"]


def test_without_ticks_a_half_pass_expires_at_the_next_edge():
    pc = pair(max_pass_ms=2000)
    events = pc.feed(T0 + 1.0, "a", True) + pc.feed(T0 + 1.4, "a", False)
    # the other beam breaks 3 s later: too late to complete that pass
    for t, line, lvl in [(4.4, "b", 1), (4.8, "b", 0)]:
        events += pc.feed(T0 + t, line, bool(lvl))
    events += pc.tick(T0 + 10)
    assert events == [] and pc.discarded == 2  # the half pass, then b alone


def test_occupancy_never_goes_below_zero():
    pc = pair()
    out_walk = [(0.0, "b", 1), (0.2, "a", 1), (0.5, "b", 0), (0.7, "a", 0)]
    in_walk = [(0.0, "a", 1), (0.2, "b", 1), (0.5, "a", 0), (0.7, "b", 0)]
    events = []
    for start, walk in [
        (0, out_walk),
        (5, out_walk),
        (10, in_walk),
        (15, out_walk),
        (20, out_walk),
    ]:
        for t, line, lvl in walk:
            events += pc.feed(T0 + start + t, line, bool(lvl))
    events += pc.tick(T0 + 30)
    assert [(e.kind, e.occupancy) for e in events] == [
        ("out", 0),
        ("out", 0),
        ("in", 1),
        ("out", 0),
        ("out", 0),
    ]
    assert pc.counts == {"in": 1, "out": 4, "pass": 0}


def _walk_in(pc: PairCounter, t: float) -> list[Footfall]:
    return (
        pc.feed(t, "a", True)
        + pc.feed(t + 0.2, "b", True)
        + pc.feed(t + 0.5, "a", False)
        + pc.feed(t + 0.7, "b", False)
        + pc.tick(t + 1)
    )


@pytest.mark.parametrize(("tz", "resets"), [(BERLIN, True), (UTC, False)])
def test_occupancy_and_counts_reset_at_local_midnight(tz, resets):
    evening = datetime(2026, 3, 28, 23, 50, tzinfo=BERLIN).timestamp()  # 22:50 UTC
    pc = PairCounter(tz=tz, start=evening - 3600)
    _walk_in(pc, evening)
    _walk_in(pc, evening + 300)
    assert pc.occupancy == 2
    pc.tick(evening + 20 * 60)  # 00:10 in Berlin, 23:10 UTC
    assert pc.occupancy == (0 if resets else 2)
    assert pc.counts["in"] == (0 if resets else 2)
    [ev] = _walk_in(pc, evening + 30 * 60)
    assert ev.occupancy == (1 if resets else 3)


def test_midnight_reset_happens_at_the_next_event_without_a_tick():
    evening = datetime(2026, 10, 24, 23, 59, tzinfo=BERLIN).timestamp()
    pc = PairCounter(tz=BERLIN, start=evening - 60)
    pc.feed(evening, "a", True)
    pc.feed(evening + 0.2, "b", True)
    pc.feed(evening + 0.5, "a", False)
    pc.feed(evening + 0.7, "b", False)
    # the next edge is after midnight: the in before it still belongs to yesterday
    events = pc.feed(evening + 3600, "b", True)
    events += pc.feed(evening + 3600.2, "a", True)
    events += pc.feed(evening + 3600.5, "b", False)
    events += pc.feed(evening + 3600.7, "a", False) + pc.tick(evening + 3601)
    assert [(e.kind, e.occupancy) for e in events] == [("in", 1), ("out", 0)]
    assert pc.counts == {"in": 0, "out": 1, "pass": 0}


def test_a_blocked_beam_pauses_counting_until_it_clears():
    pc = pair(blocked_after_s=60)
    events = pc.feed(T0 + 1, "a", True)  # a box in the outer beam
    events += pc.tick(T0 + 61.03)
    assert kinds(events) == ["sensor_blocked"]
    assert events[0].time == from_epoch(T0 + 61)
    assert pc.blocked
    # someone squeezes past: the inner beam alone, not counted
    events += pc.feed(T0 + 70, "b", True) + pc.feed(T0 + 70.4, "b", False)
    events += pc.tick(T0 + 80)
    assert kinds(events) == ["sensor_blocked"]
    events += pc.feed(T0 + 90, "a", False)  # the box is moved away
    events += pc.tick(T0 + 90.03)
    assert kinds(events) == ["sensor_blocked", "sensor_ok"]
    assert events[1].time == from_epoch(T0 + 90)
    events += _walk_in(pc, T0 + 100)
    assert kinds(events) == ["sensor_blocked", "sensor_ok", "in"]
    assert pc.counts["in"] == 1


def test_both_beams_blocked_give_one_blocked_and_one_ok():
    pc = pair(blocked_after_s=10)
    events = pc.feed(T0 + 1, "a", True) + pc.feed(T0 + 2, "b", True) + pc.tick(T0 + 20)
    events += pc.feed(T0 + 30, "a", False) + pc.tick(T0 + 31)
    assert kinds(events) == ["sensor_blocked"]  # b is still blocked
    events += pc.feed(T0 + 40, "b", False) + pc.tick(T0 + 41)
    assert kinds(events) == ["sensor_blocked", "sensor_ok"]


def test_a_chattering_beam_blocks_the_pair():
    pc = pair(blocked_after_s=5)
    events = []
    for i in range(1000):  # b flickers every 8 ms for 8 s
        events += pc.feed(T0 + 1 + i * 0.008, "b", i % 2 == 0)
    events += pc.tick(T0 + 20)
    assert kinds(events) == ["sensor_blocked", "sensor_ok"]
    assert pc.counts == {"in": 0, "out": 0, "pass": 0}


def test_a_beam_broken_at_start_is_not_half_a_pass():
    pc = pair(a=True)
    events = pc.feed(T0 + 1, "a", False)  # it clears
    events += pc.feed(T0 + 1.1, "b", True) + pc.feed(T0 + 1.4, "b", False) + pc.tick(T0 + 5)
    assert events == []


def test_clock_stepping_back_is_held_at_the_last_time():
    pc = pair()
    pc.feed(T0 + 10.0, "a", True)
    pc.feed(T0 + 10.2, "b", True)
    pc.feed(T0 + 5.0, "a", False)  # the wall clock was set back
    [ev] = pc.feed(T0 + 10.5, "b", False) + pc.tick(T0 + 11)
    assert ev.kind == "in" and ev.time == from_epoch(T0 + 10.5)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 12),
    ticks_per_s=st.sampled_from([0, 0.5, 3, 40]),
)
def test_counts_do_not_depend_on_when_ticks_come(seed, n, ticks_per_s):
    rng = random.Random(seed)
    walks, t = [], T0
    for _ in range(n):
        direction = rng.choice(["in", "out"])
        edges = walk_edges("beam-pair", direction, rng, bounce=rng.randint(0, 3))
        walks.append((direction, [(t + e.t, e.line, e.active) for e in edges]))
        t += edges[-1].t + rng.uniform(0.05, 5)
    end = t + 5
    inputs = [x for _, edges in walks for x in edges]
    if ticks_per_s:
        k = int((end - T0) * ticks_per_s)
        inputs += [(T0 + rng.uniform(0, end - T0), None, None) for _ in range(k)]
        inputs.sort(key=lambda x: x[0])

    def run(inputs):
        pc = pair()
        out = []
        for ts, line, lvl in inputs:
            out += pc.tick(ts) if line is None else pc.feed(ts, line, lvl)
        out += pc.tick(end)
        return [(e.kind, e.time, e.occupancy) for e in out]

    with_ticks = run(inputs)
    assert with_ticks == run([x for x in inputs if x[1] is not None])
    assert [k for k, _, _ in with_ticks] == [d for d, _ in walks]


# --- simulated visitors ----------------------------------------------------------------


def test_walk_edges_have_realistic_durations():
    rng = random.Random(3)
    for _ in range(200):
        direction = rng.choice(["in", "out"])
        edges = walk_edges("beam-pair", direction, rng)
        first = edges[0].line
        assert first == ("a" if direction == "in" else "b")
        by_line = {ln: [e.t for e in edges if e.line == ln] for ln in "ab"}
        for start, stop in by_line.values():
            assert 0.3 - 1e-9 <= stop - start <= 0.8 + 1e-9
        second = "b" if first == "a" else "a"
        assert 0.1 <= by_line[second][0] - by_line[first][0] <= 0.4
        assert by_line[second][1] - by_line[first][1] >= 0.1 - 1e-9  # second clears last


def test_bounce_toggles_settle_inside_the_debounce_window():
    rng = random.Random(4)
    edges = walk_edges("door", "in", rng, bounce=4, open_s=2.0)
    opening = [e for e in edges if e.t < 1.0]
    assert len(opening) == 9  # 4 toggle pairs, then the settling edge
    assert opening[-1].active is True
    assert opening[-1].t - opening[0].t < 0.030


def test_visitor_stream_rate_and_stays():
    stream = VisitorStream(12, random.Random(5), group_p=0.0)
    visits = stream.visits(500 * 3600)
    per_hour = len(visits) / 500
    assert 11.0 < per_hour < 13.0
    arrivals = [v.arrive for v in visits]
    assert arrivals == sorted(arrivals)
    assert all(v.arrive < v.leave <= 500 * 3600 - 30 for v in visits)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    # exponential gaps: the median is ln 2 times the mean
    gaps.sort()
    assert 0.6 < gaps[len(gaps) // 2] / (sum(gaps) / len(gaps)) < 0.8


def test_groups_arrive_a_few_seconds_apart_and_crossings_never_overlap():
    stream = VisitorStream(20, random.Random(6), group_p=1.0)
    visits = stream.visits(3 * 3600)
    gaps = [b.arrive - a.arrive for a, b in zip(visits, visits[1:], strict=False)]
    assert any(2.0 <= g <= 6.0 for g in gaps)
    plan = crossings(visits, min_gap_s=2.0)
    assert len(plan) == 2 * len(visits)
    assert sum(c.direction == "in" for c in plan) == len(visits)
    assert all(b.t - a.t >= 2.0 - 1e-9 for a, b in zip(plan, plan[1:], strict=False))
