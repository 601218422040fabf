"""CSV/XLSX exports: the formula guard and characters XLSX cannot hold (issue 12 point 7),
and files a German office opens by double-click (issue 13 point 4).

A text cell starting with a formula sign (ASCII or full-width), or with a blank or
control character in front of one, is neutralised in both formats; a control character
in a stop name never makes the XLSX export fail. CSV: UTF-8 with BOM, ";" between
cells, decimal comma, German headers; a hidden cell reads "<3" in CSV and XLSX as on the
page; sheet names and titles are German.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from werkzeug.security import generate_password_hash

from kiosk import create_app, exports
from kiosk.auth import set_user
from telemetry.config import default_config
from telemetry.events import Footfall, StopVisit
from telemetry.store import Store

PAYLOAD = 'cmd|" /C calc"!A0'
RISKY_STARTS = [
    "=", "+", "-", "@", "\t", "\r", "\n", " ", "\u00a0", "\u2003", "\u3000",
    "\uff1d", "\uff0b", "\uff0d", "\uff20", "\ufe62", "\ufe63", "\u2212", "\x00", "\x1b",
    "\u200b", "\ufeff", " =", "\u00a0=", "\n=", "\t@", "\uff1d",
]  # fmt: skip
SAFE = ["Peine, Marktplatz", "a=b", "5 Grad", "Ölmühle", "(=)", "'=already", "#1", "x-1", ""]


def csv_cells(data: bytes) -> list[list[str]]:
    """Read back with the csv module the way German Excel splits it: ";" between cells."""
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel shows umlauts right
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def xlsx_sheet(data: bytes):
    return load_workbook(io.BytesIO(data))["Daten"]


@pytest.mark.parametrize("start", RISKY_STARTS)
def test_every_risky_start_is_neutralised_in_csv_and_xlsx(start):
    text = start + PAYLOAD
    assert exports.formula_risk(text)
    cells = csv_cells(exports.to_csv(["Stop"], [(text,)]))
    assert cells[1][0] == "'" + text
    cell = xlsx_sheet(exports.to_xlsx([("Daten", ["Stop"], [(text,)])], []))["A2"]
    assert cell.data_type == "s" and cell.quotePrefix is True
    expected = text.replace("\x00", "\ufffd").replace("\x1b", "\ufffd")
    assert cell.value == expected.replace("\r", "\n")  # XML reads CR back as LF


@pytest.mark.parametrize("text", SAFE)
def test_ordinary_text_is_left_alone(text):
    assert not exports.formula_risk(text)
    cells = csv_cells(exports.to_csv(["Stop"], [(text,)]))
    assert cells[1][0] == text
    cell = xlsx_sheet(exports.to_xlsx([("Daten", ["Stop"], [(text,)])], []))["A2"]
    assert not cell.quotePrefix
    assert (cell.value or "") == text


def test_numbers_stay_numbers():
    cells = csv_cells(exports.to_csv(["n"], [(-3,), (2.5,)]))
    assert cells[1:] == [["-3"], ["2,5"]]
    ws = xlsx_sheet(exports.to_xlsx([("Daten", ["n"], [(-3,)])], []))
    assert ws["A2"].value == -3 and ws["A2"].data_type == "n" and not ws["A2"].quotePrefix


@pytest.mark.parametrize("ch", [chr(c) for c in range(0x20) if c not in (9, 10, 13)])
def test_control_characters_do_not_break_xlsx(ch):
    name = f"Peine{ch}Markt"
    data = exports.to_xlsx([("Daten", ["Stop"], [(name,)])], [("Haltestelle", name)])
    ws = xlsx_sheet(data)
    assert ws["A2"].value == "Peine\ufffdMarkt"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=5))
def test_fuzz_any_text_exports_and_is_guarded(texts):
    rows = [(t,) for t in texts]
    cells = csv_cells(exports.to_csv(["c"], rows))
    for t, (out,) in zip(texts, cells[1:], strict=True):
        assert out == ("'" + t if exports.formula_risk(t) else t)
        assert not out or not exports.formula_risk(out)  # what a spreadsheet sees is safe
    ws = xlsx_sheet(exports.to_xlsx([("Daten", ["c"], rows)], [("k", t) for t in texts]))
    for i, t in enumerate(texts, 2):
        c = ws.cell(row=i, column=1)
        assert c.data_type != "f"  # never a formula
        assert bool(c.quotePrefix) == exports.formula_risk(t)


# --- through the web: a stop name with a control character --------------------------


@pytest.fixture
def staff_client(tmp_path):
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash("export-pass-1", method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}})
    store = Store(tmp_path / "box.db", van="jr-1", tz=cfg.timezone)
    t0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    for i, name in enumerate(["Peine\x01Markt\x1f", '=HYPERLINK("x")', "\u00a0=1+1"]):
        t = t0.replace(hour=9 + i * 3)
        store.record_many([
            StopVisit(t, name, "Peine", 52.32, 10.23, left=t.replace(minute=50), van="jr-1"),
            Footfall(t.replace(minute=10), "in", "beam-pair", 1, van="jr-1"),
        ])  # fmt: skip
    app = create_app({"TESTING": True}, config=cfg, store=store)
    c = app.test_client()
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/staff/login").text).group(1)
    r = c.post(
        "/staff/login", data={"name": "anna", "password": "export-pass-1", "csrf_token": tok}
    )
    assert r.status_code == 302
    yield c
    store.close()


def test_stop_names_with_control_characters_export(staff_client):
    r = staff_client.get("/staff/export/stops.xlsx?p=day&d=2026-11-02")
    assert r.status_code == 200
    ws = xlsx_sheet(r.data)
    names = [ws.cell(row=i, column=1).value for i in range(2, ws.max_row + 1)]
    assert "Peine\ufffdMarkt\ufffd" in names
    for i in range(2, ws.max_row + 1):
        c = ws.cell(row=i, column=1)
        if isinstance(c.value, str) and c.value.startswith(("=", "\u00a0")):
            assert c.data_type == "s" and c.quotePrefix
    r = staff_client.get("/staff/export/stops.csv?p=day&d=2026-11-02")
    assert r.status_code == 200
    first = [row[0] for row in csv_cells(r.data)[1:]]
    assert '\'=HYPERLINK("x")' in first and "'\u00a0=1+1" in first


# --- a German office opens the CSV by double-click ------------------------------------


def german_number(text: str) -> float:
    """How German Excel reads a number cell: decimal comma, no "." at all."""
    assert "." not in text, text
    return float(text.replace(",", "."))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=10),
            st.integers(-(10**9), 10**9),
            st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9),
        ),
        max_size=6,
    )
)
def test_csv_reads_back_with_semicolon_and_decimal_comma(rows):
    data = exports.to_csv(("Gemeinde", "Besuche", "Anteil (%)"), rows)
    cells = csv_cells(data)
    assert cells[0] == ["Gemeinde", "Besuche", "Anteil (%)"]
    assert len(cells) == len(rows) + 1
    for (text, n, x), out in zip(rows, cells[1:], strict=True):
        assert len(out) == 3  # a ";" or "," inside a text never splits the row
        assert out[0] == ("'" + text if exports.formula_risk(text) else text)
        assert int(out[1]) == n
        assert german_number(out[2]) == x  # the exact value, with a decimal comma


def test_hidden_cells_read_as_on_the_page():
    cells = csv_cells(exports.to_csv(["Gemeinde", "Besuche"], [("Peine", None)], none="<3"))
    assert cells[1] == ["Peine", "<3"]
    ws = xlsx_sheet(exports.to_xlsx([("Daten", ["Gemeinde", "Besuche"], [("Peine", None)])], [],
                                    none="<3"))  # fmt: skip
    assert ws["B2"].value == "<3"
    # internal files: an empty cell, as before
    assert csv_cells(exports.to_csv(["a"], [(None,)]))[1] == [""]


ENGLISH = re.compile(
    r"\b(Figures?|Topics?|Visitors?|Summary|Total|Share|Stops?|Municipalit\w*|Report|"
    r"Period|Value|Budget_eur|rural_share|contacts|cost_per_contact|Rural|Town|Not said)\b"
)


def test_report_exports_have_german_headers_titles_and_notes(staff_client):
    for name in ("summary", "stops", "municipalities", "rural", "topics", "quality"):
        for public in ("", "&public=1"):
            r = staff_client.get(f"/staff/export/{name}.csv?p=day&d=2026-11-02{public}")
            head = csv_cells(r.data)[0]
            assert not any(ENGLISH.search(h) for h in head), (name, head)
            r = staff_client.get(f"/staff/export/{name}.xlsx?p=day&d=2026-11-02{public}")
            wb = load_workbook(io.BytesIO(r.data))
            assert wb.sheetnames == ["Daten", "Info"]
            info = dict(wb["Info"].iter_rows(values_only=True))
            assert not ENGLISH.search(str(info["Bericht"])), info["Bericht"]
            assert not ENGLISH.search(str(info.get("Hinweis", ""))), info.get("Hinweis")
            for term in ("Besuche:", "Check-ins:", "Beratungskontakte:"):  # three definitions
                assert term in info["Begriffe"]
            head = next(wb["Daten"].iter_rows(values_only=True))
            assert not any(ENGLISH.search(str(h)) for h in head), (name, head)
