"""``[hub.forward]`` (hub/forward.py) against a local HTTP server that applies the rules of
Traccar's OwnTracks decoder (org.traccar.protocol.OwnTracksProtocolDecoder):

- the body is one JSON object with a string ``_type``; not ``location``: 200, dropped;
- the device id is ``topic`` with ``/`` turned into ``-`` (else ``tid``); a device
  Traccar does not know: 400;
- ``tst`` is a number, read as UNIX seconds (``longValue() * 1000``): a millisecond
  ``tst`` would land in the year 57000, so the server refuses anything outside
  2000..2100;
- ``lat``, ``lon`` numbers; ``vel``, ``alt``, ``cog``, ``acc`` read with ``getInt``.

Each stored position once, in time order, retried while Traccar is down or refuses, and
resumed from the watermark after a restart; the ingest never waits for it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hub.forward import Forwarder, Target, targets_from_config
from telemetry.config import ConfigError, load_config
from telemetry.events import Position
from telemetry.store import Store

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeTraccar:
    """Traccar's OwnTracks port, as far as its decoder goes (see the module's notes)."""

    def __init__(self, devices: set[str], port: int | None = None, delay_s: float = 0.0):
        self.devices = set(devices)
        self.port = port or free_port()
        self.delay_s = delay_s
        self.positions: list[tuple[str, dict]] = []
        self.refused: list[tuple[int, str]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def decode(self, body: bytes) -> tuple[int, str, dict | None]:
        try:
            root = json.loads(body.decode("ascii"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return 400, "not JSON", None
        if not isinstance(root, dict) or not isinstance(root.get("_type"), str):
            return 400, "no _type", None
        if root["_type"] != "location":
            return 200, "", None
        unique = root.get("topic", root.get("tid"))
        if not isinstance(unique, str):
            return 400, "no device id", None
        device = unique.replace("/", "-")
        if device not in self.devices:
            return 400, f"unknown device {device}", None
        tst = root.get("tst")
        if not isinstance(tst, int | float) or not 946_684_800 <= tst < 4_102_444_800:
            return 400, f"tst {tst!r} is not UNIX seconds", None
        for k in ("lat", "lon"):
            if not isinstance(root.get(k), int | float) or isinstance(root.get(k), bool):
                return 400, f"{k} missing", None
        for k in ("vel", "alt", "cog", "acc"):
            if k in root and not isinstance(root[k], int):
                return 400, f"{k} is not an integer", None
        return 200, "", {"device": device, **root}

    def start(self) -> FakeTraccar:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                status, why, pos = outer.decode(body)
                with outer.lock:
                    if pos is not None:
                        outer.positions.append((pos["device"], pos))
                    elif status != 200:
                        outer.refused.append((status, why))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def got(self) -> list[tuple[str, dict]]:
        with self.lock:
            return list(self.positions)


def wait_for(cond, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def record(st: Store, van: str, n: int, start: int = 0, *, backwards: bool = False) -> list[int]:
    """Store ``n`` fixes of ``van`` (seconds ``start`` .. after T0); their tst values."""
    secs = list(range(start, start + n))
    for s in reversed(secs) if backwards else secs:
        st.record(Position(time=T0 + timedelta(seconds=s), lat=52.3 + s * 1e-5, lon=10.2,
                           van=van, hdop=1.2, speed=3.0, track=45.0, alt=70.0))  # fmt: skip
    return [int(T0.timestamp()) + s for s in secs]


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "hub.db")
    yield st
    st.close()


def test_each_position_once_in_time_order_with_topic_and_seconds(store):
    traccar = FakeTraccar({"vanbox-van-a", "vanbox-van-b"}).start()
    a = record(store, "van-a", 30, backwards=True)  # a backlog stored newest first
    b = record(store, "van-b", 5)
    fw = Forwarder(store, [Target("traccar", f"http://127.0.0.1:{traccar.port}/")], batch=1000)
    fw.start()
    try:
        wait_for(fw.idle, "everything forwarded")
        got = traccar.got()
        assert traccar.refused == []
        assert [p["tst"] for d, p in got if d == "vanbox-van-a"] == a  # in time order, once
        assert [p["tst"] for d, p in got if d == "vanbox-van-b"] == b
        first = got[0][1]
        assert first["_type"] == "location" and first["topic"] in ("vanbox/van-a", "vanbox/van-b")
        assert isinstance(first["vel"], int) and first["vel"] == 11  # 3 m/s in km/h
        assert fw.stats.sent == 35 and fw.stats.failures == 0
        # more positions later: only those
        c = record(store, "van-a", 3, start=100)
        fw.wake()
        wait_for(fw.idle, "the new ones")
        assert [p["tst"] for _, p in traccar.got()[35:]] == c
    finally:
        fw.stop()
        traccar.stop()


def test_traccar_down_loses_nothing_and_a_restart_resumes_from_the_watermark(store):
    port = free_port()  # nothing listens yet: Traccar is down
    target = Target("traccar", f"http://127.0.0.1:{port}/")
    fw = Forwarder(store, [target], retry_max_s=0.2, batch=7)
    fw.start()
    try:
        first = record(store, "van-a", 10)
        fw.wake()
        wait_for(lambda: fw.stats.failures >= 2, "failed attempts")
        assert not fw.idle()
        traccar = FakeTraccar({"vanbox-van-a"}, port=port).start()
        try:
            wait_for(fw.idle, "the backlog after Traccar is back")
            fw.stop()
            assert [p["tst"] for _, p in traccar.got()] == first
            # a restarted hub (a new forwarder on the same store) sends only what is new
            second = record(store, "van-a", 4, start=50)
            fw = Forwarder(store, [target], retry_max_s=0.2, batch=7)
            fw.start()
            wait_for(fw.idle, "after the restart")
            assert [p["tst"] for _, p in traccar.got()] == first + second
        finally:
            traccar.stop()
    finally:
        fw.stop()


def test_an_unknown_device_is_retried_until_it_exists_never_skipped(store):
    traccar = FakeTraccar({"vanbox-van-a"}).start()
    fw = Forwarder(store, [Target("traccar", f"http://127.0.0.1:{traccar.port}/")],
                   retry_max_s=0.1)  # fmt: skip
    fw.start()
    try:
        b = record(store, "van-b", 2)
        a = record(store, "van-a", 2, start=10)
        fw.wake()
        wait_for(lambda: len(traccar.refused) >= 2, "Traccar's 400s")
        assert traccar.got() == [] and traccar.refused[0] == (400, "unknown device vanbox-van-b")
        assert "HTTP 400" in fw.stats.last_error
        traccar.devices.add("vanbox-van-b")  # staff create the device in Traccar
        wait_for(fw.idle, "everything")
        assert [p["tst"] for _, p in traccar.got()] == b + a
    finally:
        fw.stop()
        traccar.stop()


def test_the_webhook_gets_the_same_json_with_the_van(store):
    hook = FakeTraccar({"fleet-van-a"}).start()
    fw = Forwarder(store, [Target("webhook", f"http://127.0.0.1:{hook.port}/in?k=1")],
                   topic="fleet/{van}")  # fmt: skip
    fw.start()
    try:
        record(store, "van-a", 3)
        fw.wake()
        wait_for(fw.idle, "the webhook")
        got = [p for _, p in hook.got()]
        assert len(got) == 3 and all(p["van"] == "van-a" and p["topic"] == "fleet/van-a"
                                     for p in got)  # fmt: skip
    finally:
        fw.stop()
        hook.stop()


def test_config(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[hub.forward]\ntraccar_url = "http://traccar:5144/"\n'
                 'webhook_url = "https://example.org/hook"\n')  # fmt: skip
    fw = load_config(p).hub["forward"]
    assert targets_from_config(fw) == [Target("traccar", "http://traccar:5144/"),
                                       Target("webhook", "https://example.org/hook")]  # fmt: skip
    assert Forwarder.from_config(None, {**fw, "traccar_url": "", "webhook_url": ""}) is None
    for bad in ('traccar_url = "traccar:5144"', 'webhook_url = "ftp://x/"',
                'topic = "vanbox/+"', "timeout_s = 0.1", "retry_max_s = 0"):  # fmt: skip
        p.write_text(f"[hub.forward]\n{bad}\n")
        with pytest.raises(ConfigError, match="hub.forward"):
            load_config(p)


@pytest.mark.mqtt
def test_the_ingest_never_waits_for_a_slow_traccar(broker, store):
    """Traccar answers each POST after 2 s: the hub still stores 200 messages at once."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from hub.ingest import Hub
    from telemetry import topics

    traccar = FakeTraccar({"vanbox-van-a"}, delay_s=2.0).start()
    fw = Forwarder(store, [Target("traccar", f"http://127.0.0.1:{traccar.port}/")],
                   timeout_s=5.0)  # fmt: skip
    hub = Hub(store, {"host": "127.0.0.1", "port": broker.port}, client_id="hub-fw",
              on_batch=fw.wake)  # fmt: skip
    van = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="van-a")
    fw.start()
    hub.start()
    try:
        assert hub.wait_connected(10)
        van.connect("127.0.0.1", broker.port)
        van.loop_start()
        now = datetime.now(UTC)
        t0 = time.monotonic()
        for i in range(200):
            p = Position(time=now - timedelta(seconds=200 - i), lat=52.3, lon=10.2, hdop=1.0)
            van.publish("vanbox/van-a/location", topics.dumps(topics.location_payload(p, "JR")),
                        qos=1)  # fmt: skip
        wait_for(lambda: hub.stats.events >= 200, "the ingest", timeout=10)
        took = time.monotonic() - t0
        assert took < 2.0, f"ingest took {took:.1f} s: it waited for Traccar"
        assert len(traccar.got()) <= 1
    finally:
        hub.stop()
        fw.stop()  # within one POST (2 s), not the whole batch
        assert not any(th.is_alive() for th in fw._threads)
        van.loop_stop()
        van.disconnect()
        traccar.stop()


