"""Weekly stops with a validity range (``valid_from``/``valid_to``): a change of a stop's
weekdays or times, or its removal, takes effect on a day and leaves every earlier visit as
it was planned; the JSON stays compatible with plans written without the fields; the
fields are checked at the boundary (Hypothesis, as in test_plan_validation.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from telemetry.config import default_config
from telemetry.errors import PlanError
from telemetry.plan import Plan, PlanException, PlanStop, change_plan, new_id, stored_plan
from telemetry.store import Store

TZ = ZoneInfo("Europe/Berlin")
VAN = "jungregio-1"
MON = date(2026, 11, 23)  # a Monday
PEINE, EDEM = "peine-marktplatz", "edemissen-schulzentrum"
NOW = 1_764_000_000.0  # 2025-11-24


@pytest.fixture
def base() -> Plan:
    return Plan.from_tour(VAN, default_config().tour)


def hours(plan: Plan, day: date) -> list[tuple[str, str, str]]:
    """(stop key, start, end) of each visit on ``day``."""
    return [(v.stop_key, f"{v.start:%H:%M}", f"{v.end:%H:%M}") for v in plan.visits_on(day, TZ)]


def visits(plan: Plan, a: date, b: date) -> list:
    return plan.visits_between(a, b, TZ)


def before(plan: Plan, day: date) -> list:
    """The visits (all fields) of the eight weeks before ``day``, by their planned day."""
    vs = visits(plan, day - timedelta(weeks=8), day + timedelta(weeks=8))
    return [v for v in vs if (v.planned_start or v.start).date() < day]


# --- the model ------------------------------------------------------------------------


def test_a_changed_time_ends_the_old_stop_and_keeps_the_past(base):
    edem = base.stop(EDEM)
    past = before(base, MON)
    new = base.with_stop_from(replace(edem, start=dtime(15), end=dtime(19)), MON)
    assert before(new, MON) == past  # every earlier visit as planned, sequence included
    old, nxt = new.stop(EDEM), new.stop(EDEM + "-2")
    assert old.valid_to == MON - timedelta(days=1) and old.start == dtime(14, 30)
    assert old.version == edem.version  # ending it changes none of its visits
    assert nxt.valid_from == MON and nxt.valid_to is None and nxt.start == dtime(15)
    assert (nxt.name, nxt.lat, nxt.lon) == (edem.name, edem.lat, edem.lon)  # the same place
    assert (EDEM + "-2", "15:00", "19:00") in hours(new, MON)
    assert (EDEM, "14:30", "18:00") in hours(new, MON - timedelta(weeks=1))
    assert all(k != EDEM + "-2" for k, *_ in hours(new, MON - timedelta(weeks=1)))
    # the plain replace (as before) would have rewritten last week
    assert before(base.with_stop(replace(edem, start=dtime(15), end=dtime(19))), MON) != past


def test_a_later_effective_day_keeps_the_visits_until_then(base):
    edem = base.stop(EDEM)
    later = MON + timedelta(weeks=2)
    new = base.with_stop_from(replace(edem, weekdays=(6,)), later)  # Sundays from then
    assert new.stop(EDEM).valid_to == later - timedelta(days=1)
    assert (EDEM, "14:30", "18:00") in hours(new, MON + timedelta(weeks=1))
    assert not [h for h in hours(new, MON + timedelta(days=13)) if h[0].startswith(EDEM)]
    assert not [h for h in hours(new, later) if h[0].startswith(EDEM)]  # a Monday
    assert (EDEM + "-2", "14:30", "18:00") in hours(new, later + timedelta(days=6))


def test_removing_ends_the_stop_and_drops_only_its_later_exceptions(base):
    old_cancel = PlanException(new_id(), "cancel", MON - timedelta(weeks=1), stop_key=EDEM,
                               reason="Krankheit")  # fmt: skip
    new_cancel = PlanException(new_id(), "cancel", MON + timedelta(weeks=1), stop_key=EDEM)
    plan = base.with_exception(old_cancel).with_exception(new_cancel)
    past = before(plan, MON)
    new = plan.without_stop_from(EDEM, MON)
    assert before(new, MON) == past
    assert new.stop(EDEM).valid_to == MON - timedelta(days=1)
    assert {e.id for e in new.exceptions} == {old_cancel.id}
    assert not [h for h in hours(new, MON + timedelta(weeks=1)) if h[0] == EDEM]
    cancelled = [v for v in visits(new, MON - timedelta(weeks=1), MON) if v.cancelled]
    assert [v.reason for v in cancelled] == ["Krankheit"]
    # an ended stop can be neither changed nor removed again from a later day
    with pytest.raises(PlanError, match="valid_to"):
        new.without_stop_from(EDEM, MON + timedelta(days=1))
    with pytest.raises(PlanError, match="valid_to"):
        new.with_stop_from(replace(new.stop(EDEM), start=dtime(9)), MON)


def test_the_exceptions_of_later_visits_go_to_the_new_stop(base):
    keep = PlanException(new_id(), "cancel", MON + timedelta(weeks=1), stop_key=EDEM, reason="X")
    gone = PlanException(new_id(), "delay", MON + timedelta(weeks=2), stop_key=EDEM, delay_min=10)
    plan = base.with_exception(keep).with_exception(gone)
    edem = plan.stop(EDEM)
    new = plan.with_stop_from(replace(edem, start=dtime(15), end=dtime(19)), MON)
    moved = {e.id: e.stop_key for e in new.exceptions}
    assert moved == {keep.id: EDEM + "-2", gone.id: EDEM + "-2"}
    (v,) = [v for v in new.visits_on(MON + timedelta(weeks=1), TZ) if v.stop_key == EDEM + "-2"]
    assert v.cancelled and v.reason == "X"
    # to Sundays instead: the Monday visits they changed no longer exist, nor do they
    sun = plan.with_stop_from(replace(edem, weekdays=(6,)), MON)
    assert keep.id not in {e.id for e in sun.exceptions}


def test_a_stop_without_earlier_visits_is_changed_or_removed_in_place(base):
    fest = PlanStop("neu", "Neu", "Peine", 52.30, 10.20, 150.0, (2,), dtime(9), dtime(10))
    added = base.with_stop_from(fest, MON)  # Wednesday stop from Monday on
    assert added.stop("neu").valid_from == MON
    assert not [h for h in hours(added, MON - timedelta(days=5)) if h[0] == "neu"]  # last Wed
    changed = added.with_stop_from(replace(fest, weekdays=(2, 5)), MON + timedelta(days=1))
    assert [s.key for s in changed.stops].count("neu") == 1 and changed.stop("neu-2") is None
    assert changed.stop("neu").weekdays == (2, 5)
    assert changed.stop("neu").valid_from == MON + timedelta(days=1)
    # a Saturday before the day it was added stays empty
    assert not [h for h in hours(changed, MON - timedelta(days=2)) if h[0] == "neu"]
    assert added.without_stop_from("neu", MON + timedelta(days=1)).stop("neu") is None
    # once it had a visit (Wed 25th), removing it from Thursday ends it instead
    assert added.without_stop_from("neu", MON + timedelta(days=3)).stop("neu").valid_to == (
        MON + timedelta(days=2)
    )


def test_a_name_only_change_is_made_in_place(base):
    edem = base.stop(EDEM)
    new = base.with_stop_from(replace(edem, name="Edemissen, Schule"), MON)
    assert new.stop(EDEM).name == "Edemissen, Schule" and new.stop(EDEM).valid_to is None
    assert len(new.stops) == len(base.stops)


def test_tour_around_a_day_has_the_stops_in_force(base):
    edem = base.stop(EDEM)
    moved = replace(edem, lat=52.39, lon=10.27)  # a new place from Monday on
    new = base.with_stop_from(replace(moved, start=dtime(15), end=dtime(19)), MON)
    old_place = (edem.lat, edem.lon)
    on = {(t.lat, t.lon) for t in new.tour(around=MON) if t.name == edem.name}
    assert on == {(52.39, 10.27)}  # the old stop ended the day before: same name, not shown
    week_ago = {(t.lat, t.lon) for t in new.tour(around=MON - timedelta(weeks=1))}
    assert old_place in week_ago and (52.39, 10.27) not in week_ago
    # with the same place, the day before the change has it once, with the old hours
    same = base.with_stop_from(replace(edem, start=dtime(15), end=dtime(19)), MON)
    sunday = [t for t in same.tour(around=MON - timedelta(days=1)) if t.name == edem.name]
    assert len(sunday) == 1 and sunday[0].start == dtime(14, 30)
    assert len(same.tour()) == len(base.stops) + 1  # no day: every stop


def test_removing_a_stop_takes_its_later_successors_with_it(base):
    """Hours changed from in two weeks, then the stop removed from today: it is gone from
    today, and does not come back in two weeks with the new hours."""
    edem = base.stop(EDEM)
    later, much_later = MON + timedelta(weeks=2), MON + timedelta(weeks=4)
    two = base.with_stop_from(replace(edem, start=dtime(15), end=dtime(19)), later)
    three = two.with_stop_from(replace(two.stop(EDEM + "-2"), end=dtime(20)), much_later)
    assert {EDEM, EDEM + "-2", EDEM + "-3"} <= {s.key for s in three.stops}
    fest = PlanException(new_id(), "cancel", later + timedelta(weeks=1), stop_key=EDEM + "-2",
                         reason="Stadtfest")  # fmt: skip
    three = three.with_exception(fest)
    past = before(three, MON)
    gone = three.without_stop_from(EDEM, MON)
    assert gone.stop(EDEM).valid_to == MON - timedelta(days=1)
    assert gone.stop(EDEM + "-2") is None and gone.stop(EDEM + "-3") is None
    assert fest.id not in {e.id for e in gone.exceptions}  # its successor's changes go too
    for day in (MON, later, much_later, much_later + timedelta(weeks=5)):
        assert not [h for h in hours(gone, day) if h[0].startswith(EDEM)], day
    assert before(gone, MON) == past  # the past as it was planned
    assert gone.stop(PEINE) == three.stop(PEINE)  # other stops untouched
    # removed from the day the first successor begins: the old hours stay until then
    until = three.without_stop_from(EDEM, later - timedelta(days=7))
    assert (EDEM, "14:30", "18:00") in hours(until, later - timedelta(days=14))
    assert not [h for h in hours(until, much_later) if h[0].startswith(EDEM)]


def test_a_successor_is_the_stop_that_follows_not_a_look_alike_key(base):
    """The link is explicit (``follows``): a stop whose long key the successor had to
    shorten is still found, and another stop whose name ends in a number is not taken
    for one (review: "Sporthalle 1" ending when "Sporthalle 2" begins)."""
    name = "Edemissen, Schulzentrum am Bahnhof Nord-West"  # a key of 40 characters
    long = PlanStop("edemissen-schulzentrum-am-bahnhof-nord-w", name, "Edemissen", 52.38,
                    10.26, weekdays=(6,), start=dtime(6), end=dtime(8),
                    valid_from=MON - timedelta(weeks=10))  # fmt: skip
    plan = base.with_stop(long)
    later = MON + timedelta(weeks=2)
    two = plan.with_stop_from(replace(long, start=dtime(7), end=dtime(9)), later)
    (succ,) = [s for s in two.stops if s.follows == long.key]
    assert succ.key == long.key[:36] + "-2"  # shortened: no common base key
    assert two.without_stop_from(long.key, MON).stop(succ.key) is None
    one = PlanStop("sporthalle-1", "Sporthalle 1", "Peine", 52.32, 10.23, weekdays=(5,),
                   start=dtime(10), end=dtime(12), valid_from=MON - timedelta(weeks=10),
                   valid_to=date(2026, 11, 30))  # fmt: skip
    other = PlanStop("sporthalle-2", "Sporthalle 2", "Peine", 52.33, 10.25, weekdays=(6,),
                     start=dtime(9), end=dtime(11), valid_from=date(2026, 12, 1))  # fmt: skip
    halls = base.with_stop(one).with_stop(other)
    assert halls.without_stop_from("sporthalle-1", MON).stop(other.key) == halls.stop(other.key)
    # the link survives the JSON (and is written only when set)
    again = Plan.from_json(two.to_json())
    assert again.stop(succ.key).follows == long.key and again.stop(long.key).follows is None
    assert '"follows"' not in base.to_json()


def test_visits_keep_their_calendar_uids_through_changes_of_hours(base):
    """A calendar that imported next month's visits updates them in place (same UID, a
    higher SEQUENCE) when the hours change, twice; last week's visit is untouched."""
    edem = base.stop(EDEM)
    later, much_later = MON + timedelta(weeks=2), MON + timedelta(weeks=4)
    days = (MON - timedelta(weeks=1), later, much_later + timedelta(weeks=1))

    def mine(plan: Plan) -> dict[date, tuple[str, int, str]]:
        out = {}
        for d in days:
            for v in plan.visits_on(d, TZ):
                if v.stop_key.startswith(EDEM):
                    out[d] = (v.uid, v.sequence, f"{v.start:%H:%M}")
        return out

    before = mine(base)
    two = base.with_stop_from(replace(edem, start=dtime(15), end=dtime(19)), later)
    three = two.with_stop_from(replace(two.stop(EDEM + "-2"), end=dtime(20)), much_later)
    after = mine(three)
    assert three.stop(EDEM + "-3").follows == EDEM  # the first stop of the chain
    assert {d: u for d, (u, _s, _t) in after.items()} == {d: u for d, (u, _s, _t) in before.items()}
    assert after[days[0]] == before[days[0]]  # last week: as it was
    for d in days[1:]:
        assert after[d][1] > before[d][1] and after[d][2] == "15:00"  # updated in place
    # removing the middle stop takes the later one with it, not the first
    gone = three.without_stop_from(EDEM + "-2", later)
    assert gone.stop(EDEM + "-3") is None and gone.stop(EDEM) == three.stop(EDEM)


