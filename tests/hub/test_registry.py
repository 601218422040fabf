"""The van registry: a van appears as "new" when it first publishes (real mosquitto, real
publisher, real hub), is not public until staff name and publish it; renaming, tracker
ids, retiring, and clear refusals for bad input."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.ingest import Hub
from hub.registry import Registrar, chain
from telemetry import registry
from telemetry.events import Footfall
from telemetry.publisher import Publisher
from telemetry.registry import NAME_MAX, RegistryError
from telemetry.store import Store

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def hub_store(tmp_path):
    s = Store(tmp_path / "hub.db")
    yield s
    s.close()


def test_register_adds_new_vans_once_and_not_public(hub_store):
    assert registry.register(hub_store, ["van-b", "van-a", "van-a"], now=100.0) == [
        "van-a",
        "van-b",
    ]
    assert registry.register(hub_store, ["van-a", "van-c"], now=200.0) == ["van-c"]
    vans = {v.id: v for v in registry.all_vans(hub_store)}
    assert set(vans) == {"van-a", "van-b", "van-c"}
    assert vans["van-a"].state == "new" and vans["van-a"].first_seen == 100.0
    assert registry.public_vans(hub_store) == []


def test_register_skips_ids_that_cannot_be_a_van(hub_store):
    assert registry.register(hub_store, ["", "../x", "a b", "Van-A", "x" * 41, "ok-1"]) == ["ok-1"]


def test_publish_needs_a_name_then_the_van_is_public(hub_store):
    registry.register(hub_store, ["van-a"])
    with pytest.raises(RegistryError, match="Name"):
        registry.publish(hub_store, "van-a")
    assert registry.get(hub_store, "van-a").state == "new"  # unchanged
    registry.rename(hub_store, "van-a", "  Bus   Nord ")
    v = registry.publish(hub_store, "van-a", now=500.0)
    assert (v.name, v.state, v.updated) == ("Bus Nord", "public", 500.0)
    assert [x.id for x in registry.public_vans(hub_store)] == ["van-a"]


def test_retire_removes_from_public_and_keeps_the_row(hub_store):
    registry.register(hub_store, ["van-a", "van-b"])
    for v, name in (("van-a", "Alpha"), ("van-b", "Beta")):
        registry.rename(hub_store, v, name)
        registry.publish(hub_store, v)
    registry.retire(hub_store, "van-a")
    assert [v.id for v in registry.public_vans(hub_store)] == ["van-b"]
    assert registry.get(hub_store, "van-a").state == "retired"
    registry.publish(hub_store, "van-a")  # staff can bring it back
    assert [v.id for v in registry.public_vans(hub_store)] == ["van-a", "van-b"]


@pytest.mark.parametrize(
    "change",
    [
        lambda s: registry.rename(s, "nope", "Name"),
        lambda s: registry.set_tid(s, "nope", "AB"),
        lambda s: registry.publish(s, "nope"),
        lambda s: registry.retire(s, "nope"),
    ],
)
def test_unknown_van_is_refused(hub_store, change):
    with pytest.raises(RegistryError, match="Unbekannter Bus"):
        change(hub_store)
    assert registry.all_vans(hub_store) == []


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("", False),
        ("   ", False),
        ("x" * NAME_MAX, True),
        ("x" * (NAME_MAX + 1), False),
        ("Bus\x00Nord", False),
        ("Bus\u200bNord", False),  # a format character
        ("Mobil Ilsede–Lengede", True),
    ],
)
def test_name_bounds(hub_store, name, ok):
    registry.register(hub_store, ["van-a"])
    if ok:
        assert registry.rename(hub_store, "van-a", name).name == name.strip()
    else:
        with pytest.raises(RegistryError, match="Name"):
            registry.rename(hub_store, "van-a", name)
        assert registry.get(hub_store, "van-a").name == ""


@pytest.mark.parametrize(
    ("tid", "ok"),
    [("", True), ("A", True), ("J7", True), ("ABC", False), ("A-", False), ("Ä", False),
     ("1 ", True), (" ", True)],
)  # fmt: skip
def test_tid_bounds(hub_store, tid, ok):
    registry.register(hub_store, ["van-a"])
    registry.set_tid(hub_store, "van-a", "ZZ")
    if ok:
        assert registry.set_tid(hub_store, "van-a", tid).tid == tid.strip()
    else:
        with pytest.raises(RegistryError, match="Tracker-ID"):
            registry.set_tid(hub_store, "van-a", tid)
        assert registry.get(hub_store, "van-a").tid == "ZZ"


def test_update_checks_everything_before_writing(hub_store):
    registry.register(hub_store, ["van-a"])
    with pytest.raises(RegistryError, match="Tracker-ID"):
        registry.update(hub_store, "van-a", name="Neu", tid="XYZ", state="public")
    assert registry.get(hub_store, "van-a").name == ""
    with pytest.raises(RegistryError, match="Status"):
        registry.update(hub_store, "van-a", name="Neu", tid="", state="gone")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(max_size=80), tid=st.text(max_size=4))
def test_any_input_is_a_change_or_a_registry_error(hub_store, name, tid):
    registry.register(hub_store, ["van-f"])
    before = registry.get(hub_store, "van-f")
    try:
        after = registry.update(hub_store, "van-f", name=name, tid=tid, state="public")
    except RegistryError:
        assert registry.get(hub_store, "van-f") == before
    else:
        assert 1 <= len(after.name) <= NAME_MAX and len(after.tid) <= 2


def test_migration_knows_vans_the_hub_heard_before(tmp_path):
    """Vans in van_status when 0009 runs become 'new' registry rows (not public)."""
    import sqlite3

    path = tmp_path / "old.db"
    Store(path).close()
    conn = sqlite3.connect(path)  # back to the schema before 0009, with a van heard of
    conn.executescript(
        "DROP TABLE vans; PRAGMA user_version = 8;"
        " INSERT INTO van_status (van, status, last_seen) VALUES ('old-van', 'online', 5);"
    )
    conn.close()
    s = Store(path)
    try:
        assert s.schema_version >= 9
        assert [(v.id, v.state, v.first_seen) for v in registry.all_vans(s)] == [
            ("old-van", "new", 5.0)
        ]
        assert registry.public_vans(s) == []
    finally:
        s.close()


def test_registrar_writes_only_for_unknown_vans(hub_store):
    heard: list[list[str]] = []
    r = Registrar(hub_store, on_new=heard.append)
    assert r({"van-a"}) == ["van-a"]
    assert r({"van-a"}) == []
    assert heard == [["van-a"]]
    registry.register(hub_store, ["van-b"])
    assert Registrar(hub_store)({"van-b"}) == []  # known from the database at start


def test_chain_calls_every_listener_even_after_a_failure():
    calls = []

    def bad(vans):
        raise RuntimeError("boom")

    chain(bad, None, calls.append)({"x"})
    assert calls == [{"x"}]


@pytest.mark.mqtt
def test_a_van_appears_as_new_when_it_first_publishes(broker, tmp_path, hub_store):
    cfg = {"host": "127.0.0.1", "port": broker.port, "keepalive": 10, "rate_limit": 5000.0}
    hub = Hub(hub_store, cfg, client_id="reg-hub", prefix="vanbox", on_batch=Registrar(hub_store))
    hub.start()
    box = Store(tmp_path / "box.db", van="van-new", tid="VN")
    pub = Publisher(box, {**cfg, "client_id": "box-van-new"}, van="van-new", tid="VN")
    try:
        assert hub.wait_connected(10)
        pub.start()
        box.record(Footfall(time=T0, kind="in", occupancy=1))
        pub.wake()
        deadline = time.monotonic() + 20
        while registry.get(hub_store, "van-new") is None:
            assert time.monotonic() < deadline, "the van never appeared in the registry"
            time.sleep(0.05)
        v = registry.get(hub_store, "van-new")
        assert v.state == "new" and not v.public
        assert registry.public_vans(hub_store) == []
    finally:
        pub.stop()
        hub.stop()
        box.close()
