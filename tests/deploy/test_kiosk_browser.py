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
        KIOSK_FAILURES="2", KIOSK_BLANK_AFTER="0",
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
