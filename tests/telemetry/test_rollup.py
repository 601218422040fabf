"""The fleet rollup (telemetry.rollup): every fleet report the same with and without it,
on SQLite and PostgreSQL, over folded, raw and stale days; it is read where it serves; a
refold keeps it true; an upgraded hub gets it on the next fold; how the days of a range
are split between grains (Hypothesis)."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import test_fleet_sums as fs  # noqa: E402
from pg import pg_cluster  # noqa: E402, F401

from telemetry import raw_days, retention, rollup  # noqa: E402
from telemetry.report_tables import REPORTS, period  # noqa: E402
from telemetry.reports import report  # noqa: E402
from telemetry.stores import open_store  # noqa: E402
from telemetry.sums import clear_cache, sums, visit_counts  # noqa: E402

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


@contextlib.contextmanager
def _rollup_off(store):
    """Every period out of date (the pages read the aggregates), then as it was."""
    with store.transaction() as conn:
        states = conn.execute("SELECT period, state FROM rollup_periods").fetchall()
        conn.execute("UPDATE rollup_periods SET state = 0")
    clear_cache()
    try:
        yield
    finally:
        with store.transaction() as conn:
            conn.executemany(
                "UPDATE rollup_periods SET state = ? WHERE period = ?", [(s, p) for p, s in states]
            )
        clear_cache()


def _without_rollup(store, p) -> dict:
    with _rollup_off(store):
        return _tables(store, p)


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


# --- what the review found: long visits, late visits for pruned days, overlapping runs --


def _rows(conn, table: str, rows: list[tuple]) -> None:
    cols = {
        "footfall": "id, van, ts, day, hour, kind, sensor, occupancy",
        "positions": "id, van, ts, day, lat, lon, mode, alt, speed, track, hdop, sats, suspect",
        "checkins": "id, van, ts, day, hour, age_group, topics, first_visit, heard_from, language",
        "stop_visits": 'id, van, arrived, "left", day, name, municipality, lat, lon, planned',
    }[table]
    marks = ",".join("?" * len(cols.split(",")))
    conn.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)


def _at(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hh, mm, tzinfo=fs.base.TZ)


def _visit(conn, van: str, arrived: datetime, left: datetime | None, name: str) -> str:
    vid = f"{van}-{name}-{arrived:%m%d%H%M}"
    _rows(
        conn,
        "stop_visits",
        [
            (
                vid,
                van,
                arrived.timestamp(),
                left and left.timestamp(),
                arrived.date().isoformat(),
                name,
                "Peine",
                52.3,
                10.2,
                0,
            )
        ],
    )
    return vid


def _passes(conn, van: str, t: datetime, n: int) -> None:
    _rows(
        conn,
        "footfall",
        [
            (
                f"{van}-ff-{t.timestamp() + 60 * i}",
                van,
                t.timestamp() + 60 * i,
                t.date().isoformat(),
                t.hour,
                "pass",
                "door",
                0,
            )
            for i in range(n)
        ],
    )
    _rows(
        conn,
        "positions",
        [
            (
                f"{van}-p-{t.timestamp()}",
                van,
                t.timestamp(),
                t.date().isoformat(),
                52.3,
                10.2,
                3,
                0.0,
                0.0,
                0.0,
                1.0,
                8,
                0,
            )
        ],
    )


def _both_ways(store, fn):
    """``fn()`` with the rollup, and with every period out of date (the aggregates)."""
    clear_cache()
    with_ = fn()
    with _rollup_off(store):
        return with_, fn()


@pytest.fixture(params=["sqlite", "postgresql"])
def folded_hub(request, years, tmp_path_factory):
    store, pg = _store(request.param, request, tmp_path_factory, "review")
    fs._fill(store, years, fold_all=True)
    yield store
    store.close()
    if pg:
        pg[0].drop(pg[1])


NOW = datetime(2025, 7, 1, tzinfo=UTC)
YEAR = period("year", date(2025, 1, 1))


def test_a_visit_longer_than_a_day_keeps_its_stop(folded_hub):
    """A van parked at a festival from Tuesday 9:00 to Thursday 20:00, the box on: the
    visitors of Thursday belong to a visit that arrived two days before, further back
    than the day-bounded join of the stop visits reaches; they stay at the festival."""
    store, d = folded_hub, date(2025, 4, 29)
    with store.transaction() as conn:
        _visit(conn, "van-fest", _at(d, 9), _at(d + timedelta(days=2), 20), "Festwiese")
        for k in range(3):
            for h in (10, 12, 15, 18):
                _passes(conn, "van-fest", _at(d + timedelta(days=k), h, 5), 6)
    retention.fold(store, NOW, before="2025-07-01")
    names = ("visit_visitors",)

    def fest():
        got = sums(store.reader(), YEAR.start, YEAR.end, "stop", van=None, names=names)
        return {k: v for k, v in got.items() if k[1] is None or k[1][0] == "Festwiese"}

    with_, without = _both_ways(store, fest)
    assert with_ == without
    fest_only = {k[1]: v for k, v in with_.items() if k[1] is not None}
    assert list(fest_only) == [("Festwiese", "Peine", False)]
    # 12 door openings of 6 passes: the crew's 2 at each end, then 1 person per 2 passes
    assert list(fest_only.values())[0] > 20


def test_a_late_stop_visit_for_a_pruned_day_is_counted(folded_hub):
    """A hub receiving an old backlog: a stop visit for a day already pruned. The day
    stays pruned (its raw rows are gone), but the visit counts among the stop visits of
    its day, month and year, with the rollup as without it."""
    store = folded_hub
    with store.transaction() as conn:
        conn.execute("UPDATE agg_days SET state = 2 WHERE state = 1")  # as after the prune
        van, iso = conn.execute(
            "SELECT van, day FROM agg_days WHERE day >= '2025-05-06' ORDER BY day, van"
        ).fetchone()
    day = date.fromisoformat(iso)
    before = _both_ways(store, lambda: visit_counts(store.reader(), YEAR.start, YEAR.end, "day"))
    with store.transaction() as conn:
        _visit(conn, van, _at(day, 21), _at(day, 22), "Spät")
    assert (
        store.reader()
        .execute("SELECT state FROM agg_days WHERE van = ? AND day = ?", (van, iso))
        .fetchone()[0]
        == 2
    )
    for p in (period("day", day), period("month", day), YEAR):
        with_, without = _both_ways(
            store, lambda p=p: visit_counts(store.reader(), p.start, p.end, "stop")
        )
        assert with_ == without, p.label
        assert with_[("Spät", "Peine", False)] == 1
    after = visit_counts(store.reader(), YEAR.start, YEAR.end, "day")
    assert (
        after[day.isoformat()] == before[0][day.isoformat()] + 1 == before[1][day.isoformat()] + 1
    )
    retention.fold(store, NOW, before="2025-07-01")  # the next daily run sums it up
    assert _read_periods(store, YEAR, "stop") == ["2025"]
    assert visit_counts(store.reader(), YEAR.start, YEAR.end, "day") == after


def test_a_month_waits_for_its_days_marked_again(folded_hub, monkeypatch):
    """Two daily runs overlapping: run A has refreshed 2 May and is about to sum May when
    run B folds a late check-in for 2 May (marking the day, May and 2025 again). May and
    2025 must then be summed from 2 May as it is now, not as A summed it."""
    store, day = folded_hub, date(2025, 5, 7)
    first = next(
        e
        for e in fs._years()["fleet-a"].checkin_events
        if e.time.astimezone(fs.base.TZ).date() == day
    )
    store.ingest_many([fs._late_checkin(fs._years()["fleet-a"])])  # run A will fold it
    orig = store.transaction
    injected = []

    def state(p: str) -> int:
        return (
            store.reader()
            .execute("SELECT state FROM rollup_periods WHERE period = ?", (p,))
            .fetchone()[0]
        )

    @contextlib.contextmanager
    def transaction():
        with orig() as conn:
            yield conn
        if not injected and state(day.isoformat()) == 1 and state(day.isoformat()[:7]) == 0:
            injected.append(1)  # A has summed the day, not yet May: B folds a late row
            store.ingest_many([dataclasses.replace(first, id="late-b", van="fleet-b")])
            with orig() as c2:
                retention._fold_batch(c2, "fleet-b", [day.isoformat()])

    monkeypatch.setattr(store, "transaction", transaction)
    retention.fold(store, NOW, before="2025-07-01")  # run A, with B's fold inside
    monkeypatch.setattr(store, "transaction", orig)
    rollup.refresh(store)  # run B's refresh
    assert injected
    for p in (period("day", day), period("month", day), YEAR):
        with_, without = _both_ways(
            store, lambda p=p: sums(store.reader(), p.start, p.end, "key", names=("first",))
        )
        assert with_ == without, p.label


def test_a_late_event_during_the_fold_of_its_day_is_not_lost(request, years, tmp_path_factory):
    """PostgreSQL, where ingest is not serialized with the daily job: a late check-in
    arrives while the fold is computing its day. The ingest waits for the fold (the day's
    row is locked), then marks the day stale, and the next fold counts it."""
    store, (cluster, url) = _store("postgresql", request, tmp_path_factory, "lock")
    try:
        fs._fill(store, years)
        late = fs._late_checkin(years["fleet-a"])
        day = fs.STALE_DAY
        orig, seen = retention.raw_metrics, []

        def computing(conn, van, days, **kw):
            rows = orig(conn, van, days, **kw)
            if van == "fleet-a" and day in days and not seen:
                t = threading.Thread(target=lambda: store.ingest_many([late]))
                t.start()
                t.join(timeout=1.0)
                seen.append((t, t.is_alive()))  # still waiting for the fold's lock?
            return rows

        retention.raw_metrics = computing
        try:
            retention.fold(store, NOW, before="2025-07-01")
        finally:
            retention.raw_metrics = orig
        thread, waited = seen[0]
        thread.join(10)
        assert waited and not thread.is_alive()
        conn = store.reader()
        assert (
            conn.execute(
                "SELECT state FROM agg_days WHERE van = 'fleet-a' AND day = ?", (day,)
            ).fetchone()[0]
            == 0
        )
        retention.fold(store, NOW, before="2025-07-01")
        folded, raw = (
            conn.execute(
                "SELECT sum(value) FROM aggregates WHERE van = 'fleet-a' AND day = ?"
                " AND metric = 'hour_checkins'",
                (day,),
            ).fetchone()[0],
            conn.execute(
                "SELECT count(*) FROM checkins WHERE van = 'fleet-a' AND day = ?", (day,)
            ).fetchone()[0],
        )
        assert folded == raw
    finally:
        store.close()
        cluster.drop(url)


def test_raw_days_in_small_batches_are_the_same(years, tmp_path, monkeypatch):
    """Many vans' raw days are computed in batches of vans and of visits (PostgreSQL takes
    at most 65,535 parameters in a statement): any batch size gives the same rows."""
    store = open_store(tmp_path / "hub.db")
    fs._fill(store, years)  # days from 15 May on stay raw
    conn = store.reader()
    todo = {
        v: [
            d for (d,) in conn.execute("SELECT day FROM agg_days WHERE van = ? AND state = 0", (v,))
        ]
        for v in fs.VANS
    }
    whole = raw_days.raw_metrics_many(conn, todo)
    assert sum(len(r) for r in whole.values()) > 100
    monkeypatch.setattr(raw_days, "BATCH_VANS", 1)
    monkeypatch.setattr(raw_days, "VISITS_PER_QUERY", 2)
    small = raw_days.raw_metrics_many(conn, todo)
    assert {v: sorted(r) for v, r in small.items()} == {v: sorted(r) for v, r in whole.items()}
    for v, days in todo.items():
        assert sorted(raw_days.raw_metrics(conn, v, days)) == sorted(whole[v])
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
