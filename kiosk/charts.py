"""SVG charts of report tables, drawn on the server with pygal.

``render(table)`` turns a :class:`telemetry.reports.Table` into one ``<svg>`` element
to put inline into a page: the first text column gives the labels, every numeric column
is a series (a pie takes the first one). The output is self-contained: pygal's default
tooltip script from the internet and its inline config script are left out, so a chart
makes no request at all, works offline and prints like the page around it.
Suppressed cells of public tables (text such as ``"<3"``) are drawn as gaps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime
from numbers import Real

import pygal
from pygal.style import Style

FONT = '"DejaVu Sans", "Noto Sans", "Liberation Sans", Arial, sans-serif'
COLORS = ("#1f5f8b", "#e07b2a", "#3a8f5c", "#b8436b", "#6b5aa6", "#8c6d31", "#4d9fb8", "#7f7f7f")
STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#222",
    foreground_strong="#111",
    foreground_subtle="#666",
    opacity=".85",
    opacity_hover=".95",
    colors=COLORS,
    font_family=FONT,
    label_font_family=FONT,
    major_label_font_family=FONT,
    value_font_family=FONT,
    value_label_font_family=FONT,
    tooltip_font_family=FONT,
    title_font_family=FONT,
    legend_font_family=FONT,
    no_data_font_family=FONT,
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    value_font_size=14,
    value_colors=("#fff",) * len(COLORS),
    no_data_font_size=24,
    guide_stroke_color="#ccc",
    major_guide_stroke_color="#999",
)
KINDS = ("bar", "line", "pie", "none")
TOTAL_LABELS = frozenset({"Total"})
NO_DATA = "Keine Daten"
NO_DATA_SUPPRESSED = "Kleine Zahlen ausgeblendet"

_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def _is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def split_columns(table, series: Sequence[str] | None = None) -> tuple[int, list[int]]:
    """(index of the label column, indexes of the series columns). ``series`` names the
    columns to draw; without it every numeric column that is not a share is drawn."""
    cols = list(table.columns)
    rows = table.rows
    if series:
        wanted = [cols.index(c) for c in series if c in cols]
        if wanted:
            label = next((i for i in range(len(cols)) if i not in wanted), 0)
            return label, wanted
    numeric = []
    label = None
    for i in range(len(cols)):
        values = [r[i] for r in rows if r[i] is not None]
        if values and all(_is_number(v) for v in values):
            numeric.append(i)
        elif (
            values
            and all(_is_number(v) or isinstance(v, str) for v in values)
            and any(_is_number(v) for v in values)
        ):
            numeric.append(i)  # a numeric column with suppressed cells ("<3")
        elif label is None:
            label = i
    if label is None:
        label = 0
        numeric = [i for i in numeric if i != 0]
    # Percent columns next to counts would squash the counts: keep them out unless alone.
    counts = [i for i in numeric if not _is_share(cols[i])]
    return label, counts or numeric


def _is_share(name: str) -> bool:
    n = name.lower()
    return "%" in n or "anteil" in n or "share" in n or "quote" in n


def _label(v) -> str:
    if isinstance(v, datetime):
        return v.strftime("%d.%m. %H:%M")
    if isinstance(v, date):
        return v.strftime("%d.%m.")
    return "" if v is None else str(v)


def _value(v) -> float | None:
    return float(v) if _is_number(v) else None


def _same(s: str) -> str:
    return s


def chart_for(
    table,
    *,
    width: int = 760,
    height: int = 380,
    series: Sequence[str] | None = None,
    skip: Collection[str] = TOTAL_LABELS,
    translate: Callable[[str], str] = _same,
):
    """The pygal chart object for this table (None for ``chart == "none"``). Rows whose
    label is in ``skip`` (total rows) are left out; ``translate`` maps labels and column
    names to what the reader sees."""
    kind = table.chart
    if kind not in KINDS:
        raise ValueError(f"unknown chart kind {kind!r}; use one of {KINDS}")
    if kind == "none":
        return None
    label_i, series_i = split_columns(table, series)
    rows = [r for r in table.rows if not (isinstance(r[label_i], str) and r[label_i] in skip)]
    labels = [translate(_label(r[label_i])) for r in rows]
    common = dict(
        style=STYLE, width=width, height=height, js=[], disable_xml_declaration=True,
        no_data_text=NO_DATA, legend_at_bottom=True, truncate_legend=40, truncate_label=-1,
        margin=12,
        show_legend=len(series_i) > 1 or kind == "pie", pretty_print=False,
    )  # fmt: skip
    if kind == "pie":
        chart = pygal.Pie(inner_radius=0.4, print_values=True, print_zeroes=False, **common)
        if series_i:
            for name, row in zip(labels, rows, strict=True):
                value = _value(row[series_i[0]])
                if value:
                    chart.add(name, value)
        return chart
    horizontal = kind == "bar" and (len(labels) > 12 or max(map(len, labels), default=0) > 12)
    if kind == "line":
        chart = pygal.Line(
            show_dots=len(labels) <= 40, x_label_rotation=-45 if len(labels) > 16 else 0,
            show_minor_x_labels=len(labels) <= 31, x_labels_major_every=max(1, len(labels) // 12),
            fill=len(series_i) == 1, **common,
        )  # fmt: skip
    elif horizontal:
        height = max(height, 90 + 26 * len(labels) * max(1, len(series_i)))
        common["height"] = height
        chart = pygal.HorizontalBar(print_values=len(series_i) == 1, **common)
    else:
        chart = pygal.Bar(
            print_values=len(series_i) == 1 and len(labels) <= 24,
            x_label_rotation=-30 if len(labels) > 6 else 0, **common,
        )  # fmt: skip
    if horizontal:
        # HorizontalBar draws the first label at the bottom; reverse to read like the table.
        labels, rows = labels[::-1], rows[::-1]
    chart.x_labels = labels
    values = []
    for i in series_i:
        column = [_value(r[i]) for r in rows]
        values += [v for v in column if v is not None]
        chart.add(translate(table.columns[i]), column)
    if rows and not values:
        # Every cell is hidden (small-cell suppression): say so, not "no data".
        chart.config.no_data_text = NO_DATA_SUPPRESSED
    elif values and all(float(v).is_integer() for v in values) and max(values) <= 20:
        # Counts of people: whole-number ticks, not 0.2, 0.4, ...
        top = int(max(values))
        step = max(1, -(-top // 8))
        chart.y_labels = list(range(0, top + step + 1, step))
    return chart


def render(table, *, title: str | None = None, **kw) -> str:
    """One inline ``<svg>`` element ("" for a table without a chart); keyword arguments
    as for :func:`chart_for`."""
    chart = chart_for(table, **kw)
    if chart is None:
        return ""
    svg = chart.render(is_unicode=True)
    svg = _COMMENT.sub("", _SCRIPT.sub("", svg))
    label = (title or table.title).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


def printed_values(svg: str) -> Sequence[str]:
    """The values pygal printed into the chart (for tests and checks)."""
    return re.findall(r'<text[^>]*class="value[^"]*"[^>]*>([^<]*)</text>', svg)
