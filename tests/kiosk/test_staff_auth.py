"""The staff area's door: login, wrong passwords, lockout, session timeout, CSRF, headers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from kiosk import auth, create_app
from kiosk.auth import delete_user, set_user
from telemetry.config import default_config

PASSWORD = "richtig-geheim-1"
MAX_FAILURES = 3
LOCKOUT_MIN = 15
SESSION_MIN = 30

PAGES = [
    "/staff/",
    "/staff/reports/",
    "/staff/reports/summary",
    "/staff/reports/stops?p=day&d=2026-11-02",
    "/staff/reports/quality?p=year&d=2026-01-01",
    "/staff/annual",
    "/staff/annual?year=2025",
]
FILES = [
    "/staff/export/stops.csv?p=month&d=2026-11-01",
    "/staff/export/stops.xlsx?p=month&d=2026-11-01",
    "/staff/export/topics.csv?p=year&d=2026-01-01&public=1",
    "/staff/reports/stops.svg?p=month&d=2026-11-01",
    "/staff/annual.csv?year=2026",
    "/staff/annual.xlsx?year=2026",
    "/staff/today/tiles?auto=1",
]


def hash_password(password: str) -> str:
    """A cheap pbkdf2 hash (the file accepts them): the tests check the door, not the cost
    of scrypt (``vanbox passwd``'s scrypt hashes are tested in tests/firmware)."""
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


class Clock:
    """Stands in for ``kiosk.auth.clock``: wall time plus what the test adds."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, minutes: float) -> None:
        self.offset += minutes * 60


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(auth, "clock", c)
    return c


@pytest.fixture
def passwd(tmp_path: Path) -> Path:
    f = tmp_path / "staff.passwd"
    set_user(f, "anna", hash_password(PASSWORD))
    set_user(f, "ben", hash_password("bens-passwort-2"))
    return f


@pytest.fixture
def app(passwd, store, clock):
    cfg = default_config(
        {
            "staff": {
                "passwd_file": str(passwd),
                "max_failures": MAX_FAILURES,
                "lockout_minutes": LOCKOUT_MIN,
                "session_minutes": SESSION_MIN,
            }
        }
    )
    return create_app({"TESTING": True}, config=cfg, store=store)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client, name: str = "anna", password: str = PASSWORD, next_: str = "/staff/"):
    page = client.get("/staff/login")
    assert page.status_code == 200
    data = {"name": name, "password": password, "csrf_token": csrf_of(page.text), "next": next_}
    return client.post("/staff/login", data=data)


def is_login_redirect(resp) -> bool:
    return resp.status_code == 302 and resp.headers["Location"].startswith("/staff/login")


def logged_in(client) -> bool:
    """Does a real page render (not a redirect to the login)?"""
    r = client.get("/staff/reports/summary?p=day&d=2026-11-02")
    assert r.status_code in (200, 302), r.status_code
    return r.status_code == 200 and "Abmelden" in r.text


def test_direct_urls_without_login_are_refused(app):
    c = app.test_client()
    for url in PAGES:
        r = c.get(url)
        assert is_login_redirect(r), url
        assert "next=" in r.headers["Location"]
        assert r.headers["Cache-Control"] == "no-store"
    for url in FILES:
        r = c.get(url)
        assert r.status_code == 401, url
        assert r.mimetype == "text/plain"
        assert b"Stop" not in r.data and b"<svg" not in r.data
    # A POST without the session's CSRF token is refused before anything else.
    assert c.post("/staff/logout").status_code == 400


def test_login_then_every_page_opens_and_next_is_kept(app):
    c = app.test_client()
    r = login(c, next_="/staff/reports/hours?p=week&d=2026-11-02")
    assert r.status_code == 302
    assert r.headers["Location"] == "/staff/reports/hours?p=week&d=2026-11-02"
    for url in PAGES:
        r = c.get(url, follow_redirects=True)
        assert r.status_code == 200, url
        assert "Anmelden</button>" not in r.text
        assert r.headers["Cache-Control"] == "no-store"
    for url in FILES:
        assert c.get(url).status_code == 200, url


def test_next_cannot_leave_the_staff_area(app):
    for target in ("https://evil.example/", "//evil.example/staff", "/map", "javascript:x"):
        r = login(app.test_client(), next_=target)
        assert r.headers["Location"] == "/staff/", target


def test_wrong_password_and_unknown_name_are_refused_alike(app):
    c = app.test_client()
    r1 = login(c, password="falsch-falsch")
    r2 = login(c, name="nobody", password=PASSWORD)
    r3 = login(c, name="", password="")
    for r in (r1, r2, r3):
        assert r.status_code == 401
        assert "Name oder Passwort ist falsch." in r.text
        assert r.headers["Cache-Control"] == "no-store"
    assert not logged_in(c)
    # Names are case-sensitive: "Anna" is not "anna".
    assert login(c, name="Anna").status_code == 401


def test_login_needs_the_csrf_token(app):
    c = app.test_client()
    c.get("/staff/login")
    r = c.post("/staff/login", data={"name": "anna", "password": PASSWORD})
    assert r.status_code == 400
    r = c.post("/staff/login", data={"name": "anna", "password": PASSWORD, "csrf_token": "x" * 43})
    assert r.status_code == 400
    assert not logged_in(c)
    # A token from another browser's session does not count either.
    other = app.test_client()
    token = csrf_of(other.get("/staff/login").text)
    r = c.post("/staff/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 400
    assert not logged_in(c)


def test_session_expires_after_idle_minutes(app, clock):
    c = app.test_client()
    assert login(c).status_code == 302
    # Activity keeps it alive: three steps of 20 minutes, each within the 30.
    for _ in range(3):
        clock.advance(20)
        assert logged_in(c)
    clock.advance(SESSION_MIN + 0.5)
    r = c.get("/staff/")
    assert is_login_redirect(r)
    assert "why=expired" in r.headers["Location"]
    assert "abgelaufen" in c.get(r.headers["Location"]).text
    assert c.get(FILES[0]).status_code == 401
    # The old session stays dead even when time would allow it again.
    clock.advance(-SESSION_MIN)
    assert not logged_in(c)


def test_self_refreshing_page_does_not_keep_the_session_alive(app, clock):
    c = app.test_client()
    assert login(c).status_code == 302
    html = c.get("/staff/").text
    m = re.search(r'id="today-live" data-src="([^"]+)"', html)
    assert m, "the today page names the URL its script refreshes from"
    refresh_url = m.group(1).replace("&amp;", "&")
    assert "auto=1" in refresh_url
    for _ in range(SESSION_MIN - 1):  # a tablet left alone: one update a minute
        clock.advance(1)
        r = c.get(refresh_url)
        assert r.status_code == 200 and 'id="tile-people"' in r.text
    clock.advance(2)
    assert c.get(refresh_url).status_code == 401  # the script then goes to the login
    assert is_login_redirect(c.get("/staff/"))


def test_login_page_when_logged_in_goes_on(app):
    c = app.test_client()
    assert login(c).status_code == 302
    r = c.get("/staff/login?next=/staff/annual")
    assert r.status_code == 302 and r.headers["Location"] == "/staff/annual"


def test_logout_ends_the_session_even_for_a_copied_cookie(app):
    c = app.test_client()
    assert login(c).status_code == 302
    cookie = c.get_cookie("session")
    assert cookie is not None
    token = csrf_of(c.get("/staff/").text)
    r = c.post("/staff/logout", data={"csrf_token": token})
    assert is_login_redirect(r)
    assert not logged_in(c)
    thief = app.test_client()
    thief.set_cookie("session", cookie.value, path="/")
    assert not logged_in(thief)
    assert thief.get(FILES[0]).status_code == 401


def test_posts_in_the_staff_area_need_the_token(app):
    c = app.test_client()
    assert login(c).status_code == 302
    assert c.post("/staff/logout", data={}).status_code == 400
    assert c.post("/staff/logout", data={"csrf_token": "nope"}).status_code == 400
    assert logged_in(c)


def test_lockout_after_failures_and_it_expires(app, clock):
    c = app.test_client()
    for _ in range(MAX_FAILURES - 1):
        assert login(c, password="falsch-falsch").status_code == 401
    r = login(c, password="falsch-falsch")
    assert r.status_code == 429
    assert "gesperrt" in r.text
    # Locked: even the right password is refused, without being checked.
    r = login(c)
    assert r.status_code == 429
    assert not logged_in(c)
    # Another login name is not affected.
    other = app.test_client()
    assert login(other, name="ben", password="bens-passwort-2").status_code == 302
    clock.advance(LOCKOUT_MIN - 1)
    assert login(c).status_code == 429
    clock.advance(1.1)
    assert login(c).status_code == 302
    assert logged_in(c)


def test_failures_spread_over_time_do_not_lock(app, clock):
    c = app.test_client()
    for _ in range(MAX_FAILURES * 2):
        assert login(c, password="falsch-falsch").status_code == 401
        clock.advance(LOCKOUT_MIN / (MAX_FAILURES - 1) + 0.1)
    assert login(c).status_code == 302


def test_success_resets_the_failure_count(app):
    c = app.test_client()
    for _ in range(MAX_FAILURES - 1):
        assert login(c, password="falsch-falsch").status_code == 401
    assert login(app.test_client()).status_code == 302
    for _ in range(MAX_FAILURES - 1):
        assert login(c, password="falsch-falsch").status_code == 401
    assert login(c).status_code == 302


def test_password_file_changes_apply_without_restart(app, passwd):
    anna = app.test_client()
    assert login(anna).status_code == 302
    # A new login works at once.
    set_user(passwd, "carla", hash_password("carlas-passwort"))
    carla = app.test_client()
    assert login(carla, name="carla", password="carlas-passwort").status_code == 302
    # A changed password ends the open session and only the new one works.
    set_user(passwd, "anna", hash_password("neues-passwort-3"))
    r = anna.get("/staff/")
    assert is_login_redirect(r) and "why=changed" in r.headers["Location"]
    assert login(anna).status_code == 401
    assert login(anna, password="neues-passwort-3").status_code == 302
    # A deleted login is out at once.
    delete_user(passwd, "carla")
    assert not logged_in(carla)
    assert login(carla, name="carla", password="carlas-passwort").status_code == 401


def test_missing_or_broken_password_file_lets_nobody_in(app, passwd):
    passwd.unlink()
    c = app.test_client()
    assert login(c).status_code == 401
    passwd.write_text("anna:not-a-hash\n")
    assert login(c).status_code == 401
    assert not logged_in(c)


def test_staff_pages_are_not_cached_and_not_framed(app):
    c = app.test_client()
    r = c.get("/staff/login")
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Frame-Options"] == "DENY"
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp  # own scripts only
    assert login(c).status_code == 302
    for url in PAGES + FILES:
        assert c.get(url).headers["Cache-Control"] == "no-store", url
