"""The differencing audit of issue 13: for 60 generated days, no hidden cell of the public
report tables can be worked out from the published cells of ALL public tables of that
day, month or year (for all vans and for each van).

The audit reads the public tables as a reader would (by their labels), writes down every
relation a reader knows (totals, a municipality = its stops, town + rural, the summary's
figures = each breakdown, first visits <= check-ins, a topic <= check-ins) and solves an
integer program per hidden cell (:func:`test_suppression.derivable`). It also shows that
the old rule (one table at a time) leaks on the same data.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest

from telemetry import reports
from telemetry.config import TOWN, default_config
from telemetry.reports import period, report
from telemetry.stops import StopDetector
from telemetry.store import Store

sys.path.insert(0, str(Path(__file__).parent))
import yeardata  # noqa: E402
from test_suppression import derivable  # noqa: E402

CFG = default_config()
VAN1, VAN2 = "jungregio-1", "jungregio-2"
START, DAYS = date(2025, 3, 3), 60
MIN_CELL = 3
NAMES = ("summary", "stops", "municipalities", "rural", "hours", "weekdays", "topics",
         "age_groups", "first_visits")  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """60 days of two vans with few visitors (many small cells): a beam pair and a door."""
    st = Store(tmp_path_factory.mktemp("audit") / "hub.db", van="")
    for van, sensor, seed in ((VAN1, "beam-pair", 21), (VAN2, "door", 22)):
        y = yeardata.generate(2025, seed=seed, van=van, sensor=sensor, days=DAYS, start=START,
                              visitor_scale=0.35)  # fmt: skip
        det = StopDetector(CFG.tour, CFG.stops, CFG.tz, van=van)
        yeardata.bulk_insert(st, y, visits=[ev for p in y.positions for ev in det.feed(p)])
    yield st
    st.close()


# --- the reader's model -----------------------------------------------------------------


def reader_model(tables: dict) -> tuple[dict, list[dict], list[dict]]:
    """The cells of the public tables ((table, row, col) -> value or None) and the
    relations a reader knows: equalities and "at most" (<= 0) rows for derivable()."""
    cells: dict = {}
    eqs: list[dict] = []
    les: list[dict] = []

    def people(name: str, cols) -> None:
        for i, r in enumerate(tables[name].rows):
            for c in cols:
                cells[(name, i, c)] = r[c]

    def total_of(name: str) -> int | None:
        rows = tables[name].rows
        return len(rows) - 1 if rows and rows[-1][0] == "Total" else None

    def same(a, parts, sign=1) -> None:
        e: dict = defaultdict(int)
        e[a] += 1
        for p in parts:
            e[p] -= 1
        (eqs if sign else les).append(dict(e))

    summary = {r[0]: (("summary", i, 1)) for i, r in enumerate(tables["summary"].rows)}
    V, C = summary["Visitors"], summary["Check-ins"]
    F, R = summary["First visits"], summary["Returning visitors"]
    RV = summary[f"Visitors outside the town of {TOWN}"]
    for k in (V, C, F, R, RV):
        cells[k] = tables["summary"].rows[k[1]][1]
    columns = {"stops": {4: V, 5: C, 6: F}, "municipalities": {2: V, 3: C}, "rural": {2: V, 3: C},
               "hours": {1: V, 2: C}, "weekdays": {2: V, 3: C}, "age_groups": {1: C},
               "first_visits": {1: C}}  # fmt: skip
    for name, cols in columns.items():
        people(name, cols)
        t = total_of(name)
        n = len(tables[name].rows)
        body = [i for i in range(n) if i != t]
        for c, grand in cols.items():
            same(grand, [(name, i, c) for i in body])
            if t is not None:
                same((name, t, c), [(name, i, c) for i in body])
    people("topics", (1,))
    for i in range(len(tables["topics"].rows)):
        same(("topics", i, 1), [C], sign=0)  # a topic <= check-ins
    fv = {r[0]: i for i, r in enumerate(tables["first_visits"].rows)}
    same(F, [("first_visits", fv["First visit"], 1)] if "First visit" in fv else [])
    same(R, [("first_visits", fv["Returning"], 1)] if "Returning" in fv else [])
    stops = tables["stops"].rows
    t = total_of("stops")
    for i in range(len(stops)):
        if i != t:
            same(("stops", i, 6), [("stops", i, 5)], sign=0)  # first visits <= check-ins
    munis = tables["municipalities"].rows
    tm = total_of("municipalities")
    for c_m, c_s in ((2, 4), (3, 5)):
        for i, m in enumerate(munis):
            if i == tm:
                continue
            mine = [j for j, r in enumerate(stops) if j != t and
                    (r[1] == m[0] or r[0] == m[0] == reports.NOT_AT_STOP)]  # fmt: skip
            same(("municipalities", i, c_m), [("stops", j, c_s) for j in mine])
        for i, a in enumerate(tables["rural"].rows):
            if a[0] == f"Town of {TOWN}":
                mine = [j for j, m in enumerate(munis) if m[0] == TOWN]
            elif a[0] == "Rural municipalities":
                mine = [j for j, m in enumerate(munis) if j != tm
                        and m[0] not in (TOWN, reports.NOT_AT_STOP)]  # fmt: skip
            else:
                mine = [j for j, m in enumerate(munis) if m[0] == a[0]]
            same(("rural", i, c_m), [("municipalities", j, c_m) for j in mine])
            if c_m == 2 and a[0] == "Rural municipalities":
                same(RV, [("rural", i, 2)])
    return cells, eqs, les


def shares_leak(tables: dict) -> list:
    """Published shares that give a hidden count (or a hidden base) away."""
    out = []
    s = {r[0]: r[1] for r in tables["summary"].rows}
    share = s[f"Share outside the town of {TOWN} (%)"]
    if share is not None and (s["Visitors"] is None or s[f"Visitors outside the town of {TOWN}"]
                              is None):  # fmt: skip
        out.append(("summary", "share"))
    for name, sc, cc, base in (("municipalities", 4, 2, "Visitors"), ("rural", 4, 2, "Visitors"),
                               ("topics", 2, 1, "Check-ins"), ("age_groups", 2, 1, "Check-ins"),
                               ("first_visits", 2, 1, "Check-ins")):  # fmt: skip
        for r in tables[name].rows:
            if r[sc] is not None and (r[cc] is None or s[base] is None):
                out.append((name, r[0]))
    return out


def audit(tables: dict) -> dict:
    cells, eqs, les = reader_model(tables)
    found = derivable(cells, eqs, les)
    return {**found, **{k: "share" for k in shares_leak(tables)}}


def periods():
    for i in range(DAYS):
        yield period("day", START + timedelta(days=i))
    yield period("month", date(2025, 3, 1))
    yield period("month", date(2025, 4, 1))
    yield period("year", START)


# --- the audit ----------------------------------------------------------------------------


@pytest.mark.parametrize("van", [None, VAN1, VAN2])
def test_no_hidden_cell_of_a_period_can_be_derived(store, van):
    conn = store.reader()
    hidden_total = primary = 0
    for p in periods():
        tables = {n: report(conn, n, p, van=van, public=True, min_cell=MIN_CELL) for n in NAMES}
        assert audit(tables) == {}, p.label
        full = {n: report(conn, n, p, van=van) for n in NAMES}
        for (n, i, c), a in reader_model(tables)[0].items():  # every people cell
            b = full[n].rows[i][c]
            hidden_total += a is None and b is not None
            primary += a is None and 0 < b < MIN_CELL
            assert a is None or a == b  # published cells are the staff figures
            assert not 0 < b < MIN_CELL or a is None, (p.label, n, i, c)
        for n in NAMES:  # and nothing else changed
            for rp, rf in zip(tables[n].rows, full[n].rows, strict=True):
                assert all(a is None or a == b for a, b in zip(rp, rf, strict=True))
    # The data has many small cells, and protecting them needed partners.
    assert primary > 100 and hidden_total > primary


def per_table(tables: dict) -> dict:
    """The old rule, table by table: hide 1..2; a column with one hidden cell hides its
    next smallest too (the summary only hides its own small rows)."""
    out = {}
    for name, t in tables.items():
        rows = [list(r) for r in t.rows]
        body = rows[:-1] if rows and rows[-1][0] == "Total" else rows
        for c in range(1, len(t.columns)):
            if name == "summary" and t.rows and c == 1:
                for r in rows:
                    if isinstance(r[1], int) and 0 < r[1] < MIN_CELL:
                        r[1] = None
                continue
            if not any(isinstance(r[c], int) for r in body) or "%" in t.columns[c]:
                continue
            if name in ("stops", "municipalities", "rural") and c < (4 if name == "stops" else 2):
                continue  # visits, not people
            small = [r for r in body if isinstance(r[c], int) and 0 < r[c] < MIN_CELL]
            for r in small:
                r[c] = None
            if len(small) == 1:
                rest = [r for r in body if isinstance(r[c], int) and r[c] > 0]
                if rest:
                    min(rest, key=lambda r: r[c])[c] = None
            if small and body is not rows:
                rows[-1][c] = None
        out[name] = t.__class__(t.name, t.title, t.columns, tuple(map(tuple, rows)), t.chart)
    return out


def test_the_audit_finds_the_old_per_table_leaks(store):
    """The same audit fails on the old rule (the summary's "not said" is check-ins -
    first - returning; stops vs municipalities), so it can fail."""
    conn = store.reader()
    leaky = 0
    for p in list(periods())[:20]:
        full = {n: report(conn, n, p) for n in NAMES}
        leaky += bool(audit(per_table(full)))
    assert leaky >= 10
