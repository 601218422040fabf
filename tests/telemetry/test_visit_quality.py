"""The data quality of stop visits remembered per visit (telemetry/visit_quality.py): a
call where a visit's window only gained rows after its last point continues the gap loop;
whatever else happened the visit is computed again. The figures always equal a fresh
computation (cache cleared) and the uncached reference, to the last bit, on SQLite and
PostgreSQL."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pg import pg_cluster, pg_url  # noqa: E402, F401

from telemetry import metrics, raw_days, visit_quality  # noqa: E402
from telemetry.stores import open_store  # noqa: E402

DAY = "2026-05-08"
T0 = 1778227200.125  # 2026-05-08 08:00:00.125 UTC (a fraction: floats, not whole seconds)
VANS = ("van-a", "van-b", "van-c")


# --- the database ------------------------------------------------------------------------


class Fleet:
    """Raw rows of a few vans on one day, written as a box or the hub would."""

    def __init__(self, store) -> None:
        self.store = store
        self.now = dict.fromkeys(VANS, T0)  # each van's clock: its last fix
        self.open: dict[str, str] = {}  # van -> id of its open visit

    def fix(self, van: str, ts: float, suspect: bool = False) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO positions (id, van, ts, day, lat, lon, mode, suspect)"
                " VALUES (?,?,?,?,52.3,10.2,3,?)",
                (str(uuid.uuid4()), van, ts, DAY, int(suspect)),
            )

    def forget(self, van: str, ts: float) -> None:
        """Delete the van's fixes at ``ts`` (as retention deletes raw rows)."""
        with self.store.transaction() as c:
            c.execute("DELETE FROM positions WHERE van = ? AND ts = ?", (van, ts))

    def door(self, van: str, ts: float, kind: str = "in") -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO footfall (id, van, ts, day, hour, kind, sensor, occupancy)"
                " VALUES (?,?,?,?,10,?,'beam-pair',0)",
                (str(uuid.uuid4()), van, ts, DAY, kind),
            )

    def arrive(self, van: str, ts: float) -> str:
        vid = str(uuid.uuid4())
        with self.store.transaction() as c:
            c.execute(
                'INSERT INTO stop_visits (id, van, arrived, "left", day, name, municipality,'
                " lat, lon, planned) VALUES (?,?,?,NULL,?,'Markt','Peine',52.3,10.2,1)",
                (vid, van, ts, DAY),
            )
        self.open[van] = vid
        return vid

    def leave(self, van: str, ts: float) -> None:
        vid = self.open.pop(van)
        with self.store.transaction() as c:
            c.execute('UPDATE stop_visits SET "left" = ? WHERE id = ?', (ts, vid))

    def metrics(self) -> dict[str, list]:
        got = raw_days.raw_metrics_many(self.store.reader(), {v: [DAY] for v in VANS})
        return {v: sorted(rows) for v, rows in got.items()}


@contextmanager
def sqlite_store() -> Iterator:
    with tempfile.TemporaryDirectory() as d:
        store = open_store(Path(d) / "hub.db")
        try:
            yield store
        finally:
            store.close()


def fresh(fleet: Fleet) -> dict[str, list]:
    """The metrics with the visit cache cleared (and put back afterwards)."""
    with visit_quality._LOCK:
        saved = visit_quality._CACHE.copy()
    visit_quality.clear_cache()
    try:
        return fleet.metrics()
    finally:
        with visit_quality._LOCK:
            visit_quality._CACHE.clear()
            visit_quality._CACHE.update(saved)


