"""Staff record counselling contacts (/staff/contacts): login and CSRF like every staff
page; a typical contact is stored once with the defaults, its time rounded down to the
hour, and queued for the hub; bad input (an unknown or retired partner, persons out of
range, no topic, a forged post) is refused with one clear German line and nothing is
stored; on the hub staff pick the van, and the hub's own contacts never enter an outbox."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from werkzeug.security import generate_password_hash

from kiosk import create_app
from kiosk.auth import set_user
from telemetry import contacts, registry
from telemetry.config import default_config
from telemetry.config_funders import DEFAULT_PARTNERS
from telemetry.events import Footfall, StopVisit, to_epoch
from telemetry.store import Store
from tests.kiosk.test_staff_plan import PASSWORD, login, token_of

T = datetime(2026, 11, 23, 13, 47, 12, tzinfo=UTC)  # Monday 14:47 in Peine
VAN = "jungregio-1"
OTHER = "van-b"


class Clock:
    def now(self) -> datetime:
        return T


def _app(tmp_path, mode: str, **overrides):
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}, **overrides})
    st = Store(tmp_path / f"{mode}.db", van="" if mode == "hub" else VAN, tz=cfg.timezone)
    if mode == "hub":
        st.ingest_many([Footfall(time=T, kind="in", occupancy=1, van=OTHER)])
        registry.register(st, [OTHER])
    app = create_app({"TESTING": True}, config=cfg, store=st, mode=mode)
    app.extensions["vanbox_clock"] = Clock()
    return app, st


@pytest.fixture
def box(tmp_path):
    old = contacts.current()
    app, st = _app(tmp_path, "box")
    yield app, st
    st.close()
    contacts._codes = old


@pytest.fixture
def hub(tmp_path):
    old = contacts.current()
    app, st = _app(tmp_path, "hub")
    yield app, st
    st.close()
    contacts._codes = old


def cid_of(page: str) -> str:
    return re.search(r'name="cid" value="([^"]+)"', page).group(1)


def checked(page: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]+)" checked', page)


def typical(page: str, **over) -> dict:
    """What a typical contact posts: the form's defaults plus a topic and an age group."""
    form = {
        "csrf_token": token_of(page),
        "cid": cid_of(page),
        "topics": ["job"],
        "age_group": "18-20",
        "persons": "1",
    }
    for name in ("kind", "municipality", "duration", "first_contact", "outcome", "van"):
        got = checked(page, name)
        if got:
            form[name] = got[0]
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def error_of(html: str) -> str:
    m = re.search(r'id="contact-error"[^>]*>([^<]*)', html)
    return m.group(1) if m else ""


def rows(st: Store) -> list[dict]:
    cur = st.reader().execute("SELECT * FROM contacts ORDER BY rowid")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_login_required(box):
    app, st = box
    r = app.test_client().get("/staff/contacts/new")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    r = app.test_client().get("/staff/contacts/")
    assert r.status_code == 302


def test_a_typical_contact_is_stored_once_with_the_defaults(box):
    app, st = box
    st.record(StopVisit(arrived=T, name="Ilsede, Gebläsehalle", municipality="Ilsede",
                        lat=52.263, lon=10.184))  # fmt: skip
    st.mark_sent([r.seq for r in st.pending()])
    c = login(app)
    page = c.get("/staff/contacts/new").text
    # the defaults: kind Beratung, the current stop's municipality, 15-30 min, first
    # contact, outcome geklärt; topics and age group are the staff's taps
    assert checked(page, "kind") == ["beratung"]
    assert checked(page, "municipality") == ["Ilsede"]
    assert checked(page, "duration") == ["15-30"]
    assert checked(page, "first_contact") == ["1"]
    assert checked(page, "outcome") == ["geklaert"]
    assert checked(page, "topics") == [] and checked(page, "age_group") == []
    # no free text anywhere: only choices, a number and hidden fields
    assert "<textarea" not in page
    types = set(re.findall(r'<input[^>]*type="([a-z]+)"', page))
    assert types == {"hidden", "radio", "checkbox", "number"}
    form = typical(page)
    r = c.post("/staff/contacts/new", data=form)
    assert r.status_code == 303 and r.headers["Location"].endswith("/staff/contacts/?saved=1")
    again = c.post("/staff/contacts/new", data=form)  # a second tap on "Speichern"
    assert again.status_code == 303
    (row,) = rows(st)
    hour = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    assert row == {
        "id": form["cid"], "van": VAN, "ts": to_epoch(hour), "day": "2026-11-23", "hour": 14,
        "kind": "beratung", "topics": '["job"]', "duration": "15-30", "age_group": "18-20",
        "municipality": "Ilsede", "first_contact": 1, "persons": 1, "referrals": "[]",
        "outcome": "geklaert",
    }  # fmt: skip
    (out,) = st.pending()
    assert out.kind == "contact" and json.loads(out.payload)["id"] == form["cid"]
    done = c.get(r.headers["Location"]).text
    assert "Gespeichert" in done and "14:00 · Beratung · Job" in done
    assert "1 Kontakt, 1 Person erreicht" in done