def test_a_key_still_followed_is_not_given_to_a_new_stop(base):
    """The chain's first stop is pruned (it ended before last year); its successor still
    follows its key. A new stop of the same name gets another key: no two visits on one
    day with one calendar UID (review)."""
    from collections import Counter

    from telemetry.plan_history import keys_in_use
    from telemetry.plan_keys import slug, unique_key

    stop = base.stops[0]
    p = base.changed(stops=[replace(stop, valid_from=date(2024, 1, 1)), *base.stops[1:]])
    p = p.with_stop_from(replace(p.stop(stop.key), start=dtime(10), end=dtime(11, 30)),
                         date(2024, 6, 3))  # fmt: skip
    p = p.pruned(date(2025, 1, 1), stops_before=date(2025, 1, 1))
    assert p.stop(stop.key) is None and p.stops[0].follows == stop.key
    key = unique_key(slug(stop.name), keys_in_use(p))
    assert key != stop.key
    new = PlanStop(key, stop.name, stop.municipality, stop.lat, stop.lon, stop.radius_m,
                   p.stops[0].weekdays, dtime(12), dtime(13))  # fmt: skip
    p = p.with_stop_from(new, MON)
    uids = Counter(v.uid for v in p.visits_between(MON, MON + timedelta(weeks=2), TZ))
    assert uids and max(uids.values()) == 1


