"""Small cells hidden across all tables of the annual report.

A *cell* is ``(table name, row index, column index)``. The builder
(:mod:`telemetry.annual_tables`) lists every people count of the report (``cells``:
cell -> value), the linear relations between them (:class:`Relation`: a total is the sum
of its parts: a column total, a municipality = the sum of its stops, a key figure =
another table's total) and the cells computed from counts (:class:`Derived`: a share, a
cost per contact). :func:`hide` asks :func:`telemetry.suppression.suppress` for the counts
to hide (all tables in one call, so that no hidden cell follows from any combination of
the published ones), then hides every derived cell one of whose sources (count or base)
is hidden.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from .suppression import Relation, suppress

Cell = tuple[str, int, int]


@dataclass(frozen=True)
class Derived:
    cell: Cell
    sources: tuple[Cell, ...]


def hide(
    cells: Mapping[Cell, int],
    relations: Iterable[Relation | Derived],
    min_cell: int,
    counts: Collection[Cell] | None = None,
) -> set[Cell]:
    """The cells to hide (counts and derived cells); see the module docstring.
    ``counts``: the counts to hide when already chosen (with the year's reports,
    :mod:`telemetry.annual_joint`), else they are chosen here."""
    relations = list(relations)
    rels = [r for r in relations if isinstance(r, Relation)]
    derived = [r for r in relations if isinstance(r, Derived)]
    out = set(suppress(cells, rels, min_cell=min_cell) if counts is None else counts)
    changed = True
    while changed:
        changed = False
        for d in derived:
            if d.cell not in out and any(s in out for s in d.sources):
                out.add(d.cell)
                changed = True
    return out


__all__ = ["Cell", "Derived", "Relation", "hide"]
