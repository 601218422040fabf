"""The staff plan pages on the hub (/staff/plan): login and CSRF like the other staff
pages; one tap cancels a visit; delay, move, one-off visit, closed period, template
stops; each change is the next version, stored and handed to the publisher; bad input is
refused with one clear line, nothing stored, nothing published."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from werkzeug.security import generate_password_hash

from kiosk import create_app
from kiosk.auth import set_user
from telemetry import registry
from telemetry.config import default_config
from telemetry.events import Footfall
from telemetry.plan import stored_plan
from telemetry.store import Store

PASSWORD = "lange-genug-2026"
T = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 in Peine
VAN = "jungregio-1"  # the hub config's own van: its TOML tour is the initial plan
OTHER = "van-b"
EDEM = "edemissen-schulzentrum"


class Clock:
    def now(self) -> datetime:
        return T


def _app(tmp_path, mode: str):
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}})
    st = Store(tmp_path / f"{mode}.db", van="" if mode == "hub" else VAN, tz=cfg.timezone)
    if mode == "hub":
        st.ingest_many([Footfall(time=T, kind="in", occupancy=1, van=OTHER)])
        registry.register(st, [OTHER])
    app = create_app({"TESTING": True}, config=cfg, store=st, mode=mode)
    app.extensions["vanbox_clock"] = Clock()
    published: list = []
    app.extensions["vanbox_plan_published"] = published.append
    return app, st, published


@pytest.fixture
def hub(tmp_path):
    app, st, published = _app(tmp_path, "hub")
    yield app, st, published
    st.close()


def token_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(app):
    c = app.test_client()
    page = c.get("/staff/login").text
    r = c.post("/staff/login", data={"name": "anna", "password": PASSWORD,
                                     "csrf_token": token_of(page)})  # fmt: skip
    assert r.status_code == 302
    return c


def post(c, van: str, action: str, **form):
    page = c.get(f"/staff/plan/{van}").text
    return c.post(f"/staff/plan/{van}/{action}", data={"csrf_token": token_of(page), **form})


def back_tz():
    return default_config().tz


def error_of(html: str) -> str:
    m = re.search(r'id="plan-error">([^<]*)', html)
    return m.group(1) if m else ""


def test_needs_a_login_and_a_csrf_token(hub):
    app, st, published = hub
    c = app.test_client()
    r = c.get(f"/staff/plan/{VAN}")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    r = c.post(f"/staff/plan/{VAN}/cancel", data={"date": "2026-11-23", "stop": EDEM})
    assert r.status_code in (302, 400)
    c = login(app)
    r = c.post(f"/staff/plan/{VAN}/cancel", data={"date": "2026-11-23", "stop": EDEM})
    assert r.status_code == 400  # logged in, but no CSRF token
    assert stored_plan(st, VAN) is None and published == []
    assert c.get(f"/staff/plan/{VAN}").headers["Cache-Control"] == "no-store"


def test_one_tap_cancels_todays_stop_in_edemissen(hub):
    app, st, published = hub
    c = login(app)
    page = c.get(f"/staff/plan/{VAN}").text
    # the cancel form of that visit carries everything: only the button is needed
    row = re.search(r'<tr class="st-planned" data-uid="jungregio-1\.edemissen-schulzentrum\.'
                    r'20261123@vanbox".*?</tr>', page, re.S).group(0)  # fmt: skip
    form = re.search(r'<form class="planform cancelform".*?</form>', row, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', form))
    action = re.search(r'action="([^"]+)"', form).group(1)
    r = c.post(action, data=fields)  # the tap: no reason typed
    assert r.status_code == 303
    plan = stored_plan(st, VAN)
    assert plan.version == 1 and published == [plan]
    page = c.get(r.headers["Location"]).text
    assert "Abgesagt." in page and "Version 1" in page
    assert re.search(r'<tr class="st-cancelled" data-uid="jungregio-1\.edemissen-schulzentrum\.'
                     r'20261123@vanbox"', page)  # fmt: skip
    assert "fällt aus" in page
    # and one more tap takes it back: the visit is planned again, with a higher sequence
    undo = re.search(r'<form class="planform undoform".*?</form>', page, re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', undo))
    r = c.post(re.search(r'action="([^"]+)"', undo).group(1), data=fields)
    assert r.status_code == 303
    back = stored_plan(st, VAN)
    assert back.version == 2 and back.exceptions == () and len(published) == 2
    v = next(v for v in back.visits_on(T.date(), back_tz()) if v.stop_key == EDEM)
    assert v.status == "planned" and v.sequence == 2


def test_every_kind_of_change_is_the_next_version_and_published(hub):
    app, st, published = hub
    c = login(app)
    steps = [
        ("cancel", {"date": "2026-11-23", "stop": EDEM, "reason": "Krankheit"}),
        ("delay", {"date": "2026-11-23", "stop": "peine-marktplatz", "delay_min": "30"}),
        ("move", {"date": "2026-11-24", "stop": "wendeburg-rathaus", "new_date": "2026-11-29",
                  "start": "10:00", "end": "12:00", "reason": "Stadtfest"}),
        ("extra", {"date": "2026-11-29", "start": "13:00", "end": "17:00", "name": "Stadtfest",
                   "municipality": "Peine", "lat": "52,3205", "lon": "10,2330", "reason": "Fest"}),
        ("closed", {"date_from": "2026-12-21", "date_to": "2027-01-03", "reason": "Ferien"}),
        ("stop", {"name": "Sonntagstreff", "municipality": "Ilsede", "weekdays": ["sun"],
                  "start": "17:00", "end": "19:00"}),  # right after the Stadtfest
    ]  # fmt: skip
    for i, (action, form) in enumerate(steps, start=1):
        r = post(c, VAN, action, **form)
        assert r.status_code == 303, (action, error_of(r.text))
        assert stored_plan(st, VAN).version == i and published[-1].version == i
    plan = stored_plan(st, VAN)
    assert sorted(e.kind for e in plan.exceptions) == ["cancel", "closed", "delay", "extra",
                                                       "move"]  # fmt: skip
    new = plan.stop("sonntagstreff")
    assert new is not None and new.weekdays == (6,) and new.municipality == "Ilsede"
    assert (new.lat, new.lon) == (52.263, 10.184)  # no coordinates: the municipality centre
    # edit that stop, take a change back, remove the stop
    r = post(c, VAN, "stop", key="sonntagstreff", name="Sonntagstreff", municipality="Ilsede",
             weekdays=["sun"], start="17:30", end="20:00")  # fmt: skip
    assert r.status_code == 303, error_of(r.text)
    assert stored_plan(st, VAN).stop("sonntagstreff").end.hour == 20
    cancel = next(e for e in plan.exceptions if e.kind == "cancel")
    assert post(c, VAN, "remove-exception", id=cancel.id).status_code == 303
    assert post(c, VAN, "remove-stop", key="sonntagstreff").status_code == 303
    final = stored_plan(st, VAN)
    assert final.version == 9 and len(published) == 9
    assert final.stop("sonntagstreff") is None and len(final.exceptions) == 4
    page = c.get(f"/staff/plan/{VAN}").text
    assert "Stadtfest" in page and "Schließzeit" in page and "verspätet" in page


@pytest.mark.parametrize(
    "action,form,words",
    [
        ("stop", {"name": "Doppelt", "municipality": "Peine", "weekdays": ["mon"],
                  "start": "12:00", "end": "14:00"}, "überschneiden"),
        ("stop", {"name": "Rückwärts", "municipality": "Peine", "weekdays": ["sun"],
                  "start": "14:00", "end": "12:00"}, "Ende vor Beginn"),
        ("stop", {"name": "Hamburg", "municipality": "Peine", "lat": "53.55", "lon": "9.99",
                  "weekdays": ["sun"], "start": "10:00", "end": "12:00"}, "Landkreis"),
        ("cancel", {"date": "2026-11-23", "stop": "gibt-es-nicht"}, "gibt-es-nicht"),
        ("delay", {"date": "2026-11-23", "stop": EDEM, "delay_min": "601"}, "1 bis 600"),
        ("delay", {"date": "2026-11-23", "stop": EDEM, "delay_min": "0"}, "1 bis 600"),
        ("closed", {"date_from": "2026-12-21", "date_to": "2026-12-20"}, "before it starts"),
        ("extra", {"date": "2026-11-23", "start": "12:00", "end": "15:00", "name": "Fest",
                   "municipality": "Peine"}, "überschneiden"),
        ("cancel", {"date": "23.11.2026", "stop": EDEM}, "Datum"),
        ("stop", {"name": "Ohne Tag", "municipality": "Peine", "start": "10:00",
                  "end": "11:00"}, "Wochentag"),
        ("cancel", {"date": "2026-11-23", "stop": EDEM, "reason": "x" * 201}, "200"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_changes_nothing(hub, action, form, words):
    app, st, published = hub
    c = login(app)
    assert post(c, VAN, "cancel", date="2026-11-30", stop=EDEM).status_code == 303
    before = stored_plan(st, VAN)
    r = post(c, VAN, action, **form)
    assert r.status_code == 400
    msg = error_of(r.text)
    assert msg.startswith("Nicht gespeichert:") and words in msg, msg
    assert stored_plan(st, VAN) == before and len(published) == 1


def test_an_unknown_van_is_refused(hub):
    app, st, published = hub
    c = login(app)
    page = c.get(f"/staff/plan/{VAN}").text
    r = c.post("/staff/plan/ghost/cancel", data={"csrf_token": token_of(page),
                                                  "date": "2026-11-23", "stop": EDEM})  # fmt: skip
    assert r.status_code == 404
    assert c.get("/staff/plan/ghost").status_code == 404
    assert stored_plan(st, "ghost") is None and published == []


def test_another_van_starts_empty_and_gets_its_own_plan(hub):
    app, st, published = hub
    c = login(app)
    index = c.get("/staff/plan/").text
    assert f"/staff/plan/{OTHER}" in index and f"/staff/plan/{VAN}" in index
    assert "Noch keine Haltestelle" in c.get(f"/staff/plan/{OTHER}").text  # not the hub's tour
    r = post(c, OTHER, "stop", name="Vechelde, Markt", municipality="Vechelde", weekdays=["mon"],
             start="09:00", end="12:00")  # fmt: skip
    assert r.status_code == 303
    assert [s.name for s in stored_plan(st, OTHER).stops] == ["Vechelde, Markt"]
    assert stored_plan(st, VAN) is None
    # a retired van is not planned any more
    registry.retire(st, OTHER)
    assert c.get(f"/staff/plan/{OTHER}").status_code == 404


def test_a_new_van_can_take_the_configured_tour_in_one_tap(hub):
    app, st, published = hub
    c = login(app)
    page = c.get(f"/staff/plan/{OTHER}").text
    n = len(default_config().tour)
    assert f"Die {n} Haltestellen aus der Konfiguration übernehmen" in page
    r = post(c, OTHER, "copy-tour")
    assert r.status_code == 303
    plan = stored_plan(st, OTHER)
    assert plan.version == 1 and [s.name for s in plan.stops] == [
        s.name for s in default_config().tour
    ]
    assert published[-1].van == OTHER and published[-1].version == 1
    assert "aus der Konfiguration übernehmen" not in c.get(f"/staff/plan/{OTHER}").text
    r = post(c, OTHER, "copy-tour")  # not twice over a plan that has stops
    assert r.status_code == 400 and "schon Haltestellen" in error_of(r.text)
    assert stored_plan(st, OTHER).version == 1


def test_the_box_has_no_plan_editor(tmp_path):
    app, st, _ = _app(tmp_path, "box")
    c = login(app)
    assert c.get(f"/staff/plan/{VAN}").status_code == 404
    st.close()


def test_with_one_van_the_index_goes_straight_to_its_plan(tmp_path):
    app, st, _ = _app(tmp_path, "hub")
    registry.retire(st, OTHER)  # only the config's own van is left
    c = login(app)
    r = c.get("/staff/plan/")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/staff/plan/{VAN}")
    st.close()
