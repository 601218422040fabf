"""deploy/kiosk-browser.sh keeps a kiosk browser alive and fresh.

The launcher runs for real (bash) with a stand-in for Chromium that records its
arguments and waits to be killed, against a real HTTP server whose ``/healthz`` the
test switches on and off. Checks happen every 0.1 s here (10 s on the Pi).
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).resolve().parents[2] / "deploy" / "kiosk-browser.sh"


class Health(http.server.BaseHTTPRequestHandler):
    up = True  # False: the box hangs or is gone (no HTTP answer at all)
    sick = False  # True: the box answers 503 (cannot store; the page says "ask the team")

    def do_GET(self):  # noqa: N802 - http.server's name
        if not Health.up:
            self.close_connection = True
            self.connection.shutdown(2)  # no answer, like a hung or dead server
            return
        ok = self.path == "/healthz" and not Health.sick
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(b'{"ok": true}' if ok else b'{"ok": false}')

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    Health.up, Health.sick = True, False
    yield srv
    srv.shutdown()
    srv.server_close()


def wait_until(pred, timeout=20.0, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by the launcher) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A stand-in for Chromium with a DevTools list: it serves /json/list from tabs.json
# (which the test rewrites) on its --remote-debugging-port, like the real browser.
FAKE_WITH_DEVTOOLS = """#!/usr/bin/env python3
import http.server, os, signal, sys, threading
log, tabs = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
with open(log, "a") as f:
    f.write(f"{os.getpid()} {' '.join(args)}\\n")