def test_the_docs_forward_config_loads(tmp_path):
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "interop.md").read_text()
    block = re.search(r"<!-- test: hub-forward -->\n```toml\n(.*?)```", docs, re.S).group(1)
    p = tmp_path / "hub.toml"
    p.write_text(block)
    fw = load_config(p).hub["forward"]
    assert targets_from_config(fw) == [Target("traccar", "http://traccar.example.org:5144/")]
    device = fw["topic"].format(van="jungregio-1").replace("/", "-")
    assert device == "vanbox-jungregio-1" and f"`{device}`" in docs


def test_a_table_emptied_by_retention_starts_the_watermark_again(store):
    traccar = FakeTraccar({"vanbox-van-a"}).start()
    fw = Forwarder(store, [Target("traccar", f"http://127.0.0.1:{traccar.port}/")], poll_s=60)
    fw.start()
    try:
        first = record(store, "van-a", 5)
        fw.wake()
        wait_for(fw.idle, "the first positions")
        with store.transaction() as conn:
            conn.execute("DELETE FROM positions")  # as retention does, for all of them
        second = record(store, "van-a", 2, start=1000)  # rowids 1 and 2 again
        assert not fw.idle()
        fw.wake()
        wait_for(fw.idle, "the positions after the reset")
        assert [p["tst"] for _, p in traccar.got()] == first + second
    finally:
        fw.stop()
        traccar.stop()


