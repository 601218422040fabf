"""kiosk/status.py: the health registry behind /healthz, /status only on the box, and the
exact position only for logged-in staff (issue 11 point 6, issue 12 point 6)."""

from __future__ import annotations

import pytest

from firmware.passwd import set_user
from kiosk import create_app
from kiosk.status import healthy, register_check
from telemetry.config import default_config
from telemetry.events import Footfall, Position, utcnow
from tests.kiosk.test_staff_auth import hash_password, login

LAT, LON = 52.386123, 10.261987  # a made-up exact position near Edemissen


@pytest.fixture
def box_app(store, tmp_path):
    pw = tmp_path / "staff.passwd"
    set_user(pw, "anna", hash_password("annas-passwort-1"))
    cfg = default_config({"staff": {"passwd_file": str(pw)}})
    store.record(Position(time=utcnow(), lat=LAT, lon=LON, mode=3, sats=9))
    return create_app({"TESTING": True}, config=cfg, store=store, mode="box")


def test_healthz_is_200_only_while_every_check_passes(box_app):
    c = box_app.test_client()
    r = c.get("/healthz")
    assert r.status_code == 200 and r.get_json()["ok"] is True and r.get_json()["failed"] == {}
    register_check(box_app, "database", lambda: (True, ""))
    register_check(box_app, "gps", lambda: (True, ""))
    assert c.get("/healthz").status_code == 200
    register_check(box_app, "gps", lambda: (False, "the GPS loop has not gone round for 61 s"))
    r = c.get("/healthz")
    assert r.status_code == 503
    body = r.get_json()
    assert body["ok"] is False
    assert body["failed"] == {"gps": "the GPS loop has not gone round for 61 s"}
    assert body["checks"]["database"] == {"ok": True, "reason": ""}
    register_check(box_app, "gps", lambda: (True, ""))  # it recovers
    assert c.get("/healthz").status_code == 200


def test_a_check_that_raises_is_a_failed_check(box_app):
    def broken():
        raise RuntimeError("boom")

    register_check(box_app, "broken", broken)
    r = box_app.test_client().get("/healthz")
    assert r.status_code == 503 and r.get_json()["failed"]["broken"] == "RuntimeError: boom"
    with box_app.app_context():
        assert healthy() == (False, {"broken": "RuntimeError: boom"})


def test_the_registry_is_the_apps_extensions_dict(box_app):
    box_app.extensions.setdefault("vanbox_health", {})["x"] = lambda: (False, "why")
    assert box_app.test_client().get("/healthz").get_json()["failed"] == {"x": "why"}


def test_healthz_in_hub_mode_but_status_only_on_the_box(store):
    hub = create_app({"TESTING": True}, config=default_config(), store=store, mode="hub")
    assert hub.test_client().get("/healthz").status_code == 200
    assert "box_status.status_page" not in hub.view_functions
    assert "box_status.status_json" not in hub.view_functions
    box = create_app({"TESTING": True}, config=default_config(), store=store, mode="box")
    assert "box_status.status_page" in box.view_functions


def test_anonymous_status_has_no_position_and_no_small_counts(box_app):
    """Anyone on the van's network can poll /status: no position at all (a rounded one,
    polled, is a track), and today's counts of 1 or 2 as "<3"."""
    c = box_app.test_client()
    st = box_app.extensions["vanbox_store"]
    now = utcnow()
    ins = [Footfall(time=now, kind="in", sensor="beam-pair") for _ in range(2)]
    outs = [Footfall(time=now, kind="out", sensor="beam-pair") for _ in range(3)]
    st.record_many(ins + outs)
    d = c.get("/status.json").get_json()
    assert d["last_fix"]["mode"] == 3 and "age_s" in d["last_fix"]
    assert "lat" not in d["last_fix"] and d["last_fix"]["position"] == "staff only"
    assert d["today"]["in"] is None and d["today"]["out"] == 3 and d["today"]["pass"] == 0
    page = c.get("/status").text
    for text in (f"{LAT:.2f}", f"{LON:.2f}", f"{LAT:.1f}"):
        assert text not in page and text not in c.get("/status.json").text
    assert "angemeldete Mitarbeitende" in page and "&lt;3 / 3 / 0" in page
    login(c, "anna", "annas-passwort-1")
    assert c.get("/status.json").get_json()["today"]["in"] == 2  # staff see every count


def test_staff_see_the_exact_position(box_app):
    c = box_app.test_client()
    r = login(c, "anna", "annas-passwort-1")
    assert r.status_code in (302, 303)
    d = c.get("/status.json").get_json()
    assert d["last_fix"]["lat"] == LAT and d["last_fix"]["lon"] == LON
    assert "position" not in d["last_fix"]
    assert f"{LAT:.5f}" in c.get("/status").text


def test_status_shows_failing_health(box_app):
    register_check(box_app, "database", lambda: (False, "database /x is read-only: remount"))
    c = box_app.test_client()
    assert "funktioniert NICHT" in c.get("/status").text
    d = c.get("/status.json").get_json()
    assert d["healthy"] is False and "read-only" in d["failed"]["database"]


def test_over_the_lan_status_needs_a_login(box_app):
    """kiosk.bind open to the van's network: only the kiosk and the public map are open
    there; /status and /status.json need a staff login (the box itself may always ask)."""
    lan = {"REMOTE_ADDR": "192.0.2.7"}  # a documentation address: never contacted
    c = box_app.test_client()
    r = c.get("/status", environ_base=lan)
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    assert c.get("/status.json", environ_base=lan).status_code == 401
    assert c.get("/", environ_base=lan).status_code in (200, 302)  # the kiosk stays open
    assert c.get("/map", environ_base=lan).status_code == 200
    assert c.get("/status.json").status_code == 200  # from the box itself
    login(c, "anna", "annas-passwort-1")
    assert c.get("/status.json", environ_base=lan).status_code == 200
