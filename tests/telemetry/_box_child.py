"""Helpers for the publisher tests: a collecting MQTT subscriber, and (run as a script)
a child process that records events and publishes them, to be killed with SIGKILL.

Child modes::

    python _box_child.py record --db DB --port PORT --ids FILE [--keepalive S]
        records events one by one forever; after each commit appends the event id to FILE
        (one line, unbuffered append, so a SIGKILL never leaves a half-reported id)
    python _box_child.py drain --db DB --port PORT
        only publishes; exits 0 once the outbox is empty and the publisher stopped cleanly
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from datetime import timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from telemetry import topics


class Subscriber:
    """Subscribes to ``<prefix>/+/#`` at QoS 1 and keeps every message it gets.

    ``persistent=True`` uses a fixed client id and a persistent session, so with a
    persistent broker nothing is lost while it restarts.
    """

    def __init__(
        self,
        port: int,
        *,
        prefix: str = "vanbox",
        client_id: str = "",
        persistent: bool = False,
        tls_ca: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.prefix = prefix
        self.messages: list[tuple[str, bytes, bool]] = []
        self._cond = threading.Condition()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
            protocol=mqtt.MQTTv311,
        )
        if tls_ca:
            self.client.tls_set(ca_certs=tls_ca)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("subscriber: no SUBACK")

    def _on_connect(self, client, userdata, flags, rc, props) -> None:
        client.subscribe(topics.subscription(self.prefix), qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def decoded(self) -> list[topics.Message]:
        with self._cond:
            msgs = list(self.messages)
        return [topics.decode(t, p, self.prefix) for t, p, _ in msgs]

    def ids(self) -> set[str]:
        return {ev.id for m in self.decoded() for ev in m.events}

    def wait_for(self, predicate, timeout: float = 30.0) -> bool:
        """Wait until ``predicate(self)`` is true; False if it never became true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str, timeout: float = 5.0) -> str | None:
    """The retained message on ``topic`` now, as text (None if there is none)."""
    got: list[str] = []
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)

    def on_message(client, userdata, msg):
        if msg.retain:
            got.append(msg.payload.decode())
        done.set()

    c.on_connect = lambda client, *a: client.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: threading.Timer(0.3, done.set).start()
    c.on_message = on_message
    c.connect("127.0.0.1", port, keepalive=10)
    c.loop_start()
    done.wait(timeout)
    c.disconnect()
    c.loop_stop()
    return got[0] if got else None


# --- the child process ---------------------------------------------------------------


def _events(rng: random.Random):
    from telemetry.events import CheckIn, Footfall, Position, utcnow

    lat, lon = 52.320, 10.234
    i = 0
    while True:
        i += 1
        now = utcnow()
        k = i % 4
        if k in (0, 1):
            lat += rng.uniform(-0.0005, 0.0005)
            lon += rng.uniform(-0.0005, 0.0005)
            yield Position(time=now, lat=lat, lon=lon, speed=8.0, track=90.0, hdop=1.2, sats=9)
        elif k == 2:
            yield Footfall(time=now, kind=rng.choice(("in", "out", "pass")), sensor="beam-pair")
        else:
            yield CheckIn(time=now - timedelta(seconds=1), age_group="18-20", topics=("job",))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("record", "drain"))
    ap.add_argument("--db", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ids", default="")
    ap.add_argument("--keepalive", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    from telemetry.publisher import Publisher
    from telemetry.store import Store

    store = Store(a.db, van="killvan", tid="KV")
    cfg = {
        "host": "127.0.0.1",
        "port": a.port,
        "keepalive": a.keepalive,
        "rate_limit": 5000.0,
        "client_id": "vanbox-killvan",
    }
    pub = Publisher(store, cfg, van="killvan", tid="KV", backoff_min=0.05, backoff_max=0.5)
    pub.start()
    if a.mode == "drain":
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if pub.connected and store.outbox_depth() == 0:
                pub.stop()
                return 0 if not pub.is_alive() else 2
            time.sleep(0.05)
        return 3
    rng = random.Random(a.seed)
    fd = os.open(a.ids, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    print("recording", flush=True)
    for ev in _events(rng):
        store.record(ev)
        os.write(fd, f"{ev.id}\n".encode())  # only after the commit returned
        time.sleep(rng.uniform(0, 0.004))
    return 0


if __name__ == "__main__":
    sys.exit(main())
