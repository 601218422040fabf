"""The staff area in Debian's Chromium: log in, open every report, export and read back.

A month of made-up service (every tour stop on its weekdays, visitors and check-ins) is
stored, the app runs on a free port, and Chromium clicks through it like a staff member.
Screenshots ``staff-*.png`` go to the screenshot folder at 1280x800 and at tablet size.
"""

from __future__ import annotations

import csv
import io
import random
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from werkzeug.security import generate_password_hash
from werkzeug.serving import WSGIRequestHandler, make_server

from kiosk import create_app, staff
from kiosk.auth import set_user
from telemetry import reports
from telemetry.clock import ScaledClock
from telemetry.config import default_config
from telemetry.events import CheckIn, Footfall, Position, StopVisit
from tests.axe_check import serious_violations

pytestmark = pytest.mark.browser

TZ = ZoneInfo("Europe/Berlin")
PASSWORD = "browser-passwort-1"
NOW = datetime(2026, 11, 26, 15, 40, tzinfo=TZ)  # Thursday, the van stands in Lengede
MONTH = "2026-11-01"
AGES = ("15-17", "18-20", "21-24", "25-27", "unsaid")
TOPICS = ("school", "training", "job", "money", "housing", "family", "health", "talk")


class QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args) -> None:  # noqa: A002
        pass


def month_of_service(cfg, store) -> None:
    """November 2026 up to NOW: each tour stop on its weekdays, 2-14 visitors, check-ins."""
    rng = random.Random(7)
    events = []
    day = date(2026, 11, 1)
    while day <= NOW.date():
        for stop in cfg.tour:
            if day.weekday() not in stop.weekdays:
                continue
            arrived = datetime.combine(day, stop.start, TZ)
            left = datetime.combine(day, stop.end, TZ)
            if arrived > NOW:
                continue
            still_there = left > NOW
            events.append(
                StopVisit(
                    arrived=arrived.astimezone(UTC),
                    name=stop.name,
                    municipality=stop.municipality,
                    lat=stop.lat,
                    lon=stop.lon,
                    left=None if still_there else left.astimezone(UTC),
                )  # fmt: skip
            )
            end = min(left, NOW)
            span = (end - arrived).total_seconds()
            # A parked fix every 2 minutes; on the 10th the receiver loses the fix for 24 min.
            gap = (day.day == 10, arrived + timedelta(minutes=40), arrived + timedelta(minutes=64))
            t = arrived
            while t <= end:
                if not (gap[0] and gap[1] < t < gap[2]):
                    events.append(Position(t.astimezone(UTC), stop.lat, stop.lon, hdop=1.2))
                t += timedelta(minutes=2)
            inside = 0
            for _ in range(rng.randint(2, 14)):
                t = arrived + timedelta(seconds=rng.uniform(60, span - 60))
                inside += 1
                events.append(Footfall(t.astimezone(UTC), "in", "beam-pair", inside))
                if rng.random() < 0.45:
                    events.append(
                        CheckIn(
                            t.astimezone(UTC),
                            rng.choice(AGES),
                            tuple(rng.sample(TOPICS, rng.randint(1, 2))),
                            first_visit=rng.random() < 0.35,
                        )  # fmt: skip
                    )
                if not still_there or rng.random() < 0.7:
                    inside -= 1
                    t2 = t + timedelta(minutes=rng.randint(5, 40))
                    events.append(
                        Footfall(min(t2, end).astimezone(UTC), "out", "beam-pair", inside)
                    )
        day += timedelta(days=1)
    store.record_many(sorted(events, key=lambda e: e.time))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from telemetry.store import Store

    tmp = tmp_path_factory.mktemp("staff-browser")
    passwd = tmp / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config(
        {"staff": {"passwd_file": str(passwd)}, "reports": {"annual_budget_eur": 98000.0}}
    )
    store = Store(tmp / "vanbox.db", van=cfg.van["id"], tz=cfg.timezone, tid=cfg.van["tid"])
    month_of_service(cfg, store)
    app = create_app({"TESTING": False}, config=cfg, store=store)
    app.extensions["vanbox_clock"] = ScaledClock(NOW.astimezone(UTC), speed=1.0)
    srv = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", store, cfg
    srv.shutdown()
    srv.server_close()
    thread.join(10)
    store.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True,
                              locale="de-DE")  # fmt: skip
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    base = server[0]
    outside: list[str] = []
    errors: list[str] = []
    pg.on("request", lambda r: None if r.url.startswith((base, "data:")) else outside.append(r.url))
    # The wrong-password answer is a 401 on purpose; Chromium logs every 4xx page.
    pg.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text else None,
    )
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert outside == [], f"requests left the box: {outside}"
    assert errors == [], f"errors in the browser console (CSP?): {errors}"