def test_two_stops_continuing_one_stop_at_the_same_time_are_refused(base):
    """A plan from elsewhere (hand-edited JSON) with two stops in force on Sundays that
    both follow "alt": their visits would share calendar UIDs."""
    body = json.loads(base.to_json())
    s0 = body["stops"][0]
    a = dict(s0, key="halle-a", name="Halle A", follows="alt", weekdays=["sun"],
             start="10:00", end="12:00")  # fmt: skip
    b = dict(a, key="halle-b", name="Halle B", start="14:00", end="16:00")
    body["stops"] += [a, b]
    with pytest.raises(PlanError, match=r"stops\[\d+\]\.follows.*Kalender-UID"):
        Plan.from_json(json.dumps(body))
    b["valid_from"] = "2026-12-07"  # one after the other: fine
    a["valid_to"] = "2026-12-06"
    assert Plan.from_json(json.dumps(body)).stop("halle-b").follows == "alt"


def test_removing_a_successor_leaves_the_stop_before_it(base):
    edem = base.stop(EDEM)
    later = MON + timedelta(weeks=2)
    two = base.with_stop_from(replace(edem, start=dtime(15), end=dtime(19)), later)
    gone = two.without_stop_from(EDEM + "-2", MON)  # no visits yet: removed entirely
    assert gone.stop(EDEM + "-2") is None
    assert gone.stop(EDEM) == two.stop(EDEM)  # still ends the day before "later"
    assert (EDEM, "14:30", "18:00") in hours(gone, MON + timedelta(weeks=1))


