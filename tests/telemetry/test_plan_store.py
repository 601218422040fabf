"""Plans in the store (table ``plans``, migration 0006): every change a new version,
saved atomically; a refused change leaves the stored plan as it was; the box keeps only
newer plans and dead-letters malformed ones; without any, the TOML tour is the plan; the
stop detector follows the newest plan."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import pytest

from telemetry import deadletter
from telemetry.config import default_config
from telemetry.errors import PlanError
from telemetry.events import Position
from telemetry.plan import (
    Plan,
    PlanException,
    PlanStop,
    change_plan,
    current_plan,
    new_id,
    plan_vans,
    receive_plan,
    save_plan,
    stored_plan,
)
from telemetry.stops import StopDetector
from telemetry.store import Store

CFG = default_config()
VAN = "jungregio-1"
MON = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 8, tzinfo=UTC).timestamp()  # when the changes are made
EDEM = "edemissen-schulzentrum"


@pytest.fixture
def st(tmp_path):
    s = Store(tmp_path / "plans.db", van=VAN, tz=CFG.timezone)
    yield s
    s.close()


def cancel(day=MON, key=EDEM, reason="Krankheit") -> PlanException:
    return PlanException(new_id(), "cancel", day, stop_key=key, reason=reason)


def future_extras(n: int) -> list[PlanException]:
    """``n`` one-off visits on the days after MON, each at its own place: a plan full of
    exceptions that no pruning may touch."""
    fest = PlanStop("fest", "Fest", "Peine", 52.32, 10.23)
    return [
        PlanException(new_id(), "extra", MON + timedelta(days=1 + i),
                      stop=replace(fest, key=f"fest-{i}"), start=dtime(6), end=dtime(7))
        for i in range(n)
    ]  # fmt: skip


def rows(st) -> list[tuple]:
    return [tuple(r) for r in st.reader().execute("SELECT van, version FROM plans ORDER BY 1, 2")]


def test_without_a_stored_plan_the_toml_tour_is_the_plan(st):
    assert stored_plan(st, VAN) is None and plan_vans(st) == []
    p = current_plan(st, VAN, CFG.tour)
    assert p.version == 0 and len(p.stops) == len(CFG.tour)
    assert current_plan(st, "other", ()).stops == ()


def test_every_change_is_a_new_stored_version(st):
    p1 = change_plan(st, VAN, lambda p: p.with_exception(cancel(), now=NOW), fallback_tour=CFG.tour)
    p2 = change_plan(st, VAN, lambda p: p.without_exception(p.exceptions[0].id, now=NOW),
                     fallback_tour=CFG.tour)  # fmt: skip
    assert (p1.version, p2.version) == (1, 2)
    assert rows(st) == [(VAN, 1), (VAN, 2)]
    assert stored_plan(st, VAN) == p2 and plan_vans(st) == [VAN]
    # the newest version is what the store gives, and each body is the MQTT payload
    body = st.reader().execute("SELECT body FROM plans WHERE version = 1").fetchone()[0]
    assert Plan.from_json(body) == p1


@pytest.mark.parametrize(
    "edit,words",
    [
        (lambda p: p.with_stop(PlanStop("x", "X", "Peine", 52.3, 10.2, 150.0, (0,),
                                        dtime(12), dtime(14))), "overlap"),  # fmt: skip
        (lambda p: p.with_stop(PlanStop("x", "X", "Peine", 52.3, 10.2, 150.0, (6,),
                                        dtime(14), dtime(12))), "end"),  # fmt: skip
        (lambda p: p.with_stop(PlanStop("x", "X", "Hamburg", 53.55, 9.99, 150.0, (6,),
                                        dtime(10), dtime(12))), "Landkreis"),  # fmt: skip
        (lambda p: p.with_exception(cancel(key="nirgends")), "nirgends"),
        (lambda p: p.with_exception(PlanException(new_id(), "delay", MON, stop_key=EDEM,
                                                  delay_min=601)), "delay_min"),  # fmt: skip
        (lambda p: p.with_exception(PlanException(new_id(), "closed", MON,
                                                  date_to=MON - timedelta(days=1))), "date_to"),
    ],
)  # fmt: skip
def test_a_refused_change_leaves_the_stored_plan_unchanged(st, edit, words):
    good = change_plan(st, VAN, lambda p: p.with_exception(cancel(), now=NOW),
                       fallback_tour=CFG.tour)  # fmt: skip
    with pytest.raises(PlanError, match=words):
        change_plan(st, VAN, edit, fallback_tour=CFG.tour)
    assert rows(st) == [(VAN, 1)]
    assert stored_plan(st, VAN) == good


def test_an_unknown_van_is_refused_and_nothing_is_stored(st):
    with pytest.raises(PlanError, match="unknown van 'ghost'"):
        change_plan(st, "ghost", lambda p: p.with_exception(cancel()), known_vans=[VAN])
    with pytest.raises(PlanError, match="not a van id"):
        change_plan(st, "Bus 1!", lambda p: p, known_vans=None)
    assert rows(st) == []


def test_an_edit_that_skips_versions_is_refused(st):
    with pytest.raises(PlanError, match="next version"):
        change_plan(st, VAN, lambda p: p.with_exception(cancel()).with_exception(cancel(
            MON + timedelta(days=7))), fallback_tour=CFG.tour)  # fmt: skip
    assert rows(st) == []


def test_the_box_keeps_only_newer_plans(st):
    base = Plan.from_tour(VAN, CFG.tour)
    v1 = base.with_exception(cancel(), now=1.0)
    v2 = v1.with_exception(cancel(MON + timedelta(days=7)), now=2.0)
    assert receive_plan(st, VAN, v2.to_json().encode()) == v2
    assert receive_plan(st, VAN, v1.to_json().encode()) is None  # older: ignored
    assert receive_plan(st, VAN, v2.to_json().encode()) is None  # the same again
    assert stored_plan(st, VAN) == v2 and rows(st) == [(VAN, 2)]
    assert deadletter.count(st) == 0
    assert save_plan(st, v2.with_exception(cancel(MON + timedelta(days=14)))) is True


def test_the_box_dead_letters_a_malformed_plan_and_keeps_its_own(st):
    good = Plan.from_tour(VAN, CFG.tour).with_exception(cancel(), now=1.0)
    receive_plan(st, VAN, good.to_json())
    bad = json.loads(good.to_json()) | {"version": 9}
    bad["stops"][0]["end"] = "09:00"  # before its start
    assert receive_plan(st, VAN, json.dumps(bad).encode(), topic="vanbox/jungregio-1/plan") is None
    other = Plan.from_tour("other-van", CFG.tour).with_exception(cancel(), now=1.0)
    other = other.changed(now=2.0).changed(now=3.0)
    assert receive_plan(st, VAN, other.to_json().encode()) is None  # another van's plan
    assert receive_plan(st, VAN, b"") is None  # a cleared retained message: nothing
    assert stored_plan(st, VAN) == good
    dl = deadletter.recent(st)
    assert deadletter.count(st, "mqtt") == 2
    assert "other-van" in dl[0].reason and "stops[0].end" in dl[1].reason
    assert dl[1].topic == "vanbox/jungregio-1/plan" and dl[1].van == VAN


def _fix(t: datetime, lat: float, lon: float) -> Position:
    return Position(time=t, lat=lat, lon=lon, van=VAN)


def _park(det: StopDetector, t0: datetime, lat: float, lon: float, minutes: int) -> list:
    out = []
    for i in range(minutes + 1):
        out += det.feed(_fix(t0 + timedelta(minutes=i), lat, lon))
    return out


def test_the_stop_detector_follows_the_newest_plan():
    t0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)  # a Sunday
    fest = PlanStop("stadtfest", "Stadtfest Peine", "Peine", 52.3300, 10.2100, 100.0)
    det = StopDetector(CFG.tour, CFG.stops, CFG.tz, van=VAN,
                       plan=Plan.from_tour(VAN, CFG.tour))  # fmt: skip
    got = _park(det, t0, fest.lat, fest.lon, 20)
    assert got and not got[0].planned  # unknown place: an unplanned stop
    det.close(t0 + timedelta(minutes=21))
    plan = Plan.from_tour(VAN, CFG.tour).with_exception(
        PlanException(
            new_id(), "extra", date(2026, 11, 29), stop=fest, start=dtime(11), end=dtime(15)
        )  # fmt: skip
    )
    det = StopDetector(CFG.tour, CFG.stops, CFG.tz, van=VAN)
    det.set_plan(plan)
    got = _park(det, t0 + timedelta(hours=2), fest.lat, fest.lon, 5)
    assert got and got[0].planned and got[0].name == "Stadtfest Peine"
    # a week later the one-off place is not a planned stop any more
    det2 = StopDetector((), CFG.stops, CFG.tz, van=VAN, plan=plan)
    later = _park(det2, t0 + timedelta(days=7), fest.lat, fest.lon, 20)
    assert later and not later[0].planned


def test_past_exceptions_stay_for_last_years_reports(st):
    """Exceptions stay while the annual reports of this and last year need them (the
    planned visits): a change on 23.11.2026 drops what ended before 1.1.2025."""
    gone = cancel(date(2024, 12, 30))  # a Monday in the year before last
    kept_old = cancel(date(2025, 1, 6), reason="last year")
    days_91 = cancel(MON - timedelta(days=91))
    closed = PlanException(
        new_id(), "closed", date(2024, 12, 23), date_to=date(2025, 1, 1), reason="Ferien"
    )  # fmt: skip  (its last day is in last year)
    base = Plan.from_tour(VAN, CFG.tour)
    save_plan(st, replace(base, version=1, updated=NOW, exceptions=(gone, kept_old, days_91,
                                                                     closed)))  # fmt: skip
    new = change_plan(st, VAN, lambda p: p.with_exception(cancel(), now=NOW),
                      fallback_tour=CFG.tour)  # fmt: skip
    kept = {e.id for e in new.exceptions}
    assert gone.id not in kept
    assert {kept_old.id, days_91.id, closed.id} <= kept
    assert new.version == 2 and stored_plan(st, VAN) == new


def test_a_full_plan_drops_its_oldest_past_exceptions_first(st):
    """At the limit of 1000 exceptions the oldest past ones make room, never those of
    the last 90 days."""
    past = [cancel(MON - timedelta(weeks=14 + i)) for i in range(40)]  # 98 days and older
    recent = [cancel(MON - timedelta(weeks=i)) for i in range(1, 13)]  # < 90 days
    future = future_extras(1000 - len(past) - len(recent))
    base = Plan.from_tour(VAN, CFG.tour)
    save_plan(st, replace(base, version=1, updated=NOW, exceptions=(*past, *recent, *future)))
    new = change_plan(st, VAN, lambda p: p.with_exception(cancel(), now=NOW),
                      fallback_tour=CFG.tour)  # fmt: skip
    kept = {e.id for e in new.exceptions}
    assert len(new.exceptions) == 1000
    assert past[-1].id not in kept and past[-2].id in kept  # the oldest one made room
    assert all(e.id in kept for e in recent)


# --- at the limit of 1000 exceptions (from a review) -------------------------------


def test_an_extra_visit_moved_across_new_year_stays_with_its_move(st):
    """An extra visit on 30.12.2024 moved to 3.1.2025: kept with its move (last year's
    report needs the move; without the extra it would name an unknown stop)."""
    fest = PlanStop("fest", "Fest", "Peine", 52.32, 10.23)
    extra = PlanException(new_id(), "extra", date(2024, 12, 30), stop=fest,
                          start=dtime(6), end=dtime(7))  # fmt: skip
    move = PlanException(new_id(), "move", date(2024, 12, 30), stop_key="fest",
                         new_date=date(2025, 1, 3), start=dtime(6), end=dtime(7))  # fmt: skip
    base = Plan.from_tour(VAN, CFG.tour)
    save_plan(st, replace(base, version=1, updated=NOW, exceptions=(extra, move)))
    new = change_plan(st, VAN, lambda p: p.with_exception(cancel(), now=NOW),
                      fallback_tour=CFG.tour)  # fmt: skip
    assert new.version == 2 and {extra.id, move.id} <= {e.id for e in new.exceptions}


def test_a_full_plan_drops_an_extra_visit_with_its_cancel(st):
    """At 1000 exceptions the oldest past one is an extra visit with a cancel on the same
    day: they make room together (the cancel alone would name an unknown stop)."""
    fest = PlanStop("fest", "Fest", "Peine", 52.32, 10.23)
    old = MON - timedelta(days=200)
    extra = PlanException(new_id(), "extra", old, stop=fest, start=dtime(6), end=dtime(7))
    ccl = PlanException(new_id(), "cancel", old, stop_key="fest", reason="Regen")
    future = future_extras(998)
    base = Plan.from_tour(VAN, CFG.tour)
    save_plan(st, replace(base, version=1, updated=NOW, exceptions=(extra, ccl, *future)))
    new = change_plan(
        st, VAN, lambda p: p.with_exception(cancel(), now=NOW), fallback_tour=CFG.tour, now=NOW
    )
    kept = {e.id for e in new.exceptions}
    assert extra.id not in kept and ccl.id not in kept  # made room together
    assert len(new.exceptions) == 999


def test_a_removal_at_the_limit_drops_nothing_else(st):
    """At exactly 1000, deleting one exception needs no room: no old cancellation (kept
    for the annual report) is dropped with it."""
    old = [cancel(MON - timedelta(weeks=20 + i)) for i in range(3)]
    future = future_extras(997)
    base = Plan.from_tour(VAN, CFG.tour)
    save_plan(st, replace(base, version=1, updated=NOW, exceptions=(*old, *future)))
    new = change_plan(st, VAN, lambda p: p.without_exception(future[-1].id, now=NOW),
                      fallback_tour=CFG.tour)  # fmt: skip
    assert {e.id for e in old} <= {e.id for e in new.exceptions}


def test_the_oldest_exception_of_a_full_plan_can_be_deleted(st):
    """Staff delete the oldest (listed) exception of a full plan: it is there to delete."""
    old = [cancel(MON - timedelta(weeks=20 + i)) for i in range(3)]
    future = future_extras(997)
    base = Plan.from_tour(VAN, CFG.tour)
    save_plan(st, replace(base, version=1, updated=NOW, exceptions=(*old, *future)))
    new = change_plan(st, VAN, lambda p: p.without_exception(old[-1].id, now=NOW),
                      fallback_tour=CFG.tour)  # fmt: skip
    assert old[-1].id not in {e.id for e in new.exceptions}


def test_a_full_plan_untouched_for_months_makes_room_from_today(st):
    """Room is made from today's point of view, not the stored plan's ``updated``: a
    full plan last changed 100 days ago has past exceptions 147 to 175 days old."""
    then = NOW - 100 * 86400
    old = [cancel(MON - timedelta(weeks=21 + i)) for i in range(5)] * 1  # 147..175 days ago
    future = future_extras(995)
    base = Plan.from_tour(VAN, CFG.tour)
    save_plan(st, replace(base, version=1, updated=then, exceptions=(*old, *future)))
    new = change_plan(
        st, VAN, lambda p: p.with_exception(cancel(), now=NOW), fallback_tour=CFG.tour, now=NOW
    )
    assert len(new.exceptions) == 1000


def test_a_plan_too_large_to_publish_is_refused(st):
    fest = PlanStop("fest", "Ä" * 80, "Peine", 52.32, 10.23)
    many = tuple(
        PlanException(new_id(), "extra", MON + timedelta(days=i), stop=fest, start=dtime(6),
                      end=dtime(7), reason="🚐" * 200)
        for i in range(1000)
    )  # fmt: skip
    big = Plan(VAN, 1, NOW, Plan.from_tour(VAN, CFG.tour).stops, many)
    assert len(big.to_json().encode()) > 1024 * 1024
    with pytest.raises(PlanError, match="at most"):
        save_plan(st, big)
    assert stored_plan(st, VAN) is None
    with pytest.raises(PlanError, match="bytes, at most"):
        Plan.from_json(big.to_json().encode())  # and the box would refuse it too


def test_a_hub_restored_from_a_backup_still_reaches_the_box(st):
    """The hub lost versions 3..5 (restored from a backup holding version 2): its next
    change is version 3 again, but saved later, so the box takes it; the old version 5
    that the broker may still hold is not taken back afterwards."""
    day = 86_400.0
    v = [Plan.from_tour(VAN, CFG.tour)]
    for i in range(1, 6):
        v.append(v[-1].with_exception(cancel(MON + timedelta(weeks=i)), now=NOW + i * 60))
    assert receive_plan(st, VAN, v[5].to_json()) == v[5]
    restored = v[2].with_exception(cancel(MON + timedelta(weeks=20), reason="nach Restore"),
                                   now=NOW + 3 * day)  # fmt: skip
    assert restored.version == 3
    assert receive_plan(st, VAN, restored.to_json()) == restored
    assert stored_plan(st, VAN) == restored
    assert receive_plan(st, VAN, v[5].to_json()) is None  # the stale retained one
    assert receive_plan(st, VAN, v[4].to_json()) is None
    assert stored_plan(st, VAN) == restored
    nxt = restored.with_exception(cancel(MON + timedelta(weeks=21)), now=NOW + 3 * day + 60)
    assert receive_plan(st, VAN, nxt.to_json()) == nxt and stored_plan(st, VAN) == nxt


def test_a_hub_clock_stepped_back_a_little_does_not_block_a_change(st):
    a = Plan.from_tour(VAN, CFG.tour).with_exception(cancel(), now=NOW)
    b = a.with_exception(cancel(MON + timedelta(weeks=1)), now=NOW - 299)  # within the slack
    c = b.with_exception(cancel(MON + timedelta(weeks=2)), now=NOW - 600)  # beyond it
    assert receive_plan(st, VAN, a.to_json()) == a
    assert receive_plan(st, VAN, b.to_json()) == b
    assert receive_plan(st, VAN, c.to_json()) is None
