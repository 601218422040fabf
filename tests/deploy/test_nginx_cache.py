"""Issue 17, item 3: deploy/nginx/vanbox-hub.conf with the real nginx in front of real
hub web processes (``vanbox hub --no-ingest``).

nginx runs as a child process with its own prefix, config and cache in a temp dir, on a
free port (never the system service). The shipped file is used as it is, with three
literal values replaced: the listen port, the hub's address and the cache directory.
A van's move shows through the cache within the public max-age; staff pages, requests
with cookies and answers that set a cookie are never cached; two web processes on one
database serve the same staff user.
"""

from __future__ import annotations

import getpass
import http.client
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from werkzeug.security import generate_password_hash

from firmware.localnet import free_port, terminate, wait_port
from kiosk.auth import set_user
from kiosk.public import PUBLIC_MAX_AGE_S, PUBLIC_SWR_S
from telemetry import registry
from telemetry.events import Position
from telemetry.store import Store

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "nginx" / "vanbox-hub.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
STOP = (52.3215, 10.2335)
PASSWORD = "correct horse battery"
ALL_DAYS = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists(), reason="nginx is missing: apt-get install nginx (Debian 12)"
)


class Nginx:
    def __init__(self, tmp: Path, upstreams: list[int], access_log: str = "access_log off") -> None:
        self.dir = tmp / "nginx"
        self.dir.mkdir()
        self.port = free_port()
        site = CONF.read_text()
        for old, new in (
            ("listen 80;", f"listen 127.0.0.1:{self.port};"),
            ("    server 127.0.0.1:8090;\n",
             "".join(f"    server 127.0.0.1:{p};\n" for p in upstreams)),
            ("/var/cache/nginx/vanbox-hub", str(self.dir / "cache")),
        ):  # fmt: skip
            assert site.count(old) == 1, f"{CONF.name} no longer has {old!r} once"
            site = site.replace(old, new)
        (self.dir / "vanbox-hub.conf").write_text(site)
        temp = "".join(
            f"{k}_temp_path {self.dir}/{k};\n"
            for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")  # fmt: skip
        )
        (self.dir / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {self.dir}/nginx.pid;\n"
            f"user {getpass.getuser()};\nerror_log {self.dir}/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n{access_log};\n{temp}include {self.dir}/vanbox-hub.conf;\n}}\n"
        )
        args = ["-p", str(self.dir), "-c", "nginx.conf", "-e", str(self.dir / "error.log")]
        check = subprocess.run([NGINX, "-t", *args], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, *args])
        wait_port(self.port)

    def get(self, path: str, headers: dict | None = None, method: str = "GET", body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def stop(self) -> None:
        terminate(self.proc)


def write_config(tmp: Path, db: Path) -> Path:
    passwd = tmp / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    set_user(passwd, "ben", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = tmp / "hub.toml"
    cfg.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {free_port()}\n'  # no broker: web only
        '[van]\nid = "van-a"\n'  # the tour below is this van's plan
        f'[hub]\ndatabase = "{db}"\ntrusted_proxy = "127.0.0.1"\n'
        f'[staff]\npasswd_file = "{passwd}"\n'
        f'[[tour.stops]]\nname = "Markt"\nmunicipality = "Peine"\nlat = {STOP[0]}\n'
        f'lon = {STOP[1]}\nweekdays = {ALL_DAYS}\nstart = "00:00"\nend = "23:59"\n'
    )
    return cfg


def fix(st: Store, north_m: float) -> None:
    """The van's newest fix, ``north_m`` metres north of the stop (within its radius)."""
    st.ingest_many([Position(time=datetime.now(UTC), lat=STOP[0] + north_m / 111_000,
                             lon=STOP[1], van="van-a")])  # fmt: skip


def web(cfg: Path, db: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "firmware.cli", "hub", "--no-ingest", "--config",
                          str(cfg), "--db", str(db), "--port", str(port), "--bind", "127.0.0.1",
                          "--threads", "4"], cwd=ROOT)  # fmt: skip
    wait_port(port, timeout=20)
    return p, port


@pytest.fixture
def site(tmp_path):
    db = tmp_path / "hub.db"
    st = Store(db)
    registry.register(st, ["van-a"])
    registry.rename(st, "van-a", "Bus Nord")
    registry.publish(st, "van-a")
    fix(st, 0)
    cfg = write_config(tmp_path, db)
    webs = [web(cfg, db), web(cfg, db)]
    ng = Nginx(tmp_path, [port for _, port in webs])
    yield ng, st, webs
    ng.stop()
    for p, _ in webs:
        terminate(p)
    st.close()


def position(body: bytes) -> tuple[float, float] | None:
    import json

    v = json.loads(body)["vans"][0]
    return None if v["position"] is None else (v["position"]["lat"], v["position"]["lon"])


