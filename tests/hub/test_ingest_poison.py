"""One message must never stop the hub's ingest (issue 12 point 1), run in process: the
worker's batch handler gets fake MQTT items, so every case is exact and fast.

Each poison message becomes a dead letter (source "mqtt", with topic, van and reason),
is counted and acknowledged, and a good event of another van that comes after it is
stored. A batch that a store refuses is split so that only the offending event is kept
aside; operational errors are retried; the worker thread survives anything; and
``Hub.health()`` says when the ingest is not really working."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from hub import ingest
from hub.ingest import Hub, Item
from telemetry import deadletter, topics
from telemetry.errors import StoreError
from telemetry.events import Footfall, Position, StopVisit, new_id
from telemetry.store import Store

NOW = time.time()
T = datetime.fromtimestamp(NOW - 600, UTC).replace(microsecond=0)


@pytest.fixture
def hub_store(tmp_path):
    s = Store(tmp_path / "hub.db")
    yield s
    s.close()


@pytest.fixture
def hub(hub_store):
    return Hub(hub_store, {}, client_id="test-hub")


def item(topic: str, payload: bytes | str, *, retain: bool = False, mid: int = 1) -> Item:
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    return Item(topic, payload, mid, 1, retain, time.time(), 0)


def good_footfall(van: str = "good-van") -> tuple[Item, str]:
    ev = Footfall(time=T, kind="in", occupancy=1)
    body = topics.dumps(topics.footfall_payload(ev, {"in": 1}))
    return item(f"vanbox/{van}/footfall", body), ev.id


def stored_ids(store: Store, table: str = "footfall") -> set[str]:
    return {r[0] for r in store.reader().execute(f"SELECT id FROM {table}")}


def loc(**over) -> str:
    d = {"_type": "location", "id": new_id(), "tid": "EV", "tst": NOW - 60, "lat": 52.3,
         "lon": 10.2, "sats": 9}  # fmt: skip
    d.update(over)
    return json.dumps(d)


# The examples of issue 12 point 1, each as it would arrive.
ISSUE_EXAMPLES = {
    "tst 1e20": ("location", '{"id":"p","tst":1e20,"lat":52.3,"lon":10.2}'),
    "tst 1e20, valid id": ("location", loc(tst=1e20)),
    "huge sats": ("location", loc(sats=10**30)),
    "huge occupancy": (
        "footfall",
        json.dumps({"id": new_id(), "tst": NOW - 60, "kind": "in", "occupancy": 10**30}),
    ),
    "negative occupancy": (
        "footfall",
        json.dumps({"id": new_id(), "tst": NOW - 60, "kind": "in", "occupancy": -3}),
    ),
    "nested 5000 deep": ("track", '{"points":' + "[" * 5000 + "]" * 5000 + "}"),
    "lone surrogate escape in id": ("location", loc(id="\\ud800").replace("\\\\", "\\")),
    "lone surrogate, raw bytes": ("location", '{"id":"\ud800","tst":1.7e9,"lat":52.3,"lon":10.2}'),
    "year 9999": ("location", loc(tst=datetime(9999, 12, 31, tzinfo=UTC).timestamp())),
    "10 years ahead": ("location", loc(tst=NOW + 10 * 365.25 * 86400)),
    "free-text category": (
        "checkin",
        json.dumps({"id": new_id(), "tst": NOW - 3600, "age_group": "Tom, 19, from Peine"}),
    ),
}


@pytest.mark.parametrize("case", sorted(ISSUE_EXAMPLES))
@pytest.mark.parametrize("same_batch", [True, False])
def test_issue_examples_become_dead_letters_and_the_next_event_is_stored(
    hub, hub_store, case, same_batch
):
    kind, body = ISSUE_EXAMPLES[case]
    poison = item(f"vanbox/evil-van/{kind}", body)
    ok, ok_id = good_footfall()
    if same_batch:
        hub._handle([poison, ok])
    else:
        hub._handle([poison])
        hub._handle([ok])
    assert stored_ids(hub_store) == {ok_id}
    assert hub_store.count("positions") == 0 and hub_store.count("checkins") == 0
    (dl,) = deadletter.recent(hub_store)
    assert (dl.source, dl.van, dl.topic) == ("mqtt", "evil-van", f"vanbox/evil-van/{kind}")
    assert dl.reason and dl.payload
    assert hub.stats.dead_letters == 1 and hub.stats.malformed == 1
    assert hub.stats.last_reasons == [dl.reason]
    row = (
        hub_store.reader()
        .execute("SELECT messages, malformed FROM van_status WHERE van = 'evil-van'")
        .fetchone()
    )
    assert tuple(row) == (1, 1)


def test_a_bad_track_point_dead_letters_the_point_not_the_batch(hub, hub_store):
    good = [json.loads(loc()) for _ in range(3)]
    bad = json.loads(loc(tst=1e20))
    body = json.dumps({"tid": "EV", "points": [good[0], bad, good[1], "x", good[2]]})
    hub._handle([item("vanbox/van-t/track", body)])
    assert stored_ids(hub_store, "positions") == {p["id"] for p in good}
    reasons = sorted(d.reason for d in deadletter.recent(hub_store))
    assert len(reasons) == 2
    assert "point 1" in reasons[0] and "point 3" in reasons[1]
    assert hub.stats.dead_letters == 2 and hub.stats.malformed == 0


class RefusingStore:
    """A store that refuses (non-transiently) any write containing one of ``poison``."""

    def __init__(self, store: Store, poison: set[str], exc: type[Exception]) -> None:
        self._store, self.poison, self.exc, self.calls = store, poison, exc, 0

    def ingest_many(self, events):
        events = list(events)
        self.calls += 1
        if any(e.id in self.poison for e in events):
            raise self.exc("a value no column takes")
        return self._store.ingest_many(events)

    def __getattr__(self, name):
        return getattr(self._store, name)


@pytest.mark.parametrize(
    "exc",
    [sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError, OverflowError,
     ValueError, TypeError],
)  # fmt: skip
def test_a_refused_batch_is_split_and_only_the_offender_is_kept_aside(hub_store, exc):
    pts = [json.loads(loc()) for _ in range(4)]
    bad_id = pts[2]["id"]
    refusing = RefusingStore(hub_store, {bad_id}, exc)
    hub = Hub(refusing, {}, client_id="h")  # type: ignore[arg-type]
    ok, ok_id = good_footfall()
    single = loc()
    hub._handle([
        item("vanbox/van-t/track", json.dumps({"points": pts})),
        ok,
        item("vanbox/van-t/location", single),
    ])  # fmt: skip
    want = {p["id"] for p in pts} - {bad_id} | {json.loads(single)["id"]}
    assert stored_ids(hub_store, "positions") == want
    assert stored_ids(hub_store) == {ok_id}
    (dl,) = deadletter.recent(hub_store)
    assert dl.topic == "vanbox/van-t/track" and exc.__name__ in dl.reason
    assert bad_id in dl.payload.decode()
    assert hub.stats.dead_letters == 1 and hub.stats.store_errors == 0


def test_a_refused_single_event_message_is_kept_whole(hub_store):
    single = loc()
    bad_id = json.loads(single)["id"]
    hub = Hub(RefusingStore(hub_store, {bad_id}, OverflowError), {}, client_id="h")  # type: ignore[arg-type]
    ok, ok_id = good_footfall()
    hub._handle([item("vanbox/van-t/location", single), ok])
    (dl,) = deadletter.recent(hub_store)
    assert dl.payload == single.encode() and "OverflowError" in dl.reason
    assert stored_ids(hub_store) == {ok_id}


class FlakyStore:
    """The first ``failures`` writes fail with ``exc`` (a locked or full disk)."""

    def __init__(self, store: Store, failures: int, exc: Exception) -> None:
        self._store, self.failures, self.exc = store, failures, exc

    def ingest_many(self, events):
        if self.failures > 0:
            self.failures -= 1
            raise self.exc
        return self._store.ingest_many(events)

    def __getattr__(self, name):
        return getattr(self._store, name)


@pytest.mark.parametrize(
    "exc",
    [sqlite3.OperationalError("database is locked"), StoreError("disk full"), OSError(5, "I/O")],
)
def test_operational_errors_are_retried_not_dead_lettered(hub_store, exc, monkeypatch):
    flaky = FlakyStore(hub_store, 2, exc)
    hub = Hub(flaky, {}, client_id="h")  # type: ignore[arg-type]
    ok, ok_id = good_footfall()
    t0 = time.monotonic()
    hub._handle([ok])
    assert time.monotonic() - t0 >= 1.4  # 0.5 s + 1 s of backoff
    assert stored_ids(hub_store) == {ok_id}
    assert hub.stats.store_errors == 2 and deadletter.count(hub_store) == 0


def test_transient_classification():
    assert ingest.is_transient(sqlite3.OperationalError("disk I/O error"))
    assert ingest.is_transient(StoreError("full"))
    try:
        try:
            raise sqlite3.IntegrityError("x")
        except sqlite3.IntegrityError as e:
            raise StoreError("wrapped") from e
    except StoreError as wrapped:
        assert not ingest.is_transient(wrapped)
    for e in (sqlite3.IntegrityError(), OverflowError(), ValueError(), TypeError()):
        assert not ingest.is_transient(e)


# --- the worker thread, health ------------------------------------------------------------


def run_worker(hub: Hub) -> threading.Thread:
    """The hub's real worker thread, without a broker (items go into its queue)."""
    hub._stop.clear()
    hub._worker = threading.Thread(target=hub._work, daemon=True)
    hub._worker.start()
    return hub._worker


