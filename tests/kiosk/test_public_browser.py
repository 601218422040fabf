"""The public live map in Chromium against the real ``vanbox hub`` and a real mosquitto:
both vans shown, the marker follows a new fix within 2 s, list view, offline label,
and all of it with every map tile request blocked. Screenshots at phone and desktop
sizes go to ``build/screenshots/public-*.png``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from telemetry import registry, topics
from telemetry.events import Position, utcnow
from telemetry.plan import PlanException, PlanStop, change_plan, new_id
from telemetry.store import Store
from tests.axe_check import LEAFLET, serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]

ROOT = Path(__file__).resolve().parents[2]
STOPS = {
    "Peine, Marktplatz": ("Peine", 52.3215, 10.2335),
    "Edemissen, Schulzentrum": ("Edemissen", 52.386, 10.261),
    "Vechelde, Bahnhof": ("Vechelde", 52.261, 10.366),
}
ALL_DAYS = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'


def config_toml(broker_port: int) -> str:
    lines = [
        'timezone = "Europe/Berlin"',
        "[van]",
        'id = "van-a"',  # van-a's plan is this TOML tour; van-b gets a stored plan
        'name = "JUNGregio-Mobil"',
        'tid = "JR"',
        "[mqtt]",
        'host = "127.0.0.1"',
        f"port = {broker_port}",
        "[hub]",
        'client_id = "browser-test-hub"',
    ]
    for name, (muni, lat, lon) in STOPS.items():
        lines += [
            "[[tour.stops]]",
            f'name = "{name}"',
            f'municipality = "{muni}"',
            f"lat = {lat}",
            f"lon = {lon}",
            f"weekdays = {ALL_DAYS}",
            'start = "00:00"',
            'end = "23:59"',
        ]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def wait_for(cond, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


class FakeVans:
    """Two vans publishing real payloads (``telemetry.topics``) with paho."""

    def __init__(self, port: int) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="two-vans")
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def status(self, van: str, status: str) -> None:
        t = topics.topic("vanbox", van, "status")
        self.c.publish(t, status, qos=1, retain=True).wait_for_publish(5)

    def fix(self, van: str, stop: str, age_s: float = 0.0, dlat: float = 0.0) -> Position:
        _, lat, lon = STOPS[stop]
        when = utcnow() - timedelta(seconds=age_s)
        p = Position(time=when, lat=lat + dlat, lon=lon, speed=0.0, hdop=1.0)
        payload = topics.dumps(topics.location_payload(p, van[-1].upper()))
        t = topics.topic("vanbox", van, "location")
        self.c.publish(t, payload, qos=1, retain=True).wait_for_publish(5)
        return p

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def hub_server(broker, tmp_path):
    """Two vans already reporting (retained), then the real ``vanbox hub`` command."""
    vans = FakeVans(broker.port)
    vans.status("van-a", "online")
    vans.status("van-b", "online")
    vans.fix("van-a", "Peine, Marktplatz")
    vans.fix("van-b", "Edemissen, Schulzentrum", age_s=5 * 60 + 20)
    cfg = tmp_path / "hub.toml"
    cfg.write_text(config_toml(broker.port))
    port = free_port()
    log = open(tmp_path / "hub.log", "wb")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware", "hub", "--config", str(cfg), "--port", str(port),
         "--bind", "127.0.0.1", "--db", str(tmp_path / "hub.db")],
        cwd=ROOT, stdout=log, stderr=log, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        # The vans register themselves as "new" (not public); staff name and publish them.
        db = tmp_path / "hub.db"
        wait_for(lambda: db.exists() and len(registered(db)) == 2, "the hub to register 2 vans")
        staff = Store(db)
        try:
            for van, name in (("van-a", "Bus Nord"), ("van-b", "Bus Süd")):
                registry.rename(staff, van, name)
                registry.publish(staff, van)
            change_plan(staff, "van-b", lambda p: p.with_stop(EDEMISSEN_ALL_DAY))
        finally:
            staff.close()
        wait_for(
            lambda: len(get_json(f"{base}/api/public/vans")["vans"]) == 2, "the hub to show 2 vans"
        )
        yield base, vans
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        vans.close()
        if proc.returncode not in (0, -15):
            print((tmp_path / "hub.log").read_text()[-3000:])


def registered(db: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM vans")]
    except sqlite3.OperationalError:  # not migrated yet
        return []
    finally:
        conn.close()


EDEMISSEN_ALL_DAY = PlanStop("edemissen", "Edemissen, Schulzentrum", "Edemissen", 52.386, 10.261,
                             150.0, tuple(range(7)), dtime(0, 0), dtime(23, 59))  # fmt: skip


def new_page(browser, width: int, height: int, blocked: list[str]):
    ctx = browser.new_context(
        viewport={"width": width, "height": height},
        has_touch=True,
        is_mobile=width < 600,
        device_scale_factor=1,
        locale="de-DE",
    )

    def block(route) -> None:
        blocked.append(route.request.url)
        route.abort()

    # Every request that is not to the hub (map tiles above all) fails.
    ctx.route(lambda url: not url.startswith("http://127.0.0.1"), block)
    return ctx, ctx.new_page()


def marker_at(page, van: str):
    return page.evaluate(
        "v => { const m = window.vanboxPublic.markers[v]; if (!m) return null;"
        " const p = m.getLatLng(); return [p.lat, p.lng]; }",
        van,
    )


def test_public_map_on_a_phone_without_tiles(browser, hub_server, screenshot_dir):
    base, vans = hub_server
    blocked: list[str] = []
    ctx, page = new_page(browser, 390, 844, blocked)
    try:
        page.goto(base + "/")
        a = page.locator('article.van[data-van="van-a"]')
        b = page.locator('article.van[data-van="van-b"]')
        assert "Jetzt geöffnet" in a.locator(".badge").inner_text()
        assert "Peine, Marktplatz" in a.inner_text()
        assert "Edemissen, Schulzentrum" in b.inner_text()
        # Open vans: no "last seen" beside "Jetzt geöffnet" (it only looked stale).
        assert "Jetzt geöffnet" in b.locator(".badge").inner_text()
        assert page.locator("time.ago").count() == 0
        page.wait_for_function("() => Object.keys(window.vanboxPublic.markers).length === 2")
        assert marker_at(page, "van-a") == [52.3215, 10.2335]
        # No tile loaded, and the page says so and still shows the stops and vans.
        page.locator("#no-tiles").wait_for(state="visible")
        assert any("tile.openstreetmap.org" in u for u in blocked)
        assert page.locator(".stop-label").count() == 3
        assert page.locator(".van-pin").count() == 2
        page.screenshot(path=str(screenshot_dir / "public-phone-map.png"), full_page=True)

        # A new fix: the marker follows within 2 s, without a reload.
        page.evaluate("window.__marker = 1")
        vans.fix("van-a", "Vechelde, Bahnhof")
        page.wait_for_function(
            "() => { const p = window.vanboxPublic.markers['van-a'].getLatLng();"
            " return p.lat === 52.261 && p.lng === 10.366; }",
            timeout=2000,
        )
        assert page.evaluate("window.__marker") == 1  # same page: not reloaded
        page.locator('article.van[data-van="van-a"]', has_text="Vechelde, Bahnhof").wait_for()

        # The van's status topic says offline: label, no marker.
        vans.status("van-b", "offline")
        b.locator(".badge", has_text="Gerade keine Verbindung").wait_for(timeout=5000)
        assert "Der Bus meldet sich gerade nicht" in b.inner_text()
        assert b.locator("time.ago").count() == 1  # "last seen": offline in service hours only
        page.wait_for_function("() => !window.vanboxPublic.markers['van-b']")

        # The plain list, for people who do not want a map.
        page.get_by_role("link", name="Nur Liste").click()
        assert page.locator("#map").is_hidden()
        assert page.locator("article.van").count() == 2
        page.screenshot(path=str(screenshot_dir / "public-phone-list.png"), full_page=True)
    finally:
        ctx.close()


def test_public_map_on_a_desktop_and_one_van(browser, hub_server, screenshot_dir):
    base, _ = hub_server
    blocked: list[str] = []
    ctx, page = new_page(browser, 1280, 800, blocked)
    try:
        page.goto(base + "/")
        page.wait_for_function("() => Object.keys(window.vanboxPublic.markers).length === 2")
        assert page.locator("#map").is_visible() and page.locator("article.van").count() == 2
        box_map, box_list = (
            page.locator("#map").bounding_box(),
            page.locator("#vans").bounding_box(),
        )
        assert box_map["x"] + box_map["width"] <= box_list["x"] + 1  # side by side
        page.screenshot(path=str(screenshot_dir / "public-desktop.png"))
        serious = serious_violations(page, exclude=(LEAFLET,))
        assert serious == [], serious
        page.goto(base + "/van/van-b?lang=en")
        assert page.locator("article.van").count() == 1
        assert "Open now" in page.locator("article.van .badge").inner_text()
        page.screenshot(path=str(screenshot_dir / "public-desktop-one-van-en.png"))
    finally:
        ctx.close()


# --- plans on the public pages: a cancelled visit, a delay, the weekly timetable ---------

MON_0900 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 in Peine
MARKT = PlanStop("markt", "Peine, Marktplatz", "Peine", 52.3215, 10.2335, 150.0, (0, 2),
                 dtime(10, 0), dtime(13, 0))  # fmt: skip
SCHULE = PlanStop("schule", "Edemissen, Schulzentrum", "Edemissen", 52.386, 10.261, 150.0,
                  (0, 3), dtime(14, 30), dtime(18, 0))  # fmt: skip
BAHNHOF = PlanStop("bahnhof", "Vechelde, Bahnhof", "Vechelde", 52.261, 10.366, 150.0, (0, 1, 4),
                   dtime(9, 30), dtime(12, 30))  # fmt: skip
FESTPLATZ = PlanStop("festplatz", "Ilsede, Festplatz", "Ilsede", 52.26, 10.2, 150.0, (),
                     dtime(16, 0), dtime(18, 0))  # fmt: skip


class FixedClock:
    def now(self) -> datetime:
        return MON_0900


@pytest.fixture
def plan_server(tmp_path):
    """The hub's app (in this process, a fixed clock) with two published vans with their
    own plans: van-a's 14:30 visit today is cancelled and it has an extra visit tomorrow;
    van-b's 09:30 visit today is delayed, tomorrow's moved to Wednesday 11:00-12:00."""
    from werkzeug.serving import make_server

    from kiosk import create_app
    from telemetry.config import default_config

    st = Store(tmp_path / "hub.db")
    for van, name, stops in (
        ("van-a", "Bus Nord", (MARKT, SCHULE)),
        ("van-b", "Bus Süd", (BAHNHOF,)),
    ):
        registry.register(st, [van])
        registry.rename(st, van, name)
        registry.publish(st, van)
        for s in stops:
            change_plan(st, van, lambda p, s=s: p.with_stop(s))
    cancel = PlanException(id=new_id(), kind="cancel", date=MON_0900.date(), stop_key="schule",
                           reason="Krankheit im Team")  # fmt: skip
    delay = PlanException(id=new_id(), kind="delay", date=MON_0900.date(), stop_key="bahnhof",
                          delay_min=30, reason="Stau auf der B1")  # fmt: skip
    tomorrow = MON_0900.date() + timedelta(days=1)
    extra = PlanException(id=new_id(), kind="extra", date=tomorrow, stop=FESTPLATZ,
                          start=dtime(16, 0), end=dtime(18, 0))  # fmt: skip
    move = PlanException(id=new_id(), kind="move", date=tomorrow, stop_key="bahnhof",
                         new_date=tomorrow + timedelta(days=1), start=dtime(11, 0),
                         end=dtime(12, 0))  # fmt: skip
    for van, ex in (("van-a", cancel), ("van-a", extra), ("van-b", delay), ("van-b", move)):
        change_plan(st, van, lambda p, ex=ex: p.with_exception(ex))
    app = create_app({"TESTING": True}, config=default_config(), store=st, mode="hub")
    app.extensions["vanbox_clock"] = FixedClock()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        st.close()


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 720)])
def test_van_page_with_a_cancelled_visit(browser, plan_server, screenshot_dir, width, height):
    base, app = plan_server
    server_html = app.test_client().get("/van/van-a").get_data(as_text=True)
    # The line says when and where (struck through); its note says what changed, once.
    said = "Fällt aus. Grund: Krankheit im Team"
    assert f'<span class="note">{said}</span>' in server_html  # the first render, no script
    assert "Heute 14:30" not in server_html  # the old sentence said day, time, place again
    ctx, page = new_page(browser, width, height, [])
    try:
        page.goto(base + "/van/van-a")
        line = page.locator("article.van .next li.st-cancelled")
        note = line.locator(".note")
        assert note.inner_text() == said  # the script's render says exactly the same
        page.wait_for_function("() => window.vanboxPublic.polls >= 1")
        assert note.inner_text() == said
        assert line.locator(".when").inner_text() == "heute, 14:30–18:00 Uhr"
        assert line.inner_text().count("Edemissen, Schulzentrum") == 1
        assert line.inner_text().count("14:30") == 1
        assert page.locator("article.van").count() == 1
        assert "Vechelde" not in page.locator("#vans").inner_text()  # van-b's plan, not here
        struck = page.locator(".next li.st-cancelled .stop").evaluate(
            "e => getComputedStyle(e).textDecorationLine"
        )
        assert struck == "line-through"
        page.screenshot(path=str(screenshot_dir / f"public-cancelled-{width}.png"),
                        full_page=width < 600)  # fmt: skip
        # All vans: each with its own notice.
        page.goto(base + "/?view=list")
        b = page.locator('article.van[data-van="van-b"]')
        delayed = b.locator("li.st-delayed")
        assert delayed.locator(".when").inner_text() == "heute, 10:00–12:30 Uhr"
        assert delayed.locator(".note").inner_text() == (
            "Verspätet um 30 Minuten (statt 09:30 Uhr). Grund: Stau auf der B1"
        )
        assert "Fällt aus" not in b.inner_text()
    finally:
        ctx.close()


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 720)])
def test_weekly_timetable(browser, plan_server, screenshot_dir, width, height):
    base, _ = plan_server
    ctx, page = new_page(browser, width, height, [])
    try:
        page.goto(base + "/timetable")
        assert page.locator("h1").inner_text() == "Wochenplan der Busse"
        days = page.locator('section[data-van="van-a"] ol.tt > li')
        assert days.count() == 7
        today = page.locator('section[data-van="van-a"] ol.tt > li.today')
        assert "Fällt aus. Grund: Krankheit im Team" in today.inner_text()
        assert today.inner_text().count("Edemissen, Schulzentrum") == 1
        # On a desktop the week is one row of seven days; on a phone one day under another.
        boxes = [days.nth(i).bounding_box() for i in range(7)]
        same_row = len({round(b["y"]) for b in boxes}) == 1
        assert same_row == (width >= 900)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
        page.screenshot(path=str(screenshot_dir / f"public-timetable-{width}.png"),
                        full_page=True)  # fmt: skip
        serious = serious_violations(page)
        assert serious == [], serious
        page.get_by_role("link", name="Nächste Woche").click()
        page.wait_for_url("**week=1**")
        assert "Woche vom 30.11." in page.locator(".tt-nav .week").inner_text()
        assert "Fällt aus" not in page.locator("main").inner_text()
    finally:
        ctx.close()


@pytest.mark.parametrize("lang", ["de", "en", "tr", "ar", "uk", "ru", "fa"])
def test_each_change_said_once_with_and_without_javascript(browser, plan_server, screenshot_dir,
                                                           lang):  # fmt: skip
    """Every kind of change (cancelled, delayed, moved, extra) on the all-vans list: the
    script's lines say exactly what the server's (no JavaScript) say, in every language;
    each line names its place and time once; the struck-through cancelled line says
    "cancelled" in words (a screen reader does not read the strike)."""
    from kiosk.public_text import TEXT

    base, _ = plan_server
    t = TEXT[lang]
    url = f"{base}/?view=list&lang={lang}"
    lines = {}
    for js in (False, True):
        ctx = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True,
                                  is_mobile=True, device_scale_factor=1, locale="de-DE",
                                  java_script_enabled=js)  # fmt: skip
        ctx.route(lambda url: not url.startswith("http://127.0.0.1"), lambda r: r.abort())
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        try:
            page.goto(url)
            if js:
                page.wait_for_function("() => window.vanboxPublic.polls >= 1")
            items = page.locator("ul.next li")
            lines[js] = [items.nth(i).inner_text() for i in range(items.count())]
            statuses = [items.nth(i).get_attribute("class").split()[0] for i in
                        range(items.count())]  # fmt: skip
            assert set(statuses) == {"st-planned", "st-cancelled", "st-delayed", "st-moved",
                                     "st-extra"}  # fmt: skip
            for i, status in enumerate(statuses):
                if status == "st-planned":
                    continue
                li = items.nth(i)
                line, note = li.inner_text(), li.locator(".note").inner_text()
                place, when = li.locator(".stop").inner_text(), li.locator(".when").inner_text()
                start = when.split(t["sep"])[-1].split("–")[0]  # the time it takes place at
                assert note and place not in note and start not in note, line
                assert line.count(place) == 1 and line.count(start) == 1, line
            cancelled = page.locator("li.st-cancelled")
            assert t["note_cancelled"] in cancelled.inner_text()
            struck = cancelled.locator(".stop").evaluate(
                "e => getComputedStyle(e).textDecorationLine"
            )
            assert struck == "line-through"
            assert (
                cancelled.locator(".note").evaluate("e => getComputedStyle(e).textDecorationLine")
                == "none"
            )
            assert errors == []
            if js:
                page.screenshot(path=str(screenshot_dir / f"public-changes-{lang}.png"),
                                full_page=True)  # fmt: skip
                serious = serious_violations(page)
                assert serious == [], serious
        finally:
            ctx.close()
    assert lines[True] == lines[False]
