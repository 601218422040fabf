"""The public view: a position only at a public stop during its service hours (or
coarsened while driving between stops, if enabled), never in a hidden zone, never when
offline or stale; the next stops from the tour plan."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from telemetry.config import default_config
from telemetry.events import CheckIn, Position, StopVisit
from telemetry.geo import coarsen, distance_m
from telemetry.privacy import VanState, load_state, public_view
from telemetry.store import Store

MARKT = (52.3215, 10.2335)
SCHULE = (52.386, 10.261)
DEPOT = (52.3300, 10.2500)
HOME = (52.2590, 10.0670)  # a staff member's home, right at a (misplaced) tour stop


def cfg_for(coarsen_driving: bool = False):
    return default_config(
        {
            "van": {"id": "v1"},  # the TOML tour is the initial plan of this van only
            "privacy": {
                "coarsen_driving": coarsen_driving,
                "coarsen_m": 2000.0,
                "hidden_zones": [
                    {"name": "Depot", "lat": DEPOT[0], "lon": DEPOT[1], "radius_m": 400},
                    {"name": "Home", "lat": HOME[0], "lon": HOME[1], "radius_m": 300},
                ],
            },
            "tour": {
                "stops": [
                    {"name": "Markt", "municipality": "Peine", "lat": MARKT[0], "lon": MARKT[1],
                     "weekdays": ["mon"], "start": "10:00", "end": "13:00"},
                    {"name": "Schule", "municipality": "Edemissen", "lat": SCHULE[0],
                     "lon": SCHULE[1], "weekdays": ["mon"], "start": "14:30", "end": "18:00"},
                    {"name": "Hohenhameln", "municipality": "Hohenhameln", "lat": HOME[0],
                     "lon": HOME[1], "weekdays": ["mon"], "start": "09:00", "end": "20:00"},
                ]
            },
        }
    )  # fmt: skip


def local(day: int, hh: int, mm: int = 0) -> datetime:
    """A local (Berlin, UTC+1 in November) time on 2026-11-<day> as UTC."""
    return datetime(2026, 11, day, hh, mm, tzinfo=UTC) - timedelta(hours=1)


MON = 23  # 2026-11-23 is a Monday


def state(lat, lon, t, *, status="online", speed=0.0, age=timedelta(minutes=2), **kw):
    fix = Position(time=t - age, lat=lat, lon=lon, speed=speed, van="v1")
    return VanState("v1", status, t - age, fix, **kw)


def test_open_at_a_stop_during_service_hours():
    cfg, now = cfg_for(), local(MON, 11, 15)
    v = public_view(cfg, state(MARKT[0] + 0.0004, MARKT[1], now), now)
    assert v["state"] == "open"
    assert v["stop"] == {"name": "Markt", "municipality": "Peine"}
    assert v["position"] == {"lat": round(MARKT[0] + 0.0004, 4), "lon": MARKT[1], "coarse": False}
    assert v["open_since"] == "2026-11-23T10:00+01:00"
    assert v["open_until"] == "2026-11-23T13:00+01:00"
    # The visit it is at is not repeated as "next".
    assert [(n["name"], n["start"]) for n in v["next"]] == [
        ("Hohenhameln", "2026-11-23T09:00+01:00"),  # open now, but the van is not there
        ("Schule", "2026-11-23T14:30+01:00"),
        ("Hohenhameln", "2026-11-30T09:00+01:00"),
    ]


def test_open_since_is_the_arrival_when_the_van_came_late():
    cfg, now = cfg_for(), local(MON, 11, 15)
    arrived = local(MON, 10, 40)
    v = public_view(cfg, state(*MARKT, now, arrived=arrived, arrived_at=MARKT), now)
    assert v["open_since"] == "2026-11-23T10:40+01:00"


@pytest.mark.parametrize(
    "when",
    [local(MON, 9, 59), local(MON, 13, 0), local(MON, 20, 0), local(MON + 1, 11, 0)],
    ids=["before", "at-end", "evening", "tuesday"],
)
def test_nothing_outside_service_hours(when):
    v = public_view(cfg_for(), state(*MARKT, when), when)
    assert v["state"] == "away"
    assert v["position"] is None and v["stop"] is None and v["open_since"] is None


def test_nothing_away_from_the_stops_during_service_hours():
    now = local(MON, 11, 0)
    # 400 m from the market: a home visit during opening hours stays invisible.
    v = public_view(cfg_for(), state(MARKT[0] + 0.0036, MARKT[1], now), now)
    assert v["state"] == "away" and v["position"] is None


def test_nothing_inside_a_hidden_zone_even_at_an_open_stop():
    now = local(MON, 11, 0)
    for lat, lon in (DEPOT, HOME, (HOME[0] + 0.001, HOME[1])):
        v = public_view(cfg_for(), state(lat, lon, now), now)
        assert v["state"] == "away" and v["position"] is None and v["stop"] is None


def test_offline_and_stale_fixes_show_no_position():
    now = local(MON, 11, 0)
    v = public_view(cfg_for(), state(*MARKT, now, status="offline"), now)
    assert v["state"] == "offline" and v["position"] is None
    v = public_view(cfg_for(), state(*MARKT, now, age=timedelta(minutes=31)), now)
    assert v["state"] == "away" and v["position"] is None
    assert v["last_seen"] == "2026-11-23T09:29:00.000Z"


def test_coarsened_only_while_moving_between_two_stops():
    now = local(MON, 13, 45)  # between Markt (until 13:00) and Schule (from 14:30)
    lat, lon = 52.3560, 10.2480  # on the road north of Peine
    cfg = cfg_for(coarsen_driving=True)
    v = public_view(cfg, state(lat, lon, now, speed=14.0), now)
    assert v["state"] == "driving"
    clat, clon = coarsen(lat, lon, 2000.0)
    assert v["position"] == {"lat": round(clat, 4), "lon": round(clon, 4), "coarse": True,
                             "radius_m": 1000}  # fmt: skip
    assert distance_m(lat, lon, clat, clon) > 10 and v["stop"] is None
    # Standing still off the stops (a home visit?): nothing.
    assert public_view(cfg, state(lat, lon, now, speed=0.3), now)["position"] is None
    # Not enabled: nothing.
    assert public_view(cfg_for(), state(lat, lon, now, speed=14.0), now)["position"] is None
    # After the day's last visit: nothing.
    late = local(MON, 20, 30)
    assert public_view(cfg, state(lat, lon, late, speed=14.0), late)["position"] is None
    # A cell that touches a hidden zone: nothing.
    near = (DEPOT[0] + 0.008, DEPOT[1])
    assert public_view(cfg, state(*near, now, speed=14.0), now)["position"] is None


def test_the_view_has_only_the_public_keys():
    now = local(MON, 11, 0)
    v = public_view(cfg_for(), state(*MARKT, now), now)
    assert set(v) == {"van", "name", "status", "state", "position", "stop", "open_since",
                      "open_until", "last_seen", "next"}  # fmt: skip
    assert all(
        set(n) == {"name", "municipality", "start", "end", "planned_start", "status",
                   "delay_min", "reason"}
        for n in v["next"]
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    lat=hs.floats(52.1, 52.5),
    lon=hs.floats(9.9, 10.5),
    minutes=hs.integers(0, 7 * 24 * 60 - 1),
    speed=hs.floats(0, 40),
)
def test_property_no_position_in_zones_or_outside_hours(lat, lon, minutes, speed):
    cfg = cfg_for(coarsen_driving=True)
    now = local(MON, 0) + timedelta(minutes=minutes)
    v = public_view(cfg, state(lat, lon, now, speed=speed), now)
    if v["position"] is None:
        return
    # Something is shown: then it is a service day at a time inside the day's plan...
    loc = now.astimezone(cfg.tz)
    assert loc.weekday() == 0 and 9 * 60 <= loc.hour * 60 + loc.minute < 20 * 60
    # ...and neither the fix nor what is shown is inside a hidden zone.
    for z in cfg.hidden_zones:
        assert distance_m(lat, lon, z.lat, z.lon) > z.radius_m
        assert distance_m(v["position"]["lat"], v["position"]["lon"], z.lat, z.lon) > z.radius_m
    if v["state"] == "open":
        s = next(s for s in cfg.tour if s.name == v["stop"]["name"])
        assert distance_m(lat, lon, s.lat, s.lon) <= s.radius_m


def test_load_state_reads_the_newest_good_fix_and_the_status(tmp_path):
    st = Store(tmp_path / "hub.db")
    now = local(MON, 11, 0)
    good = Position(time=now - timedelta(minutes=3), lat=MARKT[0], lon=MARKT[1], van="v1")
    suspect = Position(time=now, lat=52.0, lon=10.0, suspect=True, van="v1")
    visit = StopVisit(arrived=now - timedelta(minutes=50), name="Markt", municipality="Peine",
                      lat=MARKT[0], lon=MARKT[1], van="v1")  # fmt: skip
    ci = CheckIn(time=now, age_group="15-17", topics=("school",), van="v1")
    st.ingest_many([good, suspect, visit, ci])
    with st.transaction() as conn:
        conn.execute(
            "INSERT INTO van_status (van, status, last_seen) VALUES ('v1', 'online', ?)",
            (now.timestamp() - 60,),
        )
    s = load_state(st, "v1")
    assert s.fix is not None and s.fix.id == good.id
    assert s.status == "online" and s.last_seen == now - timedelta(minutes=1)
    assert s.arrived == visit.arrived
    v = public_view(cfg_for(), s, now)
    assert v["state"] == "open" and v["open_since"] == "2026-11-23T10:10+01:00"
    st.close()


# --- each van's own plan ---------------------------------------------------------------


def _plans():
    from datetime import date

    from telemetry.plan import Plan, PlanException, new_id

    cfg = cfg_for()
    a = Plan.from_tour("v1", cfg.tour[:2])  # Markt on Monday 10-13, Schule 14:30-18
    b = Plan.from_tour("v2", cfg.tour[1:2])  # Schule only
    cancelled = a.with_exception(
        PlanException(new_id(), "cancel", date(2026, 11, 23), stop_key="markt", reason="Krank")
    )
    return cfg, a, b, cancelled


def test_each_van_is_open_by_its_own_plan():
    cfg, a, b, _ = _plans()
    now = local(MON, 11, 0)
    fix = Position(time=now - timedelta(minutes=1), lat=MARKT[0], lon=MARKT[1], van="v1")
    va = public_view(cfg, VanState("v1", "online", now, fix, plan=a), now)
    vb = public_view(cfg, VanState("v2", "online", now, replace(fix, van="v2"), plan=b), now)
    assert va["state"] == "open" and va["stop"]["name"] == "Markt"
    assert vb["state"] == "away" and vb["position"] is None  # Markt is not in v2's plan
    assert [n["name"] for n in va["next"]][:1] == ["Schule"]
    assert [n["name"] for n in vb["next"]][:1] == ["Schule"]
    assert {n["name"] for n in va["next"]} == {"Markt", "Schule"}  # open Markt not in "next"
    assert {n["name"] for n in vb["next"]} == {"Schule"}


def test_a_cancelled_visit_is_never_open_and_is_listed_as_cancelled():
    cfg, a, _, cancelled = _plans()
    now = local(MON, 11, 0)
    fix = Position(time=now - timedelta(minutes=1), lat=MARKT[0], lon=MARKT[1], van="v1")
    v = public_view(cfg, VanState("v1", "online", now, fix, plan=cancelled), now)
    assert v["state"] == "away" and v["position"] is None
    first = v["next"][0]
    assert (first["name"], first["status"], first["reason"]) == ("Markt", "cancelled", "Krank")
    assert public_view(cfg, VanState("v1", "online", now, fix, plan=a), now)["state"] == "open"


def test_without_a_plan_another_van_gets_no_tour_of_the_hubs_config():
    cfg = cfg_for()
    now = local(MON, 11, 0)
    fix = Position(time=now - timedelta(minutes=1), lat=MARKT[0], lon=MARKT[1], van="v9")
    v = public_view(cfg, VanState("v9", "online", now, fix), now)
    assert v["state"] == "away" and v["next"] == []
    own = public_view(cfg, VanState("v1", "online", now, replace(fix, van="v1")), now)
    assert own["state"] == "open"  # the config's own van: its TOML tour is its first plan


def test_load_state_reads_the_vans_stored_plan(tmp_path):
    from telemetry.plan import save_plan

    cfg, a, b, cancelled = _plans()
    st = Store(tmp_path / "hub.db")
    now = local(MON, 11, 0)
    st.ingest_many([Position(time=now - timedelta(minutes=2), lat=MARKT[0], lon=MARKT[1],
                             van=v) for v in ("v1", "v2")])  # fmt: skip
    save_plan(st, cancelled)
    save_plan(st, b.changed(now=1.0))
    s1, s2 = load_state(st, "v1"), load_state(st, "v2")
    assert s1.plan == cancelled and s2.plan is not None and s2.plan.van == "v2"
    assert public_view(cfg, s1, now)["state"] == "away"
    assert public_view(cfg, s2, now)["next"][0]["name"] == "Schule"
    st.close()


def test_a_fix_dated_far_ahead_does_not_hide_the_van(tmp_path):
    """A single fix from a wrong clock (here 23 h ahead, inside what the hub's decoder
    takes) is passed over: the van's real newest fix decides what the public sees."""
    from telemetry.privacy import FUTURE_SLACK

    st = Store(tmp_path / "f.db", van="", tz="Europe/Berlin")
    try:
        now = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # a Monday, 14:00 in Berlin
        real = Position(time=now - timedelta(minutes=1), lat=52.386, lon=10.261, van="v1")
        ahead = Position(time=now + timedelta(hours=23), lat=52.0, lon=10.0, van="v1")
        near = Position(time=now + FUTURE_SLACK - timedelta(seconds=1), lat=52.387,
                        lon=10.262, van="v1")  # fmt: skip
        st.ingest_many([real, ahead])
        assert load_state(st, "v1", now=now).fix.id == real.id
        st.ingest_many([near])  # just inside the slack: it is the newest
        assert load_state(st, "v1", now=now).fix.id == near.id
        assert load_state(st, "v1", now=now + timedelta(days=1)).fix.id == ahead.id
    finally:
        st.close()
