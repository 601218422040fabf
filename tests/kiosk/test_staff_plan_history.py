"""The staff plan editor keeps the past as it was planned: changing a weekly stop's
weekdays or times, or removing it, takes effect today or on a later "Gilt ab" day; a stop
that had visits before ends the day before (listed under "Beendete Haltestellen") and,
for a change, a new stop with the same place starts that day; a stop without earlier
visits is changed in place. A "Gilt ab" in the past, too far ahead or not a date is
refused with one clear line, nothing stored, nothing published (Flask test client)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from telemetry.plan import stored_plan
from tests.kiosk.test_staff_plan import EDEM, OTHER, VAN, back_tz, error_of, hub, login, post

__all__ = ["hub"]  # the fixture, imported

TODAY = date(2026, 11, 23)  # the test clock: Monday 09:00 in Peine
PEINE = "peine-marktplatz"
EDEM_FORM = {"name": "Edemissen, Schulzentrum", "municipality": "Edemissen", "lat": "52.386",
             "lon": "10.261", "radius_m": "150"}  # fmt: skip


def hours_on(plan, day: date) -> list[tuple[str, str]]:
    return [(v.stop_key, f"{v.start:%H:%M}") for v in plan.visits_on(day, back_tz())]


def row(page: str, table: str, key: str) -> str:
    body = re.search(rf'<table class="data stops" id="{table}">.*?</table>', page, re.S).group(0)
    return re.search(rf'<tr data-key="{re.escape(key)}">.*?</tr>', body, re.S).group(0)


def test_changing_the_hours_ends_the_old_stop_and_keeps_last_week(hub):
    app, st, published = hub
    c = login(app)
    r = post(c, VAN, "stop", key=EDEM, weekdays=["mon"], start="15:00", end="19:00", **EDEM_FORM)
    assert r.status_code == 303
    plan = stored_plan(st, VAN)
    assert plan.version == 1 and published == [plan]
    old, new = plan.stop(EDEM), plan.stop(EDEM + "-2")
    assert old.valid_to == TODAY - timedelta(days=1) and new.valid_from == TODAY
    last_monday = TODAY - timedelta(weeks=1)
    assert (EDEM, "14:30") in hours_on(plan, last_monday)  # as it was planned
    assert (EDEM + "-2", "15:00") in hours_on(plan, TODAY)
    assert EDEM not in [k for k, _ in hours_on(plan, TODAY)]
    page = c.get(r.headers["Location"]).text
    assert "Frühere Termine bleiben" in page
    assert "15:00–19:00" in row(page, "stops", EDEM + "-2")
    ended = row(page, "ended-stops", EDEM)
    assert "14:30–18:00" in ended and "bis 22.11.2026" in ended
    assert f'data-key="{EDEM}"' not in re.search(r'id="stops">.*?</table>', page, re.S).group(0)
    # the changed visit keeps its calendar UID (the first stop's key)
    assert re.search(r'data-uid="jungregio-1\.edemissen-schulzentrum\.20261123@vanbox"', page)
    # an ended stop can no longer be changed or removed
    r = post(c, VAN, "stop", key=EDEM, weekdays=["tue"], start="15:00", end="19:00", **EDEM_FORM)
    assert r.status_code == 400 and "endet schon am 22.11.2026" in error_of(r.text)
    r = post(c, VAN, "remove-stop", key=EDEM)
    assert r.status_code == 400 and "endet schon" in error_of(r.text)
    assert stored_plan(st, VAN).version == 1 and len(published) == 1


def test_a_later_gilt_ab_keeps_the_visits_until_then(hub):
    app, st, published = hub
    c = login(app)
    r = post(c, VAN, "stop", key=EDEM, weekdays=["mon"], start="15:00", end="19:00",
             effective="2026-12-07", **EDEM_FORM)  # fmt: skip
    assert r.status_code == 303
    plan = stored_plan(st, VAN)
    assert plan.stop(EDEM).valid_to == date(2026, 12, 6)
    assert (EDEM, "14:30") in hours_on(plan, date(2026, 11, 30))
    assert (EDEM + "-2", "15:00") in hours_on(plan, date(2026, 12, 7))
    page = c.get(r.headers["Location"]).text
    assert "bis 06.12.2026" in row(page, "stops", EDEM)  # still in force: in the weekly plan
    assert "ab 07.12.2026" in row(page, "stops", EDEM + "-2")
    # removing a stop from a later day: its visits until then stay
    r = post(c, VAN, "remove-stop", key=PEINE, effective="2026-12-01")
    assert r.status_code == 303
    plan = stored_plan(st, VAN)
    assert plan.stop(PEINE).valid_to == date(2026, 11, 30) and plan.version == 2
    assert (PEINE, "10:00") in hours_on(plan, date(2026, 11, 30))
    assert PEINE not in [k for k, _ in hours_on(plan, date(2026, 12, 7))]
    assert (PEINE, "10:00") in hours_on(plan, TODAY - timedelta(weeks=3))
    assert len(published) == 2


def test_a_stop_without_earlier_visits_is_changed_in_place(hub):
    app, st, _ = hub
    c = login(app)
    place = {"name": "Peine, Schulhof", "municipality": "Peine", "lat": "52.31", "lon": "10.22"}
    r = post(c, VAN, "stop", weekdays=["wed"], start="09:00", end="11:00",
             effective="2026-11-25", **place)  # fmt: skip
    assert r.status_code == 303
    plan = stored_plan(st, VAN)
    new = plan.stop("peine-schulhof")
    assert new.valid_from == date(2026, 11, 25)
    assert "peine-schulhof" not in [k for k, _ in hours_on(plan, date(2026, 11, 18))]
    r = post(c, VAN, "stop", key="peine-schulhof", weekdays=["wed", "thu"], start="08:00",
             end="09:30", **place)  # fmt: skip
    assert r.status_code == 303
    plan = stored_plan(st, VAN)
    s = plan.stop("peine-schulhof")
    assert (s.weekdays, f"{s.start:%H:%M}", s.valid_from) == ((2, 3), "08:00", date(2026, 11, 25))
    assert plan.stop("peine-schulhof-2") is None
    # removing it before its first visit removes it
    assert post(c, VAN, "remove-stop", key="peine-schulhof").status_code == 303
    assert stored_plan(st, VAN).stop("peine-schulhof") is None


@pytest.mark.parametrize(
    ("effective", "words"),
    [
        ("2026-11-22", ("Gilt ab", "Vergangenheit", "frühestens heute (23.11.2026)")),
        ("2028-11-24", ("Gilt ab", "zu weit in der Zukunft")),
        ("2026-02-31", ("Gilt ab", "gültiges Datum")),
        ("1999-12-31", ("Gilt ab", "gültiges Datum")),
        ("morgen", ("Gilt ab", "gültiges Datum")),
    ],
)
@pytest.mark.parametrize("action", ["stop", "remove-stop"])
def test_a_bad_gilt_ab_is_refused_and_changes_nothing(hub, action, effective, words):
    app, st, published = hub
    c = login(app)
    form = dict(key=EDEM, weekdays=["mon"], start="15:00", end="19:00", **EDEM_FORM)
    r = post(c, VAN, action, effective=effective, **form)
    assert r.status_code == 400
    msg = error_of(r.text)
    for w in words:
        assert w in msg, msg
    assert stored_plan(st, VAN) is None and published == []


def test_the_last_day_allowed_is_two_years_ahead(hub):
    app, st, _ = hub
    c = login(app)
    r = post(c, VAN, "remove-stop", key=EDEM, effective="2028-11-23")  # 731 days ahead
    assert r.status_code == 303
    assert stored_plan(st, VAN).stop(EDEM).valid_to == date(2028, 11, 22)


def test_a_new_vans_copied_tour_starts_today(hub):
    app, st, _ = hub
    c = login(app)
    assert post(c, OTHER, "copy-tour").status_code == 303
    plan = stored_plan(st, OTHER)
    assert {s.valid_from for s in plan.stops} == {TODAY}
    assert hours_on(plan, TODAY) and not hours_on(plan, TODAY - timedelta(weeks=1))


def test_moving_a_stop_from_a_later_day_keeps_the_old_place_until_then(hub):
    """A new place "Gilt ab" in four weeks: until then the visits (and stop detection) stay
    at the old place; from that day on they are at the new one; last week is unchanged."""
    app, st, _ = hub
    c = login(app)
    moved = dict(EDEM_FORM, name="Edemissen, Rathaus", lat="52.380", lon="10.250")
    effective = TODAY + timedelta(weeks=4)
    r = post(c, VAN, "stop", key=EDEM, weekdays=["mon"], start="14:30", end="18:00",
             effective=effective.isoformat(), **moved)  # fmt: skip
    assert r.status_code == 303
    plan = stored_plan(st, VAN)

    def place(day: date) -> list[tuple[str, float]]:
        return [(v.name, round(v.lat, 3)) for v in plan.visits_on(day, back_tz())
                if v.name.startswith("Edemissen")]  # fmt: skip

    for day in (TODAY - timedelta(weeks=1), TODAY, effective - timedelta(weeks=1)):
        assert place(day) == [("Edemissen, Schulzentrum", 52.386)], day
    assert place(effective) == [("Edemissen, Rathaus", 52.38)]
    assert any(t.lat == 52.386 for t in plan.tour(around=TODAY))
    assert not any(t.lat == 52.38 for t in plan.tour(around=TODAY))


def test_a_change_after_todays_visit_takes_effect_tomorrow(hub):
    """The hours changed at 19:30, after today's 14:30 visit: today's visit stays as it
    was (calendar, punctuality); the new hours start tomorrow. Removing the stop then
    also keeps today's visit."""
    from datetime import UTC, datetime

    from telemetry.clock import ScaledClock

    app, st, _ = hub
    app.extensions["vanbox_clock"] = ScaledClock(datetime(2026, 11, 23, 18, 30, tzinfo=UTC),
                                                 speed=1.0)  # fmt: skip
    c = login(app)
    r = post(c, VAN, "stop", key=EDEM, weekdays=["mon"], start="07:00", end="09:30", **EDEM_FORM)
    assert r.status_code == 303
    plan = stored_plan(st, VAN)
    assert (EDEM, "14:30") in hours_on(plan, TODAY)
    assert "07:00" not in [h for k, h in hours_on(plan, TODAY) if k.startswith(EDEM)]
    assert [h for k, h in hours_on(plan, TODAY + timedelta(weeks=1)) if k.startswith(EDEM)] == [
        "07:00"
    ]
    new_key = next(s.key for s in plan.stops if s.key.startswith(EDEM) and s.key != EDEM)
    assert plan.stop(new_key).valid_from == TODAY + timedelta(days=1)
    assert plan.stop(EDEM).valid_to == TODAY


