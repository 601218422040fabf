"""The shipped central broker config (deploy/mosquitto/central.conf + central.acl) under
a real mosquitto (in conf.d of Debian's stock main config), with TLS from a CA made here:
a van can publish only its own event topics and read only its own ack and plan, the hub
reads everything and writes acks and plans, neither the hub nor the OwnTracks login can
publish as a van, no login can take another's client id (and so the hub's session), and
anonymous clients can do nothing."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import MOSQUITTO, free_port, wait_port
from tests.deploy.test_mosquitto_configs import (
    debian_main,
    debian_main_as_mosquitto,
    mosquitto_user_dir,
    pwd_uid,
    reload_and_read_log,
    uid_of,
)

pytestmark = pytest.mark.mqtt

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "mosquitto" / "central.conf"
ACL = ROOT / "deploy" / "mosquitto" / "central.acl"
PASSWORDS = {"vanbox-hub": "hub-secret", "van-a": "a-secret", "van-b": "b-secret",
             "owntracks": "ot-secret", "homeassistant": "ha-secret"}  # fmt: skip
EVENT_KINDS = (
    "status", "location", "track", "footfall", "checkin", "stop", "contact", "tally", "bridge"
)  # fmt: skip


def test_every_registered_event_topic_may_cross_the_acl_and_the_bridge():
    """A new kind of event (telemetry/kinds.py) that the central broker would drop."""
    from telemetry import kinds

    acl = ACL.read_text()
    bridge = (ROOT / "deploy" / "mosquitto" / "van-bridge.conf").read_text()
    for k in kinds.registered():
        assert k.topic in EVENT_KINDS, k.topic
        assert f"pattern write vanbox/%u/{k.topic}\n" in acl, k.topic
        assert f"topic vanbox/jungregio-1/{k.topic} out 1\n" in bridge, k.topic


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> None:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=vanbox test CA", cwd=d)  # fmt: skip
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
            cwd=d)  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf",
            cwd=d)  # fmt: skip


def adapt(conf: str, d: Path, port: int) -> str:
    """The shipped config with temp paths and a free port; every directive replaced must
    be there (so the test fails if the shipped file loses TLS, passwords or the ACL)."""
    subs = {
        "allow_anonymous": "false",
        "password_file": str(d / "passwd"),
        "acl_file": str(d / "acl"),
        "listener": f"{port} 127.0.0.1",
        "certfile": str(d / "server.crt"),
        "keyfile": str(d / "server.key"),
        "log_dest": "stderr",
    }
    for key, value in subs.items():
        pattern = rf"^{key} .*$"
        if key == "allow_anonymous":
            assert re.search(r"^allow_anonymous false$", conf, re.M), "anonymous must be off"
            continue
        assert len(re.findall(pattern, conf, re.M)) == 1, f"{key} must appear once"
        conf = re.sub(pattern, f"{key} {value}", conf, flags=re.M)
    assert not re.search(r"^persistence_location ", conf, re.M), (
        "Debian's main config sets persistence_location; a second one stops mosquitto"
    )
    return conf


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    if not shutil.which("mosquitto_passwd"):
        pytest.fail("mosquitto_passwd is missing: apt-get install mosquitto")
    d = tmp_path_factory.mktemp("central")
    make_certs(d)
    for i, (user, pw) in enumerate(PASSWORDS.items()):
        flags = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", *flags, "-b", str(d / "passwd"), user, pw],
                       check=True, capture_output=True)  # fmt: skip
    shutil.copy(ACL, d / "acl")
    port = free_port()
    (d / "conf.d").mkdir()
    (d / "conf.d" / "vanbox.conf").write_text(adapt(CONF.read_text(), d, port))
    # Started as root, mosquitto would drop to the "mosquitto" user, who cannot read
    # the temp dir; stay who we are.
    (d / "mosquitto.conf").write_text(f"user {getpass.getuser()}\n" + debian_main(d))
    log = open(d / "stderr.log", "wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(d / "mosquitto.conf")], stdout=log,
                            stderr=log, start_new_session=True)  # fmt: skip
    try:
        wait_port(port)
    except TimeoutError:
        proc.kill()
        raise RuntimeError((d / "stderr.log").read_text()[-2000:]) from None
    yield d, port
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    log.close()


class Client:
    """A paho client over TLS that remembers its CONNACK and what it received."""

    def __init__(self, d: Path, port: int, user: str | None, password: str | None = None,
                 *, tls: bool = True, client_id: str | None = None,
                 clean: bool = True) -> None:  # fmt: skip
        self.got: list[tuple[str, bytes]] = []
        self.connack = threading.Event()
        self.subscribed = threading.Event()
        self.rc = None
        self.session_present = None
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=client_id or f"acl-{user}-{time.time()}",
                             clean_session=clean)  # fmt: skip
        if tls:
            self.c.tls_set(ca_certs=str(d / "ca.crt"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if user is not None:
            self.c.username_pw_set(user, password if password is not None else PASSWORDS[user])
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, m.payload))
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect("localhost", port)
        self.c.loop_start()

    def _on_connect(self, c, u, flags, rc, props) -> None:
        self.rc = rc
        self.session_present = flags.session_present
        self.connack.set()

    def connected(self, timeout: float = 10.0) -> bool:
        assert self.connack.wait(timeout), "no CONNACK"
        return not self.rc.is_failure

    def subscribe(self, topic: str) -> None:
        self.c.subscribe(topic, 1)
        assert self.subscribed.wait(10)

    def publish(self, topic: str, payload: str) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def wait_for(cond, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def test_a_van_publishes_only_under_its_own_prefix(central):
    d, port = central
    hub = Client(d, port, "vanbox-hub")
    van_a, van_b = Client(d, port, "van-a"), Client(d, port, "van-b")
    try:
        assert hub.connected() and van_a.connected() and van_b.connected()
        hub.subscribe("vanbox/#")
        van_b.subscribe("vanbox/#")  # a van may subscribe, but it is sent nothing
        van_a.publish("vanbox/van-b/status", "offline")  # forging another van: dropped
        van_a.publish("vanbox/van-b/location", "{}")
        van_a.publish("elsewhere/topic", "x")
        van_a.publish("vanbox/van-a/status", "online")  # its own: delivered
        # One connection delivers in order: once the last one is here, the others
        # would have been here before it.
        wait_for(lambda: ("vanbox/van-a/status", b"online") in hub.got, "van-a's own message")
        assert hub.got == [("vanbox/van-a/status", b"online")]
        assert van_b.got == []
    finally:
        for c in (hub, van_a, van_b):
            c.close()


def test_anonymous_and_wrong_passwords_are_refused(central):
    d, port = central
    anon = Client(d, port, None)
    wrong = Client(d, port, "van-a", "guess")
    try:
        assert not anon.connected()
        assert not wrong.connected()
        assert anon.rc.getName() == "Not authorized"
    finally:
        anon.close()
        wrong.close()
    # Even a client that tries to publish right away gets nothing through.
    hub = Client(d, port, "vanbox-hub")
    try:
        assert hub.connected()
        hub.subscribe("vanbox/#")
        sneaky = Client(d, port, None)
        sneaky.c.publish("vanbox/van-a/status", "offline", qos=0)
        assert not sneaky.connected()
        sneaky.close()
        marker = Client(d, port, "van-a")
        assert marker.connected()
        marker.publish("vanbox/van-a/status", "online")
        wait_for(lambda: hub.got, "the marker")
        assert hub.got == [("vanbox/van-a/status", b"online")]
        marker.close()
    finally:
        hub.close()


def test_no_plain_text_listener(central):
    d, port = central
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain")
    plain.username_pw_set("vanbox-hub", PASSWORDS["vanbox-hub"])
    got = threading.Event()
    plain.on_connect = lambda *a: got.set()
    try:
        plain.connect("127.0.0.1", port)
        plain.loop_start()
        assert not got.wait(2), "a plain MQTT client must not get a CONNACK on the TLS port"
    except OSError:
        pass  # the broker may close the socket at once: refused either way
    finally:
        plain.loop_stop()


def test_the_hub_may_write_home_assistant_discovery(central):
    d, port = central
    hub = Client(d, port, "vanbox-hub")
    van = Client(d, port, "van-a")
    try:
        assert hub.connected() and van.connected()
        hub.subscribe("homeassistant/#")
        van.publish("homeassistant/sensor/x/config", "{}")  # a van may not
        hub.publish("homeassistant/sensor/vanbox_van-a/in/config", "{}")
        wait_for(lambda: hub.got, "the hub's own discovery message")
        assert [t for t, _ in hub.got] == ["homeassistant/sensor/vanbox_van-a/in/config"]
    finally:
        hub.close()
        van.close()


def test_a_van_writes_only_its_own_event_topics_and_reads_only_its_ack_and_plan(central):
    d, port = central
    hub = Client(d, port, "vanbox-hub")
    van_a, van_b = Client(d, port, "van-a"), Client(d, port, "van-b")
    try:
        assert hub.connected() and van_a.connected() and van_b.connected()
        hub.subscribe("vanbox/#")
        van_a.subscribe("vanbox/#")  # granted, but only its own ack and plan reach it
        for kind in EVENT_KINDS:
            van_a.publish(f"vanbox/van-a/{kind}", kind)
        for kind in ("ack", "plan", "selfie"):  # not a van's to write
            van_a.publish(f"vanbox/van-a/{kind}", "forged")
        van_a.publish("vanbox/van-a/status/deeper", "forged")
        # The hub writes acks and plans for every van, and nothing else under vanbox/.
        hub.publish("vanbox/van-b/ack", "for b")
        hub.publish("vanbox/van-b/plan", "for b")
        hub.publish("vanbox/van-a/status", "forged by the hub")
        hub.publish("vanbox/van-a/ack", "for a")
        hub.publish("vanbox/van-a/plan", "for a")
        wait_for(lambda: ("vanbox/van-a/plan", b"for a") in van_a.got, "van-a's plan")
        wait_for(lambda: ("vanbox/van-a/plan", b"for a") in hub.got, "the plan at the hub")
        assert van_a.got == [("vanbox/van-a/ack", b"for a"), ("vanbox/van-a/plan", b"for a")]
        assert hub.got == [(f"vanbox/van-a/{k}", k.encode()) for k in EVENT_KINDS] + [
            ("vanbox/van-b/ack", b"for b"),
            ("vanbox/van-b/plan", b"for b"),
            ("vanbox/van-a/ack", b"for a"),
            ("vanbox/van-a/plan", b"for a"),
        ]
        assert van_b.got == []
    finally:
        for c in (hub, van_a, van_b):
            c.close()


def test_the_hub_and_owntracks_cannot_publish_as_a_van(central):
    d, port = central
    hub = Client(d, port, "vanbox-hub")
    ot = Client(d, port, "owntracks")
    van_a = Client(d, port, "van-a")
    try:
        assert hub.connected() and ot.connected() and van_a.connected()
        hub.subscribe("vanbox/#")
        ot.subscribe("vanbox/#")  # OwnTracks reads locations and status only
        for kind in EVENT_KINDS:
            ot.publish(f"vanbox/owntracks/{kind}", "forged")
            hub.publish(f"vanbox/vanbox-hub/{kind}", "forged")
        ot.publish("vanbox/van-a/location", "forged")
        for kind in ("location", "status", "footfall"):
            van_a.publish(f"vanbox/van-a/{kind}", "real")
        wait_for(lambda: ("vanbox/van-a/footfall", b"real") in hub.got, "the marker")
        wait_for(lambda: ("vanbox/van-a/status", b"real") in ot.got, "status at owntracks")
        assert hub.got == [(f"vanbox/van-a/{k}", b"real") for k in ("location", "status",
                                                                      "footfall")]  # fmt: skip
        assert ot.got == [("vanbox/van-a/location", b"real"), ("vanbox/van-a/status", b"real")]
    finally:
        for c in (hub, ot, van_a):
            c.close()


def test_a_van_login_cannot_take_the_hubs_session(central):
    """Any van's login used with the hub's client id (clean session, which would wipe the
    hub's persistent session): the hub's queued messages survive and arrive."""
    d, port = central
    hub = Client(d, port, "vanbox-hub", client_id="vanbox-hub", clean=False)
    assert hub.connected()
    hub.subscribe("vanbox/#")
    hub.close()  # the hub is down; the broker queues for its session
    van_a = Client(d, port, "van-a")
    thief = None
    try:
        assert van_a.connected()
        for i in range(3):
            van_a.publish("vanbox/van-a/footfall", f"queued {i}")
        thief = Client(d, port, "van-b", client_id="vanbox-hub", clean=True)
        assert thief.connected()
        thief.subscribe("vanbox/#")
        van_a.publish("vanbox/van-a/footfall", "queued 3")
        time.sleep(0.3)
        assert thief.got == []  # it got neither the hub's session nor its messages
        hub = Client(d, port, "vanbox-hub", client_id="vanbox-hub", clean=False)
        assert hub.connected() and hub.session_present
        wait_for(lambda: len(hub.got) == 4, "the hub's queued messages")
        assert hub.got == [("vanbox/van-a/footfall", f"queued {i}".encode()) for i in range(4)]
        assert thief.connected()  # and the hub did not throw the van off either
    finally:
        for c in (hub, van_a, thief):
            if c is not None:
                c.close()


def acl_users() -> dict[str, list[str]]:
    """The ``user`` blocks of the shipped ACL: login -> its ``topic`` lines."""
    users: dict[str, list[str]] = {}
    current = None
    for line in ACL.read_text().splitlines():
        line = line.strip()
        if line.startswith("user "):
            current = line.split(None, 1)[1]
            users[current] = []
        elif line.startswith("pattern "):
            current = None
        elif line.startswith("topic ") and current is not None:
            users[current].append(line)
    return users


def test_every_non_van_login_in_the_acl_is_denied_its_van_space():
    """The van patterns apply to every login: each ``user`` block must deny
    vanbox/<login>/# (else that login can publish as a van named like itself)."""
    users = acl_users()
    assert {"vanbox-hub", "owntracks", "homeassistant"} <= set(users)
    for user, lines in users.items():
        assert f"topic deny vanbox/{user}/#" in lines, f"{user}: no deny line"


@pytest.mark.parametrize("user", ["vanbox-hub", "owntracks", "homeassistant"])
def test_no_non_van_login_can_publish_as_a_van(central, user):
    d, port = central
    hub = Client(d, port, "vanbox-hub") if user != "vanbox-hub" else None
    me = Client(d, port, user)
    van_a = Client(d, port, "van-a")
    reader = hub or me
    try:
        assert me.connected() and van_a.connected() and reader.connected()
        reader.subscribe("vanbox/#")
        for kind in (*EVENT_KINDS, "ack", "plan", "totals"):
            me.publish(f"vanbox/{user}/{kind}", "forged")
        van_a.publish("vanbox/van-a/status", "marker")
        wait_for(lambda: ("vanbox/van-a/status", b"marker") in reader.got, "the marker")
        assert [t for t, _ in reader.got if t.startswith(f"vanbox/{user}/")] == []
    finally:
        for c in (hub, me, van_a):
            if c is not None:
                c.close()


def test_the_hub_writes_totals_and_owntracks_which_their_readers_get(central):
    d, port = central
    hub = Client(d, port, "vanbox-hub")
    ha = Client(d, port, "homeassistant")
    ot = Client(d, port, "owntracks")
    van_a = Client(d, port, "van-a")
    try:
        assert hub.connected() and ha.connected() and ot.connected() and van_a.connected()
        ha.subscribe("vanbox/#")
        ot.subscribe("owntracks/#")
        van_a.publish("vanbox/van-a/totals", "forged by the van")  # only the hub's to write
        van_a.publish("owntracks/vanbox/van-a", "forged by the van")
        ot.publish("owntracks/vanbox/van-a", "forged by the recorder's login")
        hub.publish("vanbox/van-a/totals", "totals")
        hub.publish("owntracks/vanbox/van-a", "location")
        wait_for(lambda: ("vanbox/van-a/totals", b"totals") in ha.got, "totals at HA")
        wait_for(lambda: ot.got, "owntracks")
        assert ha.got == [("vanbox/van-a/totals", b"totals")]
        assert ot.got == [("owntracks/vanbox/van-a", b"location")]
    finally:
        for c in (hub, ha, ot, van_a):
            c.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to the mosquitto user needs root")
def test_central_reloads_logins_with_sighup_as_the_mosquitto_user():
    """Installed as the README says (password file and ACL root:mosquitto 640, certs
    root:mosquitto), a new van's login works after a SIGHUP, which mosquitto handles as
    the mosquitto user; a root-only ACL makes the reload fail (the control)."""
    d = mosquitto_user_dir("vanbox-central-reload-")
    proc = None
    try:
        make_certs(d)
        for i, user in enumerate(("vanbox-hub", "van-a")):
            flags = ["-c"] if i == 0 else []
            subprocess.run(["mosquitto_passwd", *flags, "-b", str(d / "passwd"), user,
                            PASSWORDS[user]], check=True, capture_output=True)  # fmt: skip
        shutil.copy(ACL, d / "acl")
        for name in ("passwd", "acl", "server.key", "server.crt"):
            shutil.chown(d / name, "root", "mosquitto")
            (d / name).chmod(0o640)
        (d / "ca.crt").chmod(0o644)
        port = free_port()
        (d / "conf.d" / "vanbox.conf").write_text(adapt(CONF.read_text(), d, port))
        (d / "mosquitto.conf").write_text(debian_main_as_mosquitto(d) + "log_type all\n")
        log = d / "log" / "mosquitto.log"
        with open(d / "stderr.log", "wb") as err:
            proc = subprocess.Popen([MOSQUITTO, "-c", str(d / "mosquitto.conf")], stdout=err,
                                    stderr=err, start_new_session=True)  # fmt: skip
        wait_port(port)
        assert uid_of(proc.pid) == pwd_uid("mosquitto")
        new = Client(d, port, "van-b")
        assert not new.connected()
        new.close()
        subprocess.run(["mosquitto_passwd", "-b", str(d / "passwd"), "van-b",
                        PASSWORDS["van-b"]], check=True, capture_output=True)  # fmt: skip
        shutil.chown(d / "passwd", "root", "mosquitto")
        (d / "passwd").chmod(0o640)
        out = reload_and_read_log(proc, log)
        assert "Reloading config." in out, out
        assert "Unable to open" not in out and "Error" not in out, out
        new = Client(d, port, "van-b")
        try:
            assert new.connected()
        finally:
            new.close()
        (d / "acl").chmod(0o600)  # root-only: the mosquitto user cannot read it
        out = reload_and_read_log(proc, log)
        assert "Error" in out, out
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)
