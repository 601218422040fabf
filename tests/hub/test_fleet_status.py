"""The hub's /status and /status.json (kiosk/fleet_status.py) and ``vanbox status --url``
against a hub: every van, online/offline, last contact, fix age, reported outbox depth,
per-day completeness; exact positions only for logged-in staff."""

from __future__ import annotations

import argparse
import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from firmware import status as status_cmd
from hub.reconcile import Reconciler
from kiosk import create_app
from kiosk.auth import set_user
from telemetry.clock import ScaledClock
from telemetry.config import default_config
from telemetry.events import Footfall, Position
from telemetry.store import Store
from telemetry.tally import encode

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = NOW.astimezone().date().isoformat()
PASSWORD = "geheimes-passwort-1"
LAT, LON = 52.386123, 10.261456


class FakeHub:
    def publish(self, topic: str, payload: str, *, retain: bool = False) -> bool:
        return True


@pytest.fixture
def hub_store(tmp_path):
    s = Store(tmp_path / "hub.db", tz="Europe/Berlin")
    t = NOW.timestamp()  # the app's clock is pinned to NOW (see `app`)
    s.ingest_many(
        [
            Position(time=NOW - timedelta(minutes=3), lat=LAT, lon=LON, van="v-online"),
            Footfall(time=NOW - timedelta(minutes=5), kind="in", van="v-online"),
        ]
    )
    with s.transaction() as conn:
        conn.executemany(
            "INSERT INTO van_status (van, status, status_since, last_seen) VALUES (?,?,?,?)",
            [("v-online", "online", t - 600, t - 60), ("v-offline", "offline", t - 7200, t - 7200)],
        )
    rec = Reconciler(s)
    day = s.day_of(NOW)
    rec(FakeHub(), [("v-online", "tally", json.loads(encode({day: {"footfall": 1}}, tst=t,
                                                               outbox=4)))])  # fmt: skip
    rec(FakeHub(), [("v-offline", "tally", json.loads(encode({day: {"footfall": 2}}, tst=t,
                                                                outbox=17)))])  # fmt: skip
    from telemetry import registry

    registry.register(s, ["v-online", "v-offline", "v-new"], now=t)
    for van in ("v-online", "v-offline"):
        registry.rename(s, van, van.upper(), now=t)
        registry.publish(s, van, now=t)
    yield s
    s.close()


@pytest.fixture
def app(tmp_path, hub_store):
    pw = tmp_path / "staff.passwd"
    set_user(pw, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(pw)}})
    app = create_app({"TESTING": True}, config=cfg, store=hub_store, mode="hub")
    # collection may run minutes before this test: the page's clock stands at NOW
    app.extensions["vanbox_clock"] = ScaledClock(NOW, speed=1e-9)
    return app


def login(client) -> None:
    page = client.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/staff/login", data={"name": "anna", "password": PASSWORD,
                                          "csrf_token": token, "next": "/staff/"})  # fmt: skip
    assert r.status_code == 302 and "login" not in r.headers["Location"]


def test_status_json_lists_every_van_without_exact_positions(app):
    c = app.test_client()
    d = c.get("/status.json").get_json()
    assert d["mode"] == "hub"
    vans = {v["van"]: v for v in d["vans"]}
    assert set(vans) == {"v-online", "v-offline"}  # not the unpublished "v-new"
    on, off = vans["v-online"], vans["v-offline"]
    assert on["status"] == "online" and off["status"] == "offline"
    assert 50 <= on["last_contact_age_s"] <= 120
    assert 170 <= on["last_fix"]["age_s"] <= 240
    assert on["last_fix"]["position"] == "staff only" and "lat" not in on["last_fix"]
    assert (on["outbox"], off["outbox"]) == (4, 17)
    assert (on["days"], on["days_complete"], on["incomplete"]) == (1, 1, {})
    assert off["days_complete"] == 0 and list(off["incomplete"].values()) == [["footfall"]]
    page = c.get("/status")
    assert page.status_code == 200
    text = json.dumps(d) + page.text
    assert "52.386" not in text and "10.261" not in text
    assert "1 von 1" in page.text and "0 von 1" in page.text and "fehlt footfall" in page.text


def test_staff_see_exact_positions(app):
    c = app.test_client()
    login(c)
    on = {v["van"]: v for v in c.get("/status.json").get_json()["vans"]}["v-online"]
    assert (on["last_fix"]["lat"], on["last_fix"]["lon"]) == (LAT, LON)
    assert "52.38612" in c.get("/status").text


def test_unpublished_vans_are_listed_for_staff_only(app):
    c = app.test_client()
    anon = c.get("/status.json").get_json()["vans"]
    assert "v-new" not in {v["van"] for v in anon}
    assert "v-new" not in c.get("/status").text
    login(c)
    staff = {v["van"]: v for v in c.get("/status.json").get_json()["vans"]}
    assert staff["v-new"]["state"] == "new" and "v-new" in c.get("/status").text


def test_box_mode_keeps_its_own_status_page(store):
    app = create_app({"TESTING": True}, config=default_config(), store=store, mode="box")
    d = app.test_client().get("/status.json").get_json()
    assert "vans" not in d and d.get("mode") != "hub"


def test_vanbox_status_url_prints_a_hub_as_a_table(app, capsys):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        rc = status_cmd.run(argparse.Namespace(url=url, json=False, config="/nonexistent"))
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["van", "link", "last"]
    online = next(line for line in lines if line.startswith("v-online"))
    offline = next(line for line in lines if line.startswith("v-offline"))
    assert "online" in online and "1/1" in online and " 4 " in online
    assert "offline" in offline and "0/1 INCOMPLETE" in offline and "17" in offline
    assert "v-offline" in out and "hub lacks footfall" in out
    assert "52.386" not in out


def test_vanbox_status_on_a_box_says_which_days_the_hub_has_not_confirmed(tmp_path):
    from telemetry.delivery import BoxDelivery

    db = tmp_path / "box.db"
    cfg = default_config({"database": {"path": str(db)}, "van": {"id": "boxvan"},
                          "kiosk": {"port": 1}})  # fmt: skip
    box = Store(db, van="boxvan", tz=cfg.timezone)
    box.record(Footfall(time=NOW - timedelta(days=2), kind="in"))
    box.mark_sent(r.seq for r in box.pending())
    assert status_cmd.collect(cfg)["hub_unconfirmed_days"] is None  # MQTT never ran
    BoxDelivery(box)
    box.close()
    from zoneinfo import ZoneInfo

    day = (NOW - timedelta(days=2)).astimezone(ZoneInfo(cfg.timezone)).date().isoformat()
    assert status_cmd.collect(cfg)["hub_unconfirmed_days"] == [day]
