"""Small-cell suppression over a whole set of public tables (one period's tables).

A public table never shows a people count from 1 to ``min_cell - 1``. Hiding those cells
alone is not enough: the tables of one period are linked (a column's total, a
municipality = the sum of its stops, the summary's check-ins = first visits + returning
+ not said, ...), so a hidden cell could be worked out from published ones. The caller
describes every people-count cell of the period's public tables and the linear
relations between them; :func:`suppress` returns the cells to hide: the small ones and,
as few and as small as it can, extra ("secondary") cells so that **no hidden cell's
value is determined** by the published cells.

What a reader knows. Published cells are constants; a zero is always published, so a
hidden cell is a whole number >= 1; a cell the tables do not print at all
(``unpublished``) is a whole number >= 0. A hidden cell is safe when another solution of
the relations exists, within those bounds, in which the cell has a different value.

How it is checked. For each hidden cell the search looks for such a second solution of
the simplest kind: every unknown cell moves by -1, 0 or +1 (a "certificate"). A
certificate proves the cell is not determined; a hidden cell without one (within a
search budget) gets a partner: the smallest published cell (> 0) of the relation where
the search got stuck, and the search runs again. Hiding more cells never invalidates a
certificate found earlier, so this ends; it is deterministic (cells in the caller's
order, the smaller value and then the earlier cell first). The result is sound whatever
the budget: a cell without a certificate always gets a partner.

Scale: the tables of one period have some hundreds of cells; the search takes
milliseconds. Everything here is pure Python (no solver needed on the box).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass

from .errors import VanboxError

Key = Hashable  # e.g. ("stops", row index, column index)

SEARCH_BUDGET = 4000  # search steps per certificate attempt
MAX_MOVES = 200  # cells a certificate may move (keeps the recursion shallow)


class SuppressionError(VanboxError):
    """The cells or relations given to :func:`suppress` are not valid (names the cell)."""


@dataclass(frozen=True)
class Relation:
    """``cells[total] == sum(cells[p] for p in parts)`` (a total and its parts)."""

    total: Key
    parts: tuple[Key, ...]


def suppress(
    cells: Mapping[Key, int],
    relations: Iterable[Relation],
    *,
    min_cell: int = 3,
    unpublished: Collection[Key] = (),
    hidden: Collection[Key] = (),
) -> frozenset[Key]:
    """The cells to hide: every published cell from 1 to ``min_cell - 1``, every cell of
    ``hidden`` (the caller's own reasons), and the partners needed so that no hidden
    cell can be worked out from the published cells through ``relations``.

    ``cells`` maps every cell that appears in a relation (and every other people count
    to check) to its true whole value >= 0, in the order partners are preferred on a
    tie. ``unpublished`` names cells that take part in relations but are not printed.
    Raises :class:`SuppressionError` for a negative or non-whole value, a relation
    naming an unknown cell, or a relation the values do not satisfy."""
    if isinstance(min_cell, bool) or not isinstance(min_cell, int) or min_cell < 1:
        raise SuppressionError(f"min_cell must be a whole number >= 1, not {min_cell!r}")
    x: dict[Key, int] = {}
    for k, v in cells.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or v != int(v):
            raise SuppressionError(f"cell {k!r}: a count must be a whole number >= 0, not {v!r}")
        x[k] = int(v)
    order = {k: i for i, k in enumerate(x)}
    rels: list[dict[Key, int]] = []
    for r in relations:
        coef: dict[Key, int] = {r.total: 1}
        for p in r.parts:
            coef[p] = coef.get(p, 0) - 1
        for k in coef:
            if k not in x:
                raise SuppressionError(f"relation for {r.total!r} names unknown cell {k!r}")
        if sum(c * x[k] for k, c in coef.items()) != 0:
            parts = " + ".join(str(x[p]) for p in r.parts) or "0"
            raise SuppressionError(
                f"relation does not hold: {r.total!r} = {x[r.total]} but its parts give {parts}"
            )
        coef = {k: c for k, c in coef.items() if c}
        if coef:
            rels.append(coef)
    for k in (*unpublished, *hidden):
        if k not in x:
            raise SuppressionError(f"unknown cell {k!r}")
    free = frozenset(unpublished)
    hide = {k for k, v in x.items() if k not in free and 0 < v < min_cell}
    hide |= {k for k in hidden if k not in free}
    return frozenset(_Search(x, order, rels, free).protect(hide))


class _Search:
    """The certificate search over the unknown cells (hidden and unpublished)."""

    def __init__(self, x, order, rels, free) -> None:
        self.x, self.order, self.rels, self.free = x, order, rels, free
        self.of: dict[Key, list[int]] = {}
        for i, coef in enumerate(rels):
            for k in coef:
                self.of.setdefault(k, []).append(i)

    def protect(self, hide: set[Key]) -> set[Key]:
        self.unknown = set(self.free) | hide
        certified: set[Key] = set()
        todo = sorted(hide, key=self.order.__getitem__)
        while todo:
            cell = todo.pop(0)
            if cell in certified:
                continue
            found, stuck = self._search(cell, widen=False)
            if found is None:
                found, _ = self._search(cell, widen=True)
            if found is not None:
                new = [k for k in found if k not in self.unknown]
                certified.update(found)
            else:  # no certificate within the budget: hide a partner and try again
                partner = self._partner(cell, stuck)
                new = [] if partner is None else [partner]
                if new:
                    todo.insert(0, cell)
            hide.update(new)
            self.unknown.update(new)
        return hide

    def _lb(self, k: Key) -> int:
        return 0 if k in self.free else min(1, self.x[k])

    def _search(self, cell: Key, *, widen: bool):
        """A second solution moving ``cell``: the cells it moves (None if there is none
        within the budget) and how often the search got stuck at each relation.
        ``widen``: published cells may move too (they are then hidden); the cheapest
        such solution (smallest sum of their values, then fewest) wins."""
        stuck: dict[int, int] = {}
        self.best: tuple | None = None
        self.widen = widen
        self.budget = SEARCH_BUDGET
        for step in (1, -1):
            if self.x[cell] + step < self._lb(cell):
                continue
            self.d: dict[Key, int] = {cell: step}
            self.res: dict[int, int] = {}
            for i in self.of.get(cell, ()):
                self.res[i] = self.rels[i][cell] * step
            if self._dfs(stuck, (0, 0)) and not widen:
                break
        return (None if self.best is None else self.best[1]), stuck

    def _dfs(self, stuck: dict[int, int], cost: tuple[int, int]) -> bool:
        self.budget -= 1
        if self.budget < 0 or (self.best is not None and cost >= self.best[0]):
            return False
        if len(self.d) > MAX_MOVES:
            self.budget = -1  # give up this search: the cell gets a partner instead
            return False
        best: tuple | None = None
        for i, r in self.res.items():
            if r == 0:
                continue
            need = -1 if r > 0 else 1
            cand = []
            for k, c in self.rels[i].items():
                if k in self.d:
                    continue
                v = need * c
                if k in self.unknown:
                    if self.x[k] + v >= self._lb(k):
                        cand.append(((0, 0), len(self.of[k]), -v, self.order[k], k, v))
                elif self.widen and self.x[k] > 0 and self.x[k] + v >= 1:
                    cand.append(((self.x[k], 1), len(self.of[k]), -v, self.order[k], k, v))
            if best is None or (len(cand), i) < (len(best[1]), best[0]):
                best = (i, cand)
            if not cand:
                break
        if best is None:  # every relation balances: a second solution
            self.best = (cost, frozenset(self.d))
            return True
        i, cand = best
        found = False
        for add, *_, k, v in sorted(cand, key=lambda t: t[:4]):
            self.d[k] = v
            for j in self.of[k]:
                self.res[j] = self.res.get(j, 0) + self.rels[j][k] * v
            found = self._dfs(stuck, (cost[0] + add[0], cost[1] + add[1])) or found
            for j in self.of[k]:
                self.res[j] -= self.rels[j][k] * v
            del self.d[k]
            if self.budget < 0 or (found and not self.widen):
                break
        if not found:
            stuck[i] = stuck.get(i, 0) + 1
        return found

    def _partner(self, cell: Key, stuck: dict[int, int]) -> Key | None:
        """The smallest published cell (> 0) of the relation the search got stuck at
        most, else of any relation of ``cell``."""
        ranked = sorted(stuck, key=lambda i: (-stuck[i], i))
        for group in [[i] for i in ranked] + [self.of.get(cell, [])]:
            cand = [
                (self.x[k], self.order[k], k)
                for i in group
                for k in self.rels[i]
                if k not in self.unknown and self.x[k] > 0
            ]
            if cand:
                return min(cand, key=lambda t: t[:2])[2]
        return None
