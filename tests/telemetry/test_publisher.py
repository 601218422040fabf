"""The MQTT publisher against a real mosquitto (and a hand-made broker that withholds
PUBACKs): topics and payloads, backlog batching, PUBACK-only marking, the in-flight
window, status and last will, TLS with username/password, setup errors, outbox bound."""

from __future__ import annotations

import importlib.util
import json
import random
import socket
import struct
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from telemetry.errors import VanboxError
from telemetry.events import CheckIn, Footfall, Position, StopVisit, utcnow
from telemetry.publisher import (
    Publisher,
    PublisherError,
    TokenBucket,
    backoff_delay,
)
from telemetry.store import Store

_spec = importlib.util.spec_from_file_location(
    "_box_child", Path(__file__).with_name("_box_child.py")
)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)
Subscriber, retained = helpers.Subscriber, helpers.retained

pytestmark = pytest.mark.mqtt


def cfg(port: int, **kw) -> dict:
    return {"host": "127.0.0.1", "port": port, "keepalive": 10, "rate_limit": 2000.0, **kw}


def wait(pred, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def fix(t, lat=52.3215, lon=10.2335, **kw) -> Position:
    return Position(time=t, lat=lat, lon=lon, alt=71.0, speed=0.0, track=12.0, hdop=0.9, sats=11,
                    **kw)  # fmt: skip


# --- real broker: topics and payloads ---------------------------------------------------


def test_events_arrive_on_the_documented_topics(store: Store, broker):
    sub = Subscriber(broker.port)
    t = utcnow().replace(microsecond=0)
    ff = store.record(Footfall(time=t, kind="in", sensor="beam-pair", occupancy=1))
    ci = store.record(CheckIn(time=t, age_group="18-20", topics=("job", "housing"),
                              first_visit=True, heard_from="school", language="uk"))  # fmt: skip
    sv = store.record(StopVisit(arrived=t, name="Ilsede, Gebläsehalle", municipality="Ilsede",
                                lat=52.263, lon=10.184))  # fmt: skip
    pos = store.record(fix(t))
    pub = Publisher(store, cfg(broker.port), van="testvan", tid="TV")
    pub.start()
    try:
        assert sub.wait_for(lambda s: len(s.ids()) >= 4), sub.messages
        assert wait(lambda: store.outbox_depth() == 0)
        # the tally follows the drained outbox (it counts what has left it)
        assert sub.wait_for(lambda s: any(t.endswith("/tally") for t, _, _ in s.messages))
        by_topic = {t: (p, r) for t, p, r in sub.messages}
        assert set(by_topic) == {f"vanbox/testvan/{k}" for k in
                                 ("status", "footfall", "checkin", "stop", "location",
                                  "tally")}  # fmt: skip
        got = {m.kind: m for m in sub.decoded()}
        assert got["status"].status == "online"
        assert got["footfall"].events == (ff,)
        assert json.loads(by_topic["vanbox/testvan/footfall"][0])["today"] == {
            "in": 1, "out": 0, "pass": 0, "occupancy": 1}  # fmt: skip
        assert got["checkin"].events == (ci,)
        assert got["stop"].events == (sv,)
        (p,) = got["location"].events
        loc = json.loads(by_topic["vanbox/testvan/location"][0])
        assert loc["_type"] == "location" and loc["tid"] == "TV" and loc["id"] == pos.id
        assert set(loc) >= {"lat", "lon", "tst", "acc", "alt", "vel", "cog", "tid"}
        assert (p.id, p.lat, p.lon, p.time) == (pos.id, pos.lat, pos.lon, pos.time)
        # Retained: a late subscriber gets the location and "online"; events are not retained.
        assert json.loads(retained(broker.port, "vanbox/testvan/location"))["id"] == pos.id
        assert retained(broker.port, "vanbox/testvan/status") == "online"
        assert retained(broker.port, "vanbox/testvan/footfall") is None
        s = pub.stats()
        assert s["connected"] and s["acked"] == 4 and s["rows_acked"] == 4 and s["inflight"] == 0
        assert store.counter("outbox_sent") == 4
    finally:
        pub.stop()
        sub.close()
    assert not pub.is_alive()
    assert retained(broker.port, "vanbox/testvan/status") == "offline"


def test_backlog_newest_to_location_older_to_track_batches(store: Store, broker):
    t0 = utcnow().replace(microsecond=0) - timedelta(hours=1)
    fixes = store.record_many(
        [fix(t0 + timedelta(seconds=10 * i), lat=52.3 + i * 1e-4) for i in range(123)]
    )
    late = store.record(Footfall(time=t0 + timedelta(hours=1), kind="pass"))
    sub = Subscriber(broker.port)
    pub = Publisher(store, cfg(broker.port), van="testvan", tid="TV", track_batch=50)
    pub.start()
    try:
        want = {f.id for f in fixes} | {late.id}
        assert sub.wait_for(lambda s: s.ids() >= want), len(sub.ids())
        assert wait(lambda: store.outbox_depth() == 0)
    finally:
        pub.stop()
        sub.close()
    msgs = [m for m in sub.decoded() if m.kind != "status"]
    kinds = [m.kind for m in msgs]
    # counts before track points, though recorded after them
    assert kinds[0] == "footfall"
    assert kinds.count("location") == 1
    loc = next(m for m in msgs if m.kind == "location")
    assert loc.events[0].id == fixes[-1].id  # the newest fix is the live position
    tracks = [m for m in msgs if m.kind == "track"]
    assert [len(m.events) for m in tracks] == [50, 50, 22]
    sent = [e.id for m in tracks for e in m.events]
    assert sent == [f.id for f in fixes[:-1]]  # oldest first, each once, in order
    body = json.loads(next(p for t, p, _ in sub.messages if t.endswith("/track")))
    assert body["tid"] == "TV" and "_type" not in body["points"][0]
    assert json.loads(retained(broker.port, "vanbox/testvan/location"))["id"] == fixes[-1].id


def test_single_fresh_fixes_go_to_location_one_by_one(store: Store, broker):
    sub = Subscriber(broker.port)
    pub = Publisher(store, cfg(broker.port), van="testvan", tid="TV")
    pub.start()
    try:
        assert wait(lambda: pub.connected)
        ids = []
        for i in range(3):
            p = store.record(fix(utcnow(), lat=52.3 + i * 1e-3))
            pub.wake()
            ids.append(p.id)
            assert wait(lambda: store.outbox_depth() == 0)
        assert sub.wait_for(lambda s: s.ids() >= set(ids))
    finally:
        pub.stop()
        sub.close()
    locs = [m.events[0].id for m in sub.decoded() if m.kind == "location"]
    assert locs == ids
    assert not [m for m in sub.decoded() if m.kind == "track"]


# --- a broker that withholds PUBACKs ---------------------------------------------------


class HoldingBroker:
    """A minimal MQTT 3.1.1 server on a free port: CONNACKs, answers PINGREQ, records
    every PUBLISH (topic, packet id, payload) and sends PUBACK only when told."""

    def __init__(self, auto_ack: bool = False) -> None:
        self.auto_ack = auto_ack
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.publishes: list[tuple[str, int, bytes]] = []
        self.connects = 0
        self.conn: socket.socket | None = None
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.conn = conn
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise ConnectionError
            buf += chunk
        return buf

    def _serve(self, conn: socket.socket) -> None:
        try:
            while True:
                head = self._read(conn, 1)[0]
                length, mult = 0, 1
                while True:
                    b = self._read(conn, 1)[0]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    if not b & 0x80:
                        break
                body = self._read(conn, length)
                kind = head >> 4
                if kind == 1:  # CONNECT
                    with self.lock:
                        self.connects += 1
                    conn.sendall(b"\x20\x02\x00\x00")
                elif kind == 3:  # PUBLISH
                    tlen = struct.unpack("!H", body[:2])[0]
                    topic = body[2 : 2 + tlen].decode()
                    qos = (head >> 1) & 3
                    pid = struct.unpack("!H", body[2 + tlen : 4 + tlen])[0] if qos else 0
                    payload = body[2 + tlen + (2 if qos else 0) :]
                    with self.lock:
                        self.publishes.append((topic, pid, payload))
                    if self.auto_ack and qos:
                        conn.sendall(b"\x40\x02" + struct.pack("!H", pid))
                elif kind == 12:  # PINGREQ
                    conn.sendall(b"\xd0\x00")
                elif kind == 14:  # DISCONNECT
                    return
        except (ConnectionError, OSError):
            return

    def events(self) -> list[tuple[int, str]]:
        """(packet id, event id) of every event PUBLISH so far (not status)."""
        with self.lock:
            pubs = list(self.publishes)
        return [
            (pid, json.loads(p)["id"])
            for t, pid, p in pubs
            if not t.endswith(("/status", "/tally"))
        ]

    def puback(self, pids) -> None:
        assert self.conn is not None
        self.conn.sendall(b"".join(b"\x40\x02" + struct.pack("!H", pid) for pid in pids))

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.shutdown(socket.SHUT_RDWR)
            self.conn.close()

    def close(self) -> None:
        self.srv.close()
        self.drop()


def test_rows_are_marked_only_on_puback_and_the_window_is_bounded(store: Store):
    hb = HoldingBroker()
    t = utcnow()
    evs = store.record_many([CheckIn(time=t, age_group="15-17") for _ in range(30)])
    pub = Publisher(store, cfg(hb.port), van="testvan", tid="TV", max_inflight=8,
                    backoff_min=0.05, backoff_max=0.2)  # fmt: skip
    pub.start()
    try:
        assert wait(lambda: len(hb.events()) >= 8)
        time.sleep(0.3)  # give it every chance to overrun the window
        first = hb.events()
        assert len(first) == 8  # never more than the window without PUBACKs
        assert [e for _, e in first] == [e.id for e in evs[:8]]  # oldest first
        assert store.outbox_depth() == 30  # nothing acknowledged, nothing removed
        assert pub.stats()["inflight"] == 8
        hb.puback([pid for pid, _ in first[:3]])
        assert wait(lambda: store.outbox_depth() == 27)
        assert wait(lambda: len(hb.events()) == 11)  # three freed slots, three more sent
        left = {r.event_id for r in store.pending(100)}
        assert left == {e.id for e in evs[3:]}
        # The link drops: the 8 in flight (5 old + 3 new) are pending again and redelivered
        # on the next connection with the same ids, before anything newer.
        hb.drop()
        assert wait(lambda: hb.connects == 2 and len(hb.events()) >= 19)
        again = hb.events()[11:19]
        assert [e for _, e in again] == [e.id for e in evs[3:11]]
        assert store.outbox_depth() == 27
        assert pub.stats()["reconnects"] == 1
    finally:
        pub.stop(timeout=5)
        hb.close()
    assert not pub.is_alive()


# --- TLS, username and password ----------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_broker(broker_factory, tmp_path: Path):
    d = tmp_path / "pki"
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=vanbox test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)  # fmt: skip
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt",
             cwd=d)  # fmt: skip
    pw = d / "mosquitto.passwd"
    pw.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "van", "s3cret pass"], check=True,
                   capture_output=True)  # fmt: skip
    (d / "van.password").write_text("s3cret pass\n")
    (d / "wrong.password").write_text("not it\n")
    extra = "\n".join([
        f"cafile {d / 'ca.crt'}", f"certfile {d / 'server.crt'}", f"keyfile {d / 'server.key'}",
        f"password_file {pw}", "allow_anonymous false",
    ])  # fmt: skip
    return broker_factory(extra_config=extra), d


