"""The iCalendar feeds, parsed with the ``icalendar`` package: RFC 5545 structure, stable
UIDs across plan changes, SEQUENCE raised only for the changed visit, STATUS:CANCELLED,
the window, ETag and caching, and 404 for vans the public may not see."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import icalendar
import pytest

from kiosk import create_app
from telemetry import registry
from telemetry.config import default_config
from telemetry.plan import PlanException, PlanStop, change_plan, new_id
from telemetry.store import Store

MON_0900 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 in Peine
MONDAY = date(2026, 11, 23)
SCHULE = PlanStop("schule", "Schule", "Edemissen", 52.386, 10.261, 150.0, (0,), time(14, 30),
                  time(18, 0))  # fmt: skip
MARKT = PlanStop("markt", "Markt", "Peine", 52.3215, 10.2335, 150.0, (0,), time(10, 0),
                 time(13, 0))  # fmt: skip
RATHAUS = PlanStop("rathaus", "Rathaus", "Wendeburg", 52.328, 10.396, 150.0, (3,),
                   time(9, 30), time(12, 0))  # fmt: skip


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t


def publish(st: Store, van: str, name: str, *stops: PlanStop) -> None:
    registry.register(st, [van])
    registry.rename(st, van, name)
    registry.publish(st, van)
    for s in stops:
        change_plan(st, van, lambda p, s=s: p.with_stop(s, now=1_700_000_000.0))


def add(st: Store, van: str, **kw) -> PlanException:
    ex = PlanException(id=new_id(), **kw)
    change_plan(st, van, lambda p: p.with_exception(ex, now=1_700_000_100.0))
    return ex


@pytest.fixture
def hub(tmp_path):
    st = Store(tmp_path / "hub.db")
    publish(st, "van-a", "Bus Nord", MARKT, SCHULE)
    publish(st, "van-b", "Bus Süd", RATHAUS)
    cfg = default_config({"van": {"id": "hub", "name": "Hub", "tid": "HB"}})
    app = create_app({"TESTING": True}, config=cfg, store=st, mode="hub")
    app.extensions["vanbox_clock"] = Clock(MON_0900)
    yield app, st
    st.close()


def feed(app, path: str) -> tuple[icalendar.Calendar, dict[str, icalendar.Event]]:
    r = app.test_client().get(path)
    assert r.status_code == 200, path
    assert r.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert b"\r\n" in r.data and all(len(line) <= 75 for line in r.data.split(b"\r\n"))
    cal = icalendar.Calendar.from_ical(r.data)
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    return cal, events


def test_structure_follows_rfc5545(hub):
    app, _ = hub
    cal, events = feed(app, "/van/van-a/calendar.ics")
    assert cal.name == "VCALENDAR"
    assert str(cal["VERSION"]) == "2.0" and "vanbox" in str(cal["PRODID"])
    ev = events["van-a.schule.20261123@vanbox"]
    for prop in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "LOCATION", "GEO",
                 "SEQUENCE", "STATUS"):  # fmt: skip
        assert prop in ev, prop
    assert ev.decoded("DTSTART") == datetime(2026, 11, 23, 13, 30, tzinfo=UTC)  # 14:30 CET
    assert ev.decoded("DTEND") == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    assert ev.decoded("DTSTART").tzinfo is not None
    assert str(ev["SUMMARY"]) == "Bus Nord: Schule"
    assert str(ev["LOCATION"]) == "Schule, Edemissen"
    geo = ev["GEO"]
    assert (geo.latitude, geo.longitude) == (52.386, 10.261)
    assert str(ev["STATUS"]) == "CONFIRMED" and int(ev["SEQUENCE"]) >= 0
    assert "van-b" not in "".join(events)  # one van's feed has only that van


def test_window_is_one_week_back_and_eight_ahead(hub):
    app, _ = hub
    _, events = feed(app, "/van/van-a/calendar.ics")
    days = sorted({e.decoded("DTSTART").date() for e in events.values()})
    assert days[0] == MONDAY - timedelta(weeks=1)  # included, the Monday before is not
    assert days[-1] == MONDAY + timedelta(weeks=8)
    assert len(days) == 10 and len(events) == 20  # Mondays, two visits each
    # The next day the window has moved on (the feed is not kept past its day).
    app.extensions["vanbox_clock"] = Clock(MON_0900 + timedelta(days=1))
    _, events = feed(app, "/van/van-a/calendar.ics")
    days = sorted({e.decoded("DTSTART").date() for e in events.values()})
    assert days[0] == MONDAY and days[-1] == MONDAY + timedelta(weeks=8)


def test_cancel_keeps_uids_raises_only_that_sequence_and_says_cancelled(hub):
    app, st = hub
    _, before = feed(app, "/calendar.ics")
    add(st, "van-a", kind="cancel", date=MONDAY + timedelta(weeks=1), stop_key="schule",
        reason="Fortbildung des Teams")  # fmt: skip
    _, after = feed(app, "/calendar.ics")
    assert set(after) == set(before)  # stable UIDs: a calendar updates, it does not duplicate
    uid = "van-a.schule.20261130@vanbox"
    changed = {u for u in after if int(after[u]["SEQUENCE"]) != int(before[u]["SEQUENCE"])}
    assert changed == {uid}
    assert int(after[uid]["SEQUENCE"]) > int(before[uid]["SEQUENCE"])
    assert str(after[uid]["STATUS"]) == "CANCELLED"
    assert str(after[uid]["SUMMARY"]).startswith("Fällt aus")
    # Absolute dates: "heute" in a calendar entry would be wrong the next day.
    assert str(after[uid]["DESCRIPTION"]) == (
        "Mo 30.11. 14:30 Schule fällt aus. Grund: Fortbildung des Teams"
    )
    cancelled = [u for u, e in after.items() if str(e["STATUS"]) == "CANCELLED"]
    assert cancelled == [uid]


def test_delay_moves_the_start_and_says_why(hub):
    app, st = hub
    _, before = feed(app, "/van/van-b/calendar.ics")
    add(st, "van-b", kind="delay", date=date(2026, 11, 26), stop_key="rathaus", delay_min=45,
        reason="Reifenpanne")  # fmt: skip
    _, events = feed(app, "/van/van-b/calendar.ics")
    ev = events["van-b.rathaus.20261126@vanbox"]
    assert ev.decoded("DTSTART") == datetime(2026, 11, 26, 9, 15, tzinfo=UTC)  # 10:15 CET
    assert str(ev["STATUS"]) == "CONFIRMED"
    assert int(ev["SEQUENCE"]) > int(before["van-b.rathaus.20261126@vanbox"]["SEQUENCE"])
    # An entry's description stands alone: the whole sentence, with the day, time and place
    # the visit had (the public pages' lists say only what changed, next to the visit).
    assert str(ev["DESCRIPTION"]) == (
        "Do 26.11. 09:30 Rathaus verspätet sich um 45 Minuten (ab 10:15 Uhr). Grund: Reifenpanne"
    )


def test_all_vans_feed_has_every_public_van(hub):
    app, st = hub
    _, events = feed(app, "/calendar.ics")
    assert {u.split(".")[0] for u in events} == {"van-a", "van-b"}
    registry.retire(st, "van-b")
    _, events = feed(app, "/calendar.ics")
    assert {u.split(".")[0] for u in events} == {"van-a"}


@pytest.mark.parametrize("van", ["nobody", "van-new", "van-b", "../van-a"])
def test_unknown_unpublished_or_retired_van_is_a_404(hub, van):
    app, st = hub
    registry.register(st, ["van-new"])
    registry.retire(st, "van-b")
    assert app.test_client().get(f"/van/{van}/calendar.ics").status_code == 404


def test_etag_and_short_cache(hub):
    app, st = hub
    c = app.test_client()
    r = c.get("/van/van-a/calendar.ics")
    etag = r.headers["ETag"]
    assert r.headers["Cache-Control"] == "public, max-age=300"
    assert c.get("/van/van-a/calendar.ics").data == r.data  # the same bytes while unchanged
    r2 = c.get("/van/van-a/calendar.ics", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.data == b""
    add(st, "van-a", kind="cancel", date=MONDAY, stop_key="markt", reason="Markttag")
    r3 = c.get("/van/van-a/calendar.ics", headers={"If-None-Match": etag})
    assert r3.status_code == 200 and r3.headers["ETag"] != etag


def test_box_feed_is_its_own_van(tmp_path):
    st = Store(tmp_path / "box.db", van="jr-1")
    try:
        cfg = default_config({"van": {"id": "jr-1", "name": "JUNGregio-Mobil", "tid": "JR"}})
        app = create_app({"TESTING": True}, config=cfg, store=st, mode="box")
        app.extensions["vanbox_clock"] = Clock(MON_0900)
        cal, events = feed(app, "/calendar.ics")
        assert events and all(u.startswith("jr-1.") for u in events)
        assert str(cal["X-WR-CALNAME"]) == "JUNGregio-Mobil"
        assert app.test_client().get("/van/jr-1/calendar.ics").status_code == 200
        assert app.test_client().get("/van/other/calendar.ics").status_code == 404
    finally:
        st.close()


def test_the_built_feed_outlives_events_but_not_a_rename(hub, monkeypatch):
    import kiosk.calendar as calendar
    from telemetry.events import Footfall

    app, st = hub
    builds = []
    real = calendar.build
    monkeypatch.setattr(calendar, "build", lambda *a: builds.append(a) or real(*a))
    feed(app, "/van/van-a/calendar.ics")
    st.ingest_many([Footfall(time=MON_0900, kind="in", occupancy=1, van="van-a")])
    feed(app, "/van/van-a/calendar.ics")
    assert len(builds) == 1  # an event at the hub changes nothing in the calendar
    registry.rename(st, "van-a", "Bus Nordost")
    _, events = feed(app, "/van/van-a/calendar.ics")
    assert len(builds) == 2
    assert str(events["van-a.schule.20261123@vanbox"]["SUMMARY"]) == "Bus Nordost: Schule"


def _as_published(events: dict[str, icalendar.Event], *, before: date) -> dict[str, dict]:
    """Every event planned before ``before``, each property as sent except DTSTAMP (the
    plan's last change, on every event)."""
    return {
        uid: {k: ev[k].to_ical() for k in ev if k != "DTSTAMP"}
        for uid, ev in events.items()
        if ev.decoded("DTSTART").date() < before
    }


def test_a_template_change_keeps_the_past_week_as_it_was_planned(hub):
    app, st = hub
    _, before = feed(app, "/van/van-a/calendar.ics")
    past = _as_published(before, before=MONDAY)
    assert len(past) == 2  # last Monday: Markt and Schule
    later = replace(SCHULE, start=time(15), end=time(19))
    change_plan(st, "van-a", lambda p: p.with_stop_from(later, MONDAY, now=1_700_000_200.0))
    change_plan(st, "van-a",
                lambda p: p.without_stop_from("markt", MONDAY + timedelta(days=1),
                                              now=1_700_000_300.0))  # fmt: skip
    _, after = feed(app, "/van/van-a/calendar.ics")
    assert _as_published(after, before=MONDAY) == past  # not one byte of last week changed
    # today and later: Schule at the new hours; Markt today still, from tomorrow on no more
    today = [e for e in after.values() if e.decoded("DTSTART").date() == MONDAY]
    starts = sorted(e.decoded("DTSTART").astimezone(default_config().tz).time() for e in today)
    assert starts == [time(10), time(15)]
    next_week = [e for e in after.values()
                 if e.decoded("DTSTART").date() == MONDAY + timedelta(weeks=1)]  # fmt: skip
    assert [str(e["SUMMARY"]) for e in next_week] == ["Bus Nord: Schule"]
    assert next_week[0].decoded("DTSTART") == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)

    # The plain replace of the weekly stop (before validity ranges) would have moved last
    # Monday's visit to 15:00 as well: the comparison above catches exactly that.
    def replaced(p):
        stops = [replace(s, valid_to=None, start=time(16)) if s.key == "schule" else s
                 for s in p.stops if s.key != "schule-2"]  # fmt: skip
        return p.changed(stops=stops, now=1_700_000_400.0)

    change_plan(st, "van-a", replaced)
    _, rewritten = feed(app, "/van/van-a/calendar.ics")
    assert _as_published(rewritten, before=MONDAY) != past
