"""CSV and XLSX files of report tables, the formats the funders' offices use.

- CSV for a German office's double-click: UTF-8 with a byte order mark (so Excel shows
  umlauts right), separated by ``;``, one header row with the (German) column names,
  then the rows as in the table; numbers with a decimal comma (``2,5``) and no digit
  grouping, dates as ``YYYY-MM-DD``. A hidden small cell (``None`` in a public table) is
  written as the page shows it (``none``, e.g. ``"<3"``). The formula guard: a text cell that
  starts with ``=``, ``+``, ``-``, ``@``, their full-width or small forms (``＝＋－＠``,
  ``﹢﹣``, ``−``), or with any blank or control character (space, NBSP, tab, CR, LF, ...;
  spreadsheets skip those and then see the formula) gets a leading ``'`` so a
  spreadsheet never runs it as a formula.
- XLSX (openpyxl): sheet "Daten" holds the header row and the rows with real number and
  date cells (text is always stored as text, never as a formula; an empty text or None is
  an empty cell); a text cell the formula guard flags also gets Excel's "quote prefix"
  (as if typed with a leading ``'``), so editing it does not turn it into a formula
  either. Control characters XLSX cannot hold (all below U+0020 but tab, LF and CR) are
  replaced by U+FFFD. A hidden small cell is the text ``none`` (``"<3"``), as on the
  page and in the CSV. Sheet "Info" says what the file is: report, period, van, created,
  public or internal, note.

File names: ``vanbox-<report>-<period>[-<van>][-public].<ext>``, where the period is
``2026-11-03`` (day), ``2026-W45`` (ISO week), ``2026-11`` (month) or ``2026`` (year),
e.g. ``vanbox-stops-2026-11.csv``. "public" files have small cells suppressed and may
leave the staff area; the others are internal.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

CSV_MIME = "text/csv; charset=utf-8"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = {"csv": CSV_MIME, "xlsx": XLSX_MIME}
# First characters that make a spreadsheet read a cell as a formula, also after blanks.
FORMULA_START = frozenset("=+-@\uff1d\uff0b\uff0d\uff20\ufe62\ufe63\u2212")
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def formula_risk(text: str) -> bool:
    """Would a spreadsheet (Excel, LibreOffice, Google Sheets) possibly read this text
    cell as a formula? True for a formula sign first, or a blank/control character first
    (which spreadsheets may skip before looking for one)."""
    if not text:
        return False
    first = text[0]
    return (
        first in FORMULA_START
        or first.isspace()
        or unicodedata.category(first) in ("Cc", "Cf", "Zs", "Zl", "Zp")
    )


def period_slug(period) -> str:
    """``2026-11-03`` / ``2026-W45`` / ``2026-11`` / ``2026`` for the period's start."""
    d: date = period.start
    if period.kind == "day":
        return d.isoformat()
    if period.kind == "week":
        y, w, _ = d.isocalendar()
        return f"{y}-W{w:02d}"
    if period.kind == "month":
        return f"{d.year}-{d.month:02d}"
    if period.kind == "year":
        return str(d.year)
    raise ValueError(f"unknown period kind {period.kind!r}")


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", part).strip("-") or "x"


def filename(
    name: str, slug: str, ext: str, *, van: str | None = None, public: bool = False
) -> str:
    parts = ["vanbox", _safe(name), _safe(slug)]
    if van:
        parts.append(_safe(van))
    if public:
        parts.append("public")
    return "-".join(parts) + "." + ext


SEPARATOR = ";"


def _csv_cell(v, none: str = ""):
    if v is None:
        return none
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v).replace(".", ",")
    if isinstance(v, datetime):
        return v.isoformat(timespec="seconds")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, str) and formula_risk(v):
        return "'" + v
    return v


def to_csv(columns: Iterable[str], rows: Iterable[tuple], *, none: str = "") -> bytes:
    """The CSV file (see the module docstring); ``none`` is what a hidden cell shows."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=SEPARATOR, lineterminator="\r\n")
    w.writerow([_csv_cell(c) for c in columns])
    for r in rows:
        w.writerow([_csv_cell(v, none) for v in r])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def table_csv(table, *, none: str = "") -> bytes:
    return to_csv(table.columns, table.rows, none=none)


def read_csv(data: bytes) -> list[list[str]]:
    """The rows of a CSV file made by :func:`to_csv` (text as written)."""
    text = data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=SEPARATOR))


def _xlsx_cell(ws, row: int, col: int, v, none: str = "") -> None:
    if v is None and none:
        v = none
    if isinstance(v, datetime) and v.tzinfo is not None:
        v = v.replace(tzinfo=None)  # Excel has no time zones: local wall time
    risky = isinstance(v, str) and formula_risk(v)
    if isinstance(v, str):
        v = _XLSX_ILLEGAL.sub("\ufffd", v)
    cell = ws.cell(row=row, column=col, value=None if v is None else v)
    if isinstance(v, str):
        cell.data_type = "s"  # never a formula, whatever the text starts with
        if risky:
            cell.quotePrefix = True
    elif isinstance(v, datetime):
        cell.number_format = "yyyy-mm-dd hh:mm"
    elif isinstance(v, date):
        cell.number_format = "yyyy-mm-dd"
    elif isinstance(v, float) and not v.is_integer():
        cell.number_format = "0.0##"


def to_xlsx(
    sheets: list[tuple[str, Iterable[str], Iterable[tuple]]],
    info: list[tuple[str, object]],
    *,
    none: str = "",
) -> bytes:
    """A workbook with one sheet per ``(title, columns, rows)`` and an "Info" sheet;
    ``none`` is what a hidden cell shows (else it is empty)."""
    wb = Workbook()
    wb.remove(wb.active)
    for title, columns, rows in sheets:
        ws = wb.create_sheet(_safe_sheet(title))
        columns = list(columns)
        for j, c in enumerate(columns, 1):
            _xlsx_cell(ws, 1, j, c)
            ws.cell(row=1, column=j).font = Font(bold=True)
        widths = [len(str(c)) for c in columns]
        for i, r in enumerate(rows, 2):
            for j, v in enumerate(r, 1):
                _xlsx_cell(ws, i, j, v, none)
                if j <= len(widths):
                    widths[j - 1] = max(widths[j - 1], len(str(v)) if v is not None else 0)
        for j, wdt in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(j)].width = min(60, max(8, wdt + 2))
        ws.freeze_panes = "A2"
    ws = wb.create_sheet("Info")
    for i, (k, v) in enumerate(info, 1):
        _xlsx_cell(ws, i, 1, k)
        ws.cell(row=i, column=1).font = Font(bold=True)
        _xlsx_cell(ws, i, 2, v)
        ws.cell(row=i, column=2).alignment = Alignment(wrap_text=True, vertical="top")
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 70
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _safe_sheet(title: str) -> str:
    return re.sub(r"[\[\]:*?/\\]", "-", title)[:31] or "Daten"


def table_xlsx(table, info: list[tuple[str, object]], *, none: str = "") -> bytes:
    return to_xlsx([("Daten", table.columns, table.rows)], info, none=none)
