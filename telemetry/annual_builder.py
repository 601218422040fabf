"""The collector the annual report's tables are built with (:mod:`telemetry.annual_tables`):
each table with its Summe row, the people counts that may be hidden and the relations
between them (for :func:`telemetry.annual_privacy.hide_small`)."""

from __future__ import annotations

from .annual import DASH, TOTAL
from .annual_privacy import Cell, Derived, Relation
from .reports import Table


class _Builder:
    def __init__(self) -> None:
        self.tables: list[Table] = []
        self.cells: dict[Cell, int] = {}
        self.relations: list[Relation | Derived] = []

    def add(
        self,
        name: str,
        title: str,
        columns: tuple[str, ...],
        rows: list[list],
        *,
        people: tuple[int, ...] = (),
        total: bool = False,
        chart: str = "none",
        note: str = "",
    ) -> None:
        """A table; ``people`` columns may be hidden; ``total`` appends a Summe row of
        every numeric column (and relates it to the rows for the people columns)."""
        rows = [list(r) for r in rows]
        if total:
            t = [TOTAL] + [""] * (len(columns) - 1)
            for c in range(1, len(columns)):
                nums = [r[c] for r in rows if isinstance(r[c], int | float)]
                if all(not isinstance(r[c], str) or r[c] == DASH for r in rows):
                    t[c] = (
                        round(sum(nums), 2)
                        if any(isinstance(x, float) for x in nums)
                        else sum(nums)
                    )
            rows.append(t)
        for i, r in enumerate(rows):
            for c in people:
                if isinstance(r[c], int):
                    self.cells[(name, i, c)] = r[c]
        if total:
            last = len(rows) - 1
            for c in people:
                self.rel((name, last, c), [(name, i, c) for i in range(last)])
        self.tables.append(Table(name, title, columns, tuple(map(tuple, rows)), chart, note))

    def rel(self, total: Cell, parts: list[Cell]) -> None:
        parts = [p for p in parts if p in self.cells]
        if total in self.cells:
            self.relations.append(Relation(total, tuple(parts)))

    def derived(self, cell: Cell, *sources: Cell) -> None:
        self.relations.append(Derived(cell, tuple(sources)))