@pytest.mark.mqtt
def test_vanbox_hub_with_the_docs_settings_feeds_owntracks_and_traccar(tmp_path, broker):
    """The real ``vanbox hub`` process (hub/server.py wiring) with [hub.owntracks] and
    [hub.forward] as docs/interop.md has them (URL pointed at the local Traccar): a van's
    position reaches both, and the hub counts nothing as malformed."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from telemetry import topics
    from tests.conftest import terminate

    docs = (Path(__file__).resolve().parents[2] / "docs" / "interop.md").read_text()
    block = lambda name: re.search(  # noqa: E731
        rf"<!-- test: {name} -->\n```toml\n(.*?)```", docs, re.S
    ).group(1)
    traccar = FakeTraccar({"vanbox-van-a"}).start()
    conf = tmp_path / "vanbox.toml"
    conf.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f'[staff]\npasswd_file = "{tmp_path / "staff.passwd"}"\n'
        + block("hub-owntracks")
        + block("hub-forward").replace(
            "http://traccar.example.org:5144/", f"http://127.0.0.1:{traccar.port}/"
        )
    )
    got: list[tuple[str, bytes]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="recorder")
    sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    sub.on_connect = lambda c, *a: c.subscribe("owntracks/#", 1)
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware", "hub", "--config", str(conf), "--db",
         str(tmp_path / "hub.db"), "--port", str(free_port()), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    van = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="van-a")
    van.connect("127.0.0.1", broker.port)
    van.loop_start()
    try:
        p = Position(time=datetime.now(UTC).replace(microsecond=0), lat=52.3, lon=10.2, hdop=1.0)
        payload = topics.dumps(topics.location_payload(p, "JR"))
        # retained: the hub gets it whenever it has subscribed
        van.publish("vanbox/van-a/location", payload, qos=1, retain=True).wait_for_publish(5)
        wait_for(lambda: len(traccar.got()) == 1, "the position at Traccar")
        wait_for(lambda: any(t == "owntracks/vanbox/van-a" for t, _ in got), "OwnTracks")
        assert traccar.got()[0][1]["tst"] == int(p.time.timestamp())
        loc = next(json.loads(b) for t, b in got if t == "owntracks/vanbox/van-a")
        assert loc["tst"] == int(p.time.timestamp()) and loc["_type"] == "location"
        import sqlite3

        with sqlite3.connect(tmp_path / "hub.db") as db:
            rows = db.execute("SELECT van, malformed FROM van_status").fetchall()
        assert rows == [("van-a", 0)]  # no van "owntracks", nothing malformed
    finally:
        van.loop_stop()
        van.disconnect()
        sub.loop_stop()
        sub.disconnect()
        terminate(proc)
        traccar.stop()
