"""The fleet rollup (telemetry.rollup): every fleet report the same with and without it,
on SQLite and PostgreSQL, over folded, raw and stale days; it is read where it serves; a
refold keeps it true; an upgraded hub gets it on the next fold; how the days of a range
are split between grains (Hypothesis)."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import test_fleet_sums as fs  # noqa: E402
from pg import pg_cluster  # noqa: E402, F401

from telemetry import retention, rollup  # noqa: E402
from telemetry.report_tables import REPORTS, period  # noqa: E402
from telemetry.reports import report  # noqa: E402
from telemetry.stores import open_store  # noqa: E402
from telemetry.sums import clear_cache, sums  # noqa: E402

PERIODS = [
    period("year", date(2025, 1, 1)),
    fs.MONTH,
    period("month", date(2025, 4, 1)),
    period("week", date(2025, 5, 5)),
    period("week", date(2025, 5, 12)),
    period("day", date(2025, 5, 7)),
    period("day", date(2025, 5, 10)),
    period("day", date(2025, 5, 20)),
]


@pytest.fixture(scope="module")
def years():
    return fs._years()


def _store(kind: str, request, tmp_path_factory, name: str):
    if kind == "sqlite":
        return open_store(tmp_path_factory.mktemp(name) / "hub.db"), None
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.database(name)
    return open_store(url), (cluster, url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hubs(request, years, tmp_path_factory):
    """Two hubs on one back end: ``mixed`` (days before 15 May folded, later ones raw,
    7 May stale: a late check-in) and ``folded`` (every day folded: the whole year 2025
    is current in the rollup)."""
    made = {}
    for name, fold_all in (("mixed", False), ("folded", True)):
        store, pg = _store(request.param, request, tmp_path_factory, name)
        fs._fill(store, years, fold_all=fold_all)
        made[name] = (store, pg)
    yield made["mixed"][0], made["folded"][0]
    for store, pg in made.values():
        store.close()
        if pg:
            pg[0].drop(pg[1])


def _folded_days(store) -> int:
    conn = store.reader()
    return conn.execute("SELECT count(DISTINCT day) FROM agg_days WHERE state > 0").fetchone()[0]


def _tables(store, p) -> dict:
    clear_cache()
    conn = store.reader()
    return {name: report(conn, name, p) for name in REPORTS}


def _without_rollup(store, p) -> dict:
    with store.transaction() as conn:
        states = conn.execute("SELECT period, state FROM rollup_periods").fetchall()
        conn.execute("UPDATE rollup_periods SET state = 0")
    try:
        return _tables(store, p)
    finally:
        with store.transaction() as conn:
            conn.executemany(
                "UPDATE rollup_periods SET state = ? WHERE period = ?", [(s, p) for p, s in states]
            )


def _read_periods(store, p, grouping: str) -> list[str]:
    conn = store.reader()
    stale = {r[0] for r in conn.execute("SELECT day FROM agg_days WHERE state = 0")}
    return rollup.cover(conn, p.start, p.end, stale, grouping)[0]


@pytest.mark.parametrize("p", PERIODS, ids=lambda p: p.label)
def test_every_fleet_report_is_the_same_with_and_without_the_rollup(hubs, p):
    for store in hubs:
        want = _without_rollup(store, p)
        got = _tables(store, p)
        assert got == want, p.label
        assert any(t.rows for t in got.values()) or p.start.month == 4


def test_the_rollup_is_read_where_it_serves(hubs):
    mixed, folded = hubs
    year = PERIODS[0]
    assert _read_periods(folded, year, "key") == ["2025"]
    assert _read_periods(folded, year, "stop") == ["2025"]
    assert len(_read_periods(folded, year, "day")) == _folded_days(folded) > 15
    # 7 May is stale and 15 May on raw: neither the year nor May, but the folded days
    got = _read_periods(mixed, year, "key")
    assert "2025" not in got and "2025-05" not in got
    assert "2025-05-06" in got and fs.STALE_DAY not in got and "2025-05-20" not in got
    assert _read_periods(mixed, fs.MONTH, "stop") == []  # no day grain for stops


def test_the_rollup_holds_the_sums_of_the_aggregates(hubs):
    """What the rollup holds for the year is what the aggregates add up to."""
    conn = hubs[1].reader()
    got = {
        (m, k): v
        for m, k, v in conn.execute(
            "SELECT metric, key, value FROM rollup_sums WHERE period = '2025' AND grp = 'key'"
        )
    }
    want = {
        (m, k): v
        for m, k, v in conn.execute(
            "SELECT metric, key, sum(value) FROM aggregates WHERE metric NOT LIKE 'visit_%'"
            " GROUP BY metric, key"
        )
    }
    assert got == pytest.approx(want) and sum(got.values()) > 100
    visits = conn.execute("SELECT count(*) FROM stop_visits").fetchone()[0]
    rolled = conn.execute(
        "SELECT sum(value) FROM rollup_sums WHERE period = '2025' AND metric = 'visits'"
    ).fetchone()[0]
    assert rolled == visits > 20


def test_a_refold_brings_the_rollup_up_to_date(tmp_path, years):
    """A late check-in for a folded day: the day is read raw at once, and after the next
    fold the month comes from the rollup again, counting it (fold marks the month)."""
    store = open_store(tmp_path / "hub.db")
    fs._fill(store, years, fold_all=True)
    month = fs.MONTH
    before = sums(store.reader(), month.start, month.end, "stop", names=("visit_checkins",))
    store.ingest_many([fs._late_checkin(years["fleet-a"])])
    clear_cache()
    stale = sums(store.reader(), month.start, month.end, "stop", names=("visit_checkins",))
    assert sum(stale.values()) == sum(before.values()) + 1
    assert _read_periods(store, month, "stop") == []
    retention.fold(store, datetime(2025, 7, 1, tzinfo=UTC), before="2025-07-01")
    assert _read_periods(store, month, "stop") == ["2025-05"]
    clear_cache()
    after = sums(store.reader(), month.start, month.end, "stop", names=("visit_checkins",))
    assert after == stale
    store.close()


def test_a_hub_with_folded_days_gets_its_rollup_on_the_next_fold(tmp_path, years):
    """As after the upgrade to migration 0013: periods with folded days out of date, the
    pages read the aggregates; the next daily fold (nothing left to fold) sums them up."""
    store = open_store(tmp_path / "hub.db")
    fs._fill(store, years, fold_all=True)
    assert rollup.mark_all(store) == _folded_days(store) + 1 + 1  # the days, May, 2025
    assert _read_periods(store, fs.MONTH, "stop") == []
    assert retention.fold(store, datetime(2025, 7, 1, tzinfo=UTC), before="2025-07-01") == 0
    assert _read_periods(store, fs.MONTH, "stop") == ["2025-05"]
    state = store.reader().execute("SELECT count(*) FROM rollup_periods WHERE state = 0")
    assert state.fetchone()[0] == 0
    store.close()


# --- how a range is split (pure) ------------------------------------------------------

D0 = date(2024, 11, 1)


def _days(a: date, b: date) -> list[str]:
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days)]


def _span(p: str) -> tuple[date, date]:
    if len(p) == 10:
        d = date.fromisoformat(p)
        return d, d + timedelta(days=1)
    if len(p) == 7:
        d = date.fromisoformat(p + "-01")
        return d, date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return date(int(p), 1, 1), date(int(p) + 1, 1, 1)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 500),
    st.integers(0, 500),
    st.sets(st.integers(0, 520), max_size=12),
    st.sets(st.integers(0, 520), max_size=400),
    st.sampled_from(sorted(set(rollup.GRAINS.values()))),
)
def test_a_range_is_split_into_the_coarsest_usable_periods(a, n, stale_i, cur_i, grains):
    start, end = D0 + timedelta(days=a), D0 + timedelta(days=a + n)
    stale = {(D0 + timedelta(days=i)).isoformat() for i in stale_i}
    current = set()
    for i in cur_i:  # days, and the months and years of some of them
        iso = (D0 + timedelta(days=i)).isoformat()
        current.add(iso if i % 3 else iso[:7] if i % 2 else iso[:4])
    periods, rest = rollup.plan(start, end, stale, current, grains)
    seen: list[str] = list(rest)
    for p in periods:
        lo, hi = _span(p)
        assert start <= lo and hi <= end, p
        assert p in current
        assert {"10": "day", "7": "month", "4": "year"}[str(len(p))] in grains
        inside = _days(lo, hi)
        assert not stale & set(inside), p
        seen += inside
    want = [d for d in _days(start, end) if d not in stale]
    assert sorted(seen) == want  # every day once: covered, left over, or stale
    for d in [*rest, *(p for p in periods if len(p) == 10)]:
        for grain, p in (("month", d[:7]), ("year", d[:4])):
            lo, hi = _span(p)
            coarser = grain in grains and p in current and start <= lo and hi <= end
            assert not (coarser and not stale & set(_days(lo, hi))), (d, p)
        if "day" in grains:
            assert (d in current) == (d not in rest), d