def test_a_second_change_numbers_the_next_stop_on(hub):
    """Hours changed today, then again from a later day: the stops are <key>, <key>-2 and
    <key>-3 (not <key>-2-2), each valid in its own span."""
    app, st, _ = hub
    c = login(app)
    post(c, VAN, "stop", key=EDEM, weekdays=["mon"], start="15:00", end="19:00", **EDEM_FORM)
    later = TODAY + timedelta(weeks=2)
    r = post(c, VAN, "stop", key=EDEM + "-2", weekdays=["mon"], start="16:00", end="19:00",
             effective=later.isoformat(), **EDEM_FORM)  # fmt: skip
    assert r.status_code == 303
    plan = stored_plan(st, VAN)
    keys = [s.key for s in plan.stops if s.key.startswith(EDEM)]
    assert keys == [EDEM, EDEM + "-2", EDEM + "-3"]
    assert plan.stop(EDEM + "-2").valid_to == later - timedelta(days=1)
    assert plan.stop(EDEM + "-3").valid_from == later
    assert (EDEM + "-2", "15:00") in hours_on(plan, TODAY + timedelta(weeks=1))
    assert (EDEM + "-3", "16:00") in hours_on(plan, later)


def test_a_delay_the_new_hours_cannot_take_is_named_in_german(hub):
    """A 90-minute delay next Monday, then the hours cut to one hour from today: refused
    with the day, the delay and the new hours, nothing stored; a delay that fits moves
    with the change."""
    app, st, published = hub
    c = login(app)
    monday = TODAY + timedelta(weeks=1)
    r = post(c, VAN, "delay", stop=EDEM, date=monday.isoformat(), delay_min="90",
             reason="Stau")  # fmt: skip
    assert r.status_code == 303
    r = post(c, VAN, "stop", key=EDEM, weekdays=["mon"], start="15:00", end="16:30", **EDEM_FORM)
    assert r.status_code == 400
    assert error_of(r.text) == (
        "Nicht gespeichert: Die Verspätung am 30.11.2026 (90 Minuten) passt nicht in die"
        " neuen Zeiten 15:00–16:30 Uhr. Bitte zuerst die Verspätung ändern oder löschen."
    )
    assert stored_plan(st, VAN).version == 1 and len(published) == 1
    r = post(c, VAN, "stop", key=EDEM, weekdays=["mon"], start="15:00", end="14:00", **EDEM_FORM)
    assert r.status_code == 400 and "Ende vor Beginn" in error_of(r.text)  # not the delay
    r = post(c, VAN, "stop", key=EDEM, weekdays=["mon"], start="15:00", end="16:31", **EDEM_FORM)
    assert r.status_code == 303  # one minute more: the visit starts before its end
    (delay,) = [e for e in stored_plan(st, VAN).exceptions if e.kind == "delay"]
    assert delay.stop_key == EDEM + "-2" and delay.delay_min == 90