def test_tls_with_username_and_password(store: Store, tls_broker):
    broker, d = tls_broker
    ca = str(d / "ca.crt")
    sub = Subscriber(broker.port, tls_ca=ca, username="van", password="s3cret pass")
    ev = store.record(Footfall(time=utcnow(), kind="pass"))
    pub = Publisher(store, cfg(broker.port, tls=True, ca_file=ca, username="van",
                               password_file=str(d / "van.password")),
                    van="testvan", tid="TV")  # fmt: skip
    pub.start()
    try:
        assert sub.wait_for(lambda s: ev.id in s.ids())
        assert wait(lambda: store.outbox_depth() == 0)
    finally:
        pub.stop()
        sub.close()


def test_wrong_password_is_refused_and_nothing_is_marked(store: Store, tls_broker):
    broker, d = tls_broker
    store.record(Footfall(time=utcnow(), kind="pass"))
    pub = Publisher(store, cfg(broker.port, tls=True, ca_file=str(d / "ca.crt"), username="van",
                               password_file=str(d / "wrong.password")),
                    van="testvan", tid="TV", backoff_min=0.05, backoff_max=0.2)  # fmt: skip
    pub.start()
    try:
        assert wait(lambda: "refused" in (pub.stats()["last_error"] or ""))
        assert not pub.connected and pub.is_alive()
        assert store.outbox_depth() == 1
    finally:
        pub.stop()


