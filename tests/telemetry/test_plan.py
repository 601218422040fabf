"""The tour plan model (telemetry/plan.py): the initial plan from the TOML tour, the JSON
round trip, the exceptions applied to dated visits (cancel, delay, move, extra, closed)
with stable uids and raised sequences, next visits and "open now", versioning."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest

from telemetry.config import default_config
from telemetry.plan import Plan, PlanException, PlanStop, new_id, slug

TZ = ZoneInfo("Europe/Berlin")
MON = date(2026, 11, 23)  # a Monday
VAN = "jungregio-1"
PEINE, EDEM = "peine-marktplatz", "edemissen-schulzentrum"


def at(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hh, mm, tzinfo=TZ)


@pytest.fixture
def base() -> Plan:
    return Plan.from_tour(VAN, default_config().tour)


def ex(kind: str, day: date = MON, **kw) -> PlanException:
    return PlanException(new_id(), kind, day, **kw)


def by_uid(plan: Plan, a: date, b: date) -> dict:
    return {v.uid: v for v in plan.visits_between(a, b, TZ)}


def test_the_initial_plan_is_the_toml_tour(base):
    cfg = default_config()
    assert base.version == 0 and base.van == VAN and len(base.stops) == len(cfg.tour)
    assert [s.key for s in base.stops][:2] == [PEINE, EDEM]
    assert all(s.tour_stop() == t for s, t in zip(base.stops, cfg.tour, strict=True))
    assert slug("Ilsede, Gebläsehalle") == "ilsede-geblaesehalle"
    twice = Plan.from_tour(VAN, cfg.tour + cfg.tour[:1])  # same name twice: keys differ
    assert twice.stops[-1].key == "peine-marktplatz-2"


def test_json_round_trip_keeps_every_field(base):
    fest = PlanStop("stadtfest", "Stadtfest", "Peine", 52.32, 10.23, 80.0)
    plan = (
        base.with_exception(ex("cancel", stop_key=EDEM, reason="Krankheit"), now=1.0)
        .with_exception(ex("delay", stop_key=PEINE, delay_min=30, reason="Stau"), now=2.0)
        .with_exception(
            ex(
                "extra",
                MON + timedelta(days=6),
                stop=fest,
                start=dtime(12),
                end=dtime(16),
                reason="Stadtfest",
            ),
            now=3.0,
        )  # fmt: skip
        .with_exception(
            ex(
                "move",
                MON + timedelta(days=1),
                stop_key="wendeburg-rathaus",
                new_date=MON + timedelta(days=1),
                start=dtime(9),
                end=dtime(11),
            ),
            now=4.0,
        )  # fmt: skip
        .with_exception(
            ex("closed", date(2026, 12, 21), date_to=date(2027, 1, 3), reason="Weihnachtsferien"),
            now=5.0,
        )  # fmt: skip
    )
    assert plan.version == 5 and plan.updated == 5.0
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert Plan.from_json(plan.to_json().encode()) == plan  # the MQTT payload is bytes


def test_a_cancelled_visit_stays_listed_with_its_reason(base):
    plan = base.with_exception(ex("cancel", stop_key=EDEM, reason="Krankheit"))
    vs = by_uid(plan, MON, MON)
    v = vs[f"{VAN}.{EDEM}.20261123@vanbox"]
    assert (v.status, v.reason, v.sequence) == ("cancelled", "Krankheit", 1)
    assert vs[f"{VAN}.{PEINE}.20261123@vanbox"].status == "planned"
    assert vs[f"{VAN}.{PEINE}.20261123@vanbox"].sequence == 0
    # the week after is not touched
    nxt = by_uid(plan, MON + timedelta(days=7), MON + timedelta(days=7))
    assert {v.status for v in nxt.values()} == {"planned"}
    # not open, though it is its time
    assert plan.open_visit(at(MON, 15), TZ) is None
    assert base.open_visit(at(MON, 15), TZ).stop_key == EDEM
    # and next_visits still shows it (the public reads "fällt aus")
    nv = plan.next_visits(at(MON, 13, 30), TZ, 3)
    assert nv[0].stop_key == EDEM and nv[0].status == "cancelled"


def test_a_delay_shifts_the_start_not_the_end(base):
    plan = base.with_exception(ex("delay", stop_key=PEINE, delay_min=45, reason="Stau"))
    v = by_uid(plan, MON, MON)[f"{VAN}.{PEINE}.20261123@vanbox"]
    assert v.status == "delayed" and v.delay_min == 45
    assert (v.start, v.end, v.planned_start) == (at(MON, 10, 45), at(MON, 13), at(MON, 10))
    assert plan.open_visit(at(MON, 10, 44), TZ) is None  # just below the shifted start
    assert plan.open_visit(at(MON, 10, 45), TZ).stop_key == PEINE  # at it
    assert base.open_visit(at(MON, 10, 44), TZ) is not None


def test_a_moved_visit_keeps_its_uid_on_its_new_day(base):
    wed = MON + timedelta(days=2)
    plan = base.with_exception(ex("move", stop_key=EDEM, new_date=wed, start=dtime(9),
                                  end=dtime(12), reason="Schulfest"))  # fmt: skip
    uid = f"{VAN}.{EDEM}.20261123@vanbox"
    assert uid not in by_uid(plan, MON, MON)
    moved = by_uid(plan, wed, wed)[uid]
    assert (moved.status, moved.start, moved.end) == ("moved", at(wed, 9), at(wed, 12))
    assert moved.planned_start == at(MON, 14, 30) and moved.sequence == 1
    # a range that holds only the new day still finds it, and one with both has it once
    assert list(by_uid(plan, MON, wed)).count(uid) == 1


def test_an_extra_visit_and_a_closed_period(base):
    sun = MON + timedelta(days=6)
    fest = PlanStop("stadtfest", "Stadtfest", "Peine", 52.32, 10.23)
    e = ex("extra", sun, stop=fest, start=dtime(12), end=dtime(16), reason="Stadtfest")
    plan = base.with_exception(e)
    v = by_uid(plan, sun, sun)[f"{e.id}@vanbox"]
    assert (v.status, v.name, v.start, v.reason) == ("extra", "Stadtfest", at(sun, 12),
                                                     "Stadtfest")  # fmt: skip
    assert any(s.name == "Stadtfest" for s in plan.tour(around=sun))
    assert not any(s.name == "Stadtfest" for s in plan.tour(around=sun + timedelta(days=3)))
    # holidays from Tuesday to Thursday: those visits cancelled, Monday and Friday not
    closed = plan.with_exception(ex("closed", MON + timedelta(days=1),
                                    date_to=MON + timedelta(days=3), reason="Ferien"))  # fmt: skip
    week = closed.visits_between(MON, MON + timedelta(days=4), TZ)
    for v in week:
        inside = MON + timedelta(days=1) <= v.start.date() <= MON + timedelta(days=3)
        assert (v.status == "cancelled") == inside, v
        assert (v.reason == "Ferien") == inside
    assert closed.open_visit(at(MON + timedelta(days=1), 15), TZ) is None


def test_the_sequence_rises_when_a_change_is_taken_back(base):
    plan = base.with_exception(ex("cancel", stop_key=EDEM, reason="x"))
    uid = f"{VAN}.{EDEM}.20261123@vanbox"
    assert by_uid(plan, MON, MON)[uid].sequence == 1
    back = plan.without_exception(plan.exceptions[0].id)
    v = by_uid(back, MON, MON)[uid]
    assert v.status == "planned" and v.sequence == 2  # higher than while cancelled


def test_a_second_cancel_replaces_the_first(base):
    p = base.with_exception(ex("cancel", stop_key=EDEM, reason="a"))
    p = p.with_exception(ex("cancel", stop_key=EDEM, reason="b"))
    assert len(p.exceptions) == 1 and p.exceptions[0].reason == "b"
    # a delay and a move of one visit replace each other; a cancel stays beside them
    p = p.with_exception(ex("delay", stop_key=EDEM, delay_min=10))
    p = p.with_exception(ex("move", stop_key=EDEM, new_date=MON, start=dtime(15), end=dtime(17)))
    assert sorted(e.kind for e in p.exceptions) == ["cancel", "move"]


def test_each_change_is_the_next_version(base):
    p1 = base.with_stop(PlanStop("neu", "Neu", "Ilsede", 52.26, 10.18, weekdays=(6,),
                                 start=dtime(10), end=dtime(12)))  # fmt: skip
    p2 = p1.without_stop("neu")
    assert (p1.version, p2.version) == (1, 2)
    assert p1.stop("neu").version == 1
    assert p2.stops == base.stops


def test_removing_a_stop_removes_its_exceptions(base):
    p = base.with_exception(ex("cancel", stop_key=EDEM)).without_stop(EDEM)
    assert p.exceptions == () and p.stop(EDEM) is None


def test_two_vans_two_plans():
    cfg = default_config()
    a = Plan.from_tour("van-a", cfg.tour)
    b = Plan.from_tour("van-b", cfg.tour[2:4])  # Tuesday and Wednesday only
    now = at(MON, 9)
    assert a.next_visits(now, TZ, 1)[0].name == "Peine, Marktplatz"
    assert b.next_visits(now, TZ, 1)[0].name == "Wendeburg, Rathaus"
    assert a.open_visit(at(MON, 11), TZ) is not None and b.open_visit(at(MON, 11), TZ) is None
    assert a.next_visits(now, TZ, 1)[0].uid.startswith("van-a.")


def test_next_visits_skip_ended_ones_and_cover_two_weeks(base):
    nv = base.next_visits(at(MON, 13, 0), TZ, 3)  # Peine ended at 13:00 exactly
    assert [v.stop_key for v in nv] == [EDEM, "wendeburg-rathaus", "vechelde-bahnhof"]
    only_sunday = Plan.from_tour(VAN, ()).with_stop(
        PlanStop("so", "Sonntag", "Peine", 52.32, 10.23, weekdays=(6,), start=dtime(10),
                 end=dtime(11))
    )  # fmt: skip
    assert len(only_sunday.next_visits(at(MON, 9), TZ, 5)) == 2  # this and next Sunday
    assert Plan.from_tour(VAN, ()).next_visits(at(MON, 9), TZ, 3) == []


def test_removing_an_extra_visit_removes_its_changes(base):
    sun = MON + timedelta(days=6)
    fest = PlanStop("stadtfest", "Stadtfest", "Peine", 52.32, 10.23)
    e = ex("extra", sun, stop=fest, start=dtime(12), end=dtime(16))
    p = base.with_exception(e).with_exception(ex("delay", sun, stop_key="stadtfest", delay_min=15))
    assert by_uid(p, sun, sun)[f"{e.id}@vanbox"].status == "delayed"
    p = p.with_exception(ex("cancel", sun, stop_key="stadtfest", reason="Regen"))
    assert by_uid(p, sun, sun)[f"{e.id}@vanbox"].status == "cancelled"
    gone = p.without_exception(e.id)
    assert gone.exceptions == () and by_uid(gone, sun, sun) == {}
