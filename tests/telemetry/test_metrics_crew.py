"""The crew's own door passes are not visits (telemetry/metrics.py): thresholds around
``crew`` for both sensor kinds, open visits, hours, folding and bad values."""

from __future__ import annotations

import math
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry import reports
from telemetry.events import Footfall, StopVisit
from telemetry.metrics import DEFAULT_CREW, raw_metrics
from telemetry.reports import period, report
from telemetry.retention import fold
from telemetry.store import Store

VAN = "jungregio-1"
DAY = date(2026, 5, 4)  # a Monday
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)  # 10:00 local
CREW = DEFAULT_CREW
P = period("day", DAY)


def events(n: int, kind: str, *, left: bool = True, start_min: int = 5, step_min: int = 3):
    sensor = "beam-pair" if kind == "in" else "door"
    out: list = [StopVisit(T0, "Peine, Marktplatz", "Peine", 52.32, 10.23, van=VAN,
                           left=T0 + timedelta(hours=3) if left else None)]  # fmt: skip
    out += [Footfall(T0 + timedelta(minutes=start_min + i * step_min), kind, sensor, 0, van=VAN)
            for i in range(n)]  # fmt: skip
    return out


def visitors(store: Store, crew: int = CREW) -> int:
    rows = report(store.reader(), "summary", P, crew=crew).rows
    return dict(rows)["Visitors"]


@pytest.fixture
def store(tmp_path):
    st_ = Store(tmp_path / "box.db", van=VAN)
    yield st_
    st_.close()


@pytest.mark.parametrize("n", [0, CREW - 1, CREW, CREW + 1, CREW + 4])
def test_beam_pair_drops_the_crews_first_ins(store, n):
    store.record_many(events(n, "in"))
    assert visitors(store) == max(0, n - CREW)
    assert visitors(store, crew=0) == n


@pytest.mark.parametrize(
    "n",
    [
        0,
        CREW - 1,
        CREW,
        CREW + 1,
        2 * CREW - 1,
        2 * CREW,
        2 * CREW + 1,
        2 * CREW + 2,
        2 * CREW + 3,
    ],  # fmt: skip
)
def test_door_drops_the_crews_first_and_last_passes(store, n):
    store.record_many(events(n, "pass"))
    assert visitors(store) == math.ceil(max(0, n - 2 * CREW) / 2)
    assert visitors(store, crew=0) == math.ceil(n / 2)


@pytest.mark.parametrize("n", [CREW - 1, CREW, CREW + 1, CREW + 2, CREW + 3])
def test_an_open_visit_drops_only_the_first_passes(store, n):
    """The crew's closing passes have not happened yet while the van still stands."""
    store.record_many(events(n, "pass", left=False))
    assert visitors(store) == math.ceil(max(0, n - CREW) / 2)


def test_hours_leave_out_the_crews_passes_and_add_up(store):
    """Crew in at 10:0x, visitors at 11:xx and 12:xx, crew out at 12:5x: the hours show
    only the visitors (1st, 3rd ... remaining pass) and sum to the day's visitors."""
    evs = events(0, "pass")
    times = [T0 + timedelta(minutes=m) for m in (2, 4)]  # crew in
    times += [T0 + timedelta(minutes=60 + 5 * i) for i in range(6)]  # 3 visitors, 11:xx
    times += [T0 + timedelta(minutes=120 + 5 * i) for i in range(3)]  # 2 (one missed pass)
    times += [T0 + timedelta(minutes=m) for m in (170, 175)]  # crew out, 12:5x
    evs += [Footfall(t, "pass", "door", 0, van=VAN) for t in times]
    store.record_many(evs)
    hours = {r[0]: r[1] for r in report(store.reader(), "hours", P).rows}
    assert hours == {"11:00": 3, "12:00": 2}  # nothing counted at 10:xx (the crew)
    assert visitors(store) == 5


def test_each_visit_drops_its_own_crew(store):
    evs = events(CREW + 3, "in")
    later = T0 + timedelta(hours=5)
    evs.append(StopVisit(later, "Edemissen, Schulzentrum", "Edemissen", 52.38, 10.26, van=VAN,
                         left=later + timedelta(hours=2)))  # fmt: skip
    evs += [Footfall(later + timedelta(minutes=5 * (i + 1)), "in", "beam-pair", 0, van=VAN)
            for i in range(CREW + 1)]  # fmt: skip
    store.record_many(evs)
    stops = {r[0]: r[4] for r in report(store.reader(), "stops", P).rows}
    assert stops == {"Peine, Marktplatz": 3, "Edemissen, Schulzentrum": 1, "Total": 4}


def test_figures_are_the_same_after_folding(store):
    """The daily job folds with the same crew rule as the raw path."""
    store.record_many(events(2 * CREW + 5, "pass"))
    before = {n: report(store.reader(), n, P) for n in ("summary", "stops", "hours")}
    assert fold(store, T0 + timedelta(days=2)) == 1
    reports.clear_cache()
    after = {n: report(store.reader(), n, P) for n in ("summary", "stops", "hours")}
    assert after == before and dict(after["summary"].rows)["Visitors"] == 3


@pytest.mark.parametrize("crew", [-1, 11, True, 1.5, "2"])
def test_a_bad_crew_is_refused(store, crew):
    with pytest.raises(ValueError, match="crew must be a whole number 0 to 10"):
        raw_metrics(store.reader(), VAN, [DAY.isoformat()], crew=crew)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 12), st.integers(0, 12), st.integers(0, 10), st.booleans())
def test_any_counts_follow_the_rule(n_in, n_pass, crew, closed):
    with tempfile.TemporaryDirectory() as d:
        s = Store(Path(d) / "b.db", van=VAN)
        try:
            s.record_many(events(n_in, "in", left=closed)
                          + events(n_pass, "pass", left=closed, start_min=7)[1:])  # fmt: skip
            end = crew if closed else 0
            want = max(0, n_in - crew) + math.ceil(max(0, n_pass - crew - end) / 2)
            assert visitors(s, crew=crew) == want
            hours = report(s.reader(), "hours", P, crew=crew).rows
            assert sum(r[1] for r in hours) == want
        finally:
            s.close()