def test_ended_stops_are_pruned_after_last_years_reports(tmp_path, base):
    st = Store(tmp_path / "hub.db")
    try:
        edem = replace(base.stop(EDEM), weekdays=(6,))  # Sundays: no overlap with the others
        old_end = date(2024, 12, 31)  # NOW is in 2025: the end of 2024 is still reported
        gone = replace(edem, key="alt", valid_from=date(2023, 1, 2), valid_to=date(2023, 12, 31))
        kept = replace(edem, key="vorjahr", valid_from=date(2024, 1, 1), valid_to=old_end)
        change_plan(st, VAN, lambda p: p.changed(stops=(*p.stops, gone, kept), now=NOW),
                    fallback_tour=default_config().tour)  # fmt: skip
        assert stored_plan(st, VAN).stop("alt") is None
        assert stored_plan(st, VAN).stop("vorjahr") == kept
    finally:
        st.close()


# --- the JSON ---------------------------------------------------------------------------

# A plan as an older hub wrote it: no valid_from / valid_to anywhere.
OLD_JSON = (
    '{"van":"jungregio-1","version":3,"updated":1764400000.0,"stops":[{"key":"edemissen-'
    'schulzentrum","name":"Edemissen, Schulzentrum","municipality":"Edemissen","lat":52.386,'
    '"lon":10.261,"radius_m":150.0,"weekdays":["mon"],"start":"14:30","end":"18:00",'
    '"version":0}],"exceptions":[{"id":"8a0b7c2e-4d1f-4b6a-9c3e-2f5d6e7a8b9c","kind":"cancel",'
    '"version":3,"date":"2026-11-30","stop":"edemissen-schulzentrum","reason":"Krankheit"}]}'
)


