"""The annual report and the public year reports hide small cells together.

The same year is published twice: as the annual report (:mod:`telemetry.annual`) and as
the public exports of the year's reports (``/staff/export/<name>?p=year&public=1``,
:func:`telemetry.reports.public_tables`). Many cells are the same people in both (a
municipality's visits, a stop's check-ins, an age group, a topic, the year's totals), so
a cell hidden in one and printed in the other would give it away, and so would
differences across the two. :func:`hide_with_reports` therefore suppresses the annual's
cells in one :func:`~telemetry.suppression.suppress` call with the reports' cells and
relations, the links between the two (:func:`links`), and the reports' hidden cells as
given (they are published as they are). The annual hides what that call hides among its
own cells.

If that call would also need a further cell of the reports hidden (the reports'
suppression did not see the annual's tables), that cell is printed in the reports
anyway: :func:`hide_with_reports` returns it in ``unmet`` (logged) so it can be seen.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .annual_privacy import Cell, Derived
from .report_privacy import PUBLIC, report_cells, suppress_tables
from .reports import NOT_AT_STOP as R_NOT_AT_STOP
from .reports import Table, period, report
from .suppression import Relation, suppress

log = logging.getLogger("vanbox.annual")

R_AGE_LABELS = {"under 15": "under-15", "over 27": "over-27"}  # reports' label -> code


@dataclass(frozen=True)
class Joint:
    hidden: frozenset  # the annual's cells to hide
    unmet: frozenset  # reports' cells the joint suppression would also hide (printed)


def _find(t: Table, match) -> list[int]:
    return [i for i, r in enumerate(t.rows) if match(r)]


def links(
    mine: Mapping[str, Table],
    theirs: Mapping[str, Table],
    *,
    town: str,
    labels: Mapping[str, str],
    not_at_stop: str,
    unplanned: str,
) -> list[Relation]:
    """Relations ``annual cell == sum of report cells`` for every figure both print."""
    out: list[Relation] = []

    def rel(total: Cell, parts: Sequence[tuple]) -> None:
        out.append(Relation(total, tuple(parts)))

    st, mu, ru, su = (theirs[n] for n in ("stops", "municipalities", "rural", "summary"))
    body = lambda t: range(len(t.rows) - (1 if t.rows and t.rows[-1][0] == "Total" else 0))  # noqa: E731
    hs = mine["haltestellen"]
    for i, r in enumerate(hs.rows[:-1]):
        name, muni = r[0], r[1]
        if name == unplanned:
            js = [j for j in body(st) if st.rows[j][2] == "no" and st.rows[j][1] == muni
                  and st.rows[j][0] != R_NOT_AT_STOP]  # fmt: skip
        else:
            js = [j for j in body(st) if st.rows[j][:3] == (name, muni, "yes")]
        rel(("haltestellen", i, 5), [("stops", j, 4) for j in js])
        rel(("haltestellen", i, 6), [("stops", j, 5) for j in js])
    ge = mine["gemeinden"]
    for i, r in enumerate(ge.rows[:-1]):
        if r[0] == not_at_stop:
            rel(("gemeinden", i, 3), [("municipalities", j, 3) for j in
                                      _find(mu, lambda x: x[0] == R_NOT_AT_STOP)])  # fmt: skip
            continue
        js = [j for j in body(mu) if mu.rows[j][0] == r[0]]
        if isinstance(r[2], int):
            rel(("gemeinden", i, 2), [("municipalities", j, 2) for j in js])
            rel(("gemeinden", i, 3), [("municipalities", j, 3) for j in js])
    for i, label in ((0, f"Town of {town}"), (1, "Rural municipalities")):
        rel(("laendlich", i, 1), [("rural", j, 2) for j in _find(ru, lambda x: x[0] == label)])  # noqa: B023
    kz = {r[0]: i for i, r in enumerate(mine["kennzahlen"].rows)}
    sv = {r[0]: i for i, r in enumerate(su.rows)}
    rel(("kennzahlen", kz["Besuche"], 1), [("summary", sv["Visitors"], 1)])
    rel(("kennzahlen", kz["Check-ins"], 1), [("summary", sv["Check-ins"], 1)])
    # age groups and topics: the annual's German label of a code, the reports' own label
    for mine_name, their_name, to_code in (
        ("altersgruppen", "age_groups", lambda s: R_AGE_LABELS.get(s, s)),
        ("themen", "topics", lambda s: s),
    ):
        t = theirs[their_name]
        by_label = {labels.get(to_code(r[0]), to_code(r[0])): j for j, r in enumerate(t.rows)}
        rows = mine[mine_name].rows
        for i, r in enumerate(rows[:-1] if mine_name == "altersgruppen" else rows):
            j = by_label.get(r[0])
            rel((mine_name, i, 1), [] if j is None else [(their_name, j, 1)])
    return out


def hide_with_reports(
    conn: sqlite3.Connection,
    year: int,
    mine: Mapping[str, Table],
    cells: Mapping[Cell, int],
    relations: Sequence[Relation | Derived],
    *,
    van: str | None,
    town: str,
    crew: int,
    min_cell: int,
    labels: Mapping[str, str],
    not_at_stop: str,
    unplanned: str,
) -> Joint:
    """The annual's cells to hide, suppressed together with the public year reports."""
    from datetime import date

    p = period("year", date(year, 1, 1))
    # the reports' public tables of the year as /staff/export prints them (the same call
    # as reports.public_tables, without the data quality table, which counts no people)
    full = {n: report(conn, n, p, van=van, town=town, crew=crew) for n in PUBLIC}
    pub = suppress_tables(full, town, min_cell)
    r_cells, r_rels = report_cells(full, town)
    r_hidden = {
        c for c in r_cells if pub[c[0]].rows[c[1]][c[2]] is None and full[c[0]].rows[c[1]][c[2]]
    }
    rels = [r for r in relations if isinstance(r, Relation)]
    rels += r_rels + links(mine, full, town=town, labels=labels, not_at_stop=not_at_stop,
                           unplanned=unplanned)  # fmt: skip
    hidden = suppress({**cells, **r_cells}, rels, min_cell=min_cell, hidden=r_hidden)
    unmet = frozenset(c for c in hidden if c in r_cells and c not in r_hidden)
    if unmet:
        log.warning("annual %s: %d cells of the public year reports would need hiding too: %s",
                    year, len(unmet), sorted(unmet)[:5])  # fmt: skip
    return Joint(frozenset(c for c in hidden if c in cells), unmet)
