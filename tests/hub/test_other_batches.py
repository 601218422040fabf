"""With several ingest workers, the positions workers 1..N-1 store reach the web
process's feeds live (hub/other_batches.py): the OwnTracks view sends each of them once,
on SQLite and on PostgreSQL (a throwaway cluster, tests/pg.py)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE.parent)]
from pg import pg_cluster, pg_url  # noqa: E402, F401

from hub.other_batches import OtherBatches  # noqa: E402
from hub.owntracks import OwnTracksView  # noqa: E402
from telemetry.events import Position  # noqa: E402
from telemetry.stores import open_store  # noqa: E402

T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    return tmp_path / "hub.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def fix(van: str, s: int) -> Position:
    return Position(time=T0 + timedelta(seconds=s), lat=52.32, lon=10.23, van=van, hdop=1.0)


def test_another_workers_positions_reach_the_owntracks_view_once(target):
    web = open_store(target, tz="Europe/Berlin")  # the web process with worker 0
    worker1 = open_store(target, tz="Europe/Berlin")  # a child process's own store
    sent: list[tuple[str, dict]] = []

    def publish(topic, payload, *, retain=False):
        sent.append((topic, json.loads(payload)))
        return True

    try:
        worker1.ingest_many([fix("van-0", 0)])  # history before the start
        view = OwnTracksView(web, publish)
        heard: list[set[str]] = []
        others = OtherBatches(web, lambda vans: (heard.append(vans), view(vans)))
        assert others.poll_once() == set() and heard == []  # stored before: not handed on
        worker1.ingest_many([fix("van-7", 30), fix("van-8", 31), fix("van-7", 60)])
        assert others.poll_once() == {"van-7", "van-8"} and heard == [{"van-7", "van-8"}]
        located = [(t, p["tst"]) for t, p in sent if p["_type"] == "location"]
        base = int(T0.timestamp())
        assert sorted(located) == [
            ("owntracks/vanbox/van-0", base),  # the view's own watermark starts at 0
            ("owntracks/vanbox/van-7", base + 30),
            ("owntracks/vanbox/van-7", base + 60),
            ("owntracks/vanbox/van-8", base + 31),
        ]
        assert others.poll_once() == set() and len(heard) == 1  # nothing new: no call
        view({"van-7"})  # worker 0's own batch meanwhile: nothing twice
        assert len([1 for _t, p in sent if p["_type"] == "location"]) == 4
    finally:
        worker1.close()
        web.close()


def test_a_failing_listener_does_not_move_the_mark(target):
    """The mark moves only once the vans were handed on: a listener that raised sees
    the same vans again at the next poll."""
    web = open_store(target, tz="Europe/Berlin")
    calls: list[set[str]] = []

    def flaky(vans: set[str]) -> None:
        calls.append(vans)
        if len(calls) == 1:
            raise RuntimeError("broker away")

    try:
        others = OtherBatches(web, flaky)
        web.ingest_many([fix("van-3", 5)])
        with pytest.raises(RuntimeError):
            others.poll_once()
        assert others.poll_once() == {"van-3"} and calls == [{"van-3"}, {"van-3"}]
        assert others.poll_once() == set()
    finally:
        web.close()


def test_after_retention_emptied_the_table_new_positions_are_still_found(tmp_path):
    """SQLite numbers rowids from 1 again once the table is empty: the mark follows."""
    web = open_store(tmp_path / "hub.db", tz="Europe/Berlin")
    try:
        web.ingest_many([fix("van-1", s) for s in range(5)])
        others = OtherBatches(web, lambda vans: None)
        assert others.mark == 5
        with web.transaction() as conn:
            conn.execute("DELETE FROM positions")  # retention, in a quiet week
        web.ingest_many([fix("van-2", 100)])  # rowid 1 again
        assert others.poll_once() == {"van-2"} and others.mark == 1
    finally:
        web.close()
