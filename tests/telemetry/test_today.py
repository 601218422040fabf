"""``reports.today``: the planned stop comes from each van's own plan for the day, with its
dated exceptions (a cancelled visit is not planned, a delayed one starts later), for one
van and for the whole fleet."""

from __future__ import annotations

from datetime import UTC, date, datetime
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest

from telemetry import reports
from telemetry.events import StopVisit
from telemetry.plan import Plan, PlanException, PlanStop, new_id
from telemetry.store import Store

TZ = ZoneInfo("Europe/Berlin")
VAN_A, VAN_B, VAN_C = "van-a", "van-b", "van-c"
MON = date(2026, 11, 9)
UPDATED = datetime(2026, 11, 1, tzinfo=UTC).timestamp()


def at(d: date, hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(d.year, d.month, d.day, h, m, tzinfo=TZ).astimezone(UTC)


def stop(key: str, name: str, muni: str, lat: float, lon: float, start: str, end: str):
    h0, m0 = map(int, start.split(":"))
    h1, m1 = map(int, end.split(":"))
    return PlanStop(key, name, muni, lat, lon, 150.0, (0,), dtime(h0, m0), dtime(h1, m1))


ILSEDE = stop("ilsede", "Ilsede, Gebläsehalle", "Ilsede", 52.263, 10.184, "10:00", "13:00")
VECHELDE = stop("vechelde", "Vechelde, Bahnhof", "Vechelde", 52.261, 10.366, "10:00", "13:00")
LENGEDE = stop("lengede", "Lengede, Jugendzentrum", "Lengede", 52.205, 10.309, "14:00", "18:00")


def plan(van: str, *stops: PlanStop) -> Plan:
    return Plan(van=van, version=1, updated=UPDATED, stops=stops).validate()


def cancelled(p: Plan, key: str, reason: str = "Werkstatt") -> Plan:
    ex = PlanException(new_id(), "cancel", MON, stop_key=key, reason=reason)
    return p.with_exception(ex, now=UPDATED + 60)


def delayed(p: Plan, key: str, minutes: int) -> Plan:
    ex = PlanException(new_id(), "delay", MON, stop_key=key, delay_min=minutes)
    return p.with_exception(ex, now=UPDATED + 60)


@pytest.fixture
def conn(tmp_path):
    st = Store(tmp_path / "hub.db", van="", tz="Europe/Berlin")
    # Each van has data (a visit last week), none is at a stop now.
    st.ingest_many(
        [
            StopVisit(at(date(2026, 11, 2), f"1{i}:00"), "Peine, Marktplatz", "Peine", 52.32,
                      10.23, left=at(date(2026, 11, 2), f"1{i}:30"), van=v)
            for i, v in enumerate((VAN_A, VAN_B, VAN_C))
        ]
    )  # fmt: skip
    yield st.reader()
    st.close()


def names(t: dict) -> list[tuple[str, str]]:
    return [(v.van, v.name) for v in t["planned"]]


def test_each_van_gets_its_own_planned_stop(conn):
    plans = [plan(VAN_B, VECHELDE), plan(VAN_A, ILSEDE, LENGEDE)]
    now = at(MON, "11:00")
    a = reports.today(conn, now, TZ, van=VAN_A, plans=plans)
    b = reports.today(conn, now, TZ, van=VAN_B, plans=plans)
    assert a["stop"] is None and a["planned_stop"] == "Ilsede, Gebläsehalle"
    assert b["planned_stop"] == "Vechelde, Bahnhof"
    assert names(a) == [(VAN_A, "Ilsede, Gebläsehalle")]
    # A van without a plan among them has nothing planned, whatever the others plan.
    c = reports.today(conn, now, TZ, van=VAN_C, plans=plans)
    assert c["planned_stop"] is None and c["planned"] == [] and c["cancelled"] == []
    # The fleet: every van's planned stop, by van.
    fleet = reports.today(conn, now, TZ, plans=plans)
    assert names(fleet) == [(VAN_A, "Ilsede, Gebläsehalle"), (VAN_B, "Vechelde, Bahnhof")]
    assert fleet["planned_stop"] == "Ilsede, Gebläsehalle"
    # In the afternoon only van A's plan has a stop.
    later = reports.today(conn, at(MON, "15:00"), TZ, plans=plans)
    assert names(later) == [(VAN_A, "Lengede, Jugendzentrum")]
    # On Tuesday neither plan has one.
    assert reports.today(conn, at(date(2026, 11, 10), "11:00"), TZ, plans=plans)["planned"] == []


def test_a_cancelled_visit_is_not_planned(conn):
    plans = [cancelled(plan(VAN_A, ILSEDE), "ilsede", "Fahrzeug in der Werkstatt"),
             plan(VAN_B, VECHELDE)]  # fmt: skip
    now = at(MON, "11:00")
    a = reports.today(conn, now, TZ, van=VAN_A, plans=plans)
    assert a["planned_stop"] is None and a["planned"] == []
    assert [(v.name, v.reason) for v in a["cancelled"]] == [
        ("Ilsede, Gebläsehalle", "Fahrzeug in der Werkstatt")
    ]
    fleet = reports.today(conn, now, TZ, plans=plans)
    assert names(fleet) == [(VAN_B, "Vechelde, Bahnhof")]
    assert fleet["planned_stop"] == "Vechelde, Bahnhof"
    assert [(v.van, v.name) for v in fleet["cancelled"]] == [(VAN_A, "Ilsede, Gebläsehalle")]
    # The cancellation is for that day only: a week later the visit is planned again.
    nxt = reports.today(conn, at(date(2026, 11, 16), "11:00"), TZ, van=VAN_A, plans=plans)
    assert nxt["planned_stop"] == "Ilsede, Gebläsehalle" and nxt["cancelled"] == []


def test_a_delayed_visit_shows_from_its_planned_start(conn):
    """Planned 10:00, delayed by 90 minutes: from 10:00 on staff see it as the planned
    stop with its delay ("verspätet, ab 11:30"), not "no stop" until 11:30."""
    plans = [delayed(plan(VAN_B, VECHELDE), "vechelde", 90)]
    before = reports.today(conn, at(MON, "09:59"), TZ, van=VAN_B, plans=plans)
    assert before["planned_stop"] is None and before["cancelled"] == []
    early = reports.today(conn, at(MON, "10:00"), TZ, van=VAN_B, plans=plans)
    assert early["planned_stop"] == "Vechelde, Bahnhof" and early["cancelled"] == []
    assert early["planned"][0].start == datetime(2026, 11, 9, 11, 30, tzinfo=TZ)
    late = reports.today(conn, at(MON, "11:45"), TZ, van=VAN_B, plans=plans)
    assert late["planned_stop"] == "Vechelde, Bahnhof"
    assert late["planned"][0].delay_min == 90
    assert late["planned"][0].start == datetime(2026, 11, 9, 11, 30, tzinfo=TZ)


def test_one_plan_per_van_the_first_given(conn):
    plans = [plan(VAN_A, ILSEDE), plan(VAN_A, VECHELDE)]
    t = reports.today(conn, at(MON, "11:00"), TZ, plans=plans)
    assert names(t) == [(VAN_A, "Ilsede, Gebläsehalle")]
    assert reports.today(conn, at(MON, "11:00"), TZ)["planned"] == []