def log_in(page, base: str) -> None:
    page.goto(f"{base}/staff/")
    assert "/staff/login" in page.url
    page.fill("#name", "anna")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/staff/")


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def as_text(v) -> str:
    return "" if v is None else str(v)


def csv_text(v, public: bool = False) -> str:
    """A cell as the CSV writes it: decimal comma; a hidden cell as the page shows it."""
    if v is None:
        return "<3" if public else ""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v).replace(".", ",")
    return str(v)


def xlsx_rows(table) -> list[tuple]:
    """The rows as a spreadsheet gives them back: an empty text is an empty cell."""
    return [tuple(None if v == "" else v for v in r) for r in table.rows]


def download(page, link) -> tuple[str, bytes]:
    with page.expect_download() as info:
        link.click()
    d = info.value
    path = d.path()
    with open(path, "rb") as f:
        return d.suggested_filename, f.read()


def test_login_reports_exports_and_screenshots(page, server, screenshot_dir):
    base, store, cfg = server
    conn = store.reader()
    page.goto(f"{base}/staff/")
    page.screenshot(path=str(screenshot_dir / "staff-login.png"))
    page.fill("#name", "anna")
    page.fill("#password", "falsch-falsch")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "Name oder Passwort ist falsch."
    log_in(page, base)

    # Today at a glance, as telemetry.reports.today counts it.
    t = reports.today(conn, NOW, TZ)
    assert t["stop"] == "Lengede, Jugendzentrum"
    assert page.locator("#tile-stop .value").inner_text() == t["stop"]
    assert page.locator("#tile-people .value").inner_text() == str(t["people_in"])
    assert page.locator("#tile-checkins .value").inner_text() == str(t["checkins"])
    assert page.locator("#tile-occupancy .value").inner_text() == str(t["occupancy"])
    page.screenshot(path=str(screenshot_dir / "staff-today.png"), full_page=True)

    # Every report for the month, each by clicking its tab.
    p = reports.period("month", date(2026, 11, 1))
    page.goto(f"{base}/staff/reports/summary?p=month&d={MONTH}")
    for name in reports.REPORTS:
        page.click(f".reportnav a[href*='/reports/{name}?']")
        page.wait_for_url(f"**/reports/{name}?**")
        table = reports.report(conn, name, p)
        cells = page.locator("#report-table tbody tr")
        assert cells.count() == max(1, len(table.rows)), name
        values = page.locator("#report-table tbody td").evaluate_all(
            "tds => tds.map(td => td.dataset.value)"
        )
        if table.rows:
            assert values == [as_text(v) for r in table.rows for v in r], name
        svg = page.locator("figure.chart svg")
        assert svg.count() == (0 if table.chart == "none" else 1), name
        if table.chart != "none":
            assert svg.bounding_box()["width"] > 300
        page.screenshot(path=str(screenshot_dir / f"staff-report-{name}.png"), full_page=True)

    # Period navigation: previous month, then the week view.
    page.goto(f"{base}/staff/reports/stops?p=month&d={MONTH}")
    page.click(".stepper a.prev")
    assert page.locator(".stepper .period").inner_text() == "Oktober 2026"
    assert "Keine Daten" in page.locator("figure.chart").inner_html()  # no month before
    assert page.locator("#report-table tbody tr").count() == 1  # the total row only
    page.click(".stepper a.next")
    page.click(".kinds a:has-text('Woche')")
    assert page.locator(".stepper .period").inner_text().startswith("KW 44/2026")

    # Exports: internal CSV and XLSX of the stops, public CSV of the topics.
    page.goto(f"{base}/staff/reports/stops?p=month&d={MONTH}")
    table = staff.table_de(reports.report(conn, "stops", p))  # German, as the exports are
    name, data = download(page, page.locator(".exports .internal a", has_text="CSV"))
    assert name == "vanbox-stops-2026-11.csv"
    assert read_csv(data) == [list(table.columns)] + [[csv_text(v) for v in r] for r in table.rows]
    name, data = download(page, page.locator(".exports .internal a", has_text="XLSX"))
    assert name == "vanbox-stops-2026-11.xlsx"
    ws = load_workbook(io.BytesIO(data))["Daten"]
    assert [tuple(r) for r in ws.iter_rows(values_only=True)] == [table.columns, *xlsx_rows(table)]

    page.goto(f"{base}/staff/reports/topics?p=month&d={MONTH}")
    public = staff.table_de(reports.report(conn, "topics", p, public=True, min_cell=3))
    name, data = download(page, page.locator(".exports .public a", has_text="CSV"))
    assert name == "vanbox-topics-2026-11-public.csv"
    assert read_csv(data) == [list(public.columns)] + [
        [csv_text(v, True) for v in r] for r in public.rows
    ]

    # The annual report (tests/kiosk/test_staff_annual*.py check it in depth).
    page.goto(f"{base}/staff/annual?year=2026")
    assert page.locator("#kpi-besuche").get_attribute("data-value").isdigit()
    assert page.locator("#table-gemeinden").count() == 1
    page.screenshot(path=str(screenshot_dir / "staff-annual.png"), full_page=True)
    name, data = download(page, page.locator(".exports a", has_text="Alle Tabellen XLSX"))
    assert name == "vanbox-annual-2026-public.xlsx"
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames[:3] == ["Kennzahlen", "Haltestellen", "Gemeinden"]


