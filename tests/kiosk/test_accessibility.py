"""axe-core (bundled with axe-playwright-python, injected into the page: no network)
finds no serious or critical violation on any check-in screen, in German and Arabic."""

from __future__ import annotations

import socket
import threading

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from kiosk import create_app
from telemetry.config import default_config
from telemetry.store import Store
from tests.axe_check import serious_violations

pytestmark = pytest.mark.browser


class QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args) -> None:  # noqa: A002
        pass


@pytest.fixture
def base_url(tmp_path):
    st = Store(tmp_path / "vanbox.db", van="testvan")
    app = create_app(config=default_config(), store=st)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    srv.shutdown()
    srv.server_close()
    st.close()


def serious(page) -> list[str]:
    return serious_violations(page)


@pytest.mark.parametrize("lang", ["de", "ar"])
def test_every_checkin_screen_passes_axe(base_url, touch_page, lang):
    page = touch_page
    found: dict[str, list[str]] = {}

    page.goto(f"{base_url}/{lang}/")
    found["start"] = serious(page)
    page.goto(f"{base_url}/{lang}/checkin")
    found["age"] = serious(page)
    page.locator("button[name=age][value='21-24']").tap()
    page.locator(".choices-topics").wait_for()
    page.locator(".tile:has(input[value=health]) span").tap()
    found["topics"] = serious(page)
    page.locator(".btn-next").tap()
    page.locator(".choices-visit").wait_for()
    found["visit"] = serious(page)
    page.locator("button[name=first_visit][value=yes]").tap()
    page.locator(".choices-heard").wait_for()
    found["heard"] = serious(page)
    page.locator("button[name=heard_from][value=poster]").tap()
    page.wait_for_url(f"{base_url}/{lang}/thanks")
    found["thanks"] = serious(page)
    page.goto(f"{base_url}/{lang}/checkin")
    page.evaluate("document.querySelector('input[name=csrf_token]').value = 'forged'")
    page.locator("button[name=age][value='21-24']").tap()
    page.locator(".screen-error").wait_for()
    found["error"] = serious(page)

    assert len(found) == 7
    assert {k: v for k, v in found.items() if v} == {}


def test_axe_does_find_problems(base_url, touch_page):
    """The check is live: a low-contrast, unlabeled button is reported."""
    page = touch_page
    page.goto(f"{base_url}/de/checkin")
    page.evaluate(
        """() => { const b = document.querySelector('button[name=age]');
                   b.textContent = ''; b.style.color = '#ffd23f'; }"""
    )
    assert any(v.startswith("button-name") for v in serious(page))


@pytest.mark.parametrize("lang", ["de", "ar", "fa"])
def test_new_screens_pass_axe(base_url, touch_page, lang):
    """Issue 14: the privacy and offline screens, the age screen with seven groups, the
    topics screen with "We are ___", and a screen reached by "back"."""
    page = touch_page
    found: dict[str, list[str]] = {}
    page.goto(f"{base_url}/{lang}/privacy")
    found["privacy"] = serious(page)
    page.route("**/healthz", lambda route: route.abort())  # the offline screen stays
    page.goto(f"{base_url}/{lang}/offline")
    found["offline"] = serious(page)
    page.goto("about:blank")  # (the offline screen would leave for "/" once /healthz answers)
    page.unroute("**/healthz")
    page.goto(f"{base_url}/{lang}/checkin")
    page.locator("button[name=age][value='over-27']").tap()
    page.locator(".choices-topics").wait_for()
    page.locator(".tile-group:has(input[value='2']) span").tap()
    found["topics-group"] = serious(page)
    page.locator(".btn-back").tap()
    page.locator(".choices-age").wait_for()
    found["age-after-back"] = serious(page)
    if lang == "de":  # the staff keypad is German only
        page.goto(f"{base_url}/staff-pin")
        found["staff-pin"] = serious(page)
    assert len(found) == (5 if lang == "de" else 4)
    assert {k: v for k, v in found.items() if v} == {}