def test_an_old_plan_without_ranges_is_valid_always_and_written_back_the_same():
    plan = Plan.from_json(OLD_JSON, van=VAN)
    s = plan.stop(EDEM)
    assert s.valid_from is None and s.valid_to is None
    assert s.valid_on(date(2000, 1, 3)) and s.valid_on(date(2099, 12, 28))
    assert hours(plan, date(2020, 1, 6)) == [(EDEM, "14:30", "18:00")]  # long ago: as always
    assert plan.to_json() == OLD_JSON  # byte for byte: no new keys for an old plan
    nulls = json.loads(OLD_JSON)
    nulls["stops"][0] |= {"valid_from": None, "valid_to": None}
    assert Plan.from_json(json.dumps(nulls)) == plan  # null means open as well


def test_the_ranges_survive_the_round_trip_and_only_set_ones_are_written(base):
    edem = base.stop(EDEM)
    plan = base.with_stop_from(replace(edem, start=dtime(15), end=dtime(19)), MON)
    body = json.loads(plan.to_json())
    by_key = {s["key"]: s for s in body["stops"]}
    assert by_key[EDEM]["valid_to"] == "2026-11-22" and "valid_from" not in by_key[EDEM]
    assert by_key[EDEM + "-2"]["valid_from"] == "2026-11-23"
    assert "valid_to" not in by_key[EDEM + "-2"]
    assert all("valid_from" not in s for k, s in by_key.items() if not k.startswith(EDEM))
    assert Plan.from_json(plan.to_json()) == plan


