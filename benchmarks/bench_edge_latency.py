"""GPIO edge to MQTT message: p50/p99 over 1,000 footfall events.

The whole real path: a gpiozero mock pin (MockFactory) -> the beam sensor's state
machine -> Store.record (SQLite WAL, synchronous=FULL, event + outbox in one
transaction) -> Publisher (paho, QoS 1) -> a private mosquitto -> a subscriber.
Latency is from the edge that completes a pass (the beam clearing) to the subscriber's
on_message. Baseline in the same run: a bare paho QoS 1 publish to the same broker and
subscriber (what MQTT alone costs). Goal: p99 <= 20 ms with debounce 0 (the mock pins
do not bounce); the figures with the default debounce show what debouncing adds (a count
is only decided once the level has been stable for debounce_ms).

    python benchmarks/bench_edge_latency.py [--events 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from gpiozero.pins.mock import MockFactory  # noqa: E402

from firmware.footfall import open_sensor  # noqa: E402
from telemetry import topics  # noqa: E402
from telemetry.publisher import Publisher  # noqa: E402
from telemetry.store import Store  # noqa: E402
from tests.conftest import Broker, free_port  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Sub:
    def __init__(self, port: int, topic: str) -> None:
        self.got: dict[str, float] = {}
        self.cond = threading.Condition()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{os.getpid()}")
        self.c.on_message = self.on_message
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(topic, qos=1)
        self.c.loop_start()
        time.sleep(0.3)

    def on_message(self, client, userdata, msg) -> None:
        t = time.perf_counter()
        key = msg.payload.decode()[:80]
        if msg.topic.endswith("/footfall"):
            key = str(topics.decode(msg.topic, msg.payload).events[0].id)
        with self.cond:
            self.got[key] = t
            self.cond.notify_all()

    def wait_for(self, key_fn, timeout: float = 5.0) -> float | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for k, t in self.got.items():
                    if key_fn(k):
                        del self.got[k]
                        return t
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def baseline(port: int, n: int) -> list[float]:
    sub = Sub(port, "bench/bare")
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare-pub")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        pub.publish("bench/bare", f"m{i}", qos=1)
        t = sub.wait_for(lambda k, i=i: k == f"m{i}")
        if t is not None:
            out.append((t - t0) * 1000)
    pub.loop_stop()
    pub.disconnect()
    sub.close()
    return out


def pipeline(port: int, n: int, debounce_ms: int, work: Path) -> list[float]:
    store = Store(work / f"edge-{debounce_ms}.db", van="bench", tid="BE")
    pins = MockFactory()
    ids: list[str] = []
    lock = threading.Lock()

    def on_event(ev) -> None:
        store.record(ev)
        with lock:
            ids.append(ev.id)

    sensor = open_sensor(
        {"kind": "beam", "pin": 17, "pull_up": True, "debounce_ms": debounce_ms,
         "blocked_after_s": 60},
        on_event=on_event, tz=UTC, pin_factory=pins,
    )  # fmt: skip
    pub = Publisher(
        store,
        {"host": "127.0.0.1", "port": port, "tls": False, "ca_file": "", "username": "",
         "password_file": "", "topic_prefix": "vanbox", "keepalive": 30, "rate_limit": 10_000.0,
         "outbox_max_rows": 1_000_000, "client_id": "", "enabled": True},
        van="bench", tid="BE",
    )  # fmt: skip
    pub.start()
    store.add_listener(pub.wake)  # as the box does: a commit wakes the publisher
    sub = Sub(port, "vanbox/bench/footfall")
    pin = pins.pin(17)
    pin.drive_high()  # beam clear (pull-up)
    time.sleep(0.3)
    out = []
    for _ in range(n):
        pin.drive_low()  # broken
        time.sleep(0.002 + debounce_ms / 1000)
        t0 = time.perf_counter()
        pin.drive_high()  # clear: the pass is complete
        t = sub.wait_for(lambda k: True)
        if t is not None:
            out.append((t - t0) * 1000)
        time.sleep(0.002 + debounce_ms / 1000)
    sensor.close()
    pub.stop()
    sub.close()
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    broker = Broker(work, free_port())
    broker.start()
    try:
        base = baseline(broker.port, args.events)
        rows = [("bare paho QoS 1 publish -> subscriber (baseline)", base)]
        for deb in (0, 10, 30):
            lat = pipeline(broker.port, args.events, deb, work)
            rows.append((f"GPIO edge -> subscriber, debounce {deb} ms", lat))
    finally:
        broker.stop()
    b50 = statistics.median(base)
    print(f"{'path':<52}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'p50/base':>10}")
    for name, xs in rows:
        print(f"{name:<52}{len(xs):>6}{statistics.median(xs):>9.2f}{pct(xs, 99):>9.2f}"
              f"{statistics.median(xs) / b50:>10.1f}")  # fmt: skip
    print("goal: p99 <= 20 ms from the completing edge; the default debounce is 10 ms")


if __name__ == "__main__":
    main()