def reference(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """The metrics as computed before the cache (the uncached reference)."""
    with monkeypatch.context() as m:
        m.setattr(
            raw_days,
            "visit_quality",
            lambda conn, q, acc, vs: visit_quality.visit_quality_uncached(q, acc, vs),
        )
        return fleet.metrics()


def check(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    got = fleet.metrics()
    assert got == fresh(fleet)
    assert got == reference(fleet, monkeypatch)
    return got


def quality(rows: list) -> dict[str, float]:
    return {m: v for m, _d, _van, _k, v in rows if m in ("no_fix_s", "offline_s")}


# --- random histories --------------------------------------------------------------------

STEP_DT = st.sampled_from([0.0, 0.001, 30.0, 299.9, 599.999, 600.0, 600.001, 601.5, 1234.567])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("fix"), st.sampled_from(VANS), STEP_DT, st.booleans()),
        st.tuples(st.just("late"), st.sampled_from(VANS), STEP_DT, st.booleans()),
        st.tuples(
            st.just("door"),
            st.sampled_from(VANS),
            st.sampled_from([-700.0, -1.0, 0.0, 5.0, 650.0]),
            st.booleans(),
        ),
        st.tuples(st.just("dup"), st.sampled_from(VANS), st.just(0.0), st.booleans()),
        st.tuples(st.just("arrive"), st.sampled_from(VANS), STEP_DT, st.booleans()),
        st.tuples(st.just("leave"), st.sampled_from(VANS), STEP_DT, st.booleans()),
    ),
    min_size=1,
    max_size=25,
)


def play(fleet: Fleet, steps, monkeypatch) -> None:
    for van in VANS[:2]:
        fleet.arrive(van, T0)
    check(fleet, monkeypatch)
    for kind, van, dt, flag in steps:
        now = fleet.now[van]
        if kind == "fix":  # in order (dt 0: the same time stamp again)
            fleet.now[van] = now + dt
            fleet.fix(van, now + dt, suspect=flag and dt > 100)
        elif kind == "late":  # out of order: before the last fix
            fleet.fix(van, now - dt, suspect=flag)
        elif kind == "door":  # door events, some before the last fix
            fleet.door(van, now + dt, "in" if flag else "sensor_blocked")
        elif kind == "dup":  # the last fix again (another id, same time)
            fleet.fix(van, now)
        elif kind == "arrive":  # a next visit (the open one ends there)
            fleet.now[van] = now + dt
            fleet.arrive(van, now + dt)
        elif kind == "leave" and van in fleet.open:
            fleet.leave(van, now + dt)
        check(fleet, monkeypatch)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_random_histories_sqlite(steps, monkeypatch):
    visit_quality.clear_cache()
    before = visit_quality.stats()
    with sqlite_store() as store:
        play(Fleet(store), steps, monkeypatch)
    after = visit_quality.stats()
    assert after["extended"] + after["computed"] > before["extended"] + before["computed"]


@pytest.fixture
def pg_store(pg_url):  # noqa: F811
    store = open_store(pg_url)
    yield store
    store.close()


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_random_histories_postgresql(pg_store, steps, monkeypatch):
    visit_quality.clear_cache()
    with pg_store.transaction() as c:
        for table in ("positions", "footfall", "stop_visits"):
            c.execute(f"DELETE FROM {table}")
    play(Fleet(pg_store), steps, monkeypatch)


