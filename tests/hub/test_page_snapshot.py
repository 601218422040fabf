"""A staff page reads one snapshot of the database (kiosk/page_snapshot.py,
``Store.snapshot`` and ``PgStore.snapshot``): a write committed while the page is being
built is not half seen, on SQLite and on PostgreSQL (a throwaway cluster, tests/pg.py).
Posts and public pages read as before."""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Blueprint

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE.parent)]
from pg import pg_cluster, pg_url  # noqa: E402, F401

from kiosk import create_app  # noqa: E402
from telemetry.config import default_config  # noqa: E402
from telemetry.events import Footfall  # noqa: E402
from telemetry.stores import open_store  # noqa: E402

T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    target = tmp_path / "hub.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    st = open_store(target, van="", tz="Europe/Berlin")
    yield st
    st.close()


def door(i: int) -> Footfall:
    return Footfall(T0 + timedelta(seconds=i), "in", "beam-pair", 0, van="jungregio-1")


def count(store) -> int:
    return store.reader().execute("SELECT count(*) FROM footfall").fetchone()[0]


def test_a_snapshot_does_not_see_a_write_committed_meanwhile(store):
    store.record(door(0))
    with store.snapshot() as snap:
        assert count(store) == 1 and store.reader() is snap
        store.record(door(1))  # the daily job, another web process: committed meanwhile
        assert count(store) == 1
        with store.snapshot() as inner:  # nested: the same snapshot
            assert inner is snap and count(store) == 1
        assert count(store) == 1
    assert count(store) == 2  # after it: the new row
    with store.snapshot():
        assert count(store) == 2


def test_a_snapshot_ends_even_when_its_reads_fail(store):
    errors: tuple = (sqlite3.Error,)
    if not isinstance(store.reader(), sqlite3.Connection):
        import psycopg

        errors = (psycopg.Error,)
    with pytest.raises(errors), store.snapshot():
        store.reader().execute("SELECT nothing FROM no_such_table").fetchall()
    store.record(door(2))
    assert count(store) == 1  # a fresh read, not the failed snapshot
    with store.snapshot():
        assert count(store) == 1


def probe_app(store):
    """The app with one more staff blueprint whose view reads, writes and reads again."""
    app = create_app({"TESTING": True}, config=default_config(), store=store, mode="hub")
    bp = Blueprint("staff_probe", __name__)
    public = Blueprint("public_probe", __name__)

    def view():
        before = count(store)
        store.record(door(100 + before))
        return f"{before} {count(store)}"

    bp.add_url_rule("/staff/_probe", "probe", view, methods=["GET", "POST"])
    public.add_url_rule("/_probe", "probe", view, methods=["GET"])
    app.register_blueprint(bp)
    app.register_blueprint(public)
    return app


def test_a_staff_page_reads_one_snapshot_posts_and_public_pages_do_not(store):
    app = probe_app(store)
    c = app.test_client()
    assert c.get("/staff/_probe").text == "0 0"  # its own write is not half seen
    assert c.head("/staff/_probe").status_code == 200
    assert c.post("/staff/_probe").text == "2 3"  # a post reads back what it wrote
    assert c.get("/_probe").text == "3 4"  # a public page: one read each, as before
    assert count(store) == 4  # and the snapshot ended with the request
    if hasattr(store, "_local") and getattr(store._local, "snap", None) is not None:
        assert store._local.snap.raw is None  # PostgreSQL: its connection went back
    else:
        assert not store.reader().in_transaction  # SQLite: the read transaction ended


def test_the_snapshot_ends_when_the_view_fails(store):
    app = probe_app(store)
    bp = Blueprint("staff_fails", __name__)

    @bp.get("/staff/_fails")
    def fails():
        count(store)
        raise RuntimeError("a bug in a report")

    app.register_blueprint(bp)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    c = app.test_client()
    assert c.get("/staff/_fails").status_code == 500
    store.record(door(7))
    assert c.get("/staff/_probe").text == "1 1"
