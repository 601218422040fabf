"""The public versions of the report tables: small cells hidden across all public tables
of one period (and van) together, with :func:`telemetry.suppression.suppress`.

The public tables of a period print the same people in many ways: the summary's
visitors are the sum of the stops, of the municipalities, of the town and the rural
municipalities, of the hours and of the weekdays; a municipality is the sum of its
stops; the summary's check-ins are the sum of first visits, returning visitors and "not
said" (the first-visits table), and of the age groups, hours, weekdays, stops and
municipalities; the summary's first visits are the stops' first visits. Every such link
is a :class:`~telemetry.suppression.Relation` (:func:`report_cells`), so no hidden cell
can be worked out from any combination of the published ones. A share is hidden with its
count, and a whole share column when its base (the visitors or check-ins of the period)
is hidden. Topics are not linked (a check-in may name several).

The helpers :func:`cell_key`, :func:`column_cells`, :func:`column_total` and
:func:`apply_hidden` let other public tables (the annual report) use the same scheme.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from .metrics import _cur
from .report_tables import NOT_AT_STOP, REPORTS, Opts, Period, Table, build
from .suppression import Relation, suppress

SUPPRESSED = None  # what a suppressed cell holds; pages show it as "<3"

# Per public table: its people-count columns and {share column: its count column}.
PEOPLE: dict[str, tuple[tuple[int, ...], dict[int, int]]] = {
    "summary": ((1,), {}),
    "stops": ((4, 5, 6), {}),
    "municipalities": ((2, 3), {4: 2}),
    "rural": ((2, 3), {4: 2}),
    "hours": ((1, 2), {}),
    "weekdays": ((2, 3), {}),
    "topics": ((1,), {2: 1}),
    "age_groups": ((1,), {2: 1}),
    "first_visits": ((1,), {2: 1}),
}
PUBLIC = tuple(PEOPLE)  # the report tables with people counts (quality has none)
SUMMARY_PEOPLE = (0, 1, 2, 3, 7)  # visitors, check-ins, first, returning, rural visitors
SUMMARY_SHARE = (8, 7, 0)  # share row, its count row, its base row


def cell_key(table: str, row: int, col: int) -> tuple[str, int, int]:
    """The key of a table cell: (table name, row index, column index)."""
    return (table, row, col)


def column_cells(table: Table, cols: Sequence[int], rows: Sequence[int] | None = None) -> dict:
    """``{cell_key: whole number}`` for the numeric cells of ``cols`` (all rows, or
    ``rows``); text and ``None`` cells are left out."""
    out = {}
    for i in range(len(table.rows)) if rows is None else rows:
        for c in cols:
            v = table.rows[i][c]
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[cell_key(table.name, i, c)] = int(round(v))
    return out


def column_total(
    table: Table, col: int, *, rows: Sequence[int] | None = None, total_row: int = -1
) -> Relation:
    """The total row's cell of ``col`` = the sum of the body rows' cells (or of ``rows``)."""
    n = len(table.rows)
    t = total_row % n
    body = [i for i in range(n) if i != t] if rows is None else rows
    return Relation(cell_key(table.name, t, col), tuple(cell_key(table.name, i, col) for i in body))


def apply_hidden(
    table: Table,
    hidden: Collection,
    shares: Mapping[int, int] | None = None,
    *,
    base_hidden: bool = False,
    note: str = "",
) -> Table:
    """A copy of ``table`` with its ``hidden`` cells (keys of :func:`cell_key`) set to
    :data:`SUPPRESSED`; a share column ``sc`` of ``shares`` is hidden where its count
    column ``shares[sc]`` is, or entirely with ``base_hidden``. ``note`` is appended to
    the table's note when anything was hidden."""
    rows = [list(r) for r in table.rows]
    changed = False
    for i, r in enumerate(rows):
        for c in range(len(r)):
            if cell_key(table.name, i, c) in hidden and r[c] is not SUPPRESSED:
                r[c] = SUPPRESSED
                changed = True
        for sc, cc in (shares or {}).items():
            if (base_hidden or r[cc] is SUPPRESSED) and r[sc] is not SUPPRESSED:
                r[sc] = SUPPRESSED
                changed = True
    if not changed:
        return table
    notes = " ".join(n for n in (table.note, note) if n)
    return replace(table, rows=tuple(tuple(r) for r in rows), note=notes)


def _has_total(t: Table) -> bool:
    return bool(t.rows) and t.rows[-1][0] == "Total"