def _with_range(valid_from, valid_to, weekdays=("mon",)) -> str:
    body = json.loads(OLD_JSON)
    body["exceptions"] = []
    s = body["stops"][0]
    s["weekdays"] = list(weekdays)
    for k, v in (("valid_from", valid_from), ("valid_to", valid_to)):
        if v is not ...:
            s[k] = v
    return json.dumps(body)


@pytest.mark.parametrize(
    ("valid_from", "valid_to", "words"),
    [
        ("2026-11-23", "2026-11-22", ("stops[0].valid_to", "ends before it starts")),
        ("1999-12-31", ..., ("stops[0].valid_from", "year from 2000")),
        (..., "2100-01-01", ("stops[0].valid_to", "year from 2000")),
        ("2026-11-31", ..., ("stops[0].valid_from", "YYYY-MM-DD")),
        ("23.11.2026", ..., ("stops[0].valid_from", "YYYY-MM-DD")),
        (20261123, ..., ("stops[0].valid_from",)),
        (..., ["2026-11-23"], ("stops[0].valid_to",)),
    ],
)
def test_bad_ranges_are_refused_naming_the_field(valid_from, valid_to, words):
    with pytest.raises(PlanError) as e:
        Plan.from_json(_with_range(valid_from, valid_to))
    for w in words:
        assert w in str(e.value), str(e.value)


def test_the_bounds_themselves_are_accepted():
    one_day = Plan.from_json(_with_range("2026-11-23", "2026-11-23"))
    assert one_day.stops[0].valid_from == one_day.stops[0].valid_to == MON
    assert Plan.from_json(_with_range("2000-01-01", "2099-12-31")).stops[0].valid_to.year == 2099


def test_the_model_checks_the_range_too(base):
    edem = base.stop(EDEM)
    with pytest.raises(PlanError, match="valid_to"):
        base.with_stop(replace(edem, valid_from=MON, valid_to=MON - timedelta(days=1)))
    with pytest.raises(PlanError, match="valid_from"):
        base.with_stop(replace(edem, valid_from=date(1999, 12, 31)))


def test_stops_in_force_at_different_times_may_share_the_hours(base):
    edem = base.stop(EDEM)
    clash = replace(edem, key="andere", name="Andere")  # Monday 14:30-18:00 as well
    with pytest.raises(PlanError, match="overlap"):
        base.with_stop(replace(clash, valid_from=MON))
    ended = replace(edem, valid_to=MON - timedelta(days=1))
    plan = base.with_stop(ended).with_stop(replace(clash, valid_from=MON))
    assert [h[0] for h in hours(plan, MON) if h[1] == "14:30"] == ["andere"]
    with pytest.raises(PlanError, match="overlap"):  # one day in common is enough
        base.with_stop(ended).with_stop(replace(clash, valid_from=MON - timedelta(days=7)))


# --- Hypothesis: whatever arrives is a Plan or a PlanError; accepted ranges are sane ---

_value = hs.one_of(
    hs.none(),
    hs.dates(date(1990, 1, 1), date(2110, 12, 31)).map(date.isoformat),
    hs.text(max_size=12),
    hs.integers(-10, 30_000_000),
    hs.booleans(),
    hs.lists(hs.integers(), max_size=2),
)
_missing = hs.just(...)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.one_of(_value, _missing), hs.one_of(_value, _missing))
def test_fuzz_ranges_give_a_plan_or_a_planerror(valid_from, valid_to):
    try:
        plan = Plan.from_json(_with_range(valid_from, valid_to))
    except PlanError as e:
        assert "valid_" in str(e), str(e)
        return
    s = plan.stops[0]
    for v in (s.valid_from, s.valid_to):
        assert v is None or 2000 <= v.year <= 2099
    if s.valid_from is not None and s.valid_to is not None:
        assert s.valid_from <= s.valid_to
    assert Plan.from_json(plan.to_json()) == plan


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.dates(date(1998, 1, 1), date(2101, 12, 31)), hs.integers(-400, 400))
def test_fuzz_range_bounds_exactly(first, length):
    last = first + timedelta(days=length)
    ok = 2000 <= first.year <= 2099 and 2000 <= last.year <= 2099 and length >= 0
    try:
        plan = Plan.from_json(_with_range(first.isoformat(), last.isoformat()))
    except PlanError:
        assert not ok
        return
    assert ok and (plan.stops[0].valid_from, plan.stops[0].valid_to) == (first, last)


