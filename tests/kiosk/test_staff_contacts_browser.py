"""Issue 13.1 end to end in Chromium on a 390x844 touch phone: staff record 3 counselling
contacts by taps on a running box (its kiosk, its publisher) while no broker is
reachable; then the broker and the hub come up and the 3 contacts reach the hub once
each. Every tap of a contact is counted (opening the form, choices, "Speichern"): at
most 5 each, thanks to the defaults. Screenshots: build/screenshots/contacts-*.png."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from werkzeug.security import generate_password_hash

from firmware.box import Box
from hub.ingest import Hub
from hub.reconcile import Reconciler
from kiosk.auth import set_user
from telemetry.config import default_config
from telemetry.events import StopVisit, utcnow
from telemetry.store import Store
from tests.axe_check import serious_violations
from tests.conftest import Broker, free_port

pytestmark = [pytest.mark.browser, pytest.mark.mqtt]

VAN = "jungregio-1"
PASSWORD = "lange-genug-2026"
MAX_TAPS = 5


def wait_for(cond, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def rows(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT * FROM contacts WHERE van = ? ORDER BY id", (VAN,)).fetchall()
    finally:
        conn.close()


def start_hub(db: Path, port: int) -> tuple[Store, Hub]:
    store = Store(db)
    hub = Hub(store, {"host": "127.0.0.1", "port": port, "keepalive": 10},
              client_id="test-hub", on_control=Reconciler(store, backoff_s=1.0))  # fmt: skip
    hub.start()
    assert hub.wait_connected(15)
    return store, hub


@pytest.fixture
def offline_box(tmp_path):
    """A box whose broker is down, and that broker (persistent, the hub's session in it)."""
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    d = tmp_path / "mosquitto"
    d.mkdir()
    broker = Broker(d, free_port(), persistence=True)
    broker.start()
    hstore, hub = start_hub(tmp_path / "hub.db", broker.port)  # the hub's session is kept
    hub.stop()
    hstore.close()
    broker.stop()
    kiosk_port = free_port()
    cfg = default_config(
        {
            "database": {"path": str(tmp_path / "box.db")},
            "sensor": {"kind": "none"},
            "kiosk": {"port": kiosk_port},
            "staff": {"passwd_file": str(passwd)},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "keepalive": 10,
                     "client_id": "box-jr1", "reconnect_max_s": 1, "tally_interval_s": 10},
        }
    )  # fmt: skip
    box = Box(cfg, pin_factory=MockFactory(), gps_url=str(tmp_path / "no-gps"))
    # the van stood in Ilsede: the form offers Ilsede as where the young person lives
    now = utcnow()
    box.store.record(StopVisit(arrived=now, left=now, name="Ilsede, Gebläsehalle",
                               municipality="Ilsede", lat=52.263, lon=10.184))  # fmt: skip
    box.start()
    yield f"http://127.0.0.1:{kiosk_port}", box, broker
    box.stop()
    broker.stop()


def test_three_contacts_by_taps_offline_reach_the_hub_once_each(
    offline_box, browser, screenshot_dir, tmp_path
):
    url, box, broker = offline_box
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True,
                              is_mobile=True, device_scale_factor=2, locale="de-DE")  # fmt: skip
    page = ctx.new_page()
    try:
        page.goto(f"{url}/staff/login?next=/staff/contacts/new")
        page.fill("input[name=name]", "anna")
        page.fill("input[name=password]", PASSWORD)
        page.tap("button[type=submit]")
        page.wait_for_url("**/staff/contacts/new")

        taps: list[int] = []

        def contact(*choices: tuple[str, str], open_form: bool, shot: str = "") -> None:
            n = 0
            if open_form:
                page.tap("#next-contact")
                page.wait_for_url("**/staff/contacts/new")
                n += 1
            for name, value in choices:
                page.tap(f'label.chip:has(input[name="{name}"][value="{value}"])')
                n += 1
            if shot:
                assert page.is_checked('input[name="municipality"][value="Ilsede"]')
                page.screenshot(path=str(screenshot_dir / shot), full_page=True)
                assert serious_violations(page) == []
            page.tap("#save")
            n += 1
            page.wait_for_selector("#contact-saved")
            taps.append(n)

        # 1: a counselling talk about a job, 18-20: everything else is the default
        contact(("topics", "job"), ("age_group", "18-20"), open_form=False,
                shot="contacts-form.png")  # fmt: skip
        # 2: referred to the Jugendberufsagentur (the outcome follows by itself)
        contact(("topics", "training"), ("age_group", "21-24"), ("referrals", "jba"),
                open_form=True)  # fmt: skip
        # 3: a short contact about money, 15-17
        contact(("kind", "kurz"), ("topics", "money"), ("age_group", "15-17"), open_form=True)
        assert all(n <= MAX_TAPS for n in taps), taps
        assert page.inner_text("#contact-list").count("\n") >= 2
        assert "3 Kontakte, 3 Personen erreicht" in page.inner_text("h1")
        page.screenshot(path=str(screenshot_dir / "contacts-saved.png"), full_page=True)
    finally:
        ctx.close()

    box_rows = rows(box.store.path)
    assert len(box_rows) == 3
    got = sorted((r[5], r[6], r[8], r[12], r[13]) for r in box_rows)
    assert got == [  # kind, topics, age group, referrals, outcome
        ("beratung", '["job"]', "18-20", "[]", "geklaert"),
        ("beratung", '["training"]', "21-24", '["jba"]', "vermittelt"),
        ("kurz", '["money"]', "15-17", "[]", "geklaert"),
    ]
    assert {r[9] for r in box_rows} == {"Ilsede"}
    queued = [r[0] for r in box.store.reader().execute("SELECT kind FROM outbox")]
    assert queued.count("contact") == 3  # offline: all waiting in the outbox

    broker.start()  # the broker comes up, with the hub's session
    hub_db = tmp_path / "hub.db"
    hstore, hub = start_hub(hub_db, broker.port)
    try:
        wait_for(lambda: rows(hub_db) == box_rows, "the 3 contacts on the hub")
        time.sleep(1.0)  # a redelivery would show up now
        got = rows(hub_db)
        assert got == box_rows and len({r[0] for r in got}) == 3
    finally:
        hub.stop()
        hstore.close()