def test_tls_without_the_right_ca_does_not_connect(store: Store, tls_broker, tmp_path: Path):
    broker, d = tls_broker
    other = tmp_path / "other"
    other.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=x",
             "-keyout", "o.key", "-out", "o.crt", cwd=other)  # fmt: skip
    pub = Publisher(store, cfg(broker.port, tls=True, ca_file=str(other / "o.crt"), username="van",
                               password_file=str(d / "van.password")),
                    van="testvan", tid="TV", backoff_min=0.05, backoff_max=0.2)  # fmt: skip
    pub.start()
    try:
        assert wait(lambda: "CERTIFICATE_VERIFY_FAILED" in (pub.stats()["last_error"] or ""))
        assert not pub.connected
    finally:
        pub.stop()


# --- setup errors, outbox bound, helpers -------------------------------------------------


def test_unreadable_password_file_is_a_clear_error(store: Store, tmp_path: Path):
    missing = tmp_path / "nope"
    with pytest.raises(PublisherError, match=r"mqtt\.password_file = .*nope.*cannot read"):
        Publisher(store, cfg(1, username="van", password_file=str(missing)), van="v", tid="V")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(PublisherError, match="first line is empty"):
        Publisher(store, cfg(1, username="van", password_file=str(empty)), van="v", tid="V")
    assert issubclass(PublisherError, VanboxError)