def stop_worker(hub: Hub) -> None:
    hub._stop.set()
    hub._worker.join(5)


def wait_for(cond, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def test_the_worker_survives_a_bug_and_keeps_the_batch_as_dead_letters(hub, hub_store,
                                                                       monkeypatch):  # fmt: skip
    run_worker(hub)
    try:
        real = hub._store
        calls = {"n": 0}

        def broken(b):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("a bug in the hub")
            return real(b)

        monkeypatch.setattr(hub, "_store", broken)
        first, first_id = good_footfall("van-1")
        hub._q.put(first)
        wait_for(lambda: deadletter.count(hub_store) == 1, "the batch kept aside")
        assert "RuntimeError: a bug in the hub" in deadletter.recent(hub_store)[0].reason
        ok, ok_id = good_footfall("van-2")
        hub._q.put(ok)
        wait_for(lambda: ok_id in stored_ids(hub_store), "the next event")
        assert hub._worker.is_alive()
        # Even an exception out of the handler itself does not end the thread.
        monkeypatch.setattr(hub, "_handle", lambda items: 1 / 0)
        hub._q.put(good_footfall("van-3")[0])
        time.sleep(0.3)
        assert hub._worker.is_alive()
        assert hub.health()[0]
    finally:
        stop_worker(hub)


def test_an_exception_while_decoding_one_message_is_that_messages_only(hub, hub_store,
                                                                        monkeypatch):  # fmt: skip
    real = topics.decode

    def decode(t, payload, prefix="vanbox", *, now=None):
        if b"boom" in payload:
            raise KeyError("surprise")
        return real(t, payload, prefix, now=now)

    monkeypatch.setattr(topics, "decode", decode)
    ok, ok_id = good_footfall()
    hub._handle([item("vanbox/van-x/tally", '{"boom":1}'), ok])
    assert stored_ids(hub_store) == {ok_id}
    (dl,) = deadletter.recent(hub_store)
    assert dl.reason == "KeyError: 'surprise'"


def test_health(hub, hub_store):
    assert hub.health() == (False, "hub ingest is not running")
    run_worker(hub)
    try:
        assert hub.health()[0]
        # Dead letters: 100 in ten minutes is still healthy, 101 is not.
        bad = [item("vanbox/evil/location", "{", mid=i) for i in range(hub.dead_max)]
        hub._q.put(bad[0])
        wait_for(lambda: hub.stats.dead_letters == 1, "one dead letter")
        for it in bad[1:]:
            hub._q.put(it)
        wait_for(lambda: hub.stats.dead_letters == hub.dead_max, "100 dead letters")
        ok, reason = hub.health()
        assert ok, reason
        hub._q.put(item("vanbox/evil/location", "{"))
        wait_for(lambda: hub.stats.dead_letters == hub.dead_max + 1, "101 dead letters")
        ok, reason = hub.health()
        assert not ok and "101 dead letters in the last 10 minutes" in reason
        # ... and healthy again once they are older than the window.
        assert hub.health(now=time.monotonic() + hub.dead_window_s + 1)[0]
        assert deadletter.count(hub_store, "mqtt") == 101
    finally:
        stop_worker(hub)
    assert hub.health() == (False, "hub ingest thread has died")


def test_health_fails_while_a_batch_retries_for_over_a_minute(hub_store):
    flaky = FlakyStore(hub_store, 10**6, sqlite3.OperationalError("database or disk is full"))
    hub = Hub(flaky, {}, client_id="h")  # type: ignore[arg-type]
    run_worker(hub)
    try:
        hub._q.put(good_footfall()[0])
        wait_for(lambda: hub._retry_since is not None, "a failed write")
        now = time.monotonic()
        assert hub.health(now)[0]  # retrying for a moment is fine
        assert hub.health(now + hub.retry_unhealthy_s - 1)[0]
        ok, reason = hub.health(now + hub.retry_unhealthy_s + 1)
        assert not ok and "database or disk is full" in reason
        flaky.failures = 0
        wait_for(lambda: hub.stats.batches == 1, "the write after the disk is back")
        assert hub_store.count("footfall") == 1
        assert hub.health(now + hub.retry_unhealthy_s + 1)[0]
    finally:
        stop_worker(hub)


def test_health_through_healthz(hub, hub_store):
    """The way /healthz finds it (kiosk/status.py's registry: name -> fn() -> (ok, why)):
    503 with the reason while the ingest is not working, 200 while it is."""
    from kiosk import create_app
    from telemetry.config import default_config

    app = create_app({"TESTING": True}, config=default_config(), store=hub_store, mode="hub")
    app.extensions.setdefault("vanbox_health", {})["hub_ingest"] = hub.health
    c = app.test_client()
    r = c.get("/healthz")
    assert r.status_code == 503
    assert "hub ingest is not running" in json.dumps(r.get_json())
    run_worker(hub)
    try:
        assert c.get("/healthz").status_code == 200
        for i in range(hub.dead_max + 1):
            hub._q.put(item("vanbox/evil/footfall", f"junk {i}", mid=i))
        wait_for(lambda: hub.stats.dead_letters == hub.dead_max + 1, "the dead letters")
        r = c.get("/healthz")
        assert r.status_code == 503 and "101 dead letters" in json.dumps(r.get_json())
    finally:
        stop_worker(hub)
    r = c.get("/healthz")
    assert r.status_code == 503 and "thread has died" in json.dumps(r.get_json())


# --- own messages, bridge state, other vans' stop visits -------------------------------


def test_the_hubs_own_ack_and_plan_are_ignored_tally_goes_to_the_handler(hub_store):
    got = []
    hub = Hub(hub_store, {}, client_id="h", on_control=lambda h, c: got.extend(c))
    hub._handle([
        item("vanbox/van-1/ack", '{"upto":"x"}'),
        item("vanbox/van-1/plan", "not even json"),
        item("vanbox/van-1/tally", '{"days":{}}'),
    ])  # fmt: skip
    assert got == [("van-1", "tally", {"days": {}})]
    assert hub.stats.ignored == 2 and deadletter.count(hub_store) == 0


def status_of(store: Store, van: str) -> str:
    return (
        store.reader().execute("SELECT status FROM van_status WHERE van = ?", (van,)).fetchone()[0]
    )


def test_a_bridge_going_down_makes_the_van_offline(hub, hub_store):
    hub._handle([item("vanbox/van-b/status", "online", retain=True),
                 item("vanbox/van-b/bridge", "1", retain=True)])  # fmt: skip
    assert status_of(hub_store, "van-b") == "online"
    hub._handle([item("vanbox/van-b/bridge", "0", retain=True)])  # the bridge's last will
    assert status_of(hub_store, "van-b") == "offline"
    # The box's retained "online" arriving again (a hub restart) changes nothing ...
    hub._handle([item("vanbox/van-b/status", "online", retain=True)])
    assert status_of(hub_store, "van-b") == "offline"
    # ... until the bridge is back.
    hub._handle([item("vanbox/van-b/bridge", "1")])
    assert status_of(hub_store, "van-b") == "online"
    # A van's own last will says offline whatever the bridge says.
    hub._handle([item("vanbox/van-b/status", "offline")])
    assert status_of(hub_store, "van-b") == "offline"
    # Without a bridge (direct setup) the status topic alone counts.
    hub._handle([item("vanbox/van-d/status", "online")])
    assert status_of(hub_store, "van-d") == "online"
    hub._handle([item("vanbox/van-d/status", "offline")])
    assert status_of(hub_store, "van-d") == "offline"


def test_a_van_cannot_change_another_vans_stop_visit(hub, hub_store):
    visit = StopVisit(arrived=T, name="Markt", municipality="Peine", lat=52.32, lon=10.23)
    hub._handle([item("vanbox/van-a/stop", topics.dumps(topics.stop_payload(visit)))])
    forged = StopVisit(**{**visit.__dict__, "left": T + timedelta(minutes=5)})
    hub._handle([item("vanbox/van-b/stop", topics.dumps(topics.stop_payload(forged)))])
    row = hub_store.reader().execute('SELECT van, "left" FROM stop_visits').fetchall()
    assert [tuple(r) for r in row] == [("van-a", None)]
    # The van itself may still record its departure.
    left = StopVisit(**{**visit.__dict__, "left": T + timedelta(minutes=9)})
    hub._handle([item("vanbox/van-a/stop", topics.dumps(topics.stop_payload(left)))])
    row = hub_store.reader().execute('SELECT van, "left" FROM stop_visits').fetchall()
    assert [tuple(r) for r in row] == [("van-a", left.left.timestamp())]


def test_a_location_ten_years_ahead_does_not_hide_the_van_from_the_public_map(hub_store):
    """Issue 12 point 7: refused at the boundary, so the van stays on /api/public."""
    from kiosk import create_app
    from telemetry import registry
    from telemetry.config import default_config

    now = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)  # Monday 11:15 in Peine
    markt = (52.3215, 10.2335)
    cfg = default_config({
        "van": {"id": "van-a", "name": "JUNGregio-Mobil", "tid": "JR"},
        "tour": {"stops": [{"name": "Markt", "municipality": "Peine", "lat": markt[0],
                            "lon": markt[1], "weekdays": ["mon"], "start": "10:00",
                            "end": "13:00"}]},
    })  # fmt: skip
    hub = Hub(hub_store, {}, client_id="h")
    here = Position(time=now - timedelta(minutes=1), lat=markt[0], lon=markt[1])
    arrive = StopVisit(arrived=now - timedelta(minutes=20), name="Markt", municipality="Peine",
                       lat=markt[0], lon=markt[1])  # fmt: skip
    ahead = Position(time=now + timedelta(days=3653), lat=52.40, lon=10.30)
    for payload, kind in ((topics.location_payload(here, "JR"), "location"),
                          (topics.stop_payload(arrive), "stop"),
                          (topics.location_payload(ahead, "JR"), "location")):  # fmt: skip
        hub._handle([item(f"vanbox/van-a/{kind}", topics.dumps(payload), retain=True)])
    hub._handle([item("vanbox/van-a/status", "online", retain=True)])
    assert stored_ids(hub_store, "positions") == {here.id}
    assert "'tst'" in deadletter.recent(hub_store)[0].reason
    registry.register(hub_store, ["van-a"])
    registry.rename(hub_store, "van-a", "Bus Nord")
    registry.publish(hub_store, "van-a")
    app = create_app({"TESTING": True}, config=cfg, store=hub_store, mode="hub")

    class Clock:
        def now(self) -> datetime:
            return now

    app.extensions["vanbox_clock"] = Clock()
    (van,) = app.test_client().get("/api/public/vans").get_json()["vans"]
    assert van["van"] == "van-a" and van["state"] == "open"
    assert van["position"] == {"lat": markt[0], "lon": markt[1], "coarse": False}


def test_last_contact_is_when_a_live_message_arrived(hub, hub_store):
    """A van sending a backlog of old events (or only its tally) is in contact now: its
    "last contact" is the arrival time, not the old events' times. A retained message
    (delivered again on subscribing) is no contact."""
    old = Footfall(time=T - timedelta(hours=5), kind="in", occupancy=1)
    body = topics.dumps(topics.footfall_payload(old, {"in": 1}))
    before = time.time()
    hub._handle([item("vanbox/backlog-van/footfall", body)])
    seen = hub_store.reader().execute(
        "SELECT last_seen FROM van_status WHERE van = 'backlog-van'").fetchone()[0]  # fmt: skip
    assert seen >= before
    hub._handle([item("vanbox/quiet-van/location", loc(tst=NOW - 3600), retain=True)])
    seen = hub_store.reader().execute(
        "SELECT last_seen FROM van_status WHERE van = 'quiet-van'").fetchone()[0]  # fmt: skip
    assert seen <= NOW - 3600 + 1  # retained: only the fix's own time
