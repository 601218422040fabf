"""The broker stopped and restarted 5 times during a stream of 2,000 events: every event
id arrives at least once, none is missing, and the outbox ends empty.

The broker keeps its state on disk (``persistence``) and the subscriber has a persistent
session, so what the broker acknowledged to the publisher reaches the subscriber across
the restarts: anything missing would be the publisher's fault.
"""

from __future__ import annotations

import importlib.util
import json
import random
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from telemetry.events import CheckIn, Footfall, Position, StopVisit, utcnow
from telemetry.publisher import Publisher
from telemetry.store import Store

_spec = importlib.util.spec_from_file_location(
    "_box_child", Path(__file__).with_name("_box_child.py")
)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)

pytestmark = pytest.mark.mqtt

N_EVENTS = 2000
RESTARTS = 5


def stream(rng: random.Random) -> list:
    t = utcnow() - timedelta(minutes=30)
    out = []
    for i in range(N_EVENTS):
        t += timedelta(milliseconds=500)
        r = rng.random()
        if r < 0.45:
            out.append(Position(time=t, lat=52.26 + i * 1e-5, lon=10.18, speed=9.0, hdop=1.0))
        elif r < 0.8:
            out.append(Footfall(time=t, kind=rng.choice(("in", "out", "pass")), sensor="beam-pair"))
        elif r < 0.97:
            out.append(CheckIn(time=t, age_group="21-24", topics=("money",), language="de"))
        else:
            out.append(StopVisit(arrived=t, name=f"Halt {i}", municipality="Ilsede", lat=52.263,
                                 lon=10.184, planned=False))  # fmt: skip
    return out


def test_five_broker_restarts_during_2000_events_lose_nothing(tmp_path: Path, broker_factory):
    broker = broker_factory(persistence=True)
    sub = helpers.Subscriber(broker.port, client_id="outage-sub", persistent=True)
    store = Store(tmp_path / "box.db", van="outvan", tid="OV")
    rng = random.Random(2)
    events = stream(rng)
    cfg = {"host": "127.0.0.1", "port": broker.port, "keepalive": 5, "rate_limit": 3000.0}
    pub = Publisher(store, cfg, van="outvan", tid="OV", backoff_min=0.05, backoff_max=0.4,
                    max_inflight=40, track_batch=25)  # fmt: skip
    recorded: list[str] = []
    done = threading.Event()

    def produce() -> None:
        for ev in events:
            recorded.append(store.record(ev).id)
            pub.wake()
            time.sleep(0.0015)
        done.set()

    producer = threading.Thread(target=produce, daemon=True)
    pub.start()
    producer.start()
    try:
        for _ in range(RESTARTS):
            # restart while events keep coming; at random moments
            deadline = time.monotonic() + rng.uniform(0.3, 0.7)
            while time.monotonic() < deadline:
                time.sleep(0.02)
            broker.stop()
            time.sleep(rng.uniform(0.1, 0.4))
            broker.start()
        producer.join(60)
        assert done.is_set(), "the producer did not finish"
        want = {e.id for e in events}
        assert set(recorded) == want
        assert sub.wait_for(lambda s: s.ids() >= want, timeout=60), (
            f"missing {len(want - sub.ids())} of {len(want)} event ids"
        )
        deadline = time.monotonic() + 10
        while store.outbox_depth() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.outbox_depth() == 0
        st = pub.stats()
        assert st["reconnects"] >= RESTARTS and pub.is_alive()
        # each id at least once; redeliveries are allowed and carry the same id
        got = [ev.id for m in sub.decoded() for ev in m.events]
        assert len(got) >= N_EVENTS and set(got) == want
        # the retained live position is the newest fix, whatever order the backlogs took
        newest = [e for e in events if isinstance(e, Position)][-1]
        loc = helpers.retained(broker.port, "vanbox/outvan/location")
        assert loc is not None and json.loads(loc)["id"] == newest.id
    finally:
        pub.stop()
        sub.close()
        store.close()
