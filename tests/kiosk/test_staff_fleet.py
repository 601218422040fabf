"""The staff registry pages on the hub (/staff/fleet): login and CSRF like the other staff
pages; staff name, publish, rename, set the tracker id and retire a van; bad input is
refused with one clear line and changes nothing; a retired van stays in the reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from werkzeug.security import generate_password_hash

from kiosk import create_app
from kiosk.auth import set_user
from telemetry import registry
from telemetry.config import default_config
from telemetry.events import CheckIn, Footfall
from telemetry.store import Store
from tests.kiosk.test_staff_plan import PASSWORD, login, token_of  # noqa: E402

T = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return T


@pytest.fixture
def hub(tmp_path):
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}})
    st = Store(tmp_path / "hub.db", tz=cfg.timezone)
    st.ingest_many(
        [Footfall(time=T, kind="in", occupancy=1, van=v) for v in ("van-a", "van-b")]
        + [CheckIn(time=T, age_group="18-20", topics=("work",), van="van-b")]
    )
    registry.register(st, ["van-a", "van-b"])
    app = create_app({"TESTING": True}, config=cfg, store=st, mode="hub")
    app.extensions["vanbox_clock"] = Clock()  # no public-page cache: see each change at once
    yield app, st
    st.close()


def post(c, van: str, **form):
    page = c.get("/staff/fleet/").text
    return c.post(f"/staff/fleet/{van}", data={"csrf_token": token_of(page), **form})


def test_needs_a_login(hub):
    app, _ = hub
    c = app.test_client()
    r = c.get("/staff/fleet/")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    r = c.post("/staff/fleet/van-a", data={"name": "X", "action": "publish"})
    assert r.status_code in (302, 400)
    assert registry.get(hub[1], "van-a").state == "new"


def test_post_without_csrf_token_is_refused(hub):
    app, st = hub
    c = login(app)
    r = c.post("/staff/fleet/van-a", data={"name": "Bus Nord", "action": "publish"})
    assert r.status_code == 400
    assert registry.get(st, "van-a").state == "new"


def test_list_shows_new_vans_for_staff(hub):
    app, _ = hub
    page = login(app).get("/staff/fleet/").text
    assert 'id="van-van-a"' in page and 'id="van-van-b"' in page
    assert page.count("neu (nicht öffentlich)") == 2
    assert ">Busse</a>" in page  # in the staff navigation
    assert page.count('value="publish"') == 2


def test_name_publish_rename_tid_and_retire(hub):
    app, st = hub
    c = login(app)
    public = app.test_client()
    r = post(c, "van-a", name="Bus Nord", tid="BN", action="publish")
    assert r.status_code == 303 and "done=publish" in r.headers["Location"]
    assert "Veröffentlicht" in c.get(r.headers["Location"]).text
    v = registry.get(st, "van-a")
    assert (v.name, v.tid, v.state) == ("Bus Nord", "BN", "public")
    assert "Bus Nord" in public.get("/").text
    post(c, "van-a", name="Bus Nord-Ost", tid="NO", action="save")
    assert "Bus Nord-Ost" in public.get("/").text
    assert registry.get(st, "van-a").tid == "NO"
    post(c, "van-a", name="Bus Nord-Ost", tid="NO", action="retire")
    assert registry.get(st, "van-a").state == "retired"
    assert "Bus Nord-Ost" not in public.get("/").text
    assert public.get("/van/van-a").status_code == 404
    page = c.get("/staff/fleet/").text
    assert "ausgemustert" in page and "Wieder veröffentlichen" in page


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "tid": "", "action": "publish"}, "Name"),
        ({"name": "x" * 61, "tid": "", "action": "save"}, "höchstens 60 Zeichen"),
        ({"name": "Bus", "tid": "ABC", "action": "publish"}, "Tracker-ID"),
        ({"name": "Bus", "tid": "Ö", "action": "save"}, "Tracker-ID"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(hub, form, message):
    app, st = hub
    c = login(app)
    before = registry.get(st, "van-a")
    r = post(c, "van-a", **form)
    assert r.status_code == 400
    assert message in r.text and "nichts geändert" in r.text
    assert registry.get(st, "van-a") == before


def test_unknown_van_and_unknown_action(hub):
    app, st = hub
    c = login(app)
    assert post(c, "nobody", name="X", action="save").status_code == 404
    assert post(c, "van-a", name="X", action="explode").status_code == 400
    assert registry.get(st, "van-a").name == ""


def test_a_retired_van_stays_in_the_reports(hub):
    app, st = hub
    c = login(app)
    post(c, "van-b", name="Bus Süd", tid="", action="publish")
    post(c, "van-b", name="Bus Süd", tid="", action="retire")
    assert "Bus Süd" not in app.test_client().get("/").text
    report = c.get("/staff/reports/summary?p=day&d=2026-11-23&van=van-b")
    assert report.status_code == 200
    assert '<option value="van-b"' in report.text  # still in the van picker
    csv = c.get("/staff/export/summary.csv?p=day&d=2026-11-23&van=van-b").text
    assert "Check-ins;1" in csv
