"""The check-in in Debian's Chromium with touch: full flows by taps (German, Arabic),
layout (mirrored for RTL, fits 800x480, touch targets), idle reset, the repeated-tap
guard, heartbeat self-reload, and offline (every request goes to the local server).

Screenshots of every screen at 800x480 and 1280x720 go to build/screenshots/.
"""

from __future__ import annotations

import json
import random
import socket
import threading
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from werkzeug.serving import WSGIRequestHandler, make_server

from kiosk import create_app
from telemetry.config import default_config
from telemetry.store import Store
from tests.steady import steady_box, steady_center

pytestmark = pytest.mark.browser

SIZES = ((800, 480), (1280, 720))


class QuietHandler(WSGIRequestHandler):
    """No access log: it would write the client's address. One request per connection
    (HTTP/1.0): a kept-alive connection would outlive ``LiveServer.stop()`` in its handler
    thread and keep answering the heartbeat of a "stopped" box."""

    protocol_version = "HTTP/1.0"

    def log(self, type: str, message: str, *args) -> None:  # noqa: A002
        pass


def free_port() -> int:
    """A free port below the kernel's ephemeral range. A server stopped for a minute (the
    box away) must get its port back; a port from bind(0) is an ephemeral one, which any
    outgoing connection on a busy machine may take in the meantime ("in use" on restart)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for port in random.sample(range(max(1024, low - 12000), low), 50):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._srv = None

    def start(self) -> LiveServer:
        self._srv = make_server(
            "127.0.0.1", self.port, self.app, threaded=True, request_handler=QuietHandler
        )
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._srv is not None:
            self._srv.shutdown()
            self._srv.server_close()
            self._srv = None


@pytest.fixture
def db(tmp_path: Path):
    st = Store(tmp_path / "vanbox.db", van="testvan", tid="TV")
    yield st
    st.close()


@pytest.fixture
def serve(db):
    """``serve(overrides={}, **flask_config)`` -> a running LiveServer on a free port."""
    servers: list[LiveServer] = []

    def start(overrides: dict | None = None, wrap=None, **flask_config) -> LiveServer:
        cfg = default_config(overrides or {})
        app = create_app(flask_config or None, config=cfg, store=db)
        srv = LiveServer(wrap(app) if wrap else app).start()
        servers.append(srv)
        return srv

    yield start
    for s in servers:
        s.stop()


def rows(db: Store) -> list[dict]:
    cur = db.reader().execute("SELECT * FROM checkins ORDER BY rowid")  # ids are random (v4)
    return [dict(r) for r in cur.fetchall()]


def shoot(page, screenshot_dir: Path, name: str, save=SIZES) -> None:
    """Screenshot (at the sizes in ``save``) and check the layout at both sizes: all fits,
    nothing overlaps, touch targets are >= 48 px."""
    for w, h in SIZES:
        page.set_viewport_size({"width": w, "height": h})
        if (w, h) in save:
            page.screenshot(path=str(screenshot_dir / f"checkin-{name}-{w}x{h}.png"))
        check_layout(page, name, w, h)
    page.set_viewport_size({"width": 800, "height": 480})


LAYOUT_JS = """() => {
  const vw = innerWidth, vh = innerHeight, bad = [];
  for (const el of document.querySelectorAll('a.btn, button, .tile span, h1, .lead, .note')) {
    const r = el.getBoundingClientRect();
    const label = (el.textContent || '').trim().slice(0, 40);
    if (r.left < -0.5 || r.top < -0.5 || r.right > vw + 0.5 || r.bottom > vh + 0.5)
      bad.push(['outside', label, [r.left, r.top, r.right, r.bottom].map(Math.round)]);
    if (el.matches('a.btn, button, .tile span') && (r.width < 48 || r.height < 48))
      bad.push(['small', label, [r.width, r.height].map(Math.round)]);
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflow !== 'visible')
      bad.push(['clipped', label]);
  }
  if (document.documentElement.scrollWidth > vw) bad.push(['page wider than screen']);
  const targets = [...document.querySelectorAll('a.btn, button, .tile span')]
    .map(el => [el, el.getBoundingClientRect()]);
  for (let i = 0; i < targets.length; i++)
    for (let j = i + 1; j < targets.length; j++) {
      const [a, p] = targets[i], [b, q] = targets[j];
      const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
      const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (w > 1 && h > 1 && !a.contains(b) && !b.contains(a))
        bad.push(['overlap', a.textContent.trim().slice(0, 30), b.textContent.trim().slice(0, 30)]);
    }
  return bad;
}"""


def check_layout(page, name: str, w: int, h: int) -> None:
    problems = page.evaluate(LAYOUT_JS)
    assert problems == [], f"{name} at {w}x{h}: {problems}"


# --- flows ---------------------------------------------------------------------------


def test_full_checkin_by_taps_in_german(serve, db, touch_page, screenshot_dir):
    page = touch_page
    srv = serve()
    page.goto(srv.url + "/")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("html").get_attribute("dir") == "ltr"
    assert page.locator(".stops li").count() == 3
    assert page.locator(".qr-code svg").count() == 1
    shoot(page, screenshot_dir, "de-1-start")

    page.get_by_role("link", name="Deutsch").tap()
    page.wait_for_url(srv.url + "/de/checkin")
    page.get_by_role("heading", name="Wie alt bist du?").wait_for()
    shoot(page, screenshot_dir, "de-2-age")

    page.get_by_role("button", name="18 bis 20").tap()
    page.get_by_role("heading", name="Worum geht es dir heute?").wait_for()
    page.get_by_text("Geld", exact=True).tap()
    page.get_by_text("Wohnen", exact=True).tap()
    page.get_by_text("Einfach reden", exact=True).tap()
    page.wait_for_timeout(500)  # a second tap, not a double tap (that would count once)
    page.get_by_text("Einfach reden", exact=True).tap()  # and off again
    assert page.get_by_role("checkbox", name="Geld").is_checked()
    assert not page.get_by_role("checkbox", name="Einfach reden").is_checked()
    shoot(page, screenshot_dir, "de-3-topics")

    page.get_by_role("button", name="Weiter").tap()
    page.get_by_role("heading", name="Bist du zum ersten Mal bei uns?").wait_for()
    shoot(page, screenshot_dir, "de-4-visit")

    page.get_by_role("button", name="Ja, zum ersten Mal").tap()
    page.get_by_role("heading", name="Wie hast du von uns erfahren?").wait_for()
    shoot(page, screenshot_dir, "de-5-heard")
    assert rows(db) == []  # nothing is stored before the last answer

    page.get_by_role("button", name="Freunde").tap()
    page.wait_for_url(srv.url + "/de/thanks")
    page.get_by_role("heading", name="Danke!").wait_for()
    shoot(page, screenshot_dir, "de-6-thanks")

    (row,) = rows(db)
    assert row["age_group"] == "18-20"
    assert json.loads(row["topics"]) == ["money", "housing"]
    assert row["first_visit"] == 1 and row["heard_from"] == "friends"
    assert row["language"] == "de" and row["van"] == "testvan"
    assert row["ts"] % 3600 == 0  # rounded to the hour
    (out,) = db.pending()
    assert out.kind == "checkin" and json.loads(out.payload)["id"] == row["id"]

    page.get_by_role("link", name="Zum Start").tap()
    page.wait_for_url(srv.url + "/")

    # a forged post in the browser: the friendly error screen, 400, nothing stored
    page.goto(srv.url + "/de/checkin")
    page.evaluate("document.querySelector('input[name=csrf_token]').value = 'forged'")
    with page.expect_response(lambda r: r.request.method == "POST") as resp:
        page.get_by_role("button", name="25 bis 27").tap()
    assert resp.value.status == 400
    page.get_by_role("heading", name="Hoppla, das hat nicht geklappt.").wait_for()
    shoot(page, screenshot_dir, "de-7-error")
    assert len(rows(db)) == 1


def test_full_checkin_by_taps_in_arabic_is_mirrored(serve, db, touch_page, screenshot_dir):
    page = touch_page
    srv = serve()
    page.goto(srv.url + "/")
    page.get_by_role("link", name="العربية").tap()
    page.wait_for_url(srv.url + "/ar/checkin")
    html = page.locator("html")
    assert html.get_attribute("dir") == "rtl" and html.get_attribute("lang") == "ar"

    # Mirrored: the start-aligned "back to start" button sits on the right, the first
    # age button is right of the second, and headings are right-aligned.
    home = steady_box(page, page.get_by_role("link", name="العودة إلى البداية"))
    assert home["x"] > 800 / 2
    first = steady_box(page, page.get_by_role("button", name="15-17 سنة"))
    second = steady_box(page, page.get_by_role("button", name="18-20 سنة"))
    assert first["x"] > second["x"]
    shoot(page, screenshot_dir, "ar-2-age")

    page.get_by_role("button", name="21-24 سنة").tap()
    page.get_by_role("heading", name="ما الذي أتى بك إلينا اليوم؟").wait_for()
    page.get_by_text("الإقامة والأوراق", exact=True).tap()
    page.get_by_text("العمل", exact=True).tap()
    nxt = steady_box(page, page.get_by_role("button", name="التالي"))
    assert nxt["x"] + nxt["width"] / 2 < 800 / 2  # end-aligned: on the left in RTL
    shoot(page, screenshot_dir, "ar-3-topics")

    page.get_by_role("button", name="التالي").tap()
    page.get_by_role("heading", name="هل هذه أول مرة تأتي إلينا؟").wait_for()
    yes = steady_box(page, page.get_by_role("button", name="نعم، أول مرة"))
    no = steady_box(page, page.get_by_role("button", name="لا، جئت من قبل"))
    assert yes["x"] > no["x"]
    shoot(page, screenshot_dir, "ar-4-visit")

    page.get_by_role("button", name="لا، جئت من قبل").tap()  # returning: no "how heard"
    page.wait_for_url(srv.url + "/ar/thanks")
    page.get_by_role("heading", name="شكرًا لك!").wait_for()
    shoot(page, screenshot_dir, "ar-6-thanks")

    (row,) = rows(db)
    assert row["language"] == "ar" and row["age_group"] == "21-24"
    assert json.loads(row["topics"]) == ["job", "papers"]
    assert row["first_visit"] == 0 and row["heard_from"] is None

    # the start screen in Arabic, and the "how heard" screen for the screenshots
    page.get_by_role("link", name="العودة إلى البداية").tap()
    page.wait_for_url(srv.url + "/ar/")
    assert page.locator("html").get_attribute("dir") == "rtl"
    qr = steady_box(page, page.locator(".qr-code"))
    welcome = steady_box(page, page.locator(".welcome"))
    assert qr["x"] < welcome["x"]  # the info column is on the left in RTL
    shoot(page, screenshot_dir, "ar-1-start")
    page.goto(srv.url + "/ar/checkin")
    page.get_by_role("button", name="أفضّل عدم الإجابة").tap()
    page.get_by_role("button", name="التالي").tap()
    page.get_by_role("button", name="نعم، أول مرة").tap()
    page.get_by_role("heading", name="كيف سمعت عنّا؟").wait_for()
    shoot(page, screenshot_dir, "ar-5-heard")


def test_every_screen_fits_in_every_other_language(serve, db, touch_page, screenshot_dir):
    """No text cut off, nothing off screen, targets >= 48 px, in every language."""
    page = touch_page
    srv = serve({"kiosk": {"min_checkin_interval_s": 0}})
    for n, lang in enumerate(["en", "tr", "uk", "ru", "fa"], start=1):
        page.goto(f"{srv.url}/{lang}/")
        assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")
        shoot(page, screenshot_dir, f"{lang}-1-start", SIZES[:1])
        page.goto(f"{srv.url}/{lang}/checkin")
        shoot(page, screenshot_dir, f"{lang}-2-age", SIZES[:1])
        page.locator("button[name=age][value='15-17']").tap()
        page.locator(".choices-topics").wait_for()
        for code in ("training", "papers", "talk"):
            page.locator(f".tile:has(input[value={code}]) span").tap()
        shoot(page, screenshot_dir, f"{lang}-3-topics", SIZES[:1])
        page.locator(".btn-next").tap()
        page.locator(".choices-visit").wait_for()
        shoot(page, screenshot_dir, f"{lang}-4-visit", SIZES[:1])
        page.locator("button[name=first_visit][value=yes]").tap()
        page.locator(".choices-heard").wait_for()
        shoot(page, screenshot_dir, f"{lang}-5-heard", SIZES[:1])
        page.locator("button[name=heard_from][value=skip]").tap()
        page.wait_for_url(f"{srv.url}/{lang}/thanks")
        shoot(page, screenshot_dir, f"{lang}-6-thanks", SIZES[:1])
        row = rows(db)[-1]
        assert len(rows(db)) == n
        assert row["language"] == lang and row["heard_from"] is None
        assert json.loads(row["topics"]) == ["training", "papers", "talk"]


# --- idle, repeated taps, heartbeat, offline ------------------------------------------


def test_idle_reset_returns_to_the_german_start(serve, db, touch_page):
    page = touch_page
    srv = serve({"kiosk": {"idle_seconds": 5}})
    page.goto(srv.url + "/en/checkin")
    assert page.locator("body").get_attribute("data-idle-ms") == "5000"
    page.get_by_role("button", name="18 to 20").tap()
    page.get_by_role("heading", name="What brings you here today?").wait_for()
    page.get_by_text("Money", exact=True).tap()
    # Nobody touches the screen: back to the German start, nothing stored.
    page.wait_for_url(srv.url + "/", timeout=20_000)
    assert page.locator("html").get_attribute("lang") == "de"
    assert rows(db) == []


class PostGate:
    """WSGI wrapper that holds check-in posts while closed, like a slow SD card: the
    page cannot move on, so every one of the taps lands on the same screen."""

    def __init__(self, app) -> None:
        self.app = app
        self.opened = threading.Event()
        self.opened.set()
        self.arrived = threading.Event()
        self.held = 0
        self.answered = 0
        self.lock = threading.Condition()

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] != "POST" or self.opened.is_set():
            return self.app(environ, start_response)
        with self.lock:
            self.held += 1
        self.arrived.set()
        self.opened.wait(30)
        try:
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.answered += 1
                self.lock.notify_all()

    def wait_answered(self, timeout: float = 15) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: self.answered == self.held, timeout)


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_twenty_fast_taps_make_one_checkin(serve, db, browser, javascript):
    """With JavaScript the page sends one post; without it every tap re-submits the
    form, and the server's guard makes the many posts one check-in."""
    ctx = browser.new_context(
        viewport={"width": 800, "height": 480}, has_touch=True, java_script_enabled=javascript
    )
    page = ctx.new_page()
    srv = serve(wrap=PostGate)
    gate: PostGate = srv.app
    try:
        page.goto(srv.url + "/en/checkin")
        page.get_by_role("button", name="I'd rather not say").tap()
        page.get_by_role("button", name="Next").tap()
        done = page.get_by_role("button", name="No, I've been here before")
        x, y = steady_center(page, done)
        gate.opened.clear()
        for _ in range(20):
            page.touchscreen.tap(x, y)
        assert gate.arrived.wait(10)
        gate.opened.set()
        assert gate.wait_answered()
        for _ in range(10):  # without JS, each new submit aborts the one before
            try:
                page.wait_for_url("**/en/thanks", timeout=3000)
                break
            except PlaywrightError:
                continue
        assert page.url.endswith("/en/thanks"), (page.url, page.locator("body").inner_text())
        if javascript:
            assert gate.held == 1  # the page's own guard: one submit per form
        else:
            assert gate.held >= 2, gate.held  # many posts reached the server...
        assert len(rows(db)) == 1  # ...and made one check-in
        assert db.count("outbox") == 1
    finally:
        gate.opened.set()
        ctx.close()


