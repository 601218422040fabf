"""The annual report as a real PDF (A4, portrait), made with fpdf2.

The text is set in DejaVu Sans, embedded as a Unicode TrueType font (Debian package
``fonts-dejavu-core``), so "€", umlauts and "–" print as they are; PDF's built-in fonts
know none of them. Without the font file the PDF cannot be made:
:class:`PdfFontMissing` names the file and the package to install.

Every table of the report is printed with the cells exactly as the page shows them
(hidden cells "<3", German numbers), headings repeated on a new
page; the definitions of the three figures and the "Stand ..., vorläufig" mark follow.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from telemetry.annual import Annual
from telemetry.errors import VanboxError

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"
FAMILY = "DejaVu"
INK = (29, 35, 42)
MUTED = (91, 101, 112)
HEAD_FILL = (230, 235, 240)


class PdfFontMissing(VanboxError):
    """The Unicode font for the PDF is not installed."""


class _Doc(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FAMILY, "", 7.5)
        self.set_text_color(*MUTED)
        self.multi_cell(self.epw - 25, 3.5, self.footer_text, align="L")
        self.set_xy(self.l_margin + self.epw - 25, -13)
        self.cell(25, 3.5, f"Seite {self.page_no()} von {{nb}}", align="R")


def _numeric(table, col: int) -> bool:
    return any(isinstance(r[col], int | float) or r[col] is None for r in table.rows)


def render(
    a: Annual,
    *,
    title: str,
    subtitle: str,
    created: datetime,
    texts: Callable[[object, tuple], list[str]],
    font: Path | None = None,
    font_bold: Path | None = None,
) -> bytes:
    """The PDF file of the annual report ``a``. ``texts(table, row)`` gives a row's cells
    as the page shows them. Raises :class:`PdfFontMissing` without the font."""
    font = Path(font or FONT)
    font_bold = Path(font_bold or FONT_BOLD)
    if not font.is_file():
        raise PdfFontMissing(
            f"PDF: Schriftart {font} fehlt; bitte das Debian-Paket fonts-dejavu-core"
            " installieren (apt-get install fonts-dejavu-core)."
        )
    pdf = _Doc(orientation="P", unit="mm", format="A4")
    pdf.set_title(title)
    pdf.set_author("vanbox")
    pdf.set_creation_date(created)
    pdf.add_font(FAMILY, "", str(font))
    pdf.add_font(FAMILY, "B", str(font_bold if font_bold.is_file() else font))
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=16)
    pdf.footer_text = (
        f"{title} · erstellt {created:%d.%m.%Y %H:%M}"
        + (f" · {a.stand}" if a.provisional else "")
        + f" · öffentlich: Zahlen von 1 bis {a.min_cell - 1} Personen unterdrückt (<{a.min_cell})"
    )
    pdf.add_page()
    pdf.set_text_color(*INK)
    pdf.set_font(FAMILY, "B", 16)
    pdf.multi_cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 10)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(0, 5, subtitle, new_x="LMARGIN", new_y="NEXT")
    if a.provisional:
        pdf.set_font(FAMILY, "B", 10)
        pdf.set_text_color(154, 52, 18)
        pdf.multi_cell(0, 6, a.stand, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)
    pdf.ln(2)
    for t in a.tables:
        _table(pdf, t, texts)
    _heading(pdf, "So wird gezählt")
    pdf.set_font(FAMILY, "", 8.5)
    for term, text in a.definitions:
        if pdf.will_page_break(14):  # a term and its text stay together
            pdf.add_page()
        pdf.set_font(FAMILY, "B", 8.5)
        pdf.multi_cell(0, 4.5, term, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FAMILY, "", 8.5)
        pdf.multi_cell(0, 4.5, text, new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.ln(0.8)
    return bytes(pdf.output())


def _heading(pdf: FPDF, text: str) -> None:
    if pdf.will_page_break(22):
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font(FAMILY, "B", 11.5)
    pdf.multi_cell(0, 6.5, text, new_x="LMARGIN", new_y="NEXT")


def _table(pdf: FPDF, t, texts: Callable[[object, tuple], list[str]]) -> None:
    _heading(pdf, t.title)
    ncol = len(t.columns)
    numeric = [j > 0 and _numeric(t, j) for j in range(ncol)]
    texts_of = [texts(t, r) for r in t.rows]
    # room for the longest word of the heading (never split) and the longest cell
    widths = [
        max(
            max(len(w) for w in t.columns[j].split()) * 1.1,
            max((len(r[j]) for r in texts_of), default=1),
            4,
        )
        for j in range(ncol)
    ]
    pdf.set_font(FAMILY, "", 8.5 if ncol > 5 else 9)
    with pdf.table(
        col_widths=widths,
        text_align=tuple("RIGHT" if n else "LEFT" for n in numeric),
        headings_style=FontFace(emphasis="BOLD", fill_color=HEAD_FILL),
        line_height=4.6,
        padding=(0.8, 1.2),
        repeat_headings=1,
        borders_layout="HORIZONTAL_LINES",
    ) as table:
        head = table.row()
        for c in t.columns:
            head.cell(c)
        for cells in texts_of:
            row = table.row()
            for text in cells:
                row.cell(text)
    if t.note:
        pdf.set_font(FAMILY, "", 7.5)
        pdf.set_text_color(*MUTED)
        pdf.multi_cell(0, 4, t.note, new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.set_text_color(*INK)
