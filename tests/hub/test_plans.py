"""Plans from the hub to the box over a real mosquitto: a staff change on the hub is
published retained on ``vanbox/<van>/plan``; a subscriber that connects later gets it; a
box (its Publisher's ``on_plan``) stores it and its kiosk's next stops change; the hub
sends every plan again when it reconnects (a broker that lost its retained messages gets
them back) and retries a publish that failed while it was offline."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from werkzeug.security import generate_password_hash

from hub import plans as hub_plans
from hub.ingest import Hub
from hub.plans import PlanPublisher, install
from kiosk import create_app
from kiosk.auth import set_user
from telemetry.config import default_config
from telemetry.plan import Plan, receive_plan, stored_plan
from telemetry.publisher import Publisher
from telemetry.store import Store

VAN = "jungregio-1"
EDEM = "edemissen-schulzentrum"
T = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 local
PASSWORD = "lange-genug-2026"


class Clock:
    def now(self) -> datetime:
        return T


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def mqtt_cfg(broker, **extra) -> dict:
    return {"host": "127.0.0.1", "port": broker.port, "keepalive": 10, "rate_limit": 5000.0,
            **extra}  # fmt: skip


class Listener:
    """A plain subscriber to ``vanbox/+/plan``: what a van (or anyone) would receive."""

    def __init__(self, broker) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"listener-{time.monotonic_ns()}")
        c.on_connect = lambda cl, *a: cl.subscribe("vanbox/+/plan", qos=1)
        c.on_message = self._on_message
        c.connect("127.0.0.1", broker.port, keepalive=10)
        c.loop_start()
        self.client = c

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.got.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def versions(self) -> list[int]:
        with self._lock:
            return [json.loads(p)["version"] for _, p, _ in self.got if p]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def hub_side(tmp_path, broker):
    passwd = tmp_path / "staff.passwd"
    set_user(passwd, "anna", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    cfg = default_config({"staff": {"passwd_file": str(passwd)}, "mqtt": mqtt_cfg(broker)})
    st = Store(tmp_path / "hub.db", tz=cfg.timezone)
    hub = Hub(st, cfg.mqtt, client_id="test-hub", prefix="vanbox")
    app = create_app({"TESTING": True}, config=cfg, store=st, mode="hub")
    app.extensions["vanbox_clock"] = Clock()
    plans = PlanPublisher(st, hub.publish, prefix="vanbox")
    install(app, plans)
    hub.start()
    assert hub.wait_connected(10)
    plans.watch(hub)
    yield cfg, st, hub, app, plans
    plans.stop()
    hub.stop()
    st.close()


def staff_client(app):
    c = app.test_client()
    tok = lambda page: re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # noqa: E731
    r = c.post("/staff/login", data={"name": "anna", "password": PASSWORD,
                                     "csrf_token": tok(c.get("/staff/login").text)})  # fmt: skip
    assert r.status_code == 302

    def post(action: str, **form):
        page = c.get(f"/staff/plan/{VAN}").text
        r = c.post(f"/staff/plan/{VAN}/{action}", data={"csrf_token": tok(page), **form})
        assert r.status_code == 303, r.text[-500:]
        return r

    return post


def kiosk_stops(app) -> list[str]:
    """The start page's "where we'll be next" list, as text per line."""
    html = app.test_client().get("/").text  # German, the default
    items = re.findall(r'<li(?: class="open")?><span class="when">(.*?)</li>', html, re.S)
    return [re.sub(r"<[^>]+>", "", i).replace("\n", " ").strip() for i in items]


def test_a_staff_change_reaches_a_box_and_its_kiosk(tmp_path, broker, hub_side):
    cfg, hub_store, hub, app, plans = hub_side
    post = staff_client(app)
    post("cancel", date="2026-11-23", stop=EDEM, reason="Krankheit")
    assert stored_plan(hub_store, VAN).version == 1
    # a subscriber that connects afterwards gets the plan, retained
    late = Listener(broker)
    try:
        wait_for(lambda: late.versions() == [1], "the retained plan")
        topic, payload, retained = late.got[0]
        assert topic == f"vanbox/{VAN}/plan" and retained
        assert Plan.from_json(payload) == stored_plan(hub_store, VAN)
    finally:
        late.close()

    # the box: its own store and kiosk; its Publisher hands plans to the box's handler
    box_cfg = default_config({"mqtt": mqtt_cfg(broker)})
    box_store = Store(tmp_path / "box.db", van=VAN, tz=box_cfg.timezone)
    kiosk = create_app({"TESTING": True}, config=box_cfg, store=box_store, mode="box")
    kiosk.extensions["vanbox_clock"] = Clock()
    before = kiosk_stops(kiosk)
    assert any("Edemissen" in s and "Fällt aus" not in s for s in before), before

    def on_plan(payload: bytes) -> None:
        receive_plan(box_store, VAN, payload, topic=f"vanbox/{VAN}/plan")

    pub = Publisher(box_store, mqtt_cfg(broker, client_id="box-1"), van=VAN, tid="JR",
                    on_plan=on_plan)  # fmt: skip
    pub.start()
    try:
        wait_for(lambda: (p := stored_plan(box_store, VAN)) is not None and p.version == 1,
                 "the box to store the retained plan")  # fmt: skip
        after = kiosk_stops(kiosk)
        edem = [s for s in after if "Edemissen" in s]
        assert edem and "Fällt aus" in edem[0], after
        # a change while the box is connected arrives live
        post("delay", date="2026-11-23", stop="peine-marktplatz", delay_min="30")
        wait_for(lambda: stored_plan(box_store, VAN).version == 2, "the live plan")
        assert any("10:30" in s and "Peine" in s for s in kiosk_stops(kiosk))
    finally:
        pub.stop()
        box_store.close()


