"""The box's side of delivery to the hub (telemetry/tally.py): what the tally counts,
every bound of the tally/ack decoder, resends with the same ids and payloads, the
back-off, and which days count as confirmed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.delivery import BoxDelivery, unconfirmed_days
from telemetry.errors import PayloadError
from telemetry.events import CheckIn, Footfall, Position, StopVisit, to_epoch
from telemetry.store import Store
from telemetry.tally import (
    KINDS,
    MAX_COUNT,
    MAX_DAYS,
    RESEND_POSITION_PRIORITY,
    V1_KINDS,
    decode,
    encode,
)

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # 10:00 in Berlin
DAY = "2026-06-01"
NOW = to_epoch(T0) + 6 * 3600


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def sent_all(store: Store) -> dict[str, str]:
    """Mark every outbox row sent; returns event id -> payload as first sent."""
    rows = store.pending(10_000)
    store.mark_sent(r.seq for r in rows)
    return {r.event_id: r.payload for r in rows}


def some_day(store: Store) -> list:
    evs = []
    for k in range(6):
        t = T0 + timedelta(minutes=k)
        evs.append(store.record(Footfall(time=t, kind=("in", "out", "pass")[k % 3], occupancy=k)))
        evs.append(store.record(Position(time=t, lat=52.3 + k * 1e-4, lon=10.2, hdop=1.0)))
    evs.append(store.record(CheckIn(time=T0, age_group="18-20", topics=("job",))))
    sv = store.record(StopVisit(arrived=T0, name="Ilsede", municipality="Ilsede", lat=52.26,
                                lon=10.18))  # fmt: skip
    evs.append(store.record(StopVisit(**{**sv.__dict__, "left": T0 + timedelta(hours=1)})))
    evs.append(store.record(Position(time=T0, lat=52.5, lon=10.5, suspect=True)))
    return evs


def ack_for(store: Store, hub: dict[str, int], missing: list[str], tst: float = NOW) -> str:
    return encode({DAY: hub}, tst=tst, re_tst=tst, missing={DAY: missing} if missing else {})


# --- counting -------------------------------------------------------------------------


def test_tally_counts_only_what_left_the_outbox(store):
    d = BoxDelivery(store, clock=Clock())
    some_day(store)
    assert d.counts() == {}  # all still queued: nothing can look missing
    rows = store.pending(10_000)
    store.mark_sent([r.seq for r in rows if r.kind == "footfall"][:4])
    assert d.counts() == {DAY: {**dict.fromkeys(KINDS, 0), "footfall": 4}}
    sent_all(store)
    # the suspect fix was never queued and is not counted; the stop once, left once
    assert d.counts() == {DAY: {"footfall": 6, "checkin": 1, "stop": 1, "stop_left": 1,
                                "position": 6, "contact": 0}}  # fmt: skip


def test_thinned_track_points_are_not_counted(store):
    d = BoxDelivery(store, clock=Clock())
    for k in range(10):
        store.record(Position(time=T0 + timedelta(seconds=k), lat=52.3, lon=10.2 + k * 1e-4))
    removed = store.thin_outbox(6)
    assert removed == 4
    sent_all(store)
    assert d.counts()[DAY]["position"] == 6


def test_window_leaves_out_older_days(store):
    d = BoxDelivery(store, window_days=2, clock=Clock(NOW + 2 * 86_400))
    some_day(store)
    sent_all(store)
    assert d.counts() == {}
    d.window_days = 3
    assert DAY in d.counts()


def test_tally_payload_is_compact_and_decodes(store):
    d = BoxDelivery(store, clock=Clock())
    some_day(store)
    sent_all(store)
    text = d.tally_payload()
    t = decode(text)
    assert t.days[DAY]["footfall"] == 6 and t.outbox == 0 and t.tst == int(NOW)
    assert json.loads(text)["kinds"] == [*V1_KINDS, "contact"]
    assert json.loads(text)["days"][DAY] == [6, 1, 1, 1, 6, 0]


# --- the decoder's bounds -------------------------------------------------------------


def tally(**over) -> dict:
    d = {"v": 1, "tst": NOW, "outbox": 0, "kinds": list(V1_KINDS), "days": {DAY: [1, 2, 3, 4, 5]}}
    d.update(over)
    return d


@pytest.mark.parametrize(
    ("over", "ok"),
    [
        ({"days": {DAY: [MAX_COUNT, 0, 0, 0, 0]}}, True),
        ({"days": {DAY: [MAX_COUNT + 1, 0, 0, 0, 0]}}, False),
        ({"days": {DAY: [-1, 0, 0, 0, 0]}}, False),
        ({"days": {DAY: [True, 0, 0, 0, 0]}}, False),
        ({"days": {DAY: [1.5, 0, 0, 0, 0]}}, False),
        ({"days": {DAY: [1, 0, 0, 0]}}, False),
        ({"days": {DAY: {"footfall": 3}}}, True),
        ({"days": {DAY: {"visitors": 3}}}, False),
        ({"days": {"2026-02-30": [0, 0, 0, 0, 0]}}, False),
        ({"days": {"2026-6-1": [0, 0, 0, 0, 0]}}, False),
        ({"days": {"2026-06-03": [0, 0, 0, 0, 0]}}, False),  # after the message's day + 1
        ({"days": {"2026-06-02": [0, 0, 0, 0, 0]}}, True),
        ({"kinds": ["footfall", "footfall"], "days": {DAY: [1, 1]}}, False),
        ({"kinds": ["position"], "days": {DAY: [7]}}, True),
        ({"kinds": ["track"], "days": {DAY: [7]}}, True),  # a newer kind: read, left out
        ({"kinds": ["Track"], "days": {DAY: [7]}}, False),
        ({"kinds": [*V1_KINDS, "contact"], "days": {DAY: [0, 0, 0, 0, 0, 3]}}, True),
        ({"kinds": [*V1_KINDS, "contact"], "days": {DAY: [0, 0, 0, 0, 0]}}, False),
        ({"kinds": None, "days": {DAY: [0, 0, 0, 0, 0]}}, False),
        ({"tst": 1e20}, False),
        ({"tst": float("nan")}, False),
        ({"tst": 946_684_799}, False),
        ({"tst": 946_684_800, "days": {}}, True),
        ({"outbox": 10**9}, True),
        ({"outbox": 10**9 + 1}, False),
        ({"v": 2}, False),
        ({"v": True}, False),
        ({"extra": 1}, False),
        ({"days": []}, False),
    ],
)
def test_decode_bounds(over, ok):
    if ok:
        decode(tally(**over))
    else:
        with pytest.raises(PayloadError):
            decode(tally(**over))


def test_a_tally_without_kinds_has_the_five_of_version_1():
    d = tally()
    del d["kinds"]
    assert decode(d).days == {DAY: dict(zip(V1_KINDS, [1, 2, 3, 4, 5], strict=True))}
    d["days"] = {DAY: [1, 2, 3, 4, 5, 6]}  # a count for a kind it does not name
    with pytest.raises(PayloadError, match="5 counts expected"):
        decode(d)


def test_a_kind_of_a_newer_release_is_read_and_left_out():
    """A box upgraded before its hub names a kind the hub does not know: the hub reads the
    rest (reconciles what it knows) instead of dropping the whole tally."""
    d = tally(kinds=[*V1_KINDS, "contact", "future_kind"], days={DAY: [1, 2, 3, 4, 5, 6, 7]})
    t = decode(d)
    assert "future_kind" not in t.days[DAY] and t.days[DAY]["contact"] == 6
    assert t.kinds == (*V1_KINDS, "contact")
    assert decode(tally()).kinds == V1_KINDS
    for bad in (["Footfall"], ["a-b"], ["x" * 33], ["footfall", "footfall"],
                [f"k{chr(97 + i)}" for i in range(17)], [1]):  # fmt: skip
        with pytest.raises(PayloadError, match="kinds"):
            decode(tally(kinds=bad, days={}))
    ok16 = [f"k{chr(97 + i)}" for i in range(16)]
    assert decode(tally(kinds=ok16, days={DAY: [0] * 16})).kinds == ()


def test_an_ack_names_only_the_kinds_it_is_asked_about():
    ack = encode({DAY: dict.fromkeys(KINDS, 1)}, tst=NOW, re_tst=NOW, missing={}, only=V1_KINDS)
    assert json.loads(ack)["kinds"] == list(V1_KINDS)
    assert json.loads(encode({}, tst=NOW))["kinds"] == list(KINDS)
    m = decode(encode({}, tst=NOW, missing={DAY: ["contact", "checkin"]}), ack=True).missing
    assert m == {DAY: ("contact", "checkin")}
    raw = json.loads(encode({}, tst=NOW, missing={}))
    raw["missing"] = {DAY: ["future_kind", "checkin"]}
    assert decode(raw, ack=True).missing == {DAY: ("checkin",)}


def test_at_most_400_days():
    base = datetime(2026, 6, 1).date()
    days = {(base - timedelta(days=i)).isoformat(): [0] * 5 for i in range(MAX_DAYS + 1)}
    decode(tally(days=dict(list(days.items())[:MAX_DAYS])))
    with pytest.raises(PayloadError):
        decode(tally(days=days))


def test_ack_fields_only_in_an_ack():
    with pytest.raises(PayloadError):
        decode(tally(missing={}))
    a = decode(tally(missing={DAY: ["footfall", "stop_left"]}, re=NOW), ack=True)
    assert a.missing == {DAY: ("footfall", "stop_left")} and a.re == NOW
    assert decode(tally(missing={DAY: ["nonsense"]}), ack=True).missing == {DAY: ()}
    with pytest.raises(PayloadError):
        decode(tally(missing={DAY: ["non-sense"]}), ack=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),  # fmt: skip
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["v", "tst", "outbox", "kinds", "days", "missing", "re", "x"]),
        json_values,
    ),
    st.booleans(),
)
def test_fuzzed_tallies_raise_only_payload_error(d, ack):
    try:
        t = decode(d, ack=ack)
    except PayloadError:
        return
    for counts in t.days.values():
        assert all(k in KINDS and 0 <= n <= MAX_COUNT for k, n in counts.items())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_raise_only_payload_error(b):
    try:
        decode(b)
    except PayloadError:
        pass


def test_deeply_nested_json_is_a_payload_error():
    with pytest.raises(PayloadError):
        decode("[" * 100_000 + "]" * 100_000)


# --- resending ------------------------------------------------------------------------


def test_ack_resends_the_missing_with_the_same_ids_and_payloads(store):
    clock = Clock()
    d = BoxDelivery(store, clock=clock)
    some_day(store)
    first = sent_all(store)
    added = d.on_ack(ack_for(store, {"footfall": 2}, ["footfall", "checkin", "stop_left",
                                                      "position"]))  # fmt: skip
    rows = store.pending(10_000)
    assert added == len(rows) == 6 + 1 + 1 + 6
    for r in rows:
        if r.kind == "position":
            assert r.priority == RESEND_POSITION_PRIORITY
            assert json.loads(r.payload) == json.loads(first[r.event_id])
        elif r.kind == "stop":
            # the newest state of the visit, i.e. its second message
            assert json.loads(r.payload)["left"] is not None
        else:
            assert r.payload == first[r.event_id], r.kind
    # What is queued is not queued twice (a later request comes after the back-off).
    clock.t += 10_000
    assert d.on_ack(ack_for(store, {"footfall": 2}, ["footfall"])) == 0


def test_back_off_and_a_changed_count(store):
    clock = Clock()
    d = BoxDelivery(store, backoff_s=600, clock=clock)
    some_day(store)
    sent_all(store)
    ask = ack_for(store, {}, ["checkin"])
    assert d.on_ack(ask) == 1
    sent_all(store)
    clock.t += 599
    assert d.on_ack(ask) == 0  # within the back-off: no loop
    clock.t += 2
    assert d.on_ack(ask) == 1  # after it: once more, and the back-off doubles
    sent_all(store)
    clock.t += 1199
    assert d.on_ack(ask) == 0
    clock.t += 2
    assert d.on_ack(ask) == 1
    sent_all(store)
    store.record(CheckIn(time=T0, age_group="21-24"))
    sent_all(store)
    # The box's count grew (as it does all day): still within the back-off (2400 s now),
    # so no resend; the gap (box minus hub) did not shrink, so the wait keeps doubling.
    assert d.on_ack(ask) == 0
    clock.t += 2399
    assert d.on_ack(ask) == 0
    clock.t += 2
    assert d.on_ack(ask) == 2
    sent_all(store)
    # Progress: the hub now holds one of the two; the gap shrank, so after this back-off
    # (4800 s) the next one starts afresh at 600 s instead of 9600 s.
    ask1 = ack_for(store, {"checkin": 1}, ["checkin"])
    clock.t += 4799
    assert d.on_ack(ask1) == 0
    clock.t += 2
    assert d.on_ack(ask1) == 2
    sent_all(store)
    clock.t += 599
    assert d.on_ack(ask1) == 0
    clock.t += 2
    assert d.on_ack(ask1) == 2


def test_stale_or_foreign_requests_change_nothing(store):
    d = BoxDelivery(store, clock=Clock())
    some_day(store)
    sent_all(store)
    # The hub already holds as many as the box sent: a stale ack.
    assert d.on_ack(ack_for(store, {"footfall": 6}, ["footfall"])) == 0
    # A day before the window is not re-sent.
    old = encode({"2026-01-01": {}}, tst=NOW, missing={"2026-01-01": ["footfall"]})
    assert d.on_ack(old) == 0
    with pytest.raises(PayloadError):
        d.on_ack(b"{not json")
    assert store.outbox_depth() == 0


def test_unconfirmed_days(store):
    clock = Clock()
    d = BoxDelivery(store, clock=clock)
    some_day(store)
    assert unconfirmed_days(store, "2026-06-02") == [DAY]  # still queued
    sent_all(store)
    assert unconfirmed_days(store, "2026-06-02") == [DAY]  # the hub said nothing yet
    full = {"footfall": 6, "checkin": 1, "stop": 1, "stop_left": 1, "position": 5}
    d.on_ack(ack_for(store, full, []))
    assert unconfirmed_days(store, "2026-06-02") == [DAY]  # one position short
    d.on_ack(ack_for(store, {**full, "position": 6}, []))
    assert unconfirmed_days(store, "2026-06-02") == []
    assert unconfirmed_days(store, DAY) == []  # only days before


def test_between_full_tallies_only_changed_days_go_out(store):
    clock = Clock()
    d = BoxDelivery(store, clock=clock)
    old = T0 - timedelta(days=3)
    store.record(Footfall(time=old, kind="in"))
    some_day(store)
    sent_all(store)
    full = decode(d.tally_payload(full=True))
    assert set(full.days) == {"2026-05-29", DAY}
    assert d.tally_payload(full=False) is None  # nothing changed
    store.record(Footfall(time=T0, kind="out"))
    sent_all(store)
    part = decode(d.tally_payload(full=False))
    assert set(part.days) == {DAY} and part.days[DAY]["footfall"] == 7
    assert set(decode(d.tally_payload(full=True)).days) == {"2026-05-29", DAY}


def test_a_change_before_today_makes_the_tally_a_full_one(store):
    d = BoxDelivery(store, clock=Clock())
    some_day(store)
    sent_all(store)
    assert d.next_tally(full=True)[1] is True
    store.record(Footfall(time=T0, kind="in"))
    sent_all(store)
    payload, full = d.next_tally(full=False)
    assert not full and set(decode(payload).days) == {DAY}  # today only
    store.record(Footfall(time=T0 - timedelta(days=2), kind="in"))  # a backlog went out
    sent_all(store)
    payload, full = d.next_tally(full=False)
    assert full and set(decode(payload).days) == {"2026-05-30", DAY}