def test_missing_ca_file_is_a_clear_error(store: Store, tmp_path: Path):
    with pytest.raises(PublisherError, match=r"mqtt\.ca_file = .*no such file"):
        Publisher(store, cfg(1, tls=True, ca_file=str(tmp_path / "ca.pem")), van="v", tid="V")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(PublisherError, match=r"mqtt\.ca_file"):
        Publisher(store, cfg(1, tls=True, ca_file=str(bad)), van="v", tid="V")


def test_outbox_is_thinned_without_a_broker_and_counts_are_kept(store: Store):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    t0 = utcnow() - timedelta(hours=2)
    store.record_many([fix(t0 + timedelta(seconds=i), lat=52.3 + i * 1e-4) for i in range(40)])
    counts = store.record_many([Footfall(time=t0, kind="in") for _ in range(5)])
    pub = Publisher(store, cfg(dead, outbox_max_rows=12), van="testvan", tid="TV",
                    backoff_min=0.05, backoff_max=0.2)  # fmt: skip
    pub.start()
    try:
        assert wait(lambda: "cannot connect" in (pub.stats()["last_error"] or ""))
        assert wait(lambda: store.counter("outbox_thinned") == 33)
        assert store.outbox_depth() == 12
        assert {r.event_id for r in store.pending(100) if r.kind == "footfall"} == {
            c.id for c in counts}  # fmt: skip
        assert pub.is_alive() and not pub.connected
    finally:
        pub.stop()


def test_token_bucket_paces_to_the_rate():
    now = [100.0]
    b = TokenBucket(10.0, clock=lambda: now[0])
    assert b.available() == 10  # one second of burst
    b.take(10)
    assert b.available() == 0
    assert b.wait_time() == pytest.approx(0.1)
    now[0] += 0.25
    assert b.available() == 2
    now[0] += 60
    assert b.available() == 10  # never more than the burst
    slow = TokenBucket(0.5, clock=lambda: now[0])
    assert slow.available() == 1  # at least one message of burst


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    rng = random.Random(1)
    for attempt, d in [(0, 0.5), (1, 1.0), (3, 4.0), (10, 60.0), (100, 60.0)]:
        vals = [backoff_delay(attempt, 0.5, 60.0, rng) for _ in range(200)]
        assert min(vals) >= d / 2 and max(vals) <= d
        assert max(vals) - min(vals) > d / 5  # jittered, not one fixed value


def test_relaxed_mark_sent_removes_rows_and_restores_full_sync(store: Store):
    evs = store.record_many([Footfall(time=utcnow(), kind="pass") for _ in range(3)])
    seqs = [r.seq for r in store.pending(10)]
    assert store.mark_sent_relaxed(seqs[:2]) == 2
    assert [r.event_id for r in store.pending(10)] == [evs[2].id]
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
    assert store.counter("outbox_sent") == 2


def test_rate_limit_caps_messages_per_second(store: Store):
    """A bound, not a timing: a slow machine can only send fewer than the limit allows."""
    hb = HoldingBroker(auto_ack=True)
    evs = store.record_many([CheckIn(time=utcnow(), age_group="15-17") for _ in range(30)])
    rate = 10.0
    pub = Publisher(store, cfg(hb.port, rate_limit=rate), van="testvan", tid="TV")
    t0 = time.monotonic()
    pub.start()
    try:
        time.sleep(1.0)
        n = len(hb.events())
        elapsed = time.monotonic() - t0
        assert 0 < n <= rate + rate * elapsed + 1  # one second of burst, then the rate
        assert wait(lambda: len(hb.events()) == 30)  # and it keeps going at that pace
        assert [e for _, e in hb.events()] == [e.id for e in evs]
        assert wait(lambda: store.outbox_depth() == 0)
    finally:
        pub.stop()
        hb.close()


def test_broker_absent_at_start_then_there(store: Store, broker):
    broker.stop()
    ev = store.record(fix(utcnow()))  # the location is retained: no race with a subscriber
    pub = Publisher(store, cfg(broker.port), van="testvan", tid="TV", backoff_min=0.05,
                    backoff_max=0.3)  # fmt: skip
    pub.start()
    try:
        assert wait(lambda: "cannot connect" in (pub.stats()["last_error"] or ""))
        assert store.outbox_depth() == 1 and not pub.connected
        broker.start()
        assert wait(lambda: store.outbox_depth() == 0)
        assert json.loads(retained(broker.port, "vanbox/testvan/location"))["id"] == ev.id
        assert pub.stats()["reconnects"] == 0  # the first connection, however late
    finally:
        pub.stop()