port = int(next(a.split("=", 1)[1] for a in args if a.startswith("--remote-debugging-port=")))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = open(tabs, "rb").read()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
srv.allow_reuse_address = True
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
srv.serve_forever()
"""


@pytest.fixture
def kiosk(tmp_path, server):
    log = tmp_path / "starts.log"
    fake = tmp_path / "chromium"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$$ $*" >> {log}\n'
        "trap 'kill $! 2>/dev/null; exit 0' TERM\n"
        "sleep 1000 &\nwait\n"
    )
    fake.chmod(0o755)
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    prefs = profile / "Default" / "Preferences"
    prefs.write_text(json.dumps({"profile": {"exit_type": "Crashed", "exited_cleanly": False}}))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(
        CHROMIUM=str(fake), KIOSK_INSIDE="1", HOME=str(tmp_path), KIOSK_PROFILE=str(profile),
        KIOSK_URL=f"http://127.0.0.1:{server.server_port}/", KIOSK_CHECK_EVERY="0.1",
        KIOSK_FAILURES="2", KIOSK_BLANK_AFTER="0", KIOSK_DEVTOOLS_PORT=str(free_port()),
    )  # fmt: skip

    def starts() -> list[tuple[int, list[str]]]:
        if not log.exists():
            return []
        out = []
        for line in log.read_text().splitlines():
            pid, *args = line.split()
            out.append((int(pid), args))
        return out

    out = tmp_path / "launcher.log"
    procs = []

    def launch() -> subprocess.Popen:
        with open(out, "w") as fh:
            p = subprocess.Popen(
                ["bash", str(LAUNCHER)], env=env, stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        procs.append(p)
        return p

    launch.env, launch.fake, launch.tmp = env, fake, tmp_path  # type: ignore[attr-defined]
    yield launch, starts, prefs, out
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for pid, _ in starts():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_restarts_browser_when_healthz_stops_and_when_it_dies(kiosk, server):
    launch, starts, prefs, out = kiosk
    proc = launch()
    wait_until(lambda: len(starts()) == 1, what="first browser start")
    pid, args = starts()[0]
    for flag in ["--kiosk", "--noerrdialogs", "--disable-pinch", "--touch-events=enabled",
                 "--overscroll-history-navigation=0", "--disable-session-crashed-bubble",
                 "--incognito", "--no-first-run", "--disable-infobars"]:  # fmt: skip
        assert flag in args, flag
    assert args[-1] == f"http://127.0.0.1:{server.server_port}/"
    # the power cut left the profile "crashed": marked clean before the start
    assert '"exit_type":"Normal"' in prefs.read_text().replace(" ", "")
    assert '"exited_cleanly":true' in prefs.read_text().replace(" ", "")

    Health.sick = True  # the box cannot store: 503, but its page answers; the browser stays
    time.sleep(1.0)  # ten checks at 0.1 s: a restart would need two failures
    assert alive(pid) and len(starts()) == 1
    Health.sick = False

    Health.up = False  # the box hangs: after 2 failed checks the browser goes
    wait_until(lambda: not alive(pid), what="browser stopped after failed health checks")
    assert len(starts()) == 1  # and no new one while the box does not answer
    Health.up = True
    wait_until(lambda: len(starts()) == 2, what="browser restarted when healthy again")

    pid2 = starts()[1][0]
    os.kill(pid2, signal.SIGKILL)  # the browser crashes
    wait_until(lambda: len(starts()) == 3, what="browser restarted after a crash")

    pid3 = starts()[2][0]
    proc.send_signal(signal.SIGTERM)  # systemctl stop
    assert proc.wait(10) == 0
    wait_until(lambda: not alive(pid3), what="browser stopped with the launcher")
    log = out.read_text()
    assert "restarting the browser" in log and "browser exited" in log


def test_waits_for_the_box_before_starting(kiosk):
    launch, starts, _, out = kiosk
    Health.up = False  # the box is not up yet when the screen comes on
    proc = launch()
    wait_until(lambda: out.exists() and "waiting for the box" in out.read_text(),
               what="the launcher waiting")  # fmt: skip
    assert starts() == []  # no browser showing an error page
    Health.up = True
    wait_until(lambda: len(starts()) == 1, what="start once the box answers")
    assert proc.poll() is None


def test_restarts_browser_when_the_tab_is_blank_or_shows_an_error(kiosk, server):
    launch, starts, _prefs, out = kiosk
    tmp = launch.tmp
    tabs = tmp / "tabs.json"
    origin = f"http://127.0.0.1:{server.server_port}"
    tabs.write_text(json.dumps([{"type": "page", "url": origin + "/de/checkin"}]))
    script = tmp / "fake_devtools.py"
    script.write_text(FAKE_WITH_DEVTOOLS)
    wrapper = tmp / "chromium-devtools"
    wrapper.write_text(f'#!/bin/sh\nexec python3 {script} {tmp / "starts.log"} {tabs} "$@"\n')
    wrapper.chmod(0o755)
    launch.env["CHROMIUM"] = str(wrapper)
    proc = launch()
    wait_until(lambda: len(starts()) == 1, what="first browser start")
    pid, args = starts()[0]
    port = launch.env["KIOSK_DEVTOOLS_PORT"]
    assert f"--remote-debugging-port={port}" in args
    assert "--remote-debugging-address=127.0.0.1" in args
    time.sleep(1.0)  # ten checks: the kiosk's page, and a service worker beside it, is fine
    tabs.write_text(json.dumps([{"type": "service_worker", "url": origin + "/sw.js"},
                                {"type": "page", "url": origin + "/"}]))  # fmt: skip
    time.sleep(0.5)
    assert alive(pid) and len(starts()) == 1
    # one check only with an error page (below KIOSK_FAILURES=2 in a row): no restart
    tabs.write_text(json.dumps([{"type": "page", "url": "chrome-error://chromewebdata/"}]))
    time.sleep(0.12)
    tabs.write_text(json.dumps([{"type": "page", "url": origin + "/"}]))
    time.sleep(0.5)
    assert len(starts()) == 1
    for bad in ([{"type": "page", "url": "about:blank"}],
                [{"type": "page", "url": "chrome-error://chromewebdata/"}],
                [{"type": "page", "url": "http://127.0.0.1:1" + "/"}],
                [{"type": "service_worker", "url": origin + "/sw.js"}]):  # fmt: skip
        n = len(starts())
        tabs.write_text(json.dumps(bad))
        wait_until(lambda n=n: len(starts()) == n + 1, what=f"restart for {bad}")
        tabs.write_text(json.dumps([{"type": "page", "url": origin + "/"}]))
        time.sleep(0.3)
        assert len(starts()) == n + 1  # once per problem
    assert not alive(pid)
    assert "the tab does not show the kiosk" in out.read_text()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_tab_check_can_be_switched_off(kiosk, server):
    launch, starts, _prefs, _out = kiosk
    launch.env["KIOSK_DEVTOOLS_PORT"] = "0"
    launch()
    wait_until(lambda: len(starts()) == 1, what="first browser start")
    assert not any(a.startswith("--remote-debugging") for a in starts()[0][1])
