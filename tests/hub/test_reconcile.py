"""The hub's side of delivery (hub/reconcile.py): the comparison, the ack, the back-off,
dead letters for bad tallies, the completeness for /status, and no request loop between
a box and a hub that never gets some events (in process, with a made-up clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hub.reconcile import Reconciler, fleet_delivery
from telemetry import deadletter, topics
from telemetry.delivery import BoxDelivery
from telemetry.events import CheckIn, Footfall, Position, from_epoch, to_epoch
from telemetry.store import Store
from telemetry.tally import KINDS, V1_KINDS, decode, encode

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
DAY = "2026-06-01"
DAY2 = "2026-06-02"
NOW = to_epoch(T0) + 30 * 3600
VAN = "rv"


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeHub:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.sent: list[tuple[str, str, bool]] = []

    def publish(self, topic: str, payload: str, *, retain: bool = False) -> bool:
        if self.ok:
            self.sent.append((topic, payload, retain))
        return self.ok


@pytest.fixture
def hub_store(tmp_path):
    s = Store(tmp_path / "hub.db")
    yield s
    s.close()


def hub_has(store: Store, n_in: int, day_offset: int = 0) -> None:
    t = T0 + timedelta(days=day_offset)
    store.ingest_many(
        [Footfall(time=t + timedelta(minutes=k), kind="in", van=VAN) for k in range(n_in)]
    )


def tally(days: dict, tst: float = NOW) -> dict:
    return json.loads(encode(days, tst=tst, outbox=7))


def test_missing_is_what_the_hub_holds_fewer_of(hub_store):
    hub_has(hub_store, 3)
    rec = Reconciler(hub_store, clock=Clock())
    fake = FakeHub()
    rec(fake, [(VAN, "tally", tally({DAY: {"footfall": 3, "checkin": 1},
                                     DAY2: {"position": 2}}))])  # fmt: skip
    [(t, payload, retain)] = fake.sent
    assert t == f"vanbox/{VAN}/ack" and retain
    ack = decode(payload, ack=True)
    assert ack.missing == {DAY: ("checkin",), DAY2: ("position",)}
    assert ack.days[DAY]["footfall"] == 3 and ack.days[DAY]["checkin"] == 0
    assert ack.re == int(NOW)
    d = fleet_delivery(hub_store)[VAN]
    assert d["outbox"] == 7
    assert d["days"][DAY] == {"complete": False, "missing": ["checkin"],
                              "box": {"footfall": 3, "checkin": 1},
                              "hub": {"footfall": 3, "checkin": 0}}  # fmt: skip
    hub_store.ingest_many([CheckIn(time=T0, age_group="18-20", van=VAN)])
    assert fleet_delivery(hub_store)[VAN]["days"][DAY]["complete"]  # counted live


def test_a_box_of_the_previous_release_gets_an_ack_it_can_read(hub_store):
    """A box that knows only the five kinds of version 1 (no counselling contacts) is
    answered in its own kinds: an ack naming "contact" would be refused by it and stop its
    resends."""
    hub_has(hub_store, 1)
    fake = FakeHub()
    old = {"v": 1, "tst": int(NOW), "outbox": 0, "kinds": list(V1_KINDS),
           "days": {DAY: [3, 0, 0, 0, 0]}}  # fmt: skip
    Reconciler(hub_store, clock=Clock())(fake, [(VAN, "tally", old)])
    [(_, payload, _)] = fake.sent
    raw = json.loads(payload)
    assert raw["kinds"] == list(V1_KINDS) and all(len(c) == 5 for c in raw["days"].values())
    assert raw["missing"] == {DAY: ["footfall"]}
    fake.sent.clear()
    Reconciler(hub_store, clock=Clock())(fake, [(VAN, "tally", tally({DAY: {"contact": 1}}))])
    assert json.loads(fake.sent[0][1])["kinds"] == list(KINDS)


def test_hub_asks_again_only_after_a_back_off_or_a_change(hub_store):
    clock = Clock()
    rec = Reconciler(hub_store, backoff_s=600, clock=clock)
    fake = FakeHub()

    def ask(n: int) -> dict:
        fake.sent.clear()
        rec(fake, [(VAN, "tally", tally({DAY: {"footfall": n}}))])
        return decode(fake.sent[-1][1], ack=True).missing

    assert ask(5) == {DAY: ("footfall",)}
    clock.t += 599
    assert ask(5) == {}
    clock.t += 2
    assert ask(5) == {DAY: ("footfall",)}  # back-off now 1200 s
    clock.t += 1199
    assert ask(5) == {}
    clock.t += 2
    assert ask(5) == {DAY: ("footfall",)}  # back-off now 2400 s
    # The box's count grows (as today's does at every tally): no new request before the
    # back-off is over, or a gap that never closes would be asked for at every tally.
    assert ask(6) == {}
    clock.t += 2399
    assert ask(7) == {}
    clock.t += 2
    assert ask(7) == {DAY: ("footfall",)}  # the gap (7) did not shrink: 4800 s next
    hub_has(hub_store, 4)  # progress: the gap is 3 now
    clock.t += 4801
    assert ask(7) == {DAY: ("footfall",)}  # asked, and the back-off starts afresh
    clock.t += 601
    assert ask(7) == {DAY: ("footfall",)}
    hub_has(hub_store, 2)  # 6 in all
    assert ask(6) == {}
    row = hub_store.reader().execute("SELECT asked_at FROM delivery_hub").fetchone()
    assert row[0] is None  # complete: the request state is cleared


def test_an_unpublished_ack_asks_on_the_next_tally(hub_store):
    rec = Reconciler(hub_store, clock=Clock())
    rec(FakeHub(ok=False), [(VAN, "tally", tally({DAY: {"footfall": 2}}))])
    fake = FakeHub()
    rec(fake, [(VAN, "tally", tally({DAY: {"footfall": 2}}))])
    assert decode(fake.sent[-1][1], ack=True).missing == {DAY: ("footfall",)}


@pytest.mark.parametrize(
    "bad",
    [
        {"v": 1, "tst": NOW, "days": {DAY: [10**7 + 1, 0, 0, 0, 0]}},
        {"v": 1, "tst": NOW, "days": {"9999-01-01": [1, 0, 0, 0, 0]}},
        {"v": 1, "tst": 1e20, "days": {}},
        {"v": 1, "tst": NOW, "days": {DAY: {"visitors": 1}}},
        {"v": 1, "tst": NOW, "days": {}, "missing": {}},  # ack fields in a tally
        [1, 2, 3],
    ],
)
def test_a_bad_tally_is_a_dead_letter_and_changes_nothing(hub_store, bad):
    rec = Reconciler(hub_store, clock=Clock())
    fake = FakeHub()
    rec(fake, [(VAN, "tally", bad)])
    assert fake.sent == []
    assert deadletter.count(hub_store, "mqtt") == 1
    [dl] = deadletter.recent(hub_store)
    assert dl.van == VAN and dl.topic == f"vanbox/{VAN}/tally" and dl.reason
    assert hub_store.reader().execute("SELECT count(*) FROM delivery_hub").fetchone()[0] == 0
    # the next good tally is handled as usual
    rec(fake, [(VAN, "tally", tally({DAY: {"footfall": 1}}))])
    assert len(fake.sent) == 1


def test_only_the_newest_tally_of_a_van_in_a_batch_counts_and_acks_are_ignored(hub_store):
    rec = Reconciler(hub_store, clock=Clock())
    fake = FakeHub()
    rec(fake, [(VAN, "tally", tally({DAY: {"footfall": 1}})),
               (VAN, "ack", {"v": 1}), (VAN, "plan", {}),
               (VAN, "tally", tally({DAY: {"footfall": 4}}))])  # fmt: skip
    assert len(fake.sent) == 1
    assert decode(fake.sent[0][1], ack=True).days[DAY]["footfall"] == 0
    assert fleet_delivery(hub_store)[VAN]["days"][DAY]["box"] == {"footfall": 4}


def test_no_request_loop_when_some_events_never_arrive(tmp_path, hub_store):
    """A box whose track points never reach the hub (e.g. dropped on the way): over a
    simulated day of tallies every 5 minutes, box and hub exchange a bounded number of
    requests and resends, while the rest arrives once."""
    clock = Clock(to_epoch(T0) + 12 * 3600)
    box = Store(tmp_path / "box.db", van=VAN, tid="RV")
    try:
        for k in range(50):
            t = T0 + timedelta(minutes=k)
            box.record(Footfall(time=t, kind="in"))
            box.record(Position(time=t, lat=52.3, lon=10.2 + k * 1e-4))
        d = BoxDelivery(box, backoff_s=600, clock=clock)
        rec = Reconciler(hub_store, backoff_s=600, clock=clock)
        fake = FakeHub()
        resent_rows = 0
        for _ in range(288):  # a day, every 5 minutes
            rows = box.pending(10_000)
            # The "broker": footfall reaches the hub, positions never do.
            hub_store.ingest_many(
                [
                    Footfall(time=T0, kind="in", id=r.event_id, van=VAN)
                    for r in rows
                    if r.kind == "footfall"
                ]  # fmt: skip
            )
            box.mark_sent(r.seq for r in rows)
            fake.sent.clear()
            rec(fake, [(VAN, "tally", json.loads(d.tally_payload()))])
            resent_rows += d.on_ack(fake.sent[-1][1])
            clock.t += 300
        assert hub_store.count("footfall", VAN) == 50
        # 600 s doubling up to a day: asked at most ~9 times in a day, 50 rows each
        assert rec.asked <= 10
        assert resent_rows <= 10 * 50
        assert resent_rows >= 50  # it did ask, and the box did resend
    finally:
        box.close()


def test_no_request_loop_while_todays_counts_keep_growing(tmp_path, hub_store):
    """A service day: a count and a fix every 5 minutes, the tally after each, and one fix
    the hub never gets. Today's counts change on every tally, and still the gap is asked
    for on a doubling back-off, not at every tally (before: 96 asks, each re-sending the
    whole day's track; a review measured 139,680 re-sent points on such a day)."""
    clock = Clock(to_epoch(T0))
    box = Store(tmp_path / "box.db", van=VAN, tid="RV")
    try:
        d = BoxDelivery(box, backoff_s=600, clock=clock)
        rec = Reconciler(hub_store, backoff_s=600, clock=clock)
        fake = FakeHub()
        lost = None
        resent = 0
        for k in range(96):  # 8 hours
            t = from_epoch(clock.t)
            box.record(Footfall(time=t, kind="in"))
            p = box.record(Position(time=t, lat=52.3, lon=10.2 + k * 1e-4))
            lost = lost or p.id  # the first fix never reaches the hub, however often sent
            rows = box.pending(10_000)
            events = []
            for r in rows:
                if r.kind == "footfall":
                    events.append(Footfall(time=t, kind="in", id=r.event_id, van=VAN))
                elif r.event_id != lost:
                    events.append(Position(time=t, lat=52.3, lon=10.2, id=r.event_id, van=VAN))
            hub_store.ingest_many(events)
            box.mark_sent(r.seq for r in rows)
            fake.sent.clear()
            rec(fake, [(VAN, "tally", json.loads(d.tally_payload()))])
            resent += d.on_ack(fake.sent[-1][1])
            clock.t += 300
        assert hub_store.count("footfall", VAN) == 96
        assert hub_store.count("positions", VAN) == 95
        # gap of 1 from the first tally: asked at 0, 10, 30, 70, 150, 310 minutes
        assert 5 <= rec.asked <= 7, rec.asked
        assert resent <= 7 * 96
    finally:
        box.close()


def test_tally_ack_round_trip_through_topics_decode():
    """What the box publishes passes the hub's topic decoder as a control message."""
    payload = encode({DAY: dict.fromkeys(KINDS, 1)}, tst=NOW, outbox=0)
    m = topics.decode(f"vanbox/{VAN}/tally", payload.encode())
    assert m.kind == "tally" and decode(m.control).days[DAY]["position"] == 1