def report_cells(tables: Mapping[str, Table], town: str) -> tuple[dict, list[Relation]]:
    """The people cells of the report tables (full figures) and every relation between
    them (see the module docstring)."""
    cells: dict = {}
    rels: list[Relation] = []
    K = cell_key
    s = tables["summary"]
    cells.update(column_cells(s, (1,), SUMMARY_PEOPLE))
    s_vis, s_chk, s_first, s_ret, s_rural = (K("summary", i, 1) for i in SUMMARY_PEOPLE)
    grand = {"V": s_vis, "C": s_chk, "F": s_first}

    def body(t: Table) -> list[int]:
        return list(range(len(t.rows) - (1 if _has_total(t) else 0)))

    def tie(t: Table, col: int, fig: str, rows: Sequence[int] | None = None) -> None:
        """The column of ``t`` sums to the summary's figure (through its total row)."""
        rows = body(t) if rows is None else rows
        cells.update(column_cells(t, (col,)))
        if _has_total(t):
            rels.append(column_total(t, col, rows=rows))
            rels.append(Relation(grand[fig], (K(t.name, len(t.rows) - 1, col),)))
        else:
            rels.append(Relation(grand[fig], tuple(K(t.name, i, col) for i in rows)))

    st, mu, ru = tables["stops"], tables["municipalities"], tables["rural"]
    for col, fig in ((4, "V"), (5, "C"), (6, "F")):
        tie(st, col, fig)
    for col, fig in ((2, "V"), (3, "C")):
        tie(mu, col, fig)
        tie(ru, col, fig)
    tie(tables["hours"], 1, "V")
    tie(tables["hours"], 2, "C")
    tie(tables["weekdays"], 2, "V")
    tie(tables["weekdays"], 3, "C")
    tie(tables["age_groups"], 1, "C")
    fv = tables["first_visits"]
    tie(fv, 1, "C")
    labels = {r[0]: i for i, r in enumerate(fv.rows)}
    for label, key in (("First visit", s_first), ("Returning", s_ret)):
        parts = (K(fv.name, labels[label], 1),) if label in labels else ()
        rels.append(Relation(key, parts))
    cells.update(column_cells(tables["topics"], (1,)))

    # A municipality is the sum of its stops; the town and the rural area of theirs.
    def muni_of(r: tuple) -> str:
        return NOT_AT_STOP if r[0] == NOT_AT_STOP else r[1]

    area_of = {f"Town of {town}": lambda m: m == town, NOT_AT_STOP: lambda m: m == NOT_AT_STOP}
    rural = lambda m: m not in (town, NOT_AT_STOP)  # noqa: E731
    for mc, sc in ((2, 4), (3, 5)):
        for i in body(mu):
            m = mu.rows[i][0]
            parts = tuple(K("stops", j, sc) for j in body(st) if muni_of(st.rows[j]) == m)
            rels.append(Relation(K(mu.name, i, mc), parts))
        for i, r in enumerate(ru.rows):
            belongs = area_of.get(r[0], rural)
            parts = tuple(K(mu.name, j, mc) for j in body(mu) if belongs(mu.rows[j][0]))
            rels.append(Relation(K(ru.name, i, mc), parts))
            if mc == 2 and r[0] == "Rural municipalities":
                rels.append(Relation(s_rural, (K(ru.name, i, mc),)))
    return cells, rels


NOTE = "Cells with fewer than {n} people are suppressed (shown as <{n})."
SUMMARY_NOTE = "Counts from 1 to {m} are suppressed (shown as <{n})."


def suppress_tables(tables: Mapping[str, Table], town: str, min_cell: int) -> dict[str, Table]:
    """The report tables of one period (full figures, every name of :data:`PUBLIC`)
    with small cells hidden across all of them."""
    cells, rels = report_cells(tables, town)
    hidden = suppress(cells, rels, min_cell=min_cell)
    v_hidden = cell_key("summary", 0, 1) in hidden
    c_hidden = cell_key("summary", 1, 1) in hidden
    out = {}
    for name, t in tables.items():
        if name not in PEOPLE:
            out[name] = t
            continue
        base = v_hidden if name in ("municipalities", "rural") else c_hidden
        note = NOTE.format(n=min_cell)
        if name == "summary":
            sr, cr, br = SUMMARY_SHARE
            if {cell_key(name, cr, 1), cell_key(name, br, 1)} & hidden:
                hidden = hidden | {cell_key(name, sr, 1)}
            note = SUMMARY_NOTE.format(m=min_cell - 1, n=min_cell)
            out[name] = apply_hidden(t, hidden, note=note)
        else:
            out[name] = apply_hidden(t, hidden, PEOPLE[name][1], base_hidden=base, note=note)
    return out


_CACHE: list[tuple] = []
_CACHE_SIZE = 4
_LOCK = threading.Lock()


def public_tables(
    conn: sqlite3.Connection,
    p: Period,
    *,
    van: str | None = None,
    min_cell: int = 3,
    opts: Opts | None = None,
) -> dict[str, Table]:
    """Every public report table of the period (and van), suppressed together; kept
    per connection until the database changes, so an export of all reports suppresses
    once."""
    opts = opts or Opts()
    version = _cur(conn).execute("PRAGMA data_version").fetchone()[0]
    key = (version, conn.total_changes, p, van, min_cell, opts)
    with _LOCK:
        for c, k, tables in _CACHE:
            if c is conn and k == key:
                return tables
    full = {name: build(conn, name, p, van, opts) for name in REPORTS}
    tables = suppress_tables(full, opts.town, min_cell)
    with _LOCK:
        _CACHE.insert(0, (conn, key, tables))
        del _CACHE[_CACHE_SIZE:]
    return tables
