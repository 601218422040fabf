"""Issue 14 point 4: the staff way in on the touchscreen. A long press on the start
screen's greeting opens a PIN keypad; the PIN is the password of the staff login
"touchscreen" (``vanbox passwd touchscreen``), under the staff area's lockout; its staff
pages carry "Zurück zum Kiosk" and return to the check-in by themselves when idle."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash
from werkzeug.serving import WSGIRequestHandler, make_server

from kiosk import checkin, create_app
from kiosk.auth import set_user
from telemetry.config import default_config
from telemetry.store import Store
from tests.steady import steady_center

PIN = "24681357"


@pytest.fixture
def db(tmp_path: Path):
    s = Store(tmp_path / "vanbox.db", van="testvan", tid="TV")
    yield s
    s.close()


@pytest.fixture
def app(tmp_path: Path, db):
    f = tmp_path / "staff.passwd"
    set_user(f, checkin.TOUCHSCREEN_LOGIN, generate_password_hash(PIN, "pbkdf2:sha256:1000"))
    set_user(f, "anna", generate_password_hash("annas-passwort", "pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(f), "max_failures": 3}})
    return create_app(config=cfg, store=db)


def token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_right_pin_opens_the_staff_area_wrong_pin_does_not(app):
    c = app.test_client()
    html = c.get("/staff-pin").get_data(as_text=True)
    assert "PIN für das Team" in html and html.count('data-key="') == 11
    assert c.get("/staff/").status_code == 302  # not logged in
    r = c.post("/staff-pin", data={"csrf_token": token(html), "pin": "12345678"})
    assert r.status_code == 401 and "Die PIN stimmt nicht." in r.get_data(as_text=True)
    assert c.get("/staff/").status_code == 302
    r = c.post("/staff-pin", data={"csrf_token": token(html), "pin": PIN})
    assert r.status_code == 303 and r.headers["Location"] == "/staff/"
    page = c.get("/staff/").get_data(as_text=True)
    assert "Zurück zum Kiosk" in page and "kiosk/staff-return.js" in page
    # "Zurück zum Kiosk": logged out, back at the check-in
    r = c.post("/staff/logout", data={"csrf_token": token(page), "to": "kiosk"})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert c.get("/staff/").status_code == 302


def test_other_logins_see_no_kiosk_return_and_pin_is_not_their_password(app):
    c = app.test_client()
    html = c.get("/staff-pin").get_data(as_text=True)
    # only the touchscreen login is tried: anna's password as a "PIN" is refused
    r = c.post("/staff-pin", data={"csrf_token": token(html), "pin": "annas-passwort"})
    assert r.status_code == 401
    login = c.get("/staff/login").get_data(as_text=True)
    r = c.post("/staff/login", data={"csrf_token": token(login), "name": "anna",
                                      "password": "annas-passwort", "next": "/staff/"})  # fmt: skip
    assert r.status_code == 302
    page = c.get("/staff/").get_data(as_text=True)
    assert "Zurück zum Kiosk" not in page and "staff-return.js" not in page
    r = c.post("/staff/logout", data={"csrf_token": token(page)})  # the usual logout
    assert "/staff/login" in r.headers["Location"]


def test_pin_guesses_hit_the_lockout(app):
    c = app.test_client()
    tok = token(c.get("/staff-pin").get_data(as_text=True))
    codes = [c.post("/staff-pin", data={"csrf_token": tok, "pin": f"1111000{i}"}).status_code
             for i in range(3)]  # fmt: skip
    assert codes[:2] == [401, 401] and codes[2] == 429
    r = c.post("/staff-pin", data={"csrf_token": tok, "pin": PIN})  # locked: even the right one
    assert r.status_code == 429 and "Fehlversuche" in r.get_data(as_text=True)


@pytest.mark.parametrize("pin", ["", "12 34", "abc", "1" * 65, "١٢٣٤٥٦٧٨"])
def test_malformed_pins_are_refused(app, pin):
    c = app.test_client()
    tok = token(c.get("/staff-pin").get_data(as_text=True))
    assert c.post("/staff-pin", data={"csrf_token": tok, "pin": pin}).status_code == 401
    assert c.post("/staff-pin", data={"pin": PIN}).status_code == 400  # no CSRF token


def test_the_keypad_is_for_the_touchscreen_only(app):
    """Over the LAN (kiosk.bind = "0.0.0.0") there is no keypad and no long press: staff
    log in with name and password there."""
    lan = app.test_client()
    lan.environ_base["REMOTE_ADDR"] = "192.168.4.23"
    assert lan.get("/staff-pin").status_code == 404
    assert lan.post("/staff-pin", data={"pin": PIN}).status_code in (400, 404)
    assert "data-staff-url" not in lan.get("/").get_data(as_text=True)
    assert lan.get("/staff/").status_code == 302  # the staff area wants a login
    assert 'data-staff-url="/staff-pin"' in app.test_client().get("/").get_data(as_text=True)


def test_hub_has_no_touchscreen_way_in(tmp_path):
    hub = Store(tmp_path / "hub.db", van="")
    try:
        c = create_app(config=default_config(), store=hub, mode="hub").test_client()
        assert c.get("/staff-pin").status_code == 404
    finally:
        hub.close()


# --- in Chromium with touch -------------------------------------------------------------


class Quiet(WSGIRequestHandler):
    def log(self, *args) -> None:
        pass


@pytest.fixture
def url(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = make_server("127.0.0.1", port, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    srv.shutdown()
    srv.server_close()


def long_press(page, selector: str, ms: int) -> None:
    x, y = steady_center(page, page.locator(selector))
    cdp = page.context.new_cdp_session(page)
    point = [{"x": x, "y": y}]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": point})
    page.wait_for_timeout(ms)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


@pytest.mark.browser
def test_long_press_pin_staff_area_and_back_by_touch(url, touch_page, screenshot_dir):
    page = touch_page
    page.goto(url + "/")
    long_press(page, ".welcome h1", 600)  # a short press: nothing
    page.wait_for_timeout(1800)
    assert page.url == url + "/"
    page.locator(".welcome h1").tap()  # a tap: nothing
    page.wait_for_timeout(300)
    assert page.url == url + "/"
    long_press(page, ".welcome h1", 2300)
    page.wait_for_url(url + "/staff-pin")
    page.get_by_role("heading", name="PIN für das Team").wait_for()
    page.screenshot(path=str(screenshot_dir / "checkin-de-new-staff-pin-800x480.png"))
    outside = page.evaluate(
        """() => [...document.querySelectorAll('button, a.btn, input:not([type=hidden])')]
                 .map(e => e.getBoundingClientRect())
                 .filter(r => r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5
                              || r.height < 48 || r.width < 48).length"""
    )
    assert outside == 0  # every key on the 800x480 screen, each at least 48 px
    for k in "9" + "⌫":  # a wrong digit, then cleared
        page.locator(f'[data-key="{"clear" if k == "⌫" else k}"]').tap()
    assert page.locator("#pin").input_value() == ""
    for k in PIN:
        page.locator(f'[data-key="{k}"]').tap()
    page.get_by_role("button", name="Anmelden").tap()
    page.wait_for_url(url + "/staff/")
    page.get_by_role("button", name="Zurück zum Kiosk").tap()
    page.wait_for_url(url + "/")
    page.get_by_role("heading", name="Hallo! Schön, dass du da bist.").wait_for()
    page.goto(url + "/staff/")
    assert "/staff/login" in page.url  # logged out


@pytest.mark.browser
def test_idle_staff_page_on_the_touchscreen_returns_to_the_kiosk(url, touch_page):
    page = touch_page
    page.clock.install()
    page.goto(url + "/staff-pin")
    page.locator("#pin").fill(PIN)
    page.get_by_role("button", name="Anmelden").tap()
    page.wait_for_url(url + "/staff/")
    page.clock.run_for(100_000)  # under the 2 minutes: stays
    time.sleep(0.3)
    assert page.url == url + "/staff/"
    page.clock.run_for(25_000)  # over: logged out, back at the check-in
    page.wait_for_url(url + "/", timeout=10_000)
    page.goto(url + "/staff/")
    assert "/staff/login" in page.url


@pytest.mark.browser
def test_ended_session_on_the_touchscreen_returns_to_the_checkin(url, db, touch_page):
    """The today page's minute update finds the session ended (logged out elsewhere, or
    the idle return's logout answered first): on the touchscreen the next person is a
    visitor, so the page goes to the check-in, not to the staff login."""
    page = touch_page
    page.clock.install()
    page.goto(url + "/staff-pin")
    page.locator("#pin").fill(PIN)
    page.get_by_role("button", name="Anmelden").tap()
    page.wait_for_url(url + "/staff/")
    page.get_by_role("button", name="Zurück zum Kiosk").wait_for()
    with db.transaction() as conn:
        conn.execute("DELETE FROM staff_sessions")
    page.clock.run_for(61_000)  # the minute update: 401
    page.wait_for_url(url + "/", timeout=10_000)
    page.get_by_role("heading", name="Hallo! Schön, dass du da bist.").wait_for()
