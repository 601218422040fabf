"""The report tests of test_reports.py on PostgreSQL, and every report equal on both back
ends (raw days and folded days).

The truth tests are test_reports.py's own functions, imported: here their ``data``
fixture is a hub store on a throwaway PostgreSQL cluster (tests/pg.py) filled with the
same generated year. The cross check builds the same hub on SQLite and compares every
report of every period kind, staff and public, cell by cell.
"""

from __future__ import annotations

import dataclasses
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "kiosk")]
import test_reports as base  # noqa: E402
import test_staff_reports as staff_pages  # noqa: E402
import yeardata  # noqa: E402
from pg import pg_cluster, pg_url  # noqa: E402, F401
from test_reports import (  # noqa: E402, F401
    test_annual_report,
    test_door_sensor_counts_half_the_passes_per_visit,
    test_every_figure_matches_the_truth,
    test_public_reports_suppress_small_cells,
    test_public_tables_cannot_be_differenced,
    test_the_town_comes_from_the_caller_not_a_spelling,
    test_the_year_has_every_kind_of_finding,
    test_van_filter_and_all_vans,
)
from test_staff_reports import (  # noqa: E402, F401
    box,
    hub,
    test_bad_parameters_are_refused,
    test_charts_are_self_contained_svg,
    test_csv_and_xlsx_read_back_equal_the_table,
    test_every_report_and_period_kind_shows_the_table,
    test_figures_are_the_known_counts,
    test_period_navigation_links,
    test_public_exports_suppress_small_cells,
    test_the_configured_crew_and_town_reach_the_pages,
    test_today_at_a_glance,
    test_van_filter_on_the_hub,
)

from telemetry import reports, retention  # noqa: E402
from telemetry.pgstore import PgStore  # noqa: E402
from telemetry.reports import REPORTS, period, report  # noqa: E402
from telemetry.stores import open_store  # noqa: E402


@pytest.fixture(autouse=True)
def _staff_pages_on_postgresql(request, monkeypatch):
    """test_staff_reports.py's app over a PostgreSQL store (its tests imported above)."""
    if request.node.function.__module__ != staff_pages.__name__:
        return
    url = request.getfixturevalue("pg_url")
    monkeypatch.setattr(staff_pages, "Store", lambda _path, **kw: PgStore(url, **kw))


def _datasets():
    y1 = yeardata.generate(2025, seed=1, van=base.VAN1)
    y2 = yeardata.generate(
        2025, seed=2, van=base.VAN2, sensor="door", days=61, start=date(2025, 3, 1)
    )
    return {base.VAN1: y1, base.VAN2: y2}


@pytest.fixture(scope="module")
def datasets():
    return _datasets()


def _fill(store, datasets) -> None:
    for y in datasets.values():
        yeardata.bulk_insert(store, y, visits=base.detect(y))


@pytest.fixture(scope="module")
def pg_hub(pg_cluster, datasets):  # noqa: F811
    url = pg_cluster.database("reports")
    store = open_store(url)
    _fill(store, datasets)
    yield store
    store.close()
    pg_cluster.drop(url)


@pytest.fixture(scope="module")
def data(datasets, pg_hub):
    """test_reports.py's fixture, on PostgreSQL."""
    return datasets, pg_hub


@pytest.fixture(scope="module")
def sqlite_hub(tmp_path_factory, datasets):
    store = open_store(tmp_path_factory.mktemp("reports-pg") / "hub.db")
    _fill(store, datasets)
    yield store
    store.close()


PERIODS = [
    *base.PERIODS,
    period("week", date(2025, 3, 3)),  # both vans
    period("month", date(2025, 12, 1)),
]


def _all_reports(store, p, **kw) -> dict:
    conn = store.reader()
    out = {name: report(conn, name, p, **kw) for name in REPORTS}
    out["public"] = reports.public_tables(conn, p, **kw)
    return out


def _same(a: dict, b: dict) -> None:
    for name in a:
        if name == "public":
            _same(a[name], b[name])
            continue
        assert (a[name].columns, a[name].note) == (b[name].columns, b[name].note), name
        assert a[name].rows == b[name].rows, name


@pytest.mark.parametrize("p", PERIODS, ids=lambda p: p.label)
def test_every_report_is_the_same_on_sqlite_and_postgresql(sqlite_hub, pg_hub, p):
    for van in (None, base.VAN2):
        lite = _all_reports(sqlite_hub, p, van=van)
        assert any(t.rows for t in lite.values() if hasattr(t, "rows"))
        _same(lite, _all_reports(pg_hub, p, van=van))


def test_the_annual_report_and_the_vans_are_the_same_on_both(sqlite_hub, pg_hub):
    assert reports.vans(sqlite_hub.reader()) == reports.vans(pg_hub.reader())
    for public in (True, False):
        lite = reports.annual(sqlite_hub.reader(), 2025, public=public, budget_eur=9000.0)
        assert lite["contacts"] > 1000
        assert lite == reports.annual(pg_hub.reader(), 2025, public=public, budget_eur=9000.0)


def test_folded_days_give_the_same_figures_on_both(tmp_path, pg_cluster):  # noqa: F811
    """The daily job folds days into the aggregates on PostgreSQL as on SQLite, and the
    figures stay what they were raw; a late row makes its day raw again (the trigger)."""
    y = yeardata.generate(2025, seed=5, van=base.VAN1, days=20, start=date(2025, 5, 1))
    url = pg_cluster.database("fold")
    stores = {"sqlite": open_store(tmp_path / "hub.db"), "postgresql": open_store(url)}
    try:
        p = period("month", date(2025, 5, 1))
        before = {}
        for name, st in stores.items():
            yeardata.bulk_insert(st, y, visits=base.detect(y))
            before[name] = _all_reports(st, p)
            n = retention.fold(st, datetime(2025, 6, 1, tzinfo=UTC))
            assert n >= 15, name
            states = dict(st.reader().execute("SELECT state, count(*) FROM agg_days GROUP BY 1"))
            assert states.get(0, 0) == 0 and states[1] >= 15, (name, states)
        _same(before["sqlite"], before["postgresql"])
        for name, st in stores.items():
            _same(before[name], _all_reports(st, p))  # now from the aggregates
            ev = y.checkin_events[0]
            day = ev.time.astimezone(base.TZ).date().isoformat()
            st.ingest_many([dataclasses.replace(ev, id=str(uuid.uuid4()))])
            state = (
                st.reader()
                .execute("SELECT state FROM agg_days WHERE day = ?", (day,))
                .fetchone()[0]
            )
            assert state == 0, (name, day)
    finally:
        for st in stores.values():
            st.close()
        pg_cluster.drop(url)
