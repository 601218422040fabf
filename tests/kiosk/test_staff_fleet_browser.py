"""The registry pages in Chromium: staff log in, name and publish a new van, and the
public page shows it under that name; a bad tracker id is refused on the page.
Screenshots: ``build/screenshots/staff-fleet-*.png``."""

from __future__ import annotations

import threading

import pytest
from werkzeug.security import generate_password_hash

from kiosk import create_app
from kiosk.auth import set_user
from telemetry import registry
from telemetry.config import default_config
from telemetry.store import Store

pytestmark = pytest.mark.browser
PASSWORD = "lange-genug-2026"


@pytest.fixture
def hub_url(tmp_path):
    from werkzeug.serving import make_server

    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}})
    st = Store(tmp_path / "hub.db", tz=cfg.timezone)
    registry.register(st, ["jr-nord", "jr-sued", "test-7"], now=1_764_000_000.0)
    registry.rename(st, "jr-nord", "JUNGregio Nord")
    registry.publish(st, "jr-nord")
    app = create_app({"TESTING": True}, config=cfg, store=st, mode="hub")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", st
    finally:
        server.shutdown()
        st.close()


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 720)])
def test_staff_publish_a_new_van(browser, hub_url, screenshot_dir, width, height):
    base, st = hub_url
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="de-DE")
    page = ctx.new_page()
    try:
        page.goto(base + "/staff/fleet/")
        page.fill("#name", "anna")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/staff/fleet/")
        row = page.locator("#van-jr-sued")
        assert "neu (nicht öffentlich)" in row.inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
        page.screenshot(path=str(screenshot_dir / f"staff-fleet-{width}.png"), full_page=True)

        row.locator("input[name=tid]").fill("ABC")
        row.locator("input[name=name]").fill("JUNGregio Süd")
        row.get_by_role("button", name="Veröffentlichen").click()
        alert = page.get_by_role("alert")
        assert "Tracker-ID" in alert.inner_text() and "nichts geändert" in alert.inner_text()
        assert registry.get(st, "jr-sued").state == "new"
        # The form keeps what was typed, so only the wrong field needs fixing.
        row = page.locator("#van-jr-sued")
        assert row.locator("input[name=name]").input_value() == "JUNGregio Süd"
        row.locator("input[name=tid]").fill("JS")
        row.get_by_role("button", name="Veröffentlichen").click()
        page.get_by_role("status").wait_for()
        assert "Veröffentlicht" in page.get_by_role("status").inner_text()
        assert "öffentlich" in page.locator("#van-jr-sued .state").inner_text()

        page.goto(base + "/?view=list")
        names = page.locator("article.van h2").all_inner_texts()
        assert names == ["JUNGregio Nord", "JUNGregio Süd"]
        assert "test-7" not in page.content()
    finally:
        ctx.close()
