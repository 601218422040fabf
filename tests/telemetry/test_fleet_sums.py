"""The fleet's report figures summed by the database (telemetry.sums.sums): the same
sums as adding up every metric row in Python (the old path), on SQLite and PostgreSQL,
over folded days, raw days and a folded day gone stale; the fleet's tables add up the
vans' tables; a fleet page fetches grouped rows, not one row per van and day."""

from __future__ import annotations

import dataclasses
import sqlite3
import sys
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import test_reports as base  # noqa: E402
import yeardata  # noqa: E402
from pg import pg_cluster  # noqa: E402, F401

from telemetry import metrics, retention, rollup  # noqa: E402
from telemetry.report_tables import REPORTS, Period, period  # noqa: E402
from telemetry.reports import report  # noqa: E402
from telemetry.stores import open_store  # noqa: E402
from telemetry.sums import clear_cache, sums  # noqa: E402

VANS = {
    "fleet-a": (11, "beam-pair", 5),
    "fleet-b": (12, "door", 5),
    "fleet-c": (13, "beam-pair", 9),
}
FOLDED_BEFORE = "2025-05-15"  # days before are folded, later days stay raw
STALE_DAY = "2025-05-07"  # folded, then a late check-in of fleet-a makes it raw again
MONTH = period("month", date(2025, 5, 1))
PERIODS = [MONTH, period("week", date(2025, 5, 5)), period("day", date(2025, 5, 7)),
           period("day", date(2025, 5, 20))]  # fmt: skip
GROUPINGS = {
    "key": ("hour_visitors", "hour_checkins", "topic", "age", "first"),
    "day": ("visit_visitors", "visit_checkins", "no_fix_s", "offline_s", "blocked_s",
            "blocked_n", "outside_n"),
    "stop": ("visit_visitors", "visit_checkins", "visit_first"),
}  # fmt: skip


def _years() -> dict[str, yeardata.Year]:
    return {
        van: yeardata.generate(
            2025, seed=seed, van=van, sensor=sensor, days=16, start=date(2025, 5, start)
        )
        for van, (seed, sensor, start) in VANS.items()
    }


@pytest.fixture(scope="module")
def years():
    return _years()


def _late_checkin(y: yeardata.Year):
    ev = next(e for e in y.checkin_events if e.time.astimezone(base.TZ).date().isoformat()
              == STALE_DAY)  # fmt: skip
    return dataclasses.replace(ev, id=str(uuid.uuid4()))


def _fill(store, years, *, fold_all: bool = False) -> None:
    for y in years.values():
        yeardata.bulk_insert(store, y, visits=base.detect(y))
    now = datetime(2025, 7, 1, tzinfo=UTC)
    retention.fold(store, now, before="2025-07-01" if fold_all else FOLDED_BEFORE)
    if not fold_all:
        store.ingest_many([_late_checkin(years["fleet-a"])])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hub(request, years, tmp_path_factory):
    if request.param == "sqlite":
        store = open_store(tmp_path_factory.mktemp("fleet") / "hub.db")
        url = None
    else:
        cluster = request.getfixturevalue("pg_cluster")
        url = cluster.database("fleet")
        store = open_store(url)
    _fill(store, years)
    yield store
    store.close()
    if url:
        cluster.drop(url)


def _states(conn) -> dict[tuple[str, str], int]:
    return {(v, d): s for v, d, s in conn.execute("SELECT van, day, state FROM agg_days")}


def test_the_hub_has_folded_raw_and_stale_days(hub):
    states = _states(hub.reader())
    assert states[("fleet-a", STALE_DAY)] == 0
    assert states[("fleet-b", STALE_DAY)] == 1
    assert states[("fleet-a", "2025-05-20")] == 0
    assert sum(1 for s in states.values() if s == 1) >= 20


def reference(conn, p: Period, by: str, van: str | None) -> dict:
    """The old path: every metric row to Python, summed there."""
    stop_of = {
        r[0]: (r[1], r[2], bool(r[3]))
        for r in conn.execute("SELECT id, name, municipality, planned FROM stop_visits")
    }
    out: dict = defaultdict(float)
    for m, d, _v, k, val in metrics.metrics(conn, p.start, p.end, van=van, names=GROUPINGS[by]):
        out[(m, {"key": k, "day": d, "stop": stop_of.get(k) if k else None}[by])] += val
    return dict(out)


@pytest.mark.parametrize("p", PERIODS, ids=lambda p: p.label)
@pytest.mark.parametrize("by", list(GROUPINGS))
def test_sums_are_the_metric_rows_added_up(hub, p, by):
    conn = hub.reader()
    for van in (None, *VANS):
        clear_cache()
        want = reference(conn, p, by, van)
        got = sums(conn, p.start, p.end, by, van=van, names=GROUPINGS[by])
        assert want or van == "fleet-c", (p.label, by)  # fleet-c starts on 9 May
        assert got == pytest.approx(want, rel=1e-12, abs=1e-9), (p.label, by, van)


