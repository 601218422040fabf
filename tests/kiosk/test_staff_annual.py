"""The annual report at /staff/annual through Flask's test client: the page, the PDF
(parsed with pypdf), the XLSX and the CSVs show the figures of telemetry.annual, in
German, with hidden small cells the same ("<3") everywhere; bad input is refused.

Data: a generated half year of one van (2025 to 2 July: a running year, so "vorläufig")
with counselling contacts and referrals; for the small cells a few days of two vans."""

from __future__ import annotations

import io
import re
import sys
import urllib.parse
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from pypdf import PdfReader
from werkzeug.security import generate_password_hash

from kiosk import annual_pdf, create_app, exports, staff_annual
from kiosk.auth import set_user
from telemetry.clock import ScaledClock
from telemetry.config import MUNICIPALITIES, default_config
from telemetry.store import Store

sys.path.insert(0, str(Path(__file__).parent.parent / "telemetry"))
import contactdata  # noqa: E402
import yeardata  # noqa: E402

PASSWORD = "jahresbericht-1"
VAN, VAN2 = "jungregio-1", "jungregio-2"
NOW = datetime(2025, 7, 2, 16, 0, tzinfo=UTC)
FUNDERS = [
    {"name": "Jugendamt", "eur": 21493.17},
    {"name": "Fachdienst Soziales", "eur": 12000.0},
    {"name": "Fachdienst Arbeit", "eur": 8000.0},
]
SHEETS = [
    "Kennzahlen", "Haltestellen", "Gemeinden", "Monate", "Einsatz", "Altersgruppen", "Themen",
    "Kontaktarten", "Vermittlungen", "Ländlicher Raum", "Budget", "Definitionen", "Info",
]  # fmt: skip
SHEET_NAMES = [
    "kennzahlen", "haltestellen", "gemeinden", "monate", "einsatz", "altersgruppen", "themen",
    "kontaktarten", "vermittlungen", "laendlich", "budget",
]  # fmt: skip


def make_app(tmp_path, mode: str, years: list) -> tuple:
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}, "reports": {"funders": FUNDERS}})
    store = Store(tmp_path / f"{mode}.db", van="" if mode == "hub" else VAN, tz=cfg.timezone)
    for y, contacts in years:
        yeardata.bulk_insert(store, y)
        contactdata.insert_contacts(store, contacts)
    app = create_app({"TESTING": True}, config=cfg, store=store, mode=mode)
    app.extensions["vanbox_clock"] = ScaledClock(NOW, speed=1.0)
    return app, store


