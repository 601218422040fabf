"""Small-cell suppression (telemetry/suppression.py), checked by an independent audit.

The audit (:func:`derivable`) knows nothing of the implementation: given the published
cells (``None`` = hidden) and the linear relations a reader knows, it solves an integer
program per hidden cell (scipy's HiGHS: min and max of the cell over every whole-number
solution with hidden cells >= 1, as zeros are always shown) and reports the cells whose
value is the same in all solutions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from telemetry.errors import VanboxError
from telemetry.suppression import Relation, SuppressionError, suppress

UB = 10**6  # an upper bound for every hidden cell (keeps the programs bounded)


def derivable(
    published: Mapping[Hashable, int | None],
    equalities: Sequence[Mapping[Hashable, int]],
    at_most: Sequence[Mapping[Hashable, int]] = (),
    lower: Mapping[Hashable, int] | None = None,
) -> dict[Hashable, int]:
    """Hidden cells (value None) whose value every whole-number solution shares.

    ``equalities``: ``{cell: coefficient}`` with sum(coef * value) == 0; ``at_most``:
    the same with <= 0. A hidden cell is >= 1 (``lower`` may say otherwise, e.g. 0 for a
    cell that is never printed)."""
    hidden = [k for k, v in published.items() if v is None]
    if not hidden:
        return {}
    col = {k: i for i, k in enumerate(hidden)}

    def rows(rel_list):
        a, b = [], []
        for rel in rel_list:
            row = np.zeros(len(hidden))
            const = 0
            for k, c in rel.items():
                if k in col:
                    row[col[k]] += c
                else:
                    const += c * published[k]
            if row.any():
                a.append(row)
                b.append(-const)
            else:
                assert const == 0 or rel_list is at_most and const <= 0, rel
        return a, b

    cons = []
    a, b = rows(equalities)
    if a:
        cons.append(LinearConstraint(np.array(a), b, b))
    a, b = rows(at_most)
    if a:
        cons.append(LinearConstraint(np.array(a), -np.inf, b))
    lb = [1 if lower is None else lower.get(k, 1) for k in hidden]
    bounds = Bounds(lb, [UB] * len(hidden))
    integrality = np.ones(len(hidden))
    seen: dict[int, set[int]] = defaultdict(set)
    out = {}
    for i, k in enumerate(hidden):
        if len(seen[i]) > 1:
            continue
        for sign in (1, -1):
            c = np.zeros(len(hidden))
            c[i] = sign
            res = milp(c, constraints=cons, integrality=integrality, bounds=bounds)
            assert res.status == 0, (k, res.message)  # the true values are a solution
            for j, x in enumerate(res.x):
                seen[j].add(round(x))
        if len(seen[i]) == 1:
            out[k] = next(iter(seen[i]))
    return out


def sums(relations: Sequence[Relation]) -> list[dict]:
    """Relations as equalities for :func:`derivable`."""
    out = []
    for r in relations:
        e: dict = defaultdict(int)
        e[r.total] += 1
        for p in r.parts:
            e[p] -= 1
        out.append(dict(e))
    return out


def publish(cells: Mapping, hidden) -> dict:
    return {k: (None if k in hidden else v) for k, v in cells.items()}


# --- the issue's example -------------------------------------------------------------

# Stops and municipalities of one week, as in issue 13: Edemissen has a single stop
# with one visitor, the stops' total is 20.
STOPS = {"Peine, Markt": 3, "Peine, Bahnhof": 0, "Ilsede, Schule": 0, "Lengede, Rathaus": 3,
         "Vechelde, Markt": 10, "Hohenhameln, Markt": 3, "Edemissen, Schulzentrum": 1}  # fmt: skip
MUNI_OF = {s: s.split(",")[0] for s in STOPS}


def issue_example() -> tuple[dict, list[Relation]]:
    cells = {("stop", s): v for s, v in STOPS.items()}
    munis = sorted(set(MUNI_OF.values()))
    for m in munis:
        cells[("muni", m)] = sum(v for s, v in STOPS.items() if MUNI_OF[s] == m)
    cells[("total",)] = sum(STOPS.values())
    rels = [Relation(("total",), tuple(("stop", s) for s in STOPS)),
            Relation(("total",), tuple(("muni", m) for m in munis))]  # fmt: skip
    for m in munis:
        rels.append(Relation(("muni", m), tuple(("stop", s) for s in STOPS if MUNI_OF[s] == m)))
    return cells, rels


def per_table(cells: Mapping, tables: Mapping[str, list], min_cell: int) -> set:
    """The old rule, one table at a time: hide 1..min_cell-1; a column with exactly one
    hidden cell also hides its smallest other cell."""
    hidden = set()
    for keys in tables.values():
        small = {k for k in keys if 0 < cells[k] < min_cell}
        if len(small) == 1:
            rest = [(cells[k], i) for i, k in enumerate(keys) if k not in small and cells[k] > 0]
            small.add(keys[min(rest)[1]])
        hidden |= small
    return hidden


def test_the_issue_example_leaks_per_table_and_not_across_tables():
    cells, rels = issue_example()
    tables = {"stops": [k for k in cells if k[0] == "stop"],
              "munis": [k for k in cells if k[0] == "muni"]}  # fmt: skip
    old = per_table(cells, tables, 3)
    assert ("stop", "Edemissen, Schulzentrum") in old
    # The audit finds what the issue found: Edemissen = 20 - (3+0+0+3+10+3) = 1.
    assert derivable(publish(cells, old), sums(rels))[("stop", "Edemissen, Schulzentrum")] == 1

    new = suppress(cells, rels, min_cell=3)
    assert {("stop", "Edemissen, Schulzentrum"), ("muni", "Edemissen")} <= new
    assert derivable(publish(cells, new), sums(rels)) == {}
    assert len(new) == 4  # Edemissen and one partner stop with its municipality
    assert all(cells[k] <= 3 for k in new)  # the smallest partners


def test_summary_difference_is_closed():
    """Check-ins = first visits + returning + not said: a hidden "not said" of 1 gets a
    partner, so check-ins - first - returning says nothing."""
    cells = {"checkins": 25, "first": 9, "returning": 15, "unsaid": 1}
    rels = [Relation("checkins", ("first", "returning", "unsaid"))]
    hidden = suppress(cells, rels, min_cell=3)
    assert hidden == {"unsaid", "first"}  # the smaller partner
    assert derivable(publish(cells, hidden), sums(rels)) == {}


def test_two_hidden_cells_at_their_lower_bound_are_protected():
    """Two hidden cells summing to 2, each >= 1: both are 1. A third cell is needed."""
    cells = {"t": 2, "a": 1, "b": 1, "c": 0}
    rels = [Relation("t", ("a", "b", "c"))]
    assert derivable(publish(cells, {"a", "b"}), sums(rels)) == {"a": 1, "b": 1}
    hidden = suppress(cells, rels, min_cell=2)  # the total is not small itself
    assert hidden == {"a", "b", "t"} and "c" not in hidden  # a zero is never hidden
    assert derivable(publish(cells, hidden), sums(rels)) == {}


@pytest.mark.parametrize("v, hidden", [(0, False), (1, True), (2, True), (3, False), (4, False)])
def test_threshold_around_min_cell(v, hidden):
    cells = {"a": v, "b": 7, "c": 9}
    assert ("a" in suppress(cells, [], min_cell=3)) is hidden
    assert suppress(cells, [], min_cell=3) <= {"a"}  # no relation: no partner needed


def test_a_lone_hidden_cell_takes_the_smallest_partner_and_the_result_is_stable():
    cells = {"t": 30, "a": 2, "b": 9, "c": 4, "d": 15}
    rels = [Relation("t", ("a", "b", "c", "d"))]
    first = suppress(cells, rels, min_cell=3)
    assert first == {"a", "c"}
    assert all(suppress(cells, rels, min_cell=3) == first for _ in range(3))


def test_unpublished_cells_are_unknowns_not_hidden():
    """A total that is never printed protects its parts: nothing else is hidden."""
    cells = {"t": 12, "a": 1, "b": 11}
    hidden = suppress(cells, [Relation("t", ("a", "b"))], min_cell=3, unpublished=["t"])
    assert hidden == {"a"}
    pub = publish(cells, hidden | {"t"})
    assert derivable(pub, sums([Relation("t", ("a", "b"))]), lower={"t": 0}) == {}


@pytest.mark.parametrize(
    "cells, rels, message",
    [
        ({"a": -1}, [], "whole number >= 0"),
        ({"a": 1.5}, [], "whole number >= 0"),
        ({"a": True}, [], "whole number >= 0"),
        ({"a": 1}, [Relation("a", ("zz",))], "unknown cell 'zz'"),
        ({"a": 1, "b": 2}, [Relation("a", ("b",))], "does not hold"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(cells, rels, message):
    with pytest.raises(SuppressionError, match=message) as e:
        suppress(cells, rels, min_cell=3)
    assert isinstance(e.value, VanboxError)
    with pytest.raises(SuppressionError, match="min_cell"):
        suppress({"a": 1}, [], min_cell=0)


# --- random linked tables, audited -----------------------------------------------------


@st.composite
def linked_tables(draw):
    """A two-level hierarchy (stops in municipalities) and a second breakdown of the same
    total (hours), like one period's public tables, with many small cells."""
    groups = draw(st.lists(st.lists(st.integers(0, 6), min_size=1, max_size=4), min_size=1,
                           max_size=5))  # fmt: skip
    total = sum(map(sum, groups))
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=0, max_size=4)))
    hours = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    cells: dict = {("total",): total}
    rels = []
    for g, stops in enumerate(groups):
        cells[("muni", g)] = sum(stops)
        for s, v in enumerate(stops):
            cells[("stop", g, s)] = v
        rels.append(Relation(("muni", g), tuple(("stop", g, s) for s in range(len(stops)))))
    for h, v in enumerate(hours):
        cells[("hour", h)] = v
    rels.append(Relation(("total",), tuple(("muni", g) for g in range(len(groups)))))
    rels.append(Relation(("total",), tuple(("hour", h) for h in range(len(hours)))))
    return cells, rels


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linked_tables(), st.integers(2, 5))
def test_no_hidden_cell_can_be_derived_in_random_tables(example, min_cell):
    cells, rels = example
    hidden = suppress(cells, rels, min_cell=min_cell)
    assert {k for k, v in cells.items() if 0 < v < min_cell} <= hidden
    assert all(cells[k] > 0 for k in hidden)
    assert derivable(publish(cells, hidden), sums(rels)) == {}


def test_table_helpers_hide_cells_and_their_shares():
    from telemetry.report_privacy import apply_hidden, cell_key, column_cells, column_total
    from telemetry.reports import Table

    t = Table("t", "T", ("Name", "People", "Share (%)"),
              (("a", 2, 20.0), ("b", 8, 80.0), ("Total", 10, 100.0)), "bar")  # fmt: skip
    assert column_cells(t, (1,)) == {("t", 0, 1): 2, ("t", 1, 1): 8, ("t", 2, 1): 10}
    rel = column_total(t, 1)
    assert rel == Relation(cell_key("t", 2, 1), (("t", 0, 1), ("t", 1, 1)))
    hidden = suppress(column_cells(t, (1,)), [rel], min_cell=3)
    assert hidden == {("t", 0, 1), ("t", 1, 1)}
    out = apply_hidden(t, hidden, {2: 1}, note="hidden")
    assert out.rows == (("a", None, None), ("b", None, None), ("Total", 10, 100.0))
    assert out.note == "hidden"
    assert apply_hidden(t, set(), {2: 1}, base_hidden=True).rows[2] == ("Total", 10, None)
    assert apply_hidden(t, set(), {2: 1}) is t  # nothing hidden: the same table