def test_histories_take_the_incremental_path(monkeypatch):
    """Fixes appended in order continue the loop (nothing recomputed); one out of order,
    a closed visit and a next visit are recomputed."""
    visit_quality.clear_cache()
    with sqlite_store() as store:
        fleet = Fleet(store)
        fleet.arrive("van-a", T0)
        fleet.fix("van-a", T0 + 10)
        check(fleet, monkeypatch)
        s0 = visit_quality.stats()
        for k in range(1, 4):
            fleet.fix("van-a", T0 + 10 + 700 * k)
            fleet.door("van-a", T0 + 10 + 700 * k + 1)
            check(fleet, monkeypatch)
        s1 = visit_quality.stats()
        # per check: the cached call continues, the fresh one (cache cleared) computes
        assert s1["extended"] - s0["extended"] == 3
        assert s1["computed"] - s0["computed"] == 3
        fleet.fix("van-a", T0 + 3000)  # silent 889 s since the last door event: offline
        got = check(fleet, monkeypatch)
        assert quality(got["van-a"])["offline_s"] == 700 + 699 + 699 + 889  # whole seconds
        for i, change in enumerate(
            [
                # after the last door event but before the last fix: out of order for the
                # series of all records (the offline gap is split in two short ones)
                lambda: fleet.door("van-a", T0 + 2500),
                # the first fix deleted, one out of order and one after the last: the
                # count grew by the one after the last, but the first fix is another
                lambda: (
                    fleet.forget("van-a", T0 + 10),
                    fleet.fix("van-a", T0 + 1500),
                    fleet.fix("van-a", T0 + 3100),
                ),
                lambda: fleet.fix("van-a", T0 + 20),  # a fix out of order
                lambda: fleet.door("van-a", T0 + 30),  # a door event out of order
                lambda: fleet.fix("van-a", T0 + 3000),  # the last fix again
                lambda: fleet.arrive("van-a", T0 + 9000),  # a next visit: the window shrinks
                lambda: fleet.leave("van-a", T0 + 9500),  # the visit closes
            ]
        ):
            change()
            s1 = visit_quality.stats()
            got = fleet.metrics()
            s2 = visit_quality.stats()
            assert s2["computed"] > s1["computed"]
            assert got == fresh(fleet) == reference(fleet, monkeypatch)
            if i == 0:  # the door event splits the 889 s
                assert quality(got["van-a"])["offline_s"] == 700 + 699 + 699


# --- the threshold, across old and new rows ----------------------------------------------


@contextmanager
def _pg(request) -> Iterator:
    url = request.getfixturevalue("pg_url")
    store = open_store(url)
    try:
        yield store
    finally:
        store.close()


@pytest.mark.parametrize(("gap", "counted"), [(599.999, False), (600.0, False), (600.001, True)])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_gap_at_the_threshold_between_old_and_new_rows(
    gap, counted, backend, request, monkeypatch
):
    """The last point seen before, then one ``gap`` s later (continued, not recomputed):
    over 600 s counts, 600 s exactly does not. A fix gap with a door event keeping the
    box online is no-fix time; a silence of both is offline time."""
    visit_quality.clear_cache()
    with sqlite_store() if backend == "sqlite" else _pg(request) as store:
        fleet = Fleet(store)
        fleet.arrive("van-a", T0)
        fleet.fix("van-a", T0 + 1)
        fleet.door("van-a", T0 + 300)
        fleet.arrive("van-b", T0)
        fleet.fix("van-b", T0 + 1)
        assert quality(fleet.metrics()["van-a"]) == {}
        assert visit_quality.cached_visits() == 2
        fleet.fix("van-a", T0 + 1 + gap)
        fleet.door("van-b", T0 + 1 + gap)
        fleet.fix("van-b", T0 + 1 + gap)
        before = visit_quality.stats()
        got = check(fleet, monkeypatch)
        assert visit_quality.stats()["extended"] == before["extended"] + 2
        d = (T0 + 1 + gap) - (T0 + 1)  # as the loop subtracts
        assert quality(got["van-a"]) == ({"no_fix_s": d} if counted else {})
        assert quality(got["van-b"]) == ({"offline_s": d} if counted else {})


def test_open_visit_tail_and_closing(monkeypatch):
    """An open visit counts up to its last sign of life; closing it (``left``) changes
    the window: recomputed, with the tail to ``left`` (600 s not counted, 600.001 s is)."""
    visit_quality.clear_cache()
    with sqlite_store() as store:
        fleet = Fleet(store)
        for van in ("van-a", "van-b"):
            fleet.arrive(van, T0)
            fleet.fix(van, T0 + 5)
        got = check(fleet, monkeypatch)
        assert quality(got["van-a"]) == quality(got["van-b"]) == {}
        fleet.leave("van-a", T0 + 605)
        fleet.leave("van-b", T0 + 605.001)
        before = visit_quality.stats()
        got = check(fleet, monkeypatch)
        assert visit_quality.stats()["extended"] == before["extended"]  # windows changed
        assert quality(got["van-a"]) == {}
        assert quality(got["van-b"]) == {"offline_s": (T0 + 605.001) - (T0 + 5)}


