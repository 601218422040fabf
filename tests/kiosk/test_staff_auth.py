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


# --- sessions and lockouts live in the database (issue 11 point 7, issue 12 point 7) ---

import hashlib  # noqa: E402

from kiosk.auth import ALL_NAMES, LOCK_BACKOFF_MAX, Lockout  # noqa: E402
from telemetry.store import Store  # noqa: E402


def _cfg(passwd: Path, **staff):
    values = {"passwd_file": str(passwd), "max_failures": MAX_FAILURES,
              "lockout_minutes": LOCKOUT_MIN, "session_minutes": SESSION_MIN, **staff}  # fmt: skip
    return default_config({"staff": values})


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "web.db"


@pytest.fixture
def make_app(passwd, db_path, clock):
    """A web process on the database file; call again for a restart or a second one."""
    stores: list[Store] = []

    def make():
        st = Store(db_path, van="testvan", tid="TV")
        stores.append(st)
        return create_app({"TESTING": True}, config=_cfg(passwd), store=st)

    yield make
    for st in stores:
        st.close()


def _move_cookies(src, dst) -> None:
    for name in ("session", "vanbox_csrf"):
        ck = src.get_cookie(name)
        if ck is not None:
            dst.set_cookie(name, ck.value)


def client_from(app, address: str):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = address
    return c


def _rows(db_path: Path, table: str) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - test's own name
    finally:
        conn.close()


