"""Hypothesis fuzzing of MQTT payloads for every topic kind, in process against the hub's
decode + store path (the worker's batch handler with fake items). After every fuzzed
message, a good event of another van must be stored, and the fuzzed message must be
either stored or kept as a dead letter, never lost and never fatal.

``VANBOX_FUZZ_EXAMPLES`` raises the number of examples per kind (default 200);
``benchmarks/fuzz_hub_ingest.py`` runs it with more and prints the counts."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.ingest import Hub, Item
from telemetry import deadletter, topics
from telemetry.events import Footfall, new_id
from telemetry.store import Store

EXAMPLES = int(os.environ.get("VANBOX_FUZZ_EXAMPLES", "200"))
KINDS = topics.EVENT_KINDS + ("tally", topics.BRIDGE_KIND)
# kind -> [tried, refused (dead-lettered, or a retained repeat of one)]; for the benchmark
COUNTS: dict[str, list[int]] = {}

NOW = time.time()
ABSURD = [1e20, -1e20, 10**30, -(10**30), -1, 0, 1e308, 253402300799, 99999999999,
          float(2**63), 2**63, 2**64 + 1, 0.1, 52.3, 10.2, NOW - 60]  # fmt: skip
STRINGS = ["", "\ud800", "\udfff", "a" * 300, "\x00", "online", "offline", "1", "0",
           "in", "door", "18-20", "job", "de", new_id(), "Markt\u2028", "€"]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.sampled_from(ABSURD)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(STRINGS)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=15,
)


def template(kind: str) -> dict:
    t = NOW - 120
    return {
        "location": {"_type": "location", "id": new_id(), "tid": "EV", "tst": t, "lat": 52.3,
                     "lon": 10.2, "mode": 3, "hdop": 1.1, "alt": 70, "vel": 20, "cog": 10,
                     "sats": 8},
        "footfall": {"id": new_id(), "tst": t, "kind": "in", "sensor": "door", "occupancy": 1,
                     "today": {"in": 1}},
        "checkin": {"id": new_id(), "tst": t, "age_group": "18-20", "topics": ["job"],
                    "first_visit": True, "heard_from": "friends", "lang": "de"},
        "stop": {"id": new_id(), "name": "Markt", "municipality": "Peine", "lat": 52.3,
                 "lon": 10.2, "planned": True, "arrived": t, "left": None},
        "tally": {"days": {"2026-11-23": {"footfall": 3}}},
    }.get(kind, {})  # fmt: skip


@st.composite
def payloads(draw, kind: str) -> bytes:
    """Random JSON, a valid payload with fields replaced by absurd values, deep nesting,
    raw bytes, or a status-like string."""
    how = draw(st.sampled_from(["json", "mutate", "mutate", "deep", "bytes", "text"]))
    if how == "json":
        return json.dumps(draw(json_values), ensure_ascii=draw(st.booleans())).encode(
            "utf-8", "surrogatepass"
        )
    if how == "deep":
        n = draw(st.sampled_from([7, 33, 1000, 5000]))
        inner = draw(st.sampled_from(["[", '{"a":']))
        close = "]" if inner == "[" else "}"
        return (inner * n + "1" + close * n).encode()
    if how == "bytes":
        return draw(st.binary(max_size=64))
    if how == "text":
        return draw(st.sampled_from(STRINGS + ["online\n", "2", "-0"])).encode(
            "utf-8", "surrogatepass"
        )
    base = template("location" if kind == "track" else kind)
    keys = sorted(base) + ["id", "tst", "extra"]
    changes = draw(st.dictionaries(st.sampled_from(keys), json_values, max_size=4))
    d = {**base, **changes}
    if kind == "track":
        other = template("location")
        d = {"tid": "EV", "points": draw(st.permutations([d, other]))}
    return json.dumps(d, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("fuzz") / "hub.db")
    yield Hub(store, {}, client_id="fuzz-hub"), store
    store.close()


def good_event(n: int) -> tuple[Item, str]:
    ev = Footfall(time=datetime.fromtimestamp(NOW - 30, UTC), kind="pass")
    body = topics.dumps(topics.footfall_payload(ev, {}))
    return Item(f"vanbox/good-{n % 7}/footfall", body.encode(), n, 1, False, NOW, 0), ev.id


@pytest.mark.parametrize("kind", KINDS)
def test_fuzzed_messages_never_stop_the_ingest(fuzz_hub, kind):
    hub, store = fuzz_hub
    counts = COUNTS.setdefault(kind, [0, 0])

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(payload=payloads(kind), same_batch=st.booleans(), retain=st.booleans())
    def run(payload: bytes, same_batch: bool, retain: bool) -> None:
        counts[0] += 1
        dead_before = deadletter.count(store)
        events_before = hub.stats.events
        malformed_before = hub.stats.malformed
        poison = Item(f"vanbox/evil/{kind}", payload, 1, 1, retain, time.time(), 0)
        ok, ok_id = good_event(counts[0])
        if same_batch:
            hub._handle([poison, ok])
        else:
            hub._handle([poison])
            hub._handle([ok])
        got = store.reader().execute("SELECT 1 FROM footfall WHERE id = ?", (ok_id,))
        assert got.fetchone() is not None, "the good event after a fuzzed one was not stored"
        dead = deadletter.count(store) - dead_before
        decoded = hub.stats.events - events_before - 1  # minus the good one
        if dead or hub.stats.malformed > malformed_before:
            counts[1] += 1  # refused (whole, or some of its points)
        # Nothing vanishes: the message was dead-lettered, or stored (events or a
        # status/control message, which carry no events). (A retained message that was
        # kept aside before is not kept again: every hub start gets it again.)
        empty_track = kind == "track" and b'"points": []' in payload
        nothing_to_keep = kind in ("status", "bridge", "tally") or empty_track or retain
        assert dead or decoded or nothing_to_keep

    run()
    assert counts[0] >= EXAMPLES
    assert hub.stats.received >= counts[0]
    report = os.environ.get("VANBOX_FUZZ_REPORT")
    if report:  # the benchmark script's way to read the counts
        with open(report, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "tried": counts[0], "dead": counts[1]}) + "\n")