def test_a_group_with_referrals_on_the_box(box):
    app, st = box
    c = login(app)
    page = c.get("/staff/contacts/new").text
    assert checked(page, "municipality") == []  # no stop yet: staff choose
    form = typical(page, kind="gruppe", persons="12", municipality="outside",
                   referrals=["jba", "schuldnerberatung"], outcome="vermittelt",
                   first_contact="0", topics=["job", "money"])  # fmt: skip
    assert c.post("/staff/contacts/new", data=form).status_code == 303
    (row,) = rows(st)
    assert (row["persons"], row["municipality"], row["first_contact"]) == (12, "outside", 0)
    assert json.loads(row["referrals"]) == ["jba", "schuldnerberatung"]
    listed = c.get("/staff/contacts/").text
    assert "12 Personen" in listed and "Jugendberufsagentur, Schuldnerberatung" in listed


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"referrals": ["inkasso"]}, "Vermittlung: „inkasso“ ist nicht in der Liste."),
        ({"persons": "0"}, "Personen: bitte eine Zahl von 1 bis 50."),
        ({"persons": "51"}, "Personen: bitte eine Zahl von 1 bis 50."),
        ({"persons": "zwei"}, "Personen: bitte eine Zahl von 1 bis 50."),
        ({"topics": None}, "Themen: bitte mindestens eins wählen."),
        ({"duration": "lt5"}, "Dauer: bitte auswählen."),
        ({"age_group": None}, "Alter: bitte auswählen."),
        ({"municipality": "Hannover"}, "Wohnort: bitte auswählen."),
    ],
)
def test_bad_input_is_refused_and_nothing_stored(box, over, message):
    app, st = box
    c = login(app)
    page = c.get("/staff/contacts/new").text
    r = c.post("/staff/contacts/new", data=typical(page, **{"municipality": "Peine", **over}))
    assert r.status_code == 400
    assert error_of(r.text) == message
    assert rows(st) == [] and st.outbox_depth() == 0
    # the staff's choices are kept, and the same form id is offered again
    assert checked(r.text, "kind") == ["beratung"] and cid_of(r.text) == cid_of(page)


def test_boundary_persons_50_is_taken(box):
    app, st = box
    c = login(app)
    page = c.get("/staff/contacts/new").text
    form = typical(page, persons="50", municipality="Peine")
    assert c.post("/staff/contacts/new", data=form).status_code == 303
    assert rows(st)[0]["persons"] == 50


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_forged_post_without_csrf_is_refused(box, token):
    app, st = box
    c = login(app)
    form = typical(c.get("/staff/contacts/new").text, municipality="Peine", csrf_token=token)
    r = c.post("/staff/contacts/new", data=form)
    assert r.status_code == 400 and "CSRF" in r.text
    assert rows(st) == [] and st.outbox_depth() == 0


def test_a_post_with_no_form_id_or_another_side_s_id_is_refused(box):
    app, st = box
    c = login(app)
    page = c.get("/staff/contacts/new").text
    for cid in (None, "x", "0190a000-0000-7000-8000-000000000001",
                "0190a000-0000-8000-8000-000000000001"):  # fmt: skip
        r = c.post("/staff/contacts/new", data=typical(page, municipality="Peine", cid=cid))
        assert r.status_code == 400 and "neu laden" in r.text
    assert rows(st) == []


def test_a_retired_partner_is_not_offered_nor_taken(tmp_path):
    old = contacts.current()
    partners = [{**p, "active": p["code"] != "schule"} for p in DEFAULT_PARTNERS]
    app, st = _app(tmp_path, "box", contacts={"partners": partners})
    try:
        c = login(app)
        page = c.get("/staff/contacts/new").text
        assert 'value="jba"' in page and 'value="schule"' not in page
        r = c.post("/staff/contacts/new",
                   data=typical(page, municipality="Peine", referrals=["schule"]))  # fmt: skip
        assert r.status_code == 400 and "„schule“" in error_of(r.text)
        assert rows(st) == []
    finally:
        st.close()
        contacts._codes = old


def test_on_the_hub_staff_pick_the_van(hub):
    app, st = hub
    c = login(app)
    page = c.get(f"/staff/contacts/new?van={OTHER}").text
    assert checked(page, "van") == [OTHER]
    form = typical(page, municipality="Lengede")
    assert cid_of(page)[14] == "8"  # the hub's own contacts: UUIDv8
    r = c.post("/staff/contacts/new", data=form)
    assert r.status_code == 303 and f"van={OTHER}" in r.headers["Location"]
    (row,) = rows(st)
    assert row["van"] == OTHER and row["id"] == form["cid"]
    assert st.outbox_depth() == 0  # stored for the van, never sent anywhere
    assert "Gespeichert" in c.get(r.headers["Location"]).text
    # a van the hub does not know
    form = typical(c.get("/staff/contacts/new").text, municipality="Lengede", van="van-x")
    assert c.post("/staff/contacts/new", data=form).status_code == 404
    assert c.get("/staff/contacts/new?van=van-x").status_code == 404
    assert len(rows(st)) == 1
