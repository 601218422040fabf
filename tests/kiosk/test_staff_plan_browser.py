"""Issue 11, end to end in Chromium: staff cancel a visit on the hub; within 10 s the
public van page shows it (without a reload), the kiosk of a running box (fed by the
retained plan over a real mosquitto) shows it, and the iCalendar feed has
STATUS:CANCELLED for that visit's UID."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest
from gpiozero.pins.mock import MockFactory
from icalendar import Calendar
from werkzeug.security import generate_password_hash

from firmware.box import Box
from hub.ingest import Hub
from hub.plans import PlanPublisher, install
from kiosk import create_app
from kiosk.auth import set_user
from kiosk.serve import make_server
from telemetry import registry
from telemetry.config import default_config
from telemetry.plan import stored_plan
from telemetry.store import Store
from tests.conftest import free_port

VAN = "jungregio-1"
PASSWORD = "lange-genug-2026"
WITHIN_S = 10.0


def mqtt_cfg(broker, **extra) -> dict:
    return {"host": "127.0.0.1", "port": broker.port, "keepalive": 10, "rate_limit": 5000.0,
            **extra}  # fmt: skip


def serve(app) -> tuple[str, object, threading.Thread]:
    server = make_server(app, host="127.0.0.1", port=0, role="hub", threads=4, ident="test")
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    return f"http://127.0.0.1:{server.effective_port}", server, t


@pytest.fixture
def fleet(tmp_path, broker):
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    # the hub: subscriber, plan publisher, web server; the van is registered and public
    cfg = default_config({"staff": {"passwd_file": str(passwd)}, "mqtt": mqtt_cfg(broker)})
    hub_store = Store(tmp_path / "hub.db", tz=cfg.timezone)
    registry.register(hub_store, [VAN])
    registry.update(hub_store, VAN, name="JUNGregio-Mobil", tid="JR", state="public")
    hub = Hub(hub_store, cfg.mqtt, client_id="test-hub", prefix="vanbox")
    app = create_app({"TESTING": True}, config=cfg, store=hub_store, mode="hub")
    plans = PlanPublisher(hub_store, hub.publish, prefix="vanbox")
    install(app, plans)
    hub.start()
    assert hub.wait_connected(10)
    plans.watch(hub)
    hub_url, server, thread = serve(app)
    # the box: a real Box with its kiosk on a free port, no GPS, no sensor
    kiosk_port = free_port()
    box_cfg = default_config(
        {
            "database": {"path": str(tmp_path / "box.db")},
            "sensor": {"kind": "none"},
            "kiosk": {"port": kiosk_port},
            "staff": {"passwd_file": str(passwd)},
            "mqtt": mqtt_cfg(broker, client_id="box-jr1"),
        }
    )
    box = Box(box_cfg, pin_factory=MockFactory(), gps_url=str(tmp_path / "no-gps"))
    box.start()
    yield hub_url, f"http://127.0.0.1:{kiosk_port}", hub_store, box
    box.stop()
    server.close()
    thread.join(5)
    plans.stop()
    hub.stop()
    hub_store.close()


def ics_status(url: str, uid: str) -> str | None:
    with urllib.request.urlopen(url, timeout=5) as r:
        cal = Calendar.from_ical(r.read())
    for ev in cal.walk("VEVENT"):
        if str(ev.get("UID")) == uid:
            return str(ev.get("STATUS"))
    return None


def test_staff_cancel_reaches_public_page_box_kiosk_and_calendar(fleet, browser):
    hub_url, kiosk_url, hub_store, box = fleet
    ctx = browser.new_context(viewport={"width": 1000, "height": 900}, locale="de-DE")
    public = browser.new_context(viewport={"width": 400, "height": 800}, locale="de-DE",
                                 has_touch=True, is_mobile=True)  # fmt: skip
    kiosk_ctx = browser.new_context(viewport={"width": 800, "height": 480}, has_touch=True,
                                    locale="de-DE")  # fmt: skip
    try:
        # the public van page and the box's touchscreen are open before the change
        box.app.config["VANBOX_HEARTBEAT_S"] = 1
        kiosk = kiosk_ctx.new_page()
        kiosk.goto(kiosk_url + "/")
        assert "Fällt aus" not in kiosk.inner_text(".stops")
        pub = public.new_page()
        pub.goto(f"{hub_url}/van/{VAN}")
        assert "fällt aus" not in pub.inner_text("body").lower()

        # staff: log in, open the van's plan, cancel the first upcoming visit with a reason
        staff = ctx.new_page()
        staff.goto(f"{hub_url}/staff/login")
        staff.fill("input[name=name]", "anna")
        staff.fill("input[name=password]", PASSWORD)
        staff.click("button[type=submit]")
        staff.goto(f"{hub_url}/staff/plan/{VAN}")
        row = staff.locator("#visits tbody tr.st-planned").first
        uid = row.get_attribute("data-uid")
        name = row.locator("td.where").inner_text().split(" (")[0]
        row.locator(".cancelform input[name=reason]").fill("wegen Krankheit")
        row.locator("button.cancel").click()
        staff.wait_for_selector("#plan-info")
        t0 = time.monotonic()
        assert "Abgesagt." in staff.inner_text("#plan-info")
        assert staff.locator(f'#visits tr[data-uid="{uid}"]').get_attribute("class") == (
            "st-cancelled"
        )
        assert stored_plan(hub_store, VAN).version == 1

        # the public page updates by itself
        pub.wait_for_function(
            "([n]) => [...document.querySelectorAll('li.st-cancelled')].some("
            "li => li.innerText.includes(n) && li.innerText.includes('Fällt aus'))",
            arg=[name], timeout=WITHIN_S * 1000,
        )  # fmt: skip
        line = pub.locator("li.st-cancelled", has_text=name).first.inner_text()
        assert "Fällt aus. Grund: wegen Krankheit" in line, line

        # the box got the retained plan and its idle start page reloads by itself
        deadline = t0 + WITHIN_S
        remaining_ms = max(1000, (deadline - time.monotonic()) * 1000)
        kiosk.wait_for_function(
            "() => (document.querySelector('.stops') || {innerText: ''}).innerText"
            ".includes('Fällt aus')",
            timeout=remaining_ms,
        )
        text = kiosk.inner_text(".stops")
        item = kiosk.locator(".stops li", has_text=name).first.inner_text()
        assert "Fällt aus" in item, text
        others = kiosk.locator(".stops li").all_inner_texts()
        assert sum("Fällt aus" in x for x in others) == 1  # only that visit
        assert stored_plan(box.store, VAN).version == 1

        # the calendar: the same UID, cancelled
        status = None
        while time.monotonic() < deadline + 2 and status != "CANCELLED":
            status = ics_status(f"{hub_url}/van/{VAN}/calendar.ics", uid)
            time.sleep(0.2)
        assert status == "CANCELLED"
        assert ics_status(f"{hub_url}/calendar.ics", uid) == "CANCELLED"
        assert time.monotonic() - t0 < WITHIN_S + 2
    finally:
        ctx.close()
        public.close()
        kiosk_ctx.close()


def test_two_vans_each_public_page_shows_its_own_plan(fleet, browser):
    hub_url, _, hub_store, _ = fleet
    from telemetry.plan import Plan, PlanStop, save_plan

    other = "van-b"
    registry.register(hub_store, [other])
    registry.update(hub_store, other, name="Zweiter Bus", tid="ZB", state="public")
    from datetime import time as dtime

    every_day = tuple(range(7))
    save_plan(hub_store, Plan.from_tour(other, ()).with_stop(
        PlanStop("vechelde-nur-hier", "Vechelde, Nur-Hier-Platz", "Vechelde", 52.261, 10.366,
                 150.0, every_day, dtime(6, 0), dtime(6, 30)), now=1.0))  # fmt: skip
    page = browser.new_page()
    try:
        page.goto(f"{hub_url}/van/{other}")
        b = page.inner_text("body")
        assert "Nur-Hier-Platz" in b and "Marktplatz" not in b
        page.goto(f"{hub_url}/van/{VAN}")
        a = page.inner_text("body")
        assert "Nur-Hier-Platz" not in a and ("Marktplatz" in a or "Bahnhof" in a)
    finally:
        page.close()