def test_a_stale_day_counts_the_late_checkin_once(hub, years):
    """The late check-in is in the raw rows of its day; the day's old aggregates (one
    check-in fewer) must not be added as well."""
    conn = hub.reader()
    day = period("day", date.fromisoformat(STALE_DAY))
    truth = sum(
        1
        for y in years.values()
        for e in y.checkin_events
        if e.time.astimezone(base.TZ).date().isoformat() == STALE_DAY
    )
    got = sums(conn, day.start, day.end, "day", names=("visit_checkins",))
    assert got[("visit_checkins", STALE_DAY)] == truth + 1
    month = sums(conn, MONTH.start, MONTH.end, "key", names=("first",))
    all_checkins = sum(len(y.checkin_events) for y in years.values())
    assert sum(month.values()) == all_checkins + 1


def test_the_fleet_tables_add_up_the_vans_tables(hub):
    conn = hub.reader()
    for p in PERIODS:
        fleet = {n: report(conn, n, p) for n in ("summary", "hours", "weekdays", "first_visits")}
        per_van = [{n: report(conn, n, p, van=v) for n in fleet} for v in VANS]
        for i in range(6):  # visitors, check-ins, first, returning, stop visits, unplanned
            assert fleet["summary"].rows[i][1] == sum(t["summary"].rows[i][1] for t in per_van)
        for name, cols in (("weekdays", (1, 2, 3)), ("hours", (1, 2))):
            for row in fleet[name].rows:
                for c in cols:
                    want = sum(r[c] for t in per_van for r in t[name].rows if r[0] == row[0])
                    assert row[c] == want, (p.label, name, row)
        answers = {r[0]: r[1] for r in fleet["first_visits"].rows}
        assert sum(answers.values()) == fleet["summary"].rows[1][1] > 0


def test_check_ins_outside_any_visit_are_not_at_a_stop(hub):
    conn = hub.reader()
    got = sums(conn, MONTH.start, MONTH.end, "stop", names=("visit_checkins",))
    stops = report(conn, "stops", MONTH)
    nowhere = [r for r in stops.rows if r[0] == "(not at a stop)"]
    assert got.get(("visit_checkins", None), 0) == (nowhere[0][5] if nowhere else 0)
    assert stops.rows[-1][5] == sum(v for (_m, _s), v in got.items())


def test_an_unknown_grouping_is_refused(hub):
    with pytest.raises(ValueError, match="by must be one of key, day, stop"):
        sums(hub.reader(), MONTH.start, MONTH.end, "van")


# --- a fleet page fetches grouped rows --------------------------------------------------


class _CountingCursor(sqlite3.Cursor):
    fetched = 0

    def fetchall(self):
        rows = super().fetchall()
        _CountingCursor.fetched += len(rows)
        return rows

    def fetchone(self):
        _CountingCursor.fetched += 1
        return super().fetchone()

    def __next__(self):
        _CountingCursor.fetched += 1
        return super().__next__()


class _CountingConnection(sqlite3.Connection):
    def cursor(self, factory=_CountingCursor):
        return super().cursor(factory)


def _copy_vans(conn: sqlite3.Connection, suffix: str) -> None:
    """A second fleet beside the first: every folded van again, visit ids renamed."""
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO aggregates SELECT metric, day, van || ?, CASE WHEN key IN"
        " (SELECT id FROM stop_visits) THEN key || ? ELSE key END, value FROM aggregates",
        (suffix, suffix),
    )
    conn.execute(
        'INSERT INTO stop_visits (id, van, arrived, "left", day, name, municipality, lat,'
        ' lon, planned) SELECT id || ?, van || ?, arrived, "left", day, name, municipality,'
        " lat, lon, planned FROM stop_visits",
        (suffix, suffix),
    )
    conn.execute(  # after the visits, whose trigger marks their days raw
        "INSERT OR REPLACE INTO agg_days SELECT van || ?, day, state FROM agg_days"
        " WHERE van NOT LIKE ?",
        (suffix, "%" + suffix),
    )
    conn.execute("COMMIT")


def _fetched(conn, run) -> int:
    clear_cache()
    _CountingCursor.fetched = 0
    run()
    return _CountingCursor.fetched


def test_a_fleet_page_fetches_grouped_rows(tmp_path, years):
    """Every day folded: twice the vans (the same stops, days, hours, topics) and a fleet
    month's ten reports fetch exactly as many rows, where handing every metric row to
    Python (the old path) fetches twice as many."""
    store = open_store(tmp_path / "hub.db")
    _fill(store, years, fold_all=True)
    store.close()
    conn = sqlite3.connect(tmp_path / "hub.db", factory=_CountingConnection)
    conn.isolation_level = None

    def page():
        for name in REPORTS:
            report(conn, name, MONTH)

    def old():
        for by in GROUPINGS:
            reference(conn, MONTH, by, None)

    try:
        assert {s for (_v, _d), s in _states(conn).items()} == {1}
        before = report(conn, "summary", MONTH).rows
        small = (_fetched(conn, page), _fetched(conn, old))
        _copy_vans(conn, "-copy")
        copied = open_store(tmp_path / "hub.db")  # the copy bypassed the fold: sum it up
        rollup.mark_all(copied)
        rollup.refresh(copied)
        copied.close()
        assert report(conn, "summary", MONTH).rows[0][1] == 2 * before[0][1] > 0
        big = (_fetched(conn, page), _fetched(conn, old))
    finally:
        conn.close()
    assert big[0] == small[0] < 400, (small, big)
    assert big[1] > small[1] + 1000, (small, big)
