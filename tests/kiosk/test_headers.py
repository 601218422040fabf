"""Security headers on every page (public, check-in, staff, /status, APIs, files) and the
session cookie's ``Secure`` flag (issue 12 point 7)."""

from __future__ import annotations

import http.client
import re
import threading

import pytest
from werkzeug.security import generate_password_hash

from kiosk import create_app
from kiosk.auth import set_user
from kiosk.serve import make_server
from telemetry.config import default_config
from telemetry.store import Store

BOX_URLS = ["/", "/de/", "/de/checkin", "/map", "/map/timetable", "/status", "/status.json",
            "/healthz", "/api/public/vans", "/calendar.ics", "/staff/login", "/nope-404",
            "/static/../x"]  # fmt: skip
HUB_URLS = ["/", "/timetable", "/van/jungregio-1", "/api/public/vans", "/calendar.ics",
            "/healthz", "/staff/login", "/nope-404"]  # fmt: skip
PASSWORD = "header-pass-1"


def _app(tmp_path, mode: str, **kiosk):
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}, "kiosk": kiosk})
    store = Store(tmp_path / f"{mode}.db", van="" if mode == "hub" else "jr-1")
    return create_app({"TESTING": True}, config=cfg, store=store, mode=mode), store


@pytest.fixture(params=["box", "hub"])
def app_urls(request, tmp_path):
    app, store = _app(tmp_path, request.param)
    yield app, BOX_URLS if request.param == "box" else HUB_URLS
    store.close()


def csp_parts(value: str) -> dict[str, list[str]]:
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_every_page_has_the_security_headers(app_urls):
    app, urls = app_urls
    c = app.test_client()
    for url in urls:
        r = c.get(url)
        assert r.status_code < 500, url
        h = r.headers
        assert h.get("X-Content-Type-Options") == "nosniff", url
        assert h.get("X-Frame-Options") == "DENY", url
        assert h.get("Referrer-Policy") in ("same-origin", "no-referrer"), url
        csp = csp_parts(h.get("Content-Security-Policy", ""))
        assert csp.get("frame-ancestors") == ["'none'"], (url, csp)
        scripts = csp.get("script-src") or csp.get("default-src")
        assert scripts and "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
        assert "*" not in scripts, url
        assert csp.get("base-uri") == ["'none'"], url


def test_status_page_inline_style_is_allowed_by_its_nonce_only(tmp_path):
    app, store = _app(tmp_path, "box")
    r = app.test_client().get("/status")
    m = re.search(r'<style nonce="([^"]+)">', r.text)
    if m:  # the page has an inline style block: exactly its nonce is allowed
        styles = csp_parts(r.headers["Content-Security-Policy"])["style-src"]
        assert f"'nonce-{m.group(1)}'" in styles and "'unsafe-inline'" not in styles
    assert "<style>" not in r.text  # no inline block without the nonce
    r2 = app.test_client().get("/status")
    n2 = re.search(r"'nonce-([^']+)'", r2.headers["Content-Security-Policy"])
    if m and n2:
        assert n2.group(1) != m.group(1)  # a new nonce per response
    store.close()


def test_public_map_allows_the_tile_server_and_nothing_else(tmp_path):
    app, store = _app(tmp_path, "hub")
    csp = csp_parts(app.test_client().get("/").headers["Content-Security-Policy"])
    assert "https://tile.openstreetmap.org" in csp["img-src"]
    assert csp["connect-src"] == ["'self'"] and csp["object-src"] == ["'none'"]
    store.close()


def _session_cookie(resp) -> str:
    for v in resp.headers.getlist("Set-Cookie"):
        if v.startswith("session="):
            return v
    raise AssertionError("no session cookie set")


def _login(c, base: str):
    page = c.get("/staff/login", base_url=base)
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return c.post("/staff/login", base_url=base, headers={"Origin": base},
                  data={"name": "anna", "password": PASSWORD, "csrf_token": tok})  # fmt: skip


@pytest.mark.parametrize(
    "base, cookie_secure, secure",
    [
        ("http://127.0.0.1", False, False),  # the touchscreen: no Secure, or no cookie at all
        ("https://hub.example", False, True),  # served over HTTPS: Secure
        ("http://127.0.0.1", True, True),  # forced by kiosk.cookie_secure
    ],
)
def test_session_cookie_secure_flag(tmp_path, base, cookie_secure, secure):
    app, store = _app(tmp_path, "hub", cookie_secure=cookie_secure)
    c = app.test_client()
    r = _login(c, base)
    assert r.status_code == 302
    cookie = _session_cookie(r)
    assert ("; Secure" in cookie) == secure
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    if not secure:  # the touchscreen's session works over plain http
        assert c.get("/staff/", base_url=base).status_code == 200
    store.close()


def test_https_behind_the_trusted_proxy_gets_secure_cookies(tmp_path):
    app, store = _app(tmp_path, "hub")
    server = make_server(app, host="127.0.0.1", port=0, role="hub", threads=2,
                         trusted_proxy="127.0.0.1")  # fmt: skip
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:

        def get(headers: dict) -> http.client.HTTPResponse:
            c = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=5)
            c.request("GET", "/staff/login", headers=headers)
            r = c.getresponse()
            r.read()
            c.close()
            return r

        behind = get({"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1"})
        assert "Secure" in (behind.getheader("Set-Cookie") or "")
        assert behind.getheader("Strict-Transport-Security")
        plain = get({})
        assert "Secure" not in (plain.getheader("Set-Cookie") or "")
        assert plain.getheader("Strict-Transport-Security") is None
    finally:
        server.close()
        server.task_dispatcher.shutdown(timeout=2)
        t.join(5)
        store.close()


def test_without_trusted_proxy_forwarded_headers_are_ignored(tmp_path):
    app, store = _app(tmp_path, "hub")
    server = make_server(app, host="127.0.0.1", port=0, role="hub", threads=2)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=5)
        c.request("GET", "/staff/login", headers={"X-Forwarded-Proto": "https"})
        r = c.getresponse()
        r.read()
        assert "Secure" not in (r.getheader("Set-Cookie") or "")
        c.close()
    finally:
        server.close()
        server.task_dispatcher.shutdown(timeout=2)
        t.join(5)
        store.close()