def test_a_vans_move_shows_through_the_cache_within_max_age(site):
    ng, st, _ = site
    if datetime.now().astimezone().strftime("%H:%M") in ("23:59", "00:00"):
        pytest.skip("the all-day visit is between two days")
    r, body = ng.get("/api/public/vans")
    assert r.status == 200, body
    assert r.getheader("Cache-Control") == (
        f"public, max-age={PUBLIC_MAX_AGE_S}, stale-while-revalidate={PUBLIC_SWR_S}"
    )
    assert r.getheader("ETag")
    first = position(body)
    assert first is not None, body
    r2, _ = ng.get("/api/public/vans")
    assert r2.getheader("X-Cache-Status") == "HIT"
    fix(st, 100)  # the van moves 100 m (4th decimal of the public position)
    t0 = time.monotonic()
    statuses = []
    while True:
        r, body = ng.get("/api/public/vans")
        statuses.append(r.getheader("X-Cache-Status"))
        if position(body) != first:
            break
        # nginx counts an answer's age in whole seconds, and the first poll after it
        # expired gets the stale copy (stale-while-revalidate) while it is fetched anew.
        assert time.monotonic() - t0 < PUBLIC_MAX_AGE_S + 2.0, statuses[-5:]
        time.sleep(0.1)
    took = time.monotonic() - t0
    print(f"\nmove visible through nginx after {took:.2f} s (max-age {PUBLIC_MAX_AGE_S} s); "
          f"{statuses.count('HIT')} of {len(statuses)} polls from the cache")  # fmt: skip
    assert position(body)[0] > first[0]
    assert statuses.count("HIT") >= len(statuses) // 2  # the cache did serve meanwhile
    # The public pages are cached alike; the ETag gets a 304 from nginx.
    r, page = ng.get("/")
    assert r.status == 200 and r.getheader("Cache-Control").startswith("public, max-age=")
    r304, _ = ng.get("/", {"If-None-Match": r.getheader("ETag")})
    assert r304.status == 304
    r, _ = ng.get("/timetable")
    assert r.status == 200 and r.getheader("ETag")
    assert ng.get("/timetable")[0].getheader("X-Cache-Status") == "HIT"
    # A request with a cookie is never answered from the cache, nor stored.
    r, _ = ng.get("/api/public/vans", {"Cookie": "session=x"})
    assert r.getheader("X-Cache-Status") == "BYPASS"


def login(ng: Nginx, name: str) -> str:
    """Log in through nginx; returns the session cookie."""
    r, page = ng.get("/staff/login")
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    cookie = "; ".join(c.split(";")[0] for c in r.headers.get_all("Set-Cookie") or [])
    from urllib.parse import urlencode

    form = urlencode({"name": name, "password": PASSWORD, "csrf_token": token})
    r, _ = ng.get("/staff/login", {"Cookie": cookie, "Content-Type":
                  "application/x-www-form-urlencoded"}, method="POST", body=form)  # fmt: skip
    assert r.status == 302, r.status
    cookies = [c.split(";")[0] for c in r.headers.get_all("Set-Cookie")]
    return "; ".join(cookies)


def test_staff_pages_are_never_cached_and_any_web_process_serves_a_user(site):
    ng, _, webs = site
    anna, ben = login(ng, "anna"), login(ng, "ben")
    seen = []
    for who, cookie in (("anna", anna), ("ben", ben), ("anna", anna), ("ben", ben)):
        r, page = ng.get("/staff/", {"Cookie": cookie})
        assert r.status == 200
        assert r.getheader("Cache-Control") == "no-store"
        assert r.getheader("X-Cache-Status") is None  # nginx did not even look
        text = page.decode()
        other = "ben" if who == "anna" else "anna"
        assert re.search(rf"\b{who}\b", text) and not re.search(rf"\b{other}\b", text), who
        seen.append(who)
    r, page = ng.get("/staff/")  # no session: the login page, never someone's page
    assert r.status in (302, 303) and b"anna" not in page
    # The same session cookie on each web process directly: both know anna (sessions
    # live in the database, not in a process's memory).
    for _, port in webs:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/staff/", headers={"Cookie": anna})
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        assert r.status == 200 and re.search(r"\banna\b", text), port


class CookieApp:
    """A stand-in origin whose public answer sets a cookie: nginx must not keep it."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, environ, start_response):
        self.n += 1
        start_response("200 OK", [("Cache-Control", "public, max-age=60"),
                                  ("Set-Cookie", f"who={self.n}; Path=/"),
                                  ("Content-Type", "text/plain")])  # fmt: skip
        return [f"answer {self.n}".encode()]


class Quiet(WSGIRequestHandler):
    def log_message(self, *a) -> None:
        pass


def test_an_answer_that_sets_a_cookie_is_never_cached_nor_a_post(tmp_path):
    app = CookieApp()
    port = free_port()
    srv = make_server("127.0.0.1", port, app, handler_class=Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ng = Nginx(tmp_path, [port])
    try:
        bodies = [ng.get("/api/public/vans")[1] for _ in range(3)]
        assert bodies == [b"answer 1", b"answer 2", b"answer 3"]  # each from the origin
        r, body = ng.get("/api/public/vans", method="POST", body="x")
        assert body == b"answer 4" and r.getheader("X-Cache-Status") in (None, "MISS")
    finally:
        ng.stop()
        srv.shutdown()
