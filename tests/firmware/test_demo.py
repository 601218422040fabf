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
        assert 52.1 < s["last_fix"]["lat"] < 52.5 and 10.0 < s["last_fix"]["lon"] < 10.5
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