def test_heartbeat_reloads_after_the_server_comes_back(serve, db, touch_page):
    page = touch_page
    srv = serve(VANBOX_HEARTBEAT_S=0.5)
    page.goto(srv.url + "/en/checkin")
    page.get_by_role("button", name="15 to 17").tap()
    page.get_by_role("heading", name="What brings you here today?").wait_for()
    srv.stop()
    page.locator(".offline-note").wait_for(state="visible", timeout=10_000)
    assert "reconnecting" in page.locator(".offline-note").inner_text()
    again = LiveServer(srv.app, srv.port).start()
    try:
        page.wait_for_url(srv.url + "/", timeout=10_000)
        page.get_by_role("link", name="Deutsch").wait_for()
    finally:
        again.stop()


def test_offline_every_request_is_local_and_start_page_is_small(serve, db, touch_page):
    page = touch_page
    srv = serve(VANBOX_HEARTBEAT_S=0.5)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(srv.url + "/")
    transfer = page.evaluate(
        """() => [...performance.getEntriesByType('navigation'),
                  ...performance.getEntriesByType('resource')]
                 .filter(e => !e.name.includes('/healthz'))
                 .map(e => [e.name, e.transferSize])"""
    )
    names = [n for n, _ in transfer]
    assert any(n.endswith("kiosk.css") for n in names) and any(
        n.endswith("kiosk.js") for n in names
    )
    start_bytes = sum(size for _, size in transfer)
    assert 0 < start_bytes <= 150 * 1024, transfer
    page.get_by_role("link", name="English").tap()
    page.get_by_role("button", name="25 to 27").tap()
    page.get_by_text("Health", exact=True).tap()
    page.get_by_role("button", name="Next").tap()
    page.get_by_role("button", name="Yes, first time").tap()
    page.get_by_role("button", name="Poster or flyer").tap()
    page.wait_for_url(srv.url + "/en/thanks")
    page.wait_for_function(
        "() => performance.getEntriesByType('resource').some(e => e.name.includes('/healthz'))"
    )
    assert any(u.endswith("/healthz") for u in requests)  # the heartbeat ran
    assert len(requests) >= 8
    foreign = [u for u in requests if not u.startswith(srv.url + "/")]
    assert foreign == []
    assert len(rows(db)) == 1