def login(app):
    c = app.test_client()
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/staff/login").text).group(1)
    r = c.post("/staff/login", data={"name": "anna", "password": PASSWORD, "csrf_token": tok})
    assert r.status_code == 302
    return c


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    y = yeardata.generate(2025, seed=21, van=VAN, days=183, drive_interval_s=60,
                          park_interval_s=900)  # fmt: skip
    contacts = contactdata.generate_contacts(y.visits, default_config().tz, van=VAN, seed=21)
    app, store = make_app(tmp_path_factory.mktemp("annual-box"), "box", [(y, contacts)])
    yield app, store
    store.close()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A hub with a few days of two vans: small counts, hidden cells."""
    tz = default_config().tz
    data = []
    for i, van in enumerate((VAN, VAN2)):
        y = yeardata.generate(2025, seed=30 + i, van=van, days=8, start=date(2025, 6, 2),
                              visitor_scale=0.3, drive_interval_s=60,
                              park_interval_s=900)  # fmt: skip
        data.append(
            (y, contactdata.generate_contacts(y.visits, tz, van=van, seed=i, per_visit=0.6))
        )
    app, store = make_app(tmp_path_factory.mktemp("annual-hub"), "hub", data)
    yield app, store
    store.close()


def annual_of(app, van=None):
    with app.test_request_context("/staff/annual"):
        return staff_annual.build(2025, van)


def table_cells(html: str, table_id: str) -> list[list[tuple[str, str]]]:
    body = re.search(rf'<table class="data" id="{table_id}">(.*?)</table>', html, re.S).group(1)
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = re.findall(r'<td data-value="([^"]*)"[^>]*>(.*?)</td>', tr, re.S)
        if cells:
            rows.append([(v, t.replace("&lt;", "<")) for v, t in cells])
    return rows


def raw(v) -> str:
    return "" if v is None else str(v)


# --- the page -----------------------------------------------------------------------------


def test_page_shows_every_table_the_key_figures_and_the_definitions(box):
    app, _ = box
    c = login(app)
    r = c.get("/staff/annual?year=2025")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    a = annual_of(app)
    html = r.text
    for t in a.tables:
        assert f"<h2>{t.title}</h2>" in html
        cells = table_cells(html, f"table-{t.name}")
        assert [[v for v, _ in row] for row in cells] == [[raw(v) for v in row] for row in t.rows]
        assert [[txt for _, txt in row] for row in cells] == [
            staff_annual.row_texts(a, t, row) for row in t.rows
        ]
    munis = [row[0][1] for row in table_cells(html, "table-gemeinden")]
    assert munis[: len(MUNICIPALITIES)] == list(MUNICIPALITIES)
    kpi = dict(re.findall(r'id="kpi-(\w+)" data-value="([^"]*)"', html))
    assert kpi["kontakte"] == str(a.figures["kontakte"]) and a.figures["kontakte"] > 100
    assert kpi["besuche"] == str(a.figures["besuche"])
    assert 'id="stand"' in html and "Stand 02.07.2025, vorläufig" in html
    for term in ("Besuche", "Check-ins", "Beratungskontakte"):
        assert f"<dt>{term}</dt>" in html
    assert "21.493,17" in html  # the Jugendamt's share, German digits
    months = re.search(r'id="section-monate">.*?</svg>', html, re.S).group(0)
    assert ">Jan<" in months and ">Dez<" in months and ">Sum<" not in months  # no total point
    # euro values carry two decimals and the sign
    cost = re.search(r'id="kpi-kosten_je_kontakt"[^>]*>\s*<div class="value">([^<]*)<', html)
    assert re.fullmatch(r"\d{1,3}(\.\d{3})*,\d\d\u00a0€", cost.group(1))  # never split


def test_pdf_is_a_real_pdf_with_municipalities_and_funders(box):
    app, _ = box
    c = login(app)
    r = c.get("/staff/annual.pdf?year=2025")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert 'filename="vanbox-annual-2025-public.pdf"' in r.headers["Content-Disposition"]
    pdf = PdfReader(io.BytesIO(r.data))
    assert len(pdf.pages) >= 2
    text = "\n".join(p.extract_text() for p in pdf.pages)
    a = annual_of(app)
    assert "Jahresbericht 2025" in text and "Stand 02.07.2025, vorläufig" in text
    assert "Gemeinden" in text and "Beratungskontakte (Wohnort)" in text
    for row in a.table("gemeinden").rows:
        line = " ".join(staff_annual.row_texts(a, a.table("gemeinden"), row))
        assert line in text, line  # the municipality table, row by row
    for f in FUNDERS:
        assert f["name"] in text
    assert "21.493,17" in text and "€" in text  # the embedded font prints the euro sign
    assert "Vermittlungen je Partner" in text and "Besuche" in text


def test_pdf_without_the_font_says_what_to_install(box, monkeypatch):
    app, _ = box
    c = login(app)
    monkeypatch.setattr(annual_pdf, "FONT", Path("/nonexistent/DejaVuSans.ttf"))
    r = c.get("/staff/annual.pdf?year=2025")
    assert r.status_code == 503
    assert "fonts-dejavu-core" in r.text and r.mimetype == "text/plain"


def test_xlsx_has_german_sheets_and_every_table(box):
    app, _ = box
    c = login(app)
    r = c.get("/staff/annual.xlsx?year=2025")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == SHEETS
    a = annual_of(app)
    for t, sheet in zip(a.tables, wb.sheetnames, strict=False):
        rows = [tuple(row) for row in wb[sheet].iter_rows(values_only=True)]
        assert rows[0] == t.columns
        assert rows[1:] == [
            tuple("<3" if v is None else (None if v == "" else v) for v in row) for row in t.rows
        ], t.name
    info = dict(wb["Info"].iter_rows(values_only=True))
    assert info["Bericht"] == "Jahresbericht 2025" and info["Stand"].endswith("vorläufig")
    defs = dict(wb["Definitionen"].iter_rows(min_row=2, values_only=True))
    assert {"Besuche", "Check-ins", "Beratungskontakte"} <= set(defs)


def test_csvs_read_back_with_semicolon_and_decimal_comma(box):
    app, _ = box
    c = login(app)
    a = annual_of(app)
    r = c.get("/staff/annual.csv?year=2025")
    rows = exports.read_csv(r.data)
    assert r.data.startswith(b"\xef\xbb\xbf")
    assert rows[0] == ["Kennzahl", "Wert", "Einheit", "Erläuterung"]
    figures = {row[0]: row for row in rows[1:]}
    assert figures["Beratungskontakte"][1] == str(a.figures["kontakte"])
    cost = figures["Kosten je Beratungskontakt"][1]
    assert "," in cost and "." not in cost
    assert float(cost.replace(",", ".")) == a.figures["kosten_je_kontakt"]
    assert figures["Besuche"][3].startswith("Personen, die der Türsensor")
    for t in a.tables:
        r = c.get(f"/staff/annual/{t.name}.csv?year=2025")
        assert r.status_code == 200, t.name
        assert f"vanbox-annual-{t.name}-2025-public.csv" in r.headers["Content-Disposition"]
        back = exports.read_csv(r.data)
        assert back[0] == list(t.columns)
        for row, out in zip(t.rows, back[1:], strict=True):
            for v, text in zip(row, out, strict=True):
                if isinstance(v, float):
                    assert float(text.replace(",", ".")) == v
                elif isinstance(v, int):
                    assert int(text) == v
                else:
                    assert text == ("<3" if v is None else v)
    assert c.get("/staff/annual/nonsense.csv?year=2025").status_code == 404


# --- hidden cells: the same everywhere; the hub's vans ------------------------------------


def test_hidden_cells_look_the_same_on_page_csv_xlsx_and_pdf(small):
    app, _ = small
    c = login(app)
    a = annual_of(app)
    html = c.get("/staff/annual?year=2025").text
    wb = load_workbook(io.BytesIO(c.get("/staff/annual.xlsx?year=2025").data))
    pdf_text = "\n".join(
        p.extract_text() for p in PdfReader(io.BytesIO(c.get("/staff/annual.pdf").data)).pages
    )
    hidden_total = 0
    for t, sheet in zip(a.tables, SHEETS, strict=False):
        page = table_cells(html, f"table-{t.name}")
        csv_rows = exports.read_csv(c.get(f"/staff/annual/{t.name}.csv?year=2025").data)[1:]
        xlsx = list(wb[sheet].iter_rows(min_row=2, values_only=True))
        for i, row in enumerate(t.rows):
            for j, v in enumerate(row):
                if v is None:
                    hidden_total += 1
                    assert page[i][j] == ("", "<3"), (t.name, i, j)
                    assert csv_rows[i][j] == "<3" and xlsx[i][j] == "<3", (t.name, i, j)
    assert hidden_total >= 5  # small counts: hidden cells, or this test proves nothing
    assert pdf_text.count("<3") >= hidden_total - 2  # minus the note lines' own "<3"
    for key in ("besuche", "checkins", "kontakte", "erstkontakte", "vermittlungen"):
        v = a.figures[key]
        assert v is None or not 0 < v < 3, key


def test_hub_picks_a_van_and_refuses_bad_input(small):
    app, _ = small
    c = login(app)
    all_vans = annual_of(app)
    one = annual_of(app, VAN)
    assert 0 < one.figures["einsatztage"] < all_vans.figures["einsatztage"]
    html = c.get(f"/staff/annual?year=2025&van={VAN}").text
    assert f'<option value="{VAN}" selected>' in html
    assert c.get("/staff/annual?year=2025&van=nobody").status_code == 400
    assert c.get("/staff/annual.pdf?year=2025&van=nobody").status_code == 400
    for bad in ("19x", "1999", "2101", "-1", "２０２５"):
        r = c.get(f"/staff/annual?year={bad}")
        assert r.status_code == 400 and "Ungültiges Jahr" in r.text, bad
    assert c.get("/staff/annual.doc?year=2025").status_code == 404
    anon = app.test_client()
    for url in ("/staff/annual.pdf", "/staff/annual.xlsx", "/staff/annual/gemeinden.csv"):
        r = anon.get(url)
        assert r.status_code == 401 and b"Anmeldung" in r.data, url
    assert anon.get("/staff/annual").status_code == 302


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    year=st.one_of(st.integers(1990, 2110).map(str), st.text(max_size=8)),
    # ("/" is no part of a path segment: werkzeug decodes %2F and redirects "//")
    table=st.one_of(
        st.sampled_from(SHEET_NAMES),
        st.text(st.characters(blacklist_characters="/"), min_size=1, max_size=12),
    ),
)
def test_any_year_or_table_is_answered_or_refused_clearly(small, year, table):
    """The query is checked once, where it enters: a year 2000..2100 (ASCII digits) is
    answered, anything else is a 400 naming the problem; an unknown table is a 404."""
    app, _ = small
    c = login(app)
    q = urllib.parse.urlencode({"year": year})
    ok = re.fullmatch(r"[0-9]{4}", year) is not None and 2000 <= int(year) <= 2100
    r = c.get(f"/staff/annual.csv?{q}")
    assert r.status_code == (200 if ok or year == "" else 400), (year, r.status_code)
    if r.status_code == 400:
        assert "Ungültiges Jahr" in r.get_data(as_text=True)
    path = urllib.parse.quote(table, safe="")
    r = c.get(f"/staff/annual/{path}.csv?year=2025")
    assert r.status_code == (200 if table in SHEET_NAMES else 404), table