def test_a_restart_keeps_staff_logged_in(make_app, db_path):
    first = make_app()
    c = first.test_client()
    assert login(c).status_code == 302 and logged_in(c)
    second = make_app()  # the restarted process: new app, new store, same file, no key file
    assert second.secret_key == first.secret_key  # the signing key is in the database
    c2 = second.test_client()
    _move_cookies(c, c2)
    assert logged_in(c2)
    # and a staff POST (logout, with the session's CSRF token) works in the new process
    page = c2.get("/staff/")
    r = c2.post("/staff/logout", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 302
    assert not logged_in(c2)
    assert not logged_in(c)  # ... and in the first process too: the row is gone
    assert _rows(db_path, "staff_sessions") == []


def test_two_processes_share_sessions(make_app):
    a, b = make_app(), make_app()
    ca = a.test_client()
    assert login(ca).status_code == 302
    cb = b.test_client()
    _move_cookies(ca, cb)
    assert logged_in(cb)


def test_session_id_is_kept_only_as_a_hash(make_app, db_path):
    app = make_app()
    c = app.test_client()
    assert login(c).status_code == 302
    with c.session_transaction() as sess:
        sid = sess[auth.S_SID]
    rows = _rows(db_path, "staff_sessions")
    assert len(rows) == 1
    assert sid not in repr(rows)
    assert rows[0][0] == hashlib.sha256(sid.encode()).hexdigest()
    assert rows[0][1] == "anna"


def test_expiry_removes_the_row_and_a_restart_does_not_revive_it(make_app, db_path, clock):
    c = make_app().test_client()
    assert login(c).status_code == 302
    clock.advance(SESSION_MIN - 0.5)
    assert logged_in(c)  # just below the timeout: still in (and active again)
    clock.advance(SESSION_MIN + 0.5)
    c2 = make_app().test_client()
    _move_cookies(c, c2)
    r = c2.get("/staff/")
    assert is_login_redirect(r) and "why=expired" in r.headers["Location"]
    assert _rows(db_path, "staff_sessions") == []
    assert not logged_in(c)


def test_a_lockout_survives_a_restart(make_app, clock):
    c = make_app().test_client()
    for _ in range(MAX_FAILURES):
        login(c, password="falsch-falsch")
    assert login(c).status_code == 429
    c2 = make_app().test_client()
    assert login(c2).status_code == 429  # same name, same address, new process
    clock.advance(LOCKOUT_MIN + 0.1)
    assert login(c2).status_code == 302


def test_nobody_else_can_lock_a_name_out(make_app):
    app = make_app()
    attacker = client_from(app, "203.0.113.9")
    for _ in range(MAX_FAILURES * 3):
        login(attacker, password="falsch-falsch")
    assert login(attacker).status_code == 429  # the attacker's own address is locked
    anna = client_from(app, "198.51.100.7")
    assert login(anna).status_code == 302  # anna, from her address, is not


def test_one_client_trying_many_names_is_locked_for_all(make_app):
    app = make_app()
    c = client_from(app, "203.0.113.10")
    limit = MAX_FAILURES * Lockout.NAMES_FACTOR
    # every name stays below its own limit; the client's total is just below its limit
    for i in range(limit - 1):
        assert login(c, name=f"n{i // (MAX_FAILURES - 1)}", password="x" * 8).status_code == 401
    assert login(c, name="ben", password="bens-passwort-2").status_code == 302
    c = client_from(app, "203.0.113.11")
    for i in range(limit):
        r = login(c, name=f"n{i // (MAX_FAILURES - 1)}", password="x" * 8)
    assert r.status_code == 429
    assert login(c, name="ben", password="bens-passwort-2").status_code == 429


def test_lockouts_back_off_and_always_end(store, clock):
    lk = Lockout(store, max_failures=3, window_s=60.0)
    now, durations = 1_000_000.0, []
    for _ in range(6):
        for _ in range(3):
            lk.failure("anna", "10.0.0.1", now)
        until = lk.locked_until("anna", "10.0.0.1", now)
        durations.append(until - now)
        assert lk.locked_until("anna", "10.0.0.1", until - 0.01) is not None  # just before
        assert lk.locked_until("anna", "10.0.0.1", until + 0.01) is None  # just after
        now = until + 1
    assert durations == [60, 120, 240, 480, 480, 480]
    assert max(durations) == 60 * LOCK_BACKOFF_MAX
    # a day without failures: the backoff starts again
    now += 24 * 3600
    for _ in range(3):
        lk.failure("anna", "10.0.0.1", now)
    assert lk.locked_until("anna", "10.0.0.1", now) == now + 60
    # a success clears the name's count for that client
    lk.success("anna", "10.0.0.1")
    assert lk.locked_until("anna", "10.0.0.1", now) is None


def test_rows_are_forgotten_after_a_quiet_day_but_live_lockouts_are_kept(store):
    lk = Lockout(store, max_failures=3, window_s=3 * 86_400.0)  # a lock of 3 days
    for _ in range(3):
        lk.failure("anna", "c1", 0.0)
    lk.failure("ben", "c2", 0.0)
    assert len(lk) == 4  # anna|c1, *|c1, ben|c2, *|c2
    lk.failure("carl", "c3", 86_400.0 - 1)  # just under a day: nothing forgotten yet
    assert len(lk) == 6
    lk.failure("carl", "c3", 86_400.0 + 1)  # just over a day since ben's failure
    names = {r[0] for r in store.reader().execute("SELECT name FROM staff_failures")}
    assert "ben" not in names and "anna" in names  # anna's lockout still runs
    assert lk.locked_until("anna", "c1", 86_401.0) == 3 * 86_400.0


def test_failures_just_below_the_limit_do_not_lock(store):
    lk = Lockout(store, max_failures=3, window_s=60.0)
    lk.failure("anna", "c", 100.0)
    lk.failure("anna", "c", 101.0)
    assert lk.locked_until("anna", "c", 101.0) is None
    lk.failure("anna", "c", 100.0 + 60.0)  # the window of the first one is over: 1 again
    assert lk.locked_until("anna", "c", 160.0) is None
    lk.failure("anna", "c", 161.0)
    lk.failure("anna", "c", 162.0)
    assert lk.locked_until("anna", "c", 162.0) == 222.0


def test_flooding_10000_other_names_does_not_lift_a_lockout(store):
    store._conn.execute("PRAGMA synchronous = OFF")  # speed: this test is about the rule
    lk = Lockout(store, max_failures=3, window_s=900.0)
    lk.max_rows = 2000
    now = 1_000_000.0
    for _ in range(3):
        lk.failure("anna", "10.0.0.1", now)
    assert lk.locked_until("anna", "10.0.0.1", now) is not None
    for i in range(10_000):  # 10,000 names from 10,000 addresses, two rows each
        lk.failure(f"name{i}", f"10.1.{i // 250}.{i % 250}", now + 1 + i * 0.01)
    t = now + 200
    assert lk.locked_until("anna", "10.0.0.1", t) is not None
    assert len(lk) <= lk.max_rows + 2  # bounded: only live lockouts may exceed it
    # the bound is just reached, not undercut
    assert len(lk) >= lk.max_rows
    rows = (
        store.reader()
        .execute("SELECT name FROM staff_failures WHERE locked_until > ?", (t,))
        .fetchall()
    )
    assert ("anna",) in [tuple(r) for r in rows]
    assert ALL_NAMES in {r[0] for r in store.reader().execute("SELECT name FROM staff_failures")}


def test_the_login_page_says_where_to_make_a_login(passwd, store):
    """On the hub the hint names the server and its config, on the box the box."""
    cfg = default_config({"staff": {"passwd_file": str(passwd)}})
    hub = create_app({"TESTING": True}, config=cfg, store=store, mode="hub")
    box = create_app({"TESTING": True}, config=cfg, store=store, mode="box")
    hub_page = hub.test_client().get("/staff/login").text
    box_page = box.test_client().get("/staff/login").text
    assert "auf dem Server des Hubs" in hub_page and "auf der Box" not in hub_page
    assert "auf der Box" in box_page and "Hubs" not in box_page
