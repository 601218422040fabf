"""`vanbox demo`, as the README's first command runs it: the whole box on simulated
hardware, publishing to a broker when there is one and buffering when there is none."""

import json
import subprocess
import sys
import time
import urllib.request

import paho.mqtt.client as mqtt

from firmware.localnet import free_port


def run_demo(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "firmware", "demo", "--speed", "60", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=3) as r:
        return json.loads(r.read())


def wait_json(url: str, pred, timeout: float = 30):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = get_json(url)
            if pred(last):
                return last
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url}: condition not met; last answer {last}")


def test_demo_publishes_to_a_broker_and_serves_its_pages(broker):
    port = free_port()
    got = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="demo-test")
    sub.on_message = lambda c, u, m: got.append(m.topic)
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("vanbox/#", qos=1)
    sub.loop_start()
    p = run_demo("--port", str(port), "--mqtt", f"127.0.0.1:{broker.port}", "--start", "08:40")
    try:
        s = wait_json(f"http://127.0.0.1:{port}/status.json", lambda s: s["last_fix"])
        # no staff login: the fix is reported, its position is not (the box's own store
        # holds it: see test_box.py)
        assert s["last_fix"]["mode"] in (2, 3) and "lat" not in s["last_fix"]
        s = wait_json(f"http://127.0.0.1:{port}/status.json", lambda s: s["mqtt"]["connected"])
        deadline = time.monotonic() + 20
        while "vanbox/jungregio-demo/location" not in got and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "vanbox/jungregio-demo/status" in got
        assert "vanbox/jungregio-demo/location" in got
        st = subprocess.run(
            [sys.executable, "-m", "firmware", "status", "--url", f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert st.returncode == 0, st.stdout + st.stderr
        assert "van:        jungregio-demo" in st.stdout
        assert f"broker:     127.0.0.1:{broker.port} connected" in st.stdout
        for path in ("/", "/map", "/status", "/healthz", "/staff/login"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                assert r.status == 200, path
    finally:
        p.send_signal(2)  # Ctrl-C
        out, _ = p.communicate(timeout=30)
        sub.loop_stop()
    assert p.returncode == 0, out[-2000:]
    lines = out.splitlines()
    assert any(f"MQTT: publishing to 127.0.0.1:{broker.port}" in x for x in lines[:4]), lines[:6]
    assert any("public live map:" in x for x in lines)


def test_demo_without_a_broker_buffers_in_the_outbox():
    port, nobody = free_port(), free_port()
    p = run_demo("--port", str(port), "--mqtt", f"127.0.0.1:{nobody}", "--duration", "60")
    try:
        s = wait_json(f"http://127.0.0.1:{port}/status.json", lambda s: s["outbox"] >= 3)
        assert s["mqtt"]["connected"] is False
    finally:
        p.send_signal(2)
        out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out[-2000:]
    assert f"MQTT: no broker at 127.0.0.1:{nobody}; events wait in the outbox" in out


def _tst_values(obj) -> list[float]:
    """Every ``tst`` in a payload (an event, or a batch of track points)."""
    if isinstance(obj, dict):
        out = [float(v) for k, v in obj.items() if k == "tst" and isinstance(v, (int, float))]
        for v in obj.values():
            out += _tst_values(v)
        return out
    if isinstance(obj, list):
        return [t for v in obj for t in _tst_values(v)]
    return []


def test_demo_checks_in_cleans_up_and_never_runs_ahead(broker, tmp_path):
    """At 600x from 100 minutes ago: the van passes stops (people walk in and some check
    in), catches up with real time after ~10 s and then runs at real time; no published
    ``tst`` is ever later than the moment it arrived; the temp folder is gone at exit."""
    import sqlite3
    from datetime import datetime, timedelta
    from pathlib import Path

    port = free_port()
    got: list[tuple[float, float]] = []  # (tst, arrival)

    def on_message(c, u, m):
        arrived = time.time()
        try:
            got.extend((t, arrived) for t in _tst_values(json.loads(m.payload)))
        except ValueError:
            pass  # a plain status string

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="demo-tst")
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("vanbox/#", qos=1)
    sub.loop_start()
    start = (datetime.now() - timedelta(minutes=100)).strftime("%H:%M")
    db = tmp_path / "demo.db"
    p = subprocess.Popen(
        [sys.executable, "-m", "firmware", "demo", "--speed", "600", "--start", start,
         "--port", str(port), "--mqtt", f"127.0.0.1:{broker.port}", "--db", str(db),
         "--duration", "14", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        out, _ = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
        sub.loop_stop()
    assert p.returncode == 0, out[-2000:]
    login = [x for x in out.splitlines() if x.startswith("staff login file: ")]
    assert login, out[:1500]
    passwd = Path(login[0].split(": ", 1)[1].split(" (")[0])
    assert passwd.name == "staff.passwd" and passwd.parent.name.startswith("vanbox-demo-")
    assert not passwd.parent.exists()  # the temp folder is removed on exit
    assert "catches up with real time" in out
    conn = sqlite3.connect(db)
    try:
        checkins = conn.execute("SELECT count(*) FROM checkins").fetchone()[0]
        walked_in = conn.execute("SELECT count(*) FROM footfall WHERE kind = 'in'").fetchone()[0]
    finally:
        conn.close()
    assert checkins >= 1 and walked_in >= checkins, (checkins, walked_in)
    assert len(got) >= 20, len(got)
    ahead = [(t, a) for t, a in got if t > a + 0.5]
    assert ahead == [], ahead[:5]
    # ... and it did reach real time: the last stamps are within seconds of arrival.
    assert max(t for t, _ in got) > time.time() - 60


def test_the_mqtt_option_takes_host_port_or_says_how():
    import pytest

    from firmware.demo import parse_hostport
    from telemetry.errors import VanboxError

    assert parse_hostport("localhost:1883") == ("localhost", 1883)
    assert parse_hostport("h:65535")[1] == 65535 and parse_hostport("h:1")[1] == 1
    for bad in ("h:0", "h:65536", ":1883", "h:", "localhost", "h:18²", "h:١٨٨٣"):
        with pytest.raises(VanboxError, match="use HOST:PORT"):
            parse_hostport(bad)