# --- the cache: databases, bounds, clear_cache -------------------------------------------


def _visit(store, vid: str) -> None:
    with store.transaction() as c:
        c.execute(
            'INSERT INTO stop_visits (id, van, arrived, "left", day, name, municipality, lat,'
            " lon, planned) VALUES (?,'van-a',?,NULL,?,'M','P',1,1,1)",
            (vid, T0, DAY),
        )


def test_databases_are_kept_apart(monkeypatch):
    """The same visit id in two databases, rows that pass each other's checks (same
    count and first fix) but with different gaps: each database keeps its own state."""
    visit_quality.clear_cache()
    vid = str(uuid.uuid4())
    with sqlite_store() as a, sqlite_store() as b:
        fa, fb = Fleet(a), Fleet(b)
        for f, second in ((fa, 700.0), (fb, 100.0)):
            _visit(f.store, vid)
            f.fix("van-a", T0 + 1)
            f.fix("van-a", T0 + second)
        got_a = fa.metrics()
        got_b = fb.metrics()
        assert visit_quality.cached_visits() == 2
        assert quality(got_a["van-a"]) == {"offline_s": (T0 + 700.0) - (T0 + 1)}
        assert quality(got_b["van-a"]) == {}
        fb.fix("van-a", T0 + 800)
        assert fb.metrics() == fresh(fb) == reference(fb, monkeypatch)
        assert quality(fb.metrics()["van-a"]) == {"offline_s": (T0 + 800) - (T0 + 100)}


def test_in_memory_databases_are_not_cached():
    visit_quality.clear_cache()
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE positions (van TEXT, ts REAL, suspect INTEGER)")
    conn.execute("CREATE TABLE footfall (van TEXT, ts REAL)")
    conn.executemany(
        "INSERT INTO positions VALUES ('v', ?, 0)", [(T0 + 1,), (T0 + 700,), (T0 + 1400.5,)]
    )
    assert visit_quality.database_key(conn) is None
    v = raw_days._Visit("x", "v", T0, None, T0 + 43200, DAY)
    acc: dict = {"v": defaultdict(float)}
    visit_quality.visit_quality(conn, conn.cursor(), acc, [v])
    assert visit_quality.cached_visits() == 0
    off = ((T0 + 700) - (T0 + 1)) + ((T0 + 1400.5) - (T0 + 700))
    assert dict(acc["v"]) == {("offline_s", DAY, ""): off}
    conn.close()


def test_the_cache_is_bounded_and_cleared_by_metrics(monkeypatch):
    visit_quality.clear_cache()
    monkeypatch.setattr(visit_quality, "CACHE_VISITS", 3)
    with sqlite_store() as store:
        fleet = Fleet(store)
        for k in range(5):
            fleet.arrive(VANS[k % 3], T0 + 3600 * k)
            fleet.fix(VANS[k % 3], T0 + 3600 * k + 1)
        check(fleet, monkeypatch)
        assert visit_quality.cached_visits() == 3
        metrics.clear_cache()
        assert visit_quality.cached_visits() == 0


def test_threads_share_the_cache(monkeypatch):
    """Calls from several threads between rounds of new fixes: each equals the reference."""
    visit_quality.clear_cache()
    with sqlite_store() as store:
        fleet = Fleet(store)
        for van in VANS:
            fleet.arrive(van, T0)

        for k in range(1, 6):
            for van in VANS:
                fleet.fix(van, T0 + 650.5 * k)
            want = reference(fleet, monkeypatch)
            assert want["van-a"]  # gaps over 600 s: figures to compare
            with ThreadPoolExecutor(4) as pool:
                assert all(pool.map(lambda _k, w=want: fleet.metrics() == w, range(8)))
        assert visit_quality.stats()["extended"] > 0
