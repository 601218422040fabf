"""deploy/kiosk-browser.sh keeps a kiosk browser alive and fresh.

The launcher runs for real (bash) with a stand-in for Chromium that records its
arguments and waits to be killed, against a real HTTP server whose ``/healthz`` the
test switches on and off. Checks happen every 0.1 s here (10 s on the Pi). The tab
check (kiosk/browser_watch.py) runs against a stand-in DevTools list, and against
Debian's Chromium (headless) on the real kiosk app for a crashed and a hung renderer.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.kiosk.test_checkin_browser import free_port  # below the ephemeral ports

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
    """Without the tab check (KIOSK_DEVTOOLS_PORT=0) /healthz is what the launcher has."""
    launch, starts, prefs, out = kiosk
    launch.env["KIOSK_DEVTOOLS_PORT"] = "0"
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


def test_box_outage_keeps_a_tab_that_shows_the_kiosk(kiosk, server):
    """While the box is away the kiosk's service worker shows its own screen: the browser
    stays (a restart would blank the screen). An error page while the box is away (no
    worker yet) gets a fresh browser, but only once the box answers again."""
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
    launch()
    wait_until(lambda: len(starts()) == 1, what="first browser start")
    pid = starts()[0][0]
    Health.up = False
    time.sleep(1.5)  # fifteen checks with the box away (a restart needed two before)
    assert alive(pid) and len(starts()) == 1
    tabs.write_text(json.dumps([{"type": "page", "url": "chrome-error://chromewebdata/"}]))
    wait_until(lambda: not alive(pid), what="the browser with an error page stopped")
    time.sleep(0.5)
    assert len(starts()) == 1  # no new browser (and error page) while the box is away
    tabs.write_text(json.dumps([{"type": "page", "url": origin + "/"}]))
    Health.up = True
    wait_until(lambda: len(starts()) == 2, what="a fresh browser once the box answers")
    assert "the tab does not show the kiosk" in out.read_text()


def test_a_browser_that_never_opens_devtools_is_restarted_after_the_grace(kiosk):
    launch, starts, _prefs, out = kiosk  # the stand-in opens no DevTools port
    launch.env["KIOSK_START_GRACE"] = "2"
    launch()
    wait_until(lambda: len(starts()) == 1, what="first browser start")
    time.sleep(1.0)  # within the grace: a browser may take its time to start
    assert len(starts()) == 1
    wait_until(lambda: len(starts()) == 2, what="restart after the grace")
    # Why: "no DevTools list" (nothing listens on the port) - or, with tests on several
    # workers, whatever else happens to listen on that free port now: not a kiosk tab.
    log = out.read_text()
    assert "restarting the browser" in log and "browser exited" not in log, log


# --- with Debian's Chromium: a crashed and a hung renderer ---------------------------

CHROMIUM = "/usr/bin/chromium"
START_HEADING = "Hallo! Schön, dass du da bist."


def page_state(port: str, timeout: float = 1.0) -> str | None:
    """'<path>|<first heading>' of the kiosk tab, or None if the page does not answer."""
    from kiosk.browser_watch import DevToolsSocket, WatchError

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        ws = DevToolsSocket(pages[0]["webSocketDebuggerUrl"], timeout)
    except (OSError, ValueError, IndexError, KeyError, WatchError):
        return None
    try:
        got = ws.call("Runtime.evaluate", {"expression": JS_STATE, "returnByValue": True})
        return got["result"].get("value")
    except (WatchError, KeyError):
        return None
    finally:
        ws.close()


JS_STATE = "location.pathname + '|' + ((document.querySelector('h1') || {}).textContent || '')"


def run_js(port: str, expr: str) -> None:
    from kiosk.browser_watch import DevToolsSocket

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=3) as r:
        page = next(t for t in json.load(r) if t.get("type") == "page")
    ws = DevToolsSocket(page["webSocketDebuggerUrl"], 3)
    try:
        ws.call("Runtime.evaluate", {"expression": expr})
    finally:
        ws.close()


def renderers(pid: int) -> list[int]:
    """Chromium's renderer processes under the browser process ``pid``."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            todo.append(k)
            try:
                if b"--type=renderer" in Path(f"/proc/{k}/cmdline").read_bytes():
                    out.append(k)
            except OSError:
                pass
    return out


