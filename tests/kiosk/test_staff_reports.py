"""Staff report pages, charts and exports through Flask's test client, on a small known
dataset: every report and period kind renders, the page shows the Table's figures, the
CSV and XLSX files read back equal to the Table, and the hub's van filter works."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from werkzeug.security import generate_password_hash

from kiosk import charts, create_app, staff
from kiosk.auth import set_user
from telemetry import reports
from telemetry.clock import ScaledClock
from telemetry.config import default_config
from telemetry.events import CheckIn, Footfall, StopVisit
from telemetry.plan import Plan
from telemetry.store import Store

TZ = ZoneInfo("Europe/Berlin")
PASSWORD = "report-passwort-1"
VAN_A, VAN_B = "jungregio-1", "jungregio-2"
BUDGET = 1800.0
KINDS = ("day", "week", "month", "year")
DAY = date(2026, 11, 2)  # Monday


def at(d: date, hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(d.year, d.month, d.day, h, m, tzinfo=TZ).astimezone(UTC)


def visit(van, d, stop, muni, start, end, lat=52.3, lon=10.2) -> StopVisit:
    return StopVisit(at(d, start), stop, muni, lat, lon, left=at(d, end), van=van)


def ins(van, d, start, n, step_min=7) -> list[Footfall]:
    t0 = at(d, start)
    return [
        Footfall(t0 + timedelta(minutes=i * step_min), "in", "beam-pair", 1, van=van)
        for i in range(n)
    ]


def checkin(van, d, hhmm, age, topics, first) -> CheckIn:
    return CheckIn(at(d, hhmm), age, tuple(topics), first_visit=first, van=van)


def dataset() -> list:
    """Van A: Monday 2 Nov in Peine (5 visitors, 2 check-ins) and Edemissen (4 visitors,
    3 check-ins); Tuesday 1 Dec in Peine (2 visitors). Van B: Tuesday 3 Nov in Wendeburg
    (6 visitors, 1 check-in, a first visit)."""
    tue = date(2026, 11, 3)
    dec = date(2026, 12, 1)
    return [
        visit(VAN_A, DAY, "Peine, Marktplatz", "Peine", "10:00", "13:00"),
        *ins(VAN_A, DAY, "10:10", 5),
        checkin(VAN_A, DAY, "10:00", "18-20", ["job"], True),
        checkin(VAN_A, DAY, "11:00", "15-17", ["job", "school"], False),
        visit(VAN_A, DAY, "Edemissen, Schulzentrum", "Edemissen", "14:30", "18:00"),
        *ins(VAN_A, DAY, "14:40", 4, step_min=20),
        checkin(VAN_A, DAY, "15:00", "21-24", ["housing"], True),
        checkin(VAN_A, DAY, "15:00", "21-24", ["housing", "money"], True),
        checkin(VAN_A, DAY, "16:00", "25-27", ["school"], None),
        visit(VAN_A, dec, "Peine, Marktplatz", "Peine", "10:00", "13:00"),
        *ins(VAN_A, dec, "10:30", 2),
        visit(VAN_B, tue, "Wendeburg, Rathaus", "Wendeburg", "14:00", "18:00"),
        *ins(VAN_B, tue, "14:15", 6),
        checkin(VAN_B, tue, "15:00", "18-20", ["talk"], True),
    ]


def make_app(tmp_path, mode: str, now: datetime | None = None, **reports_cfg):
    """The app over dataset(). No crew on board unless ``crew=`` says so: the counts made
    by hand below are every "in" (the crew's passes: test_the_configured_crew_and_town_...)."""
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    rep = {"annual_budget_eur": BUDGET, "crew": 0, **reports_cfg}
    cfg = default_config({"staff": {"passwd_file": str(passwd)}, "reports": rep})
    if mode == "hub":
        store = Store(tmp_path / "hub.db", van="", tz=cfg.timezone)
        store.ingest_many(dataset())
    else:  # the box: one van's events only
        store = Store(tmp_path / "box.db", van=VAN_A, tz=cfg.timezone)
        store.record_many([e for e in dataset() if e.van == VAN_A])
    app = create_app({"TESTING": True}, config=cfg, store=store, mode=mode)
    if now is not None:
        app.extensions["vanbox_clock"] = ScaledClock(now, speed=1.0)
    return app, store


@pytest.fixture
def box(tmp_path):
    app, store = make_app(tmp_path, "box")
    yield app, store
    store.close()


@pytest.fixture
def hub(tmp_path):
    app, store = make_app(tmp_path, "hub")
    yield app, store
    store.close()


def client_of(app, password: str = PASSWORD):
    """A test client logged in as anna."""
    c = app.test_client()
    page = c.get("/staff/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = c.post("/staff/login", data={"name": "anna", "password": password, "csrf_token": token})
    assert r.status_code == 302
    return c


class TableParser(HTMLParser):
    """The cells of ``<table id=...>``: (data-value, shown text) per row."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.inside = False
        self.rows: list[list[tuple[str, str]]] = []
        self.head: list[str] = []
        self._cell: list[str] | None = None
        self._value = ""
        self._th = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self._cell, self._value, self._th = [], a.get("data-value", ""), tag == "th"

    def handle_endtag(self, tag):
        if tag == "table" and self.inside:
            self.inside = False
        elif self.inside and tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            if self._th:
                self.head.append(text)
            else:
                self.rows[-1].append((self._value, text))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def page_table(html: str, table_id: str = "report-table") -> tuple[list[str], list[list]]:
    p = TableParser(table_id)
    p.feed(html)
    return p.head, [r for r in p.rows if r]


def as_text(v) -> str:
    return "" if v is None else str(v)


def csv_rows(data: bytes) -> list[list[str]]:
    """A CSV export as German Excel reads it: UTF-8 with BOM, ";" between cells."""
    assert data.startswith(b"\xef\xbb\xbf"), "CSV starts with a UTF-8 byte order mark"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def csv_text(v, public: bool = False) -> str:
    """A cell as the CSV writes it: decimal comma; a hidden cell as the page shows it."""
    if v is None:
        return "<3" if public else ""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v).replace(".", ",")
    return str(v)


def xlsx_rows(data: bytes, sheet: str) -> list[tuple]:
    return [tuple(r) for r in load_workbook(io.BytesIO(data))[sheet].iter_rows(values_only=True)]


def blank_to_none(rows, public: bool = False) -> list[tuple]:
    """The rows as the XLSX holds them: an empty text is an empty cell; a hidden cell of a
    public file is "<3", as on the page."""
    return [
        tuple(("<3" if public else None) if v is None else (None if v == "" else v) for v in r)
        for r in rows
    ]


def slug(p: reports.Period) -> str:
    return {"day": "2026-11-02", "week": "2026-W45", "month": "2026-11", "year": "2026"}[p.kind]


# --- pages -------------------------------------------------------------------------------


def test_every_report_and_period_kind_shows_the_table(box):
    app, store = box
    c = client_of(app)
    conn = store.reader()
    for kind in KINDS:
        p = reports.period(kind, DAY)
        for name in reports.REPORTS:
            r = c.get(f"/staff/reports/{name}?p={kind}&d={DAY.isoformat()}")
            assert r.status_code == 200, (kind, name)
            table = reports.report(conn, name, p, crew=0)
            head, rows = page_table(r.text)
            assert head == [staff.de(col) for col in table.columns]
            if not table.rows:
                assert len(rows) == 1 and "Keine Daten" in rows[0][0][1]
                continue
            assert [[v for v, _ in row] for row in rows] == [
                [as_text(v) for v in row] for row in table.rows
            ], (kind, name)
            assert [[t for _, t in row] for row in rows] == [
                [staff.fmt(v) for v in row] for row in table.rows
            ], (kind, name)
            assert ("<svg" in r.text) == (table.chart != "none"), (kind, name)
            assert staff.period_title(p) in r.text
            for audience in ("intern", "öffentlich"):
                for fmt in ("CSV", "XLSX"):
                    assert f"{fmt} {audience}</a>" in r.text


def test_figures_are_the_known_counts(box):
    """The wiring passes the right period and van: counts made by hand from dataset()."""
    app, _ = box
    c = client_of(app)
    _, rows = page_table(c.get("/staff/reports/summary?p=month&d=2026-11-15").text)
    summary = {label: value for (_, label), (value, _) in rows}
    assert summary["Besuche"] == "9"
    assert summary["Check-ins"] == "5"
    assert summary["Erstbesuche"] == "3"
    assert summary["Besuche außerhalb der Stadt Peine"] == "4"
    assert summary["Anteil außerhalb der Stadt Peine (%)"] == "44.4"

    _, rows = page_table(c.get("/staff/reports/stops?p=day&d=2026-11-02").text)
    visitors = {row[0][0]: int(row[4][0]) for row in rows}
    assert visitors == {"Peine, Marktplatz": 5, "Edemissen, Schulzentrum": 4, "Total": 9}
    _, rows = page_table(c.get("/staff/reports/stops?p=day&d=2026-11-03").text)
    assert [row[0][0] for row in rows] == ["Total"]  # Tuesday: van B only, not on the box
    _, rows = page_table(c.get("/staff/reports/summary?p=year&d=2026-06-30").text)
    assert {label: value for (_, label), (value, _) in rows}["Besuche"] == "11"


def test_the_configured_crew_and_town_reach_the_pages(tmp_path):
    """reports.crew (2 people: 2 "in" passes per stop visit are theirs) and reports.town
    come from the config, not from defaults or a spelling in the code."""
    app, store = make_app(tmp_path, "box", crew=2, town="Edemissen")
    try:
        c = client_of(app)
        _, rows = page_table(c.get("/staff/reports/stops?p=day&d=2026-11-02").text)
        visitors = {row[0][0]: int(row[4][0]) for row in rows}
        assert visitors == {"Peine, Marktplatz": 3, "Edemissen, Schulzentrum": 2, "Total": 5}
        _, rows = page_table(c.get("/staff/reports/summary?p=month&d=2026-11-15").text)
        summary = {label: value for (_, label), (value, _) in rows}
        assert summary["Besuche"] == "5"
        assert summary["Besuche außerhalb der Stadt Edemissen"] == "3"  # Peine's 3
        today = c.get("/staff/reports/rural?p=month&d=2026-11-15").text
        assert "Stadt Edemissen" in today and "Stadt Peine" not in today
    finally:
        store.close()


def test_today_at_a_glance(tmp_path):
    monday = date(2026, 11, 9)
    now = at(monday, "11:00")
    app, store = make_app(tmp_path, "box", now=now)
    try:
        store.record_many(
            [
                StopVisit(at(monday, "10:00"), "Peine, Marktplatz", "Peine", 52.3215, 10.2335),
                *[Footfall(at(monday, f"10:{m}"), "in", "beam-pair", n)
                  for n, m in enumerate(("05", "20", "40"), 1)],
                Footfall(at(monday, "10:50"), "out", "beam-pair", 2),
                checkin(VAN_A, monday, "10:00", "18-20", ["job"], True),
            ]
        )  # fmt: skip
        c = client_of(app)
        r = c.get("/staff/")
        assert r.status_code == 200
        cfg = app.extensions["vanbox_config"]
        t = reports.today(store.reader(), now, TZ, plans=[Plan.from_tour(VAN_A, cfg.tour)], crew=0)
        assert (t["stop"], t["people_in"], t["checkins"], t["occupancy"]) == (
            "Peine, Marktplatz", 3, 1, 2,
        )  # fmt: skip
        assert re.search(r'id="tile-stop">\s*<div class="label">[^<]*</div>\s*'
                         r'<div class="value">Peine, Marktplatz</div>', r.text)  # fmt: skip
        assert "seit 10:00 Uhr" in r.text
        for tile, key in (
            ("people", "people_in"),
            ("checkins", "checkins"),
            ("occupancy", "occupancy"),
        ):
            assert re.search(rf'id="tile-{tile}".*?data-value="{t[key]}">{t[key]}<', r.text, re.S)
        tiles = c.get("/staff/today/tiles?auto=1")
        assert tiles.status_code == 200
        assert re.search(r'id="tile-people".*?data-value="3">3<', tiles.text, re.S)
        # In the evening the van has left and the tour plan has nothing more.
        app.extensions["vanbox_clock"] = ScaledClock(at(DAY, "22:00"), speed=1.0)
        html = c.get("/staff/").text
        assert "kein Halt" in html and "laut Tourplan jetzt kein Halt" in html
    finally:
        store.close()


def test_period_navigation_links(box):
    app, _ = box
    c = client_of(app)
    html = c.get("/staff/reports/hours?p=week&d=2026-11-04").text
    assert 'href="/staff/reports/hours?p=week&amp;d=2026-10-26" rel="prev"' in html
    assert 'href="/staff/reports/hours?p=week&amp;d=2026-11-09" rel="next"' in html
    assert "KW 45/2026 (02.11.–08.11.2026)" in html
    html = c.get("/staff/reports/hours?p=month&d=2026-01-15").text
    assert 'href="/staff/reports/hours?p=month&amp;d=2025-12-01" rel="prev"' in html
    html = c.get("/staff/reports/hours?p=day&d=2026-11-02").text
    assert "Mo, 02.11.2026" in html
    assert 'href="/staff/reports/hours?p=day&amp;d=2026-11-03" rel="next"' in html


def test_bad_parameters_are_refused(box):
    app, _ = box
    c = client_of(app)
    assert c.get("/staff/reports/stops?p=decade").status_code == 400
    assert c.get("/staff/reports/stops?p=day&d=2026-13-01").status_code == 400
    assert c.get("/staff/reports/stops?p=day&d=1850-01-01").status_code == 400
    assert c.get("/staff/reports/nonsense").status_code == 404
    assert c.get("/staff/export/stops.pdf").status_code == 404
    assert c.get("/staff/export/nonsense.csv").status_code == 404
    assert c.get("/staff/reports/stops?van=nobody").status_code == 400
    assert c.get("/staff/annual?year=19x").status_code == 400


# --- charts --------------------------------------------------------------------------------


def test_charts_are_self_contained_svg(box):
    app, store = box
    c = client_of(app)
    p = reports.period("month", DAY)
    for name in reports.REPORTS:
        table = reports.report(store.reader(), name, p, crew=0)
        r = c.get(f"/staff/reports/{name}.svg?p=month&d=2026-11-01")
        if table.chart == "none":
            assert r.status_code == 404
            continue
        assert r.status_code == 200 and r.mimetype == "image/svg+xml"
        root = ET.fromstring(r.data)  # well-formed XML
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.get("aria-label") == staff.TITLES_DE[name]
        text = r.data.decode()
        assert "<script" not in text
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
        assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    # The topics chart prints each count on its bar: the same numbers as the table.
    table = reports.report(store.reader(), "topics", p, crew=0)
    svg = c.get("/staff/reports/topics.svg?p=month&d=2026-11-01").data.decode()
    printed = sorted(int(v) for v in charts.printed_values(svg))
    assert printed == sorted(row[1] for row in table.rows)
    for label in ("Job", "Wohnen", "Schule", "Geld"):
        assert f">{label}<" in svg


# --- exports -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_csv_and_xlsx_read_back_equal_the_table(box, kind):
    app, store = box
    c = client_of(app)
    p = reports.period(kind, DAY)
    for name in reports.REPORTS:
        for public in (False, True):
            # The exports speak German to the funders' offices; the figures are the same.
            table = staff.table_de(reports.report(store.reader(), name, p, public=public, crew=0,
                                                  min_cell=3))  # fmt: skip
            q = f"p={kind}&d={DAY.isoformat()}" + ("&public=1" if public else "")
            suffix = "-public" if public else ""
            r = c.get(f"/staff/export/{name}.csv?{q}")
            assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
            assert r.headers["Content-Disposition"] == (
                f'attachment; filename="vanbox-{name}-{slug(p)}{suffix}.csv"'
            )
            assert csv_rows(r.data) == [list(table.columns)] + [
                [csv_text(v, public) for v in row] for row in table.rows
            ], (kind, name, public)
            r = c.get(f"/staff/export/{name}.xlsx?{q}")
            assert r.status_code == 200
            assert r.headers["Content-Disposition"].endswith(f'{slug(p)}{suffix}.xlsx"')
            assert xlsx_rows(r.data, "Daten") == [table.columns, *blank_to_none(table.rows, public)]
            info = dict(xlsx_rows(r.data, "Info"))
            assert info["Verwendung"].startswith("öffentlich" if public else "intern")
            assert info["Zeitraum"] == staff.period_title(p)


def test_public_exports_suppress_small_cells(box):
    app, _ = box
    c = client_of(app)
    internal = csv_rows(c.get("/staff/export/stops.csv?p=day&d=2026-11-02").data)
    public = csv_rows(c.get("/staff/export/stops.csv?p=day&d=2026-11-02&public=1").data)
    col = internal[0].index("Check-ins")
    by_stop = {row[0]: row[col] for row in internal[1:]}
    assert by_stop["Peine, Marktplatz"] == "2" and by_stop["Edemissen, Schulzentrum"] == "3"
    by_stop = {row[0]: row[col] for row in public[1:]}
    assert by_stop["Peine, Marktplatz"] == "<3"  # 2 people: suppressed, shown as on the page
    assert "2" not in [row[col] for row in public[1:]]


def test_text_cells_never_become_formulas():
    from kiosk import exports

    cols, rows = ("Stop", "n"), [('=HYPERLINK("x")', 1), ("-5 Grad", 2), ("Peine", -3)]
    text = exports.to_csv(cols, rows).decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "'-5 Grad" in text and "Peine;-3" in text
    wb = load_workbook(io.BytesIO(exports.to_xlsx([("Daten", cols, rows)], [("k", "v")])))
    ws = wb["Daten"]
    assert ws["A2"].value == '=HYPERLINK("x")' and ws["A2"].data_type == "s"
    assert ws["B4"].value == -3 and ws["B4"].data_type == "n"


# --- hub: two vans -------------------------------------------------------------------------


def test_van_filter_on_the_hub(hub):
    app, store = hub
    c = client_of(app)
    conn = store.reader()
    p = reports.period("month", DAY)
    html = c.get("/staff/reports/stops?p=month&d=2026-11-01").text
    assert f'<option value="{VAN_A}"' in html and f'<option value="{VAN_B}"' in html
    _, rows = page_table(html)
    assert {row[0][0] for row in rows} == {
        "Peine, Marktplatz", "Edemissen, Schulzentrum", "Wendeburg, Rathaus", "Total",
    }  # fmt: skip
    for van, stops, visitors in (
        (VAN_A, {"Peine, Marktplatz", "Edemissen, Schulzentrum"}, 9),
        (VAN_B, {"Wendeburg, Rathaus"}, 6),
    ):
        html = c.get(f"/staff/reports/stops?p=month&d=2026-11-01&van={van}").text
        _, rows = page_table(html)
        assert {row[0][0] for row in rows} == stops | {"Total"}
        assert int(rows[-1][4][0]) == visitors
        assert f'<option value="{van}" selected>' in html
        # The filter stays on when the period changes.
        assert f"p=week&amp;d=2026-10-26&amp;van={van}" in html
        table = staff.table_de(reports.report(conn, "stops", p, van=van, crew=0))
        r = c.get(f"/staff/export/stops.csv?p=month&d=2026-11-01&van={van}")
        assert f'filename="vanbox-stops-2026-11-{van}.csv"' in r.headers["Content-Disposition"]
        assert csv_rows(r.data)[1:] == [[csv_text(v) for v in row] for row in table.rows]
        r = c.get(f"/staff/export/stops.xlsx?p=month&d=2026-11-01&van={van}&public=1")
        public = staff.table_de(reports.report(conn, "stops", p, van=van, public=True, crew=0))
        assert xlsx_rows(r.data, "Daten")[1:] == blank_to_none(public.rows, True)
        assert dict(xlsx_rows(r.data, "Info"))["Fahrzeug"] == van
    assert c.get("/staff/?van=" + VAN_B).status_code == 200


# --- charts of hidden cells ---------------------------------------------------------------


def test_small_counts_get_whole_number_ticks_and_hidden_cells_say_so():
    import re

    from kiosk import charts
    from telemetry.reports import Table

    t = Table("topics", "Themen", ("Topic", "Visitors"), (("job", 2), ("school", 1)), "bar")
    ticks = set(re.findall(r">(\d+(?:\.\d+)?)</text>", charts.render(t)))
    assert {"0", "1", "2"} <= ticks and not any("." in x for x in ticks)
    hidden = Table("topics", "Themen", ("Topic", "Visitors"), (("job", None),), "bar")
    assert charts.NO_DATA_SUPPRESSED in charts.render(hidden)