def test_tablet_size(page, server, screenshot_dir):
    base, _store, _cfg = server
    page.set_viewport_size({"width": 820, "height": 1180})
    log_in(page, base)
    page.screenshot(path=str(screenshot_dir / "staff-tablet-today.png"), full_page=True)
    page.goto(f"{base}/staff/reports/municipalities?p=month&d={MONTH}")
    # Chart and table stack; nothing wider than the screen.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 820
    chart = page.locator("figure.chart").bounding_box()
    table = page.locator("#report-table").bounding_box()
    assert table["y"] >= chart["y"] + chart["height"] - 1
    page.screenshot(path=str(screenshot_dir / "staff-tablet-municipalities.png"), full_page=True)
    page.goto(f"{base}/staff/annual?year=2026")
    page.screenshot(path=str(screenshot_dir / "staff-tablet-annual.png"), full_page=True)


def test_annual_report_prints_on_a4(page, server, screenshot_dir):
    base, _store, _cfg = server
    log_in(page, base)
    page.goto(f"{base}/staff/annual?year=2026")
    page.emulate_media(media="print")
    assert page.locator(".topbar").is_hidden()
    assert page.locator(".exports").is_hidden()
    assert page.locator("#annual-report").is_visible()
    pdf = page.pdf(format="A4", print_background=True)
    (screenshot_dir / "staff-annual.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF")
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert 1 <= pages <= 12, f"the annual report prints on a few A4 pages, got {pages}"


def test_staff_pages_pass_axe(page, server):
    base, _store, _cfg = server
    found = {}
    page.goto(f"{base}/staff/login")
    found["login"] = serious_violations(page)
    log_in(page, base)
    found["today"] = serious_violations(page)
    for name in ("stops", "rural", "quality"):
        page.goto(f"{base}/staff/reports/{name}?p=month&d={MONTH}")
        found[name] = serious_violations(page)
    page.goto(f"{base}/staff/annual?year=2026")
    found["annual"] = serious_violations(page)
    assert {k: v for k, v in found.items() if v} == {}


def test_today_updates_itself_and_can_be_paused(page, server):
    """today.js fetches the figures (here: resumed by the button, not after a minute)."""
    base, store, cfg = server
    log_in(page, base)
    people = page.locator("#tile-people .value")
    before = int(people.inner_text())
    button = page.locator("#autorefresh")
    assert button.get_attribute("aria-pressed") == "true"
    button.click()
    assert button.get_attribute("aria-pressed") == "false"
    store.record(Footfall((NOW + timedelta(minutes=1)).astimezone(UTC), "in", "beam-pair", 1))
    button.click()  # resuming updates at once
    assert button.get_attribute("aria-pressed") == "true"
    # A function, not an expression: Playwright polls an expression with eval(), which the
    # staff pages' CSP refuses as soon as the first check is not already true.
    page.wait_for_function(
        "(want) => document.querySelector('#tile-people .value').textContent.trim() === want",
        arg=str(before + 1),
    )
    assert (
        int(people.inner_text())
        == reports.today(store.reader(), NOW + timedelta(minutes=2), TZ)["people_in"]
    )
