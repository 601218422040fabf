"""The annual report in Debian's Chromium: the page on screen and printed on A4 (print
CSS), with every value whole in its box (the "€" was cut off in print), and the PDF
download. Screenshots ``annual-*.png`` go to the screenshot folder."""

from __future__ import annotations

import io
import re
import threading
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader
from werkzeug.serving import WSGIRequestHandler, make_server

from telemetry.config import default_config
from tests.kiosk.test_staff_annual import FUNDERS, PASSWORD, VAN, contactdata, make_app, yeardata

pytestmark = pytest.mark.browser

NOW = datetime(2025, 10, 15, 12, 0, tzinfo=UTC)
A4_CSS_PX = 794  # 210 mm at 96 px per inch


class QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    y = yeardata.generate(2025, seed=41, van=VAN, days=287, drive_interval_s=60,
                          park_interval_s=900)  # fmt: skip
    contacts = contactdata.generate_contacts(y.visits, default_config().tz, van=VAN, seed=41)
    app, store = make_app(tmp_path_factory.mktemp("annual-browser"), "box", [(y, contacts)])
    from telemetry.clock import ScaledClock

    app.extensions["vanbox_clock"] = ScaledClock(NOW, speed=1.0)
    app.config["TESTING"] = False
    srv = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()
    thread.join(10)
    store.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True,
                              locale="de-DE", has_touch=True)  # fmt: skip
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{server}/staff/login?next=/staff/annual?year=2025")
    pg.fill("#name", "anna")
    pg.fill("#password", PASSWORD)
    pg.click("button[type=submit]")
    pg.wait_for_url("**/staff/annual?year=2025")
    yield pg
    ctx.close()
    assert errors == [], f"errors in the browser console (CSP?): {errors}"


CUT_OFF = """() => [...document.querySelectorAll('.kpi .value, table.data td')]
  .filter(e => e.offsetParent !== null)
  .filter(e => {
    const box = e.getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(e);
    const text = range.getBoundingClientRect();
    return e.scrollWidth > e.clientWidth + 1 || text.right > box.right + 0.5;
  })
  .map(e => e.textContent.trim())"""


def test_annual_page_on_screen_and_on_a4(page, screenshot_dir):
    assert "Stand 15.10.2025, vorläufig" in page.locator("#stand").inner_text()
    assert page.locator("#table-gemeinden tbody tr").count() >= 8
    assert page.locator("#definitions dt").count() >= 3
    cost = page.locator("#kpi-kosten_je_kontakt .value").inner_text()
    assert re.fullmatch(r"\d+,\d\d\s€", cost), cost
    page.screenshot(path=str(screenshot_dir / "annual-screen.png"), full_page=True)

    page.set_viewport_size({"width": A4_CSS_PX, "height": 1123})
    page.emulate_media(media="print")
    assert page.locator(".topbar").is_hidden() and page.locator(".exports").is_hidden()
    assert page.evaluate(CUT_OFF) == []  # no value (and no "€") is cut off in print
    assert page.evaluate("document.documentElement.scrollWidth") <= A4_CSS_PX
    page.screenshot(path=str(screenshot_dir / "annual-a4-print.png"), full_page=True)

    pdf = page.pdf(format="A4", print_background=True)
    (screenshot_dir / "annual-print.pdf").write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert cost.replace("\u00a0", " ") in text.replace("\u00a0", " ")  # the € printed whole
    assert all(float(p.mediabox.width) == pytest.approx(595, abs=2) for p in reader.pages)
    assert "Jugendamt" in text


def test_pdf_download_from_the_page(page):
    page.emulate_media(media="screen")
    with page.expect_download() as info:
        page.locator(".exports a", has_text="PDF").click()
    d = info.value
    assert d.suggested_filename == "vanbox-annual-2025-public.pdf"
    with open(d.path(), "rb") as f:
        data = f.read()
    assert data.startswith(b"%PDF")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    for f in FUNDERS:
        assert f["name"] in text