# --- Hypothesis: random changes never touch a visit planned before their day -----------

_change = hs.one_of(
    hs.tuples(hs.just("stop"), hs.sampled_from([PEINE, EDEM, "wendeburg-rathaus", "neu"]),
              hs.integers(0, 6), hs.integers(6, 20), hs.integers(1, 3), hs.integers(0, 27)),
    hs.tuples(hs.just("remove"), hs.sampled_from([PEINE, EDEM, "wendeburg-rathaus", "neu"]),
              hs.integers(0, 27)),
    hs.tuples(hs.just("cancel"), hs.sampled_from([PEINE, EDEM]), hs.integers(-14, 27)),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.lists(_change, min_size=1, max_size=8))
def test_random_changes_keep_every_earlier_visit(ops):
    p = Plan.from_tour(VAN, default_config().tour[:4])
    for op in ops:
        kind, key, *a = op
        try:
            if kind == "cancel":
                day = MON + timedelta(days=a[0])
                p = p.with_exception(PlanException(new_id(), "cancel", day, stop_key=key))
                continue
            # the key may be an ended stop's: staff change the one in force (its successor)
            current = [s for s in p.stops if s.valid_to is None and s.key.startswith(key)]
            eff = MON + timedelta(days=a[-1])
            past = before(p, eff)
            if kind == "stop":
                wd, h, n, _ = a
                old = current[0] if current else None
                s = old or PlanStop(key, "Neu", "Peine", 52.30, 10.20)
                nxt = p.with_stop_from(
                    replace(s, weekdays=(wd,), start=dtime(h), end=dtime(h + n)), eff
                )
            else:
                if not current:
                    continue
                nxt = p.without_stop_from(current[0].key, eff)
        except PlanError:
            continue  # refused (an overlap, an ended stop): p is unchanged
        assert before(nxt, eff) == past, op
        assert nxt.version == p.version + 1
        assert Plan.from_json(nxt.to_json()) == nxt
        p = nxt


def test_saving_a_stop_unchanged_changes_no_visit(base):
    edem = base.stop(EDEM)
    again = base.with_stop_from(replace(edem), MON)
    assert again.version == 1 and again.stops == base.stops
    assert visits(again, MON - timedelta(weeks=2), MON + timedelta(weeks=2)) == visits(
        base, MON - timedelta(weeks=2), MON + timedelta(weeks=2)
    )


def test_stops_whose_ranges_meet_on_no_common_weekday_do_not_overlap():
    """Mondays until Tuesday 1 Dec and Mondays from Tuesday 1 Dec, same hours: they share
    a day, but not a Monday, so the plan is valid; sharing Monday 7 Dec it is not."""
    from datetime import time as dtime

    from telemetry.errors import PlanError
    from telemetry.plan import Plan, PlanStop

    def monday_stop(key, **rng):
        return PlanStop(key, f"Peine, {key}", "Peine", 52.32, 10.23, 150.0, (0,), dtime(10),
                        dtime(12), **rng)  # fmt: skip

    a = monday_stop("a", valid_to=date(2026, 12, 1))
    b = monday_stop("b", valid_from=date(2026, 12, 1))
    Plan(van="v1", version=1, updated=1.7e9, stops=(a, b)).validate()
    with pytest.raises(PlanError, match="overlap on mon"):
        longer = monday_stop("a", valid_to=date(2026, 12, 7))
        Plan(van="v1", version=1, updated=1.7e9, stops=(longer, b)).validate()