@pytest.fixture
def real_kiosk(kiosk, tmp_path):
    """The launcher with Debian's Chromium (headless) on the real kiosk app."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    from kiosk import create_app
    from telemetry.config import default_config
    from telemetry.store import Store
    from tests.kiosk.test_checkin_browser import LiveServer

    launch, starts, _prefs, out = kiosk
    store = Store(tmp_path / "vanbox.db", van="testvan", tid="TV")
    srv = LiveServer(create_app(config=default_config(), store=store)).start()
    wrapper = tmp_path / "chromium-real"
    wrapper.write_text(
        f'#!/bin/sh\necho "$$ $*" >> {tmp_path / "starts.log"}\nexec {CHROMIUM} "$@"\n'
    )
    wrapper.chmod(0o755)
    launch.env.update(
        CHROMIUM=str(wrapper), KIOSK_URL=srv.url + "/", KIOSK_CHECK_EVERY="0.5",
        KIOSK_PAGE_TIMEOUT="2", KIOSK_EXTRA_FLAGS="--headless=new --no-sandbox --disable-gpu",
    )  # fmt: skip
    port = launch.env["KIOSK_DEVTOOLS_PORT"]
    launch()
    wait_until(lambda: page_state(port) == "/|" + START_HEADING, timeout=30,
               what="the start page in Chromium")  # fmt: skip
    yield port, starts, out, srv
    srv.stop()
    store.close()


@pytest.mark.browser
def test_crashed_renderer_is_back_on_the_start_page(real_kiosk):
    port, starts, out, srv = real_kiosk
    run_js(port, f"location.assign({json.dumps(srv.url + '/de/checkin')})")
    wait_until(lambda: (page_state(port) or "").startswith("/de/checkin|"), what="check-in")
    browser = starts()[0][0]
    killed = renderers(browser)
    assert killed
    crashed = time.monotonic()
    for r in killed:  # the renderer crashes; the tab still lists /de/checkin
        os.kill(r, signal.SIGKILL)
    wait_until(lambda: page_state(port) == "/|" + START_HEADING, timeout=15,
               what="the start page after the crash")  # fmt: skip
    took = time.monotonic() - crashed
    print(f"start page {took:.1f} s after the renderer crashed (checks every 0.5 s)")
    # the launcher says so once the watch has seen the reloaded page answer
    wait_until(lambda: "did not answer; reloaded" in out.read_text(), what="the launcher's note")
    assert len(starts()) == 1 and alive(browser)  # reloaded, not restarted


@pytest.mark.browser
def test_hung_renderer_gets_a_fresh_browser(real_kiosk):
    port, starts, out, _srv = real_kiosk
    browser = starts()[0][0]
    run_js(port, "setTimeout(() => { for (;;) {} }, 50)")  # the page's script never ends
    hung = time.monotonic()
    wait_until(lambda: len(starts()) == 2, timeout=20, what="a fresh browser")
    wait_until(lambda: page_state(port) == "/|" + START_HEADING, timeout=30,
               what="the start page in the fresh browser")  # fmt: skip
    took = time.monotonic() - hung
    print(f"start page {took:.1f} s after the renderer hung (checks every 0.5 s, 2 s timeout)")
    assert not alive(browser)
    assert "not even after a reload; restarting the browser" in out.read_text()


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("KIOSK_PAGE_TIMEOUT", "abc", "seconds, a number"),
        ("KIOSK_PAGE_TIMEOUT", "0.09", "between 0.1 and 60 s"),
        ("KIOSK_PAGE_TIMEOUT", "60.1", "between 0.1 and 60 s"),
        ("KIOSK_CHECK_EVERY", "0", "at least 0.05 s"),
        ("KIOSK_CHECK_EVERY", "1e3", "seconds, a number"),
        ("KIOSK_FAILURES", "0", "at least 1"),
        ("KIOSK_START_GRACE", "-1", "a whole number"),
        ("KIOSK_DEVTOOLS_PORT", "65536", "a TCP port"),
    ],
)
def test_a_bad_setting_stops_with_a_clear_message(kiosk, setting, value, says):
    launch, starts, _prefs, out = kiosk
    launch.env[setting] = value
    assert launch().wait(10) == 1
    assert f"{setting}={value}: {says}" in out.read_text()
    assert starts() == []


@pytest.mark.parametrize(("setting", "value"), [("KIOSK_PAGE_TIMEOUT", "0.1"),
                                                ("KIOSK_PAGE_TIMEOUT", "60"),
                                                ("KIOSK_DEVTOOLS_PORT", "65535")])  # fmt: skip
def test_settings_at_their_bounds_are_taken(kiosk, setting, value):
    launch, starts, _prefs, _out = kiosk
    launch.env[setting] = value
    proc = launch()
    wait_until(lambda: len(starts()) == 1, what="browser start")
    assert proc.poll() is None


# --- kiosk/browser_watch.py on its own ---------------------------------------------

WATCH = Path(__file__).resolve().parents[2] / "kiosk" / "browser_watch.py"


def watch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["python3", "-I", str(WATCH), *args], capture_output=True,
                          text=True, timeout=30)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "0", "--url", "http://127.0.0.1:8080/"], "--port 0: not a TCP port"),
        (["--port", "9222", "--url", "file:///etc/passwd"], "an http(s) address"),
        (["--port", "9222", "--url", "http://x/", "--timeout", "0.05"], "between 0.1 and 60"),
        (["--port", "x", "--url", "http://x/"], "invalid int value"),
    ],
)
def test_watch_refuses_bad_arguments_with_its_own_status(args, says):
    got = watch(*args)
    assert got.returncode == 64  # not 2: that means "no DevTools" to the launcher
    assert says in got.stderr


def test_watch_without_devtools_says_so():
    got = watch("--port", str(free_port()), "--url", "http://127.0.0.1:8080/", "--timeout", "1")
    assert got.returncode == 2 and "no DevTools list" in got.stdout


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids,
                                                               max_size=4),
    max_leaves=20,
)  # fmt: skip
TAB = st.fixed_dictionaries(
    {"type": st.sampled_from(["page", "service_worker", "iframe", 3]),
     "url": st.one_of(st.sampled_from(["http://127.0.0.1:8080/", "http://127.0.0.1:8080/de/x",
                                       "http://127.0.0.1:80800/", "chrome-error://chromewebdata/",
                                       "about:blank", "http://127.0.0.1:8080"]), JSON)},
    optional={"webSocketDebuggerUrl": JSON},
)  # fmt: skip


@given(st.one_of(JSON, st.lists(st.one_of(TAB, JSON), max_size=6)))
@settings(max_examples=300, deadline=None)
def test_watch_reads_any_devtools_list_without_failing(tabs):
    """Whatever DevTools lists, only pages under the kiosk's origin count."""
    from kiosk.browser_watch import kiosk_tabs

    got = kiosk_tabs(tabs, "http://127.0.0.1:8080/")
    assert all(t in tabs for t in got)
    assert all(t["type"] == "page" and t["url"].startswith("http://127.0.0.1:8080/") for t in got)
    expected = [t for t in tabs if isinstance(t, dict) and t.get("type") == "page"
                and t.get("url") in ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/de/x")] \
        if isinstance(tabs, list) else []  # fmt: skip
    assert got == expected


def test_installed_launcher_finds_the_watch_in_the_vanbox_package(kiosk, server):
    """Installed as /opt/vanbox/bin/kiosk-browser.sh there is no kiosk/ beside it: the
    watch comes from the vanbox package of the venv's Python."""
    launch, starts, _prefs, out = kiosk
    alone = launch.tmp / "bin" / "kiosk-browser.sh"
    alone.parent.mkdir()
    alone.write_bytes(LAUNCHER.read_bytes())
    launch.env["VANBOX_PYTHON"] = sys.executable  # this venv holds vanbox (editable)
    launch.env["KIOSK_START_GRACE"] = "1"
    with open(out, "w") as fh:
        proc = subprocess.Popen(["bash", str(alone)], env=launch.env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        # the watch runs: it finds no DevTools in the stand-in, which goes after the grace
        wait_until(lambda: "no DevTools list" in out.read_text(), what="the watch's verdict")
        assert "not found" not in out.read_text() and "cannot run" not in out.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    launch.env["VANBOX_PYTHON"] = str(launch.tmp / "no-python")
    with open(out, "w") as fh:
        proc = subprocess.Popen(["bash", str(alone)], env=launch.env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: "browser_watch.py not found" in out.read_text(), what="the warning")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_watch_that_cannot_run_falls_back_to_healthz(kiosk, server):
    launch, starts, _prefs, out = kiosk
    broken = launch.tmp / "broken_watch.py"
    broken.write_text("import sys\nsys.exit(64)\n")
    launch.env["KIOSK_WATCH"] = str(broken)
    launch()
    wait_until(lambda: "the tab check cannot run" in out.read_text(), what="the fallback")
    pid = starts()[0][0]
    Health.up = False  # now /healthz is what counts: two failures and the browser goes
    wait_until(lambda: not alive(pid), what="browser stopped after failed health checks")
    Health.up = True
    wait_until(lambda: len(starts()) == 2, what="browser restarted when healthy again")
