"""Raw days and visits longer than a day: the van parked over a weekend with the box on.

A day's door events belong to the stop visit they happened in, however long before that
day the van arrived; a single day read raw, a week's batch and the folded day agree."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from telemetry import reports
from telemetry.events import Footfall, StopVisit
from telemetry.metrics import raw_metrics
from telemetry.reports import period, report
from telemetry.retention import fold
from telemetry.store import Store

VAN = "jungregio-1"
FRI = datetime(2026, 5, 8, 8, 0, tzinfo=UTC)  # Friday 10:00 local
SUN = date(2026, 5, 10)
DAYS = [(date(2026, 5, 8) + timedelta(days=i)).isoformat() for i in range(4)]  # Fri..Mon


def weekend(left_h: float) -> list:
    """Arrived Friday 10:00 local, left ``left_h`` hours later; the crew's two ins on
    Friday, then 3 visitors on Saturday 11:xx and 4 on Sunday 11:xx local."""
    visit = StopVisit(FRI, "Peine, Marktplatz", "Peine", 52.32, 10.23, van=VAN,
                      left=FRI + timedelta(hours=left_h))  # fmt: skip
    evs: list = [visit]
    evs += [Footfall(FRI + timedelta(minutes=m), "in", "beam-pair", 0, van=VAN) for m in (5, 7)]
    for day, n in ((1, 3), (2, 4)):
        evs += [Footfall(FRI + timedelta(days=day, hours=1, minutes=5 * i), "in", "beam-pair", 0,
                         van=VAN) for i in range(n)]  # fmt: skip
    return evs


def by_key(rows, day: str) -> dict[tuple[str, str], float]:
    return {(m, k): v for m, d, _van, k, v in rows if d == day}


@pytest.fixture
def store(tmp_path):
    st_ = Store(tmp_path / "box.db", van=VAN)
    yield st_
    st_.close()


def test_a_visit_over_the_weekend_holds_sundays_visitors(store):
    evs = weekend(left_h=3 * 24 + 8)  # left Monday 18:00
    store.record_many(evs)
    vid = evs[0].id
    sunday = by_key(raw_metrics(store.reader(), VAN, [SUN.isoformat()]), SUN.isoformat())
    assert sunday[("visit_visitors", vid)] == 4  # the crew came in on Friday
    assert ("outside_n", "") not in sunday
    assert sunday[("hour_visitors", "11")] == 4
    week = by_key(raw_metrics(store.reader(), VAN, DAYS), SUN.isoformat())
    assert week == sunday  # a single day and a batch see the same visit


def test_events_after_the_van_left_are_outside_any_visit(store):
    """The threshold: the visit ends before Sunday's events (Saturday 18:00): they are
    outside, Saturday's are inside."""
    evs = weekend(left_h=32)  # left Saturday 18:00
    store.record_many(evs)
    vid = evs[0].id
    sat, sun = DAYS[1], SUN.isoformat()
    saturday = by_key(raw_metrics(store.reader(), VAN, [sat]), sat)
    assert saturday[("visit_visitors", vid)] == 3 and ("outside_n", "") not in saturday
    sunday = by_key(raw_metrics(store.reader(), VAN, [sun]), sun)
    assert sunday[("outside_n", "")] == 4 and ("visit_visitors", vid) not in sunday


def test_sunday_folded_alone_keeps_its_visitors(store):
    """The daily job folds one day at a time: Sunday folded on its own counts the same
    as Sunday read raw (the stops report names the Friday stop)."""
    store.record_many(weekend(left_h=3 * 24 + 8))
    p = period("day", SUN)
    before = {n: report(store.reader(), n, p) for n in ("summary", "stops", "hours")}
    assert dict(before["summary"].rows)["Visitors"] == 4
    assert fold(store, FRI + timedelta(days=3), before=DAYS[3]) >= 1
    reports.clear_cache()
    after = {n: report(store.reader(), n, p) for n in ("summary", "stops", "hours")}
    assert after == before
    stops = {r[0]: r[4] for r in after["stops"].rows}
    assert stops["Peine, Marktplatz"] == 4
