"""Retention: raw events older than the retention are deleted after being folded into
daily aggregates, and every report gives the same figures before and after."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from firmware import cli
from telemetry import reports
from telemetry.config import default_config
from telemetry.events import Footfall, Position, StopVisit
from telemetry.reports import period, report
from telemetry.retention import fold, prune
from telemetry.stops import StopDetector
from telemetry.store import Store

sys.path.insert(0, str(Path(__file__).parent))
import yeardata  # noqa: E402

CFG = default_config()
TZ = CFG.tz
VAN = "jungregio-1"
NOW = datetime(2026, 2, 15, 3, 0, tzinfo=UTC)  # the daily job runs at night
RETENTION = 60  # days: keeps raw rows from 2025-12-17 on


def periods():
    out = [period("year", date(2025, 1, 1)), period("year", date(2026, 1, 1))]
    out += [period("month", date(2025, 3, 1)), period("month", date(2025, 12, 1))]
    out += [period("week", date(2025, 12, 15))]  # across the cutoff
    out += [period("day", date(2025, 12, d)) for d in (12, 17)]
    return out


def snapshot(store: Store) -> dict:
    conn = store.reader()
    out = {}
    for p in periods():
        for name in reports.REPORTS:
            out[(p.label, name)] = report(conn, name, p)
            out[(p.label, name, "public")] = report(conn, name, p, public=True)
        out[(p.label, "annual")] = reports.annual(conn, p.start.year, budget_eur=5000.0)
    return out


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    y = yeardata.generate(2025, seed=11, van=VAN, days=400, start=date(2025, 1, 1))
    det = StopDetector(CFG.tour, CFG.stops, TZ, van=VAN)
    visits = [ev for p in y.positions for ev in det.feed(p)]
    return y, visits


@pytest.fixture
def full(year, tmp_path):
    y, visits = year
    store = Store(tmp_path / "box.db", van=VAN)
    yeardata.bulk_insert(store, y, visits=visits)
    yield store
    store.close()


def test_reports_are_the_same_after_pruning(full):
    store = full
    before = snapshot(store)
    assert before[("2025", "summary")].rows[0][1] > 1000
    n_pos, n_ff, n_ci = (store.count(t) for t in ("positions", "footfall", "checkins"))

    dry = prune(store, RETENTION, NOW, dry_run=True)
    assert (store.count("positions"), store.count("footfall")) == (n_pos, n_ff)
    assert store.reader().execute("SELECT count(*) FROM aggregates").fetchone()[0] == 0

    result = prune(store, RETENTION, NOW)
    assert result.cutoff == "2025-12-17"
    assert (result.positions, result.footfall, result.checkins) == (
        dry.positions,
        dry.footfall,
        dry.checkins,
    )
    assert result.positions > 50_000 and result.footfall > 5_000 and result.checkins > 1_000
    assert store.count("positions") == n_pos - result.positions
    assert store.count("footfall") == n_ff - result.footfall
    assert store.count("checkins") == n_ci - result.checkins
    conn = store.reader()
    for table in ("positions", "footfall", "checkins"):
        oldest = conn.execute(f"SELECT min(day) FROM {table}").fetchone()[0]
        assert oldest >= "2025-12-17", table
    states = dict(conn.execute("SELECT state, count(*) FROM agg_days GROUP BY state").fetchall())
    assert states[2] == result.pruned_days > 250 and states.get(0, 0) <= 1  # today's, if any

    after = snapshot(store)
    for key, table in before.items():
        assert after[key] == table, key

    # Unplanned stops (maybe home visits) older than the retention lose their exact place.
    rows = conn.execute("SELECT lat, lon, day FROM stop_visits WHERE planned = 0").fetchall()
    old = [r for r in rows if r["day"] < "2025-12-17"]
    new = [r for r in rows if r["day"] >= "2025-12-17"]
    assert len(old) > 10 and new
    assert all(round(r["lat"], 2) == r["lat"] and round(r["lon"], 2) == r["lon"] for r in old)
    villages = {(la, lo) for _n, la, lo in yeardata.VILLAGES}
    assert all((r["lat"], r["lon"]) in villages for r in new)  # exact, as recorded

    # A second run deletes nothing more and changes nothing.
    again = prune(store, RETENTION, NOW)
    assert (again.positions, again.footfall, again.checkins, again.folded_days) == (0, 0, 0, 0)
    assert snapshot(store) == before


def test_unsent_outbox_rows_are_never_deleted(store):
    old = datetime(2024, 1, 8, 10, tzinfo=UTC)
    store.record_many(
        [Position(old + timedelta(minutes=i), 52.32, 10.23) for i in range(5)]
        + [Footfall(old + timedelta(minutes=i), "in", "beam-pair", 1) for i in range(3)]
    )
    assert store.outbox_depth() == 8
    result = prune(store, 30, NOW)
    assert (result.positions, result.footfall) == (5, 3)
    assert store.outbox_depth() == 8  # still to be published
    assert store.count("positions") == 0


def test_late_rows_and_a_visit_closed_later_refold_the_day(store):
    """A folded day whose raw rows change (a hub receiving a backlog, a visit closed
    later) is computed again, so reports stay right. (No crew here: every "in" is a
    visitor; the crew's passes are tests/telemetry/test_metrics_crew.py's.)"""
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    day = period("day", date(2026, 1, 5))
    visit = StopVisit(t0, "Peine, Marktplatz", "Peine", 52.3215, 10.2335, van="testvan")
    store.record(visit)  # open: the van is still there as far as anyone knows
    store.record_many(
        [Footfall(t0 + timedelta(minutes=10 * i), "in", "beam-pair", i + 1) for i in range(6)]
    )
    assert fold(store, NOW, crew=0) == 1
    conn = store.reader()

    def figures():
        s = dict(report(conn, "summary", day, crew=0).rows)
        q = report(conn, "quality", day, crew=0).rows[-1]
        return s["Visitors"], q[5]

    assert figures() == (6, 0)
    state = conn.execute("SELECT state FROM agg_days WHERE day = '2026-01-05'").fetchone()[0]
    assert state == 1
    # A late footfall event for that day arrives: the day is stale, the report counts it.
    store.record(Footfall(t0 + timedelta(minutes=65), "in", "beam-pair", 7))
    assert figures() == (7, 0)
    # The visit's departure arrives late: it left after 25 minutes. The counts after that
    # are no visitors any more but counts outside a stop.
    store.record(replace(visit, left=t0 + timedelta(minutes=25)))
    assert figures() == (3, 4)
    assert fold(store, NOW, crew=0) == 1
    assert figures() == (3, 4)


def test_vanbox_prune_command(tmp_path, capsys):
    db = tmp_path / "box.db"
    s = Store(db, van=VAN)
    yeardata.bulk_insert(s, yeardata.generate(2025, seed=5, van=VAN, days=14))
    s.close()
    conf = tmp_path / "vanbox.toml"
    conf.write_text(f'[database]\npath = "{db}"\nretention_days = 30\n', encoding="utf-8")
    assert cli.main(["prune", "--config", str(conf), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run: would fold") and "retention 30 days" in out
    s = Store(db, van=VAN)
    assert (
        s.count("positions") > 0
        and s.reader().execute("SELECT count(*) FROM aggregates").fetchone()[0] == 0
    )
    s.close()
    assert cli.main(["prune", "--config", str(conf)]) == 0
    out = capsys.readouterr().out
    assert "deleted" in out and "positions" in out
    s = Store(db, van=VAN)
    oldest = s.reader().execute("SELECT min(day) FROM footfall").fetchone()[0]
    cutoff = (datetime.now(TZ).date() - timedelta(days=30)).isoformat()
    assert oldest is None or oldest >= cutoff
    assert s.reader().execute("SELECT count(*) FROM aggregates").fetchone()[0] > 0
    s.close()
    conf.write_text(f'[database]\npath = "{tmp_path / "none.db"}"\n', encoding="utf-8")
    assert cli.main(["prune", "--config", str(conf)]) == 2
    assert "no database there" in capsys.readouterr().err


def test_a_publishing_box_keeps_days_the_hub_has_not_confirmed(store):
    from telemetry.delivery import BoxDelivery
    from telemetry.tally import encode

    old = datetime(2024, 1, 8, 10, tzinfo=UTC)  # 2024-01-08 in Berlin, long past retention
    store.record_many(
        [Position(old + timedelta(minutes=i), 52.32, 10.23) for i in range(5)]
        + [Footfall(old + timedelta(minutes=i), "in", "beam-pair", 1) for i in range(3)]
    )
    store.mark_sent(r.seq for r in store.pending(100))
    delivery = BoxDelivery(store, window_days=400, clock=lambda: old.timestamp() + 3600)
    window = (NOW.date() - old.date()).days + 1  # the day is inside the window
    result = prune(store, 30, NOW, window_days=window)
    assert (result.positions, result.footfall) == (0, 0)
    assert result.kept == ("2024-01-08",)
    assert "kept 1 older day(s) the hub has not confirmed yet (2024-01-08)" in result.summary()
    assert store.count("positions") == 5
    # The hub holds one footfall event less: still kept.
    delivery.on_ack(encode({"2024-01-08": {"footfall": 2, "position": 5}}, tst=old.timestamp()))
    assert prune(store, 30, NOW, window_days=window).kept == ("2024-01-08",)
    # Confirmed: deleted like any old day.
    delivery.on_ack(encode({"2024-01-08": {"footfall": 3, "position": 5}}, tst=old.timestamp()))
    result = prune(store, 30, NOW, window_days=window)
    assert (result.positions, result.footfall, result.kept) == (5, 3, ())
    # A box without MQTT (or the hub itself) never keeps anything back.
    assert prune(store, 30, NOW, keep_unconfirmed=False).kept == ()


def test_an_unconfirmed_day_beyond_the_window_is_deleted_unless_still_queued(store):
    """Nothing asks for a day older than the reconciliation window any more: its raw
    events go with the retention (they must not outlive it for ever), and the summary
    says so. A day with events still waiting in the outbox stays until they are out."""
    from telemetry.delivery import BoxDelivery

    old = datetime(2024, 1, 8, 10, tzinfo=UTC)
    queued = datetime(2024, 2, 8, 10, tzinfo=UTC)
    store.record_many([Footfall(old + timedelta(minutes=i), "in", "beam-pair", 1)
                       for i in range(3)])  # fmt: skip
    store.mark_sent(r.seq for r in store.pending(100))
    store.record(Footfall(queued, "in", "beam-pair", 1))  # never sent
    BoxDelivery(store, window_days=62, clock=lambda: NOW.timestamp())
    window = (NOW.date() - old.date()).days  # 2024-01-08 is one day outside
    # one day more of window and the old day is kept too (the threshold from above)
    wider = prune(store, 30, NOW, window_days=window + 1, dry_run=True)
    assert wider.kept == ("2024-01-08", "2024-02-08") and wider.unconfirmed_deleted == 0
    result = prune(store, 30, NOW, window_days=window)
    assert result.kept == ("2024-02-08",)
    assert result.footfall == 3 and result.unconfirmed_deleted == 1
    assert "1 day(s) beyond the reconciliation window were never confirmed" in result.summary()
    assert store.count("footfall") == 1 and store.outbox_depth() == 1
