"""The public map in Chromium on a phone (390x844): Arabic with every map tile blocked
(right to left, Arabic-Indic digits, the Landkreis outline with its names instead of a
grey box, the next stop highlighted), the same page with JavaScript off (list and the
server-drawn outline map), the evening wording, screenshots in all seven languages
(``build/screenshots/public-lang-*.png``) and axe-core on each of them."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from kiosk.public_text import LANGS, TEXT
from tests.axe_check import LEAFLET, serious_violations

pytestmark = pytest.mark.browser

_spec = importlib.util.spec_from_file_location(
    "public_i18n_helpers", Path(__file__).with_name("test_public_i18n.py")
)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)  # type: ignore[union-attr]


class QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args) -> None:  # noqa: A002
        pass


@pytest.fixture
def serve(tmp_path):
    """``serve(now, setup=None)``: the hub's app (one van, open at the Markt at 11:00; see
    test_public_i18n.make_app) on a free port, at the simulated time ``now``; ``setup``
    gets the store first (to change the van's plan, say)."""
    servers = []

    def start(now, setup=None, **kw):
        d = tmp_path / str(len(servers))
        d.mkdir()
        _, st = app_st = helpers.make_app(d, now, **kw)
        if setup is not None:
            setup(st)
        srv = make_server("127.0.0.1", 0, app_st[0], threaded=True, request_handler=QuietHandler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append((srv, st))
        return f"http://127.0.0.1:{srv.server_port}"

    yield start
    for srv, st in servers:
        srv.shutdown()
        srv.server_close()
        st.close()


def phone(browser, *, locale: str = "de-DE", js: bool = True):
    """A phone (390x844, touch) on which every request off this machine fails (the map
    tiles above all); page errors are collected in ``page.errors``."""
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True,
                              is_mobile=True, device_scale_factor=1, locale=locale,
                              java_script_enabled=js)  # fmt: skip
    blocked: list[str] = []

    def block(route) -> None:
        blocked.append(route.request.url)
        route.abort()

    ctx.route(lambda url: not url.startswith("http://127.0.0.1"), block)
    page = ctx.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    return ctx, page, blocked


def serious(page) -> list[str]:
    return serious_violations(page, exclude=(LEAFLET,))


def test_arabic_phone_without_tiles(browser, serve, screenshot_dir):
    base = serve(helpers.local(11))
    ctx, page, blocked = phone(browser, locale="ar")
    try:
        page.goto(base + "/")  # the language comes from the browser (Accept-Language: ar)
        assert page.evaluate("document.documentElement.dir") == "rtl"
        assert page.locator("h1").inner_text() == TEXT["ar"]["title"]
        page.locator("#no-tiles").wait_for(state="visible")
        assert any("tile.openstreetmap.org" in u for u in blocked)
        # A labelled map, not a grey box: the Landkreis outline and municipality names.
        assert page.locator("path.leaflet-interactive, .leaflet-overlay-pane path").count() >= 2
        munis = page.locator(".muni-label").all_inner_texts()
        assert {"Hohenhameln", "Ilsede", "Lengede", "Vechelde", "Wendeburg"} <= set(munis)
        # The next stop: always named on the map, marked in the list.
        assert page.locator(".next-label").inner_text() == "Edemissen, Schulzentrum"
        item = page.locator("li.is-next")
        assert item.count() == 1 and TEXT["ar"]["next_badge"] in item.inner_text()
        assert "Edemissen, Schulzentrum" in item.inner_text()
        assert "١٤:٣٠" in item.inner_text()  # Arabic-Indic digits, in the script's render too
        card = page.locator("article.van").bounding_box()
        border = page.locator("article.van").evaluate(
            "e => [getComputedStyle(e).borderRightWidth, getComputedStyle(e).borderLeftWidth]"
        )
        assert border == ["6px", "1px"]  # the state stripe on the start side: the right
        assert card["x"] >= 0 and card["x"] + card["width"] <= 390
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator("#outline").is_hidden()  # the Leaflet map draws the outline
        assert page.errors == []  # type: ignore[attr-defined]
        page.screenshot(path=str(screenshot_dir / "public-ar-no-tiles.png"), full_page=True)
        assert serious(page) == []
    finally:
        ctx.close()


def test_arabic_phone_without_javascript(browser, serve, screenshot_dir):
    base = serve(helpers.local(11))
    ctx, page, _ = phone(browser, locale="ar", js=False)
    try:
        page.goto(base + "/")
        assert page.locator("html").get_attribute("dir") == "rtl"
        assert page.locator("#map").is_hidden()
        outline = page.locator("#outline")
        assert outline.is_visible()
        box = outline.locator("svg").bounding_box()
        assert box["width"] > 300 and box["height"] > 300  # a real map, not a strip
        assert outline.locator("text", has_text="Hohenhameln").count() == 1
        assert outline.locator("g.next text").text_content() == "Edemissen, Schulzentrum"
        assert outline.locator("g.van-mark text").text_content() == "Bus Nord"
        assert TEXT["ar"]["outline_label"] in outline.inner_text()
        assert "١٤:٣٠" in page.locator("li.is-next").inner_text()
        # The switcher works without JavaScript: it is plain links.
        page.get_by_role("link", name="فارسی").click()
        page.wait_for_url("**lang=fa**")
        assert page.locator("html").get_attribute("lang") == "fa"
        assert TEXT["fa"]["state_open"] in page.locator("article.van .badge").inner_text()
        page.get_by_role("link", name=TEXT["fa"]["show_list"]).click()
        page.wait_for_url("**view=list**")
        page.locator("#outline").wait_for(state="hidden")
        assert page.locator("article.van").count() == 1
        page.goto(base + "/?lang=ar")
        page.screenshot(path=str(screenshot_dir / "public-ar-no-js.png"), full_page=True)
    finally:
        ctx.close()
    # axe needs JavaScript: the same page as served, with the page's own scripts blocked.
    ctx, page, _ = phone(browser, locale="ar")
    try:
        page.route("**/*.js", lambda route: route.abort())
        page.goto(base + "/")
        assert page.locator("#outline").is_visible() and page.locator("#map").is_hidden()
        assert serious(page) == []
    finally:
        ctx.close()


def test_the_evening_on_a_phone(browser, serve, screenshot_dir):
    base = serve(helpers.local(19, 30), at=helpers.DEPOT)  # switched on at the depot
    ctx, page, _ = phone(browser)
    try:
        page.goto(base + "/")
        page.wait_for_function("() => window.vanboxPublic.polls >= 1")  # the script's render
        card = page.locator("article.van")
        assert card.locator(".badge").inner_text() == "Heute keine Sprechzeit mehr"
        assert "Nächster Halt: Mi 25.11. 10:00 Uhr, Peine, Marktplatz" in card.inner_text()
        for word in ("Offline", "Verbindung", "Zuletzt", "gerade eben"):
            assert word not in card.inner_text(), word
        assert page.evaluate("Object.keys(window.vanboxPublic.markers).length") == 0
        page.screenshot(path=str(screenshot_dir / "public-evening.png"), full_page=True)
    finally:
        ctx.close()


@pytest.mark.parametrize("lang", LANGS)
def test_every_language_on_a_phone(browser, serve, screenshot_dir, lang):
    base = serve(helpers.local(11))
    ctx, page, _ = phone(browser)
    try:
        page.goto(f"{base}/?lang={lang}")
        page.wait_for_function("() => window.vanboxPublic.polls >= 1")
        t = TEXT[lang]
        assert page.locator("html").get_attribute("dir") == t["dir"]
        assert page.locator("article.van .badge").inner_text() == t["state_open"]
        assert t["next_badge"] in page.locator("li.is-next").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.errors == []  # type: ignore[attr-defined]
        page.screenshot(path=str(screenshot_dir / f"public-lang-{lang}.png"), full_page=True)
        assert serious(page) == []
    finally:
        ctx.close()


def test_arabic_timetable_on_a_phone(browser, serve, screenshot_dir):
    base = serve(helpers.local(11))
    ctx, page, _ = phone(browser, locale="ar")
    try:
        page.goto(base + "/timetable")
        assert page.locator("html").get_attribute("dir") == "rtl"
        assert page.locator("h1").inner_text() == TEXT["ar"]["tt_title"]
        today = page.locator("ol.tt > li.today").inner_text()
        assert "١٠:٠٠" in today and "Peine, Marktplatz" in today
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(screenshot_dir / "public-ar-timetable.png"), full_page=True)
        assert serious(page) == []
    finally:
        ctx.close()