def test_the_hub_publishes_every_plan_again_when_it_reconnects(broker, hub_side):
    cfg, hub_store, hub, app, plans = hub_side
    post = staff_client(app)
    post("cancel", date="2026-11-23", stop=EDEM)
    wait_for(lambda: plans.sent >= 1, "the first publish")
    broker.stop()  # no persistence: the retained plan is gone with it
    wait_for(lambda: not hub.connected, "the hub to notice")
    broker.start()
    wait_for(lambda: hub.connected, "the hub to reconnect", timeout=40)
    wait_for(lambda: plans.sent >= 2, "the plan published again")
    # A client that connects afterwards gets it only if it is retained. (One that is
    # already subscribed when the publish lands gets it with retain=0: so a new client
    # each time, until one finds the retained copy.)
    deadline = time.monotonic() + 20
    got = None
    while got is None and time.monotonic() < deadline:
        late = Listener(broker)
        try:
            wait_for(lambda late=late: late.got, "a plan message", timeout=5)
            if late.got[0][2] and 1 in late.versions():
                got = late.got[0]
        except AssertionError:
            pass
        finally:
            late.close()
    assert got is not None, "no retained plan after the hub reconnected"


def test_a_publish_that_fails_offline_is_sent_once_connected(tmp_path, broker):
    st = Store(tmp_path / "hub.db")
    sent: list[tuple[str, str, bool]] = []
    up = threading.Event()

    def publish(topic: str, payload: str, *, retain: bool = False) -> bool:
        if not up.is_set():
            return False
        sent.append((topic, payload, retain))
        return True

    class FakeHub:  # connection state only: what PlanPublisher.watch reads
        class stats:  # noqa: N801
            connects = 0

        connected = False

    fake = FakeHub()
    plans = PlanPublisher(st, publish, prefix="vanbox")
    plan = Plan.from_tour(VAN, default_config().tour).changed(now=1.0)
    from telemetry.plan import save_plan

    save_plan(st, plan)
    try:
        assert plans(plan) is False and plans.pending == {VAN}
        plans.watch(fake)
        time.sleep(hub_plans.WATCH_S * 2)
        assert sent == []  # not connected: nothing tried in vain
        up.set()
        fake.connected, fake.stats.connects = True, 1
        wait_for(lambda: sent, "the retry")
        assert sent[0] == (f"vanbox/{VAN}/plan", plan.to_json(), True)
        wait_for(lambda: plans.pending == set(), "nothing pending")
    finally:
        plans.stop()
        st.close()


def test_vanbox_hub_publishes_the_stored_plans_when_it_starts(tmp_path, broker):
    """The real ``vanbox hub`` process (hub/server.py wiring): a plan stored while the
    broker had none is retained on the broker once the hub has connected."""
    import subprocess
    import sys

    from telemetry.plan import save_plan
    from tests.conftest import free_port, terminate

    db = tmp_path / "hub.db"
    st = Store(db)
    plan = Plan.from_tour("van-x", default_config().tour[:2]).changed(now=1.0)
    save_plan(st, plan)
    st.close()
    conf = tmp_path / "vanbox.toml"
    conf.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        f'[staff]\npasswd_file = "{tmp_path / "staff.passwd"}"\n'
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware", "hub", "--config", str(conf), "--db", str(db),
         "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    late = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            late = Listener(broker)
            time.sleep(0.5)
            if late.versions():
                break
            late.close()
            late = None
        assert late is not None, "no plan from the hub process"
        late.close()
        late = Listener(broker)  # connects after the publish: gets it only if retained
        wait_for(lambda: late.versions(), "the retained plan")
        topic, payload, retained = late.got[0]
        assert topic == "vanbox/van-x/plan" and retained and Plan.from_json(payload) == plan
    finally:
        if late is not None:
            late.close()
        terminate(proc)
