"""The shipped mosquitto config: it starts, and the van's bridge queues while the central
broker is down and forwards everything when it returns.

Two real mosquitto processes on free ports, stopped with SIGTERM: the "van" runs
``deploy/mosquitto/van-bridge.conf`` under a main config shaped like Debian's
(persistence on, ``include_dir``); the "central" broker runs the shipped
``central.conf`` and ``central.acl`` (TLS with a throwaway CA, a password file with the
bridge's login from van-bridge.conf and the hub's), so the test also shows that the
two shipped configs agree (the ACL lets this van's bridge write its topics). The files
are adapted only where the test must differ: ports, paths, the central address, and a
shorter ``restart_timeout`` so the bridge reconnects within a second.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware.localnet import terminate

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "mosquitto" / "van-bridge.conf"
CENTRAL_CONF = ROOT / "deploy" / "mosquitto" / "central.conf"
CENTRAL_ACL = ROOT / "deploy" / "mosquitto" / "central.acl"
HUB = ("vanbox-hub", "hub-secret")  # the hub's login, allowed by the ACL to read vanbox/#
MOSQUITTO = "/usr/sbin/mosquitto"

pytestmark = pytest.mark.mqtt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"mosquitto on {port} not up: {log.read_text()[-2000:]}")


class Mosquitto:
    def __init__(self, conf: Path, port: int) -> None:
        self.conf, self.port = conf, port
        self.log = conf.parent / "stderr.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log, start_new_session=True
            )
        wait_port(self.port, self.proc, self.log)

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None


# As root, mosquitto drops to the "mosquitto" user, which cannot enter pytest's 0700
# temp dirs; keep it root in the test (on the Pi, Debian's paths belong to mosquitto).
AS_USER = "user root\n" if os.geteuid() == 0 else ""


def make_ca(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, crt = (
        d / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem")
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        ca_key,
        "-out",
        ca,
        "-days",
        "30",
        "-subj",
        "/CN=vanbox test CA",
    )
    run("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    ext = d / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "30", "-extfile", ext)  # fmt: skip
    return ca, crt, key


# Debian's stock /etc/mosquitto/mosquitto.conf (package mosquitto 2.0), paths made local.
DEBIAN_MAIN = """\
# Place your local configuration in /etc/mosquitto/conf.d/
#
# A full description of the configuration file is at
# /usr/share/doc/mosquitto/examples/mosquitto.conf.example

pid_file /run/mosquitto/mosquitto.pid

persistence true
persistence_location /var/lib/mosquitto/

log_dest file /var/log/mosquitto/mosquitto.log

include_dir /etc/mosquitto/conf.d
"""


def debian_main(d: Path) -> str:
    return (
        DEBIAN_MAIN.replace("/run/mosquitto/", f"{d}/")
        .replace("/var/lib/mosquitto/", f"{d}/")
        .replace("/var/log/mosquitto/", f"{d}/")
        .replace("/etc/mosquitto/conf.d", f"{d}/conf.d")
    )


def shipped_value(key: str) -> str:
    m = re.search(rf"^{key} (.+)$", SHIPPED.read_text(), re.M)
    assert m, f"{key} missing from {SHIPPED}"
    return m.group(1).strip()


@pytest.fixture
def brokers(tmp_path: Path):
    ca, crt, srv_key = make_ca(tmp_path / "pki")

    # central: the shipped central.conf + central.acl (TLS, passwords, per-van ACL) in
    # conf.d under Debian's stock main config, with temp paths and a free port; logins
    # for this van's bridge and for the hub
    cdir = tmp_path / "central"
    (cdir / "conf.d").mkdir(parents=True)
    cport = free_port()
    pw = cdir / "passwd"
    for i, (user, password) in enumerate(
        [(shipped_value("remote_username"), shipped_value("remote_password")), HUB]
    ):
        subprocess.run(
            ["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(pw), user, password],
            check=True, capture_output=True,
        )  # fmt: skip
    pw.chmod(0o600)
    shutil.copy(CENTRAL_ACL, cdir / "acl")
    conf = CENTRAL_CONF.read_text()
    for name, value in {
        "password_file": pw, "acl_file": cdir / "acl", "listener": f"{cport} 127.0.0.1",
        "certfile": crt, "keyfile": srv_key, "log_dest": "stderr",
    }.items():  # fmt: skip
        assert len(re.findall(rf"^{name} .*$", conf, re.M)) == 1, f"central.conf: {name}"
        conf = re.sub(rf"^{name} .*$", f"{name} {value}", conf, flags=re.M)
    (cdir / "conf.d" / "vanbox.conf").write_text(conf)
    (cdir / "mosquitto.conf").write_text(AS_USER + debian_main(cdir))
    central = Mosquitto(cdir / "mosquitto.conf", cport)

    # van: Debian-shaped main config + the shipped file in conf.d, adapted
    vdir = tmp_path / "van"
    (vdir / "conf.d").mkdir(parents=True)
    vport = free_port()
    text = SHIPPED.read_text()
    text = text.replace("listener 1883 127.0.0.1", f"listener {vport} 127.0.0.1")
    text = re.sub(r"^address .+$", f"address 127.0.0.1:{cport}", text, flags=re.M)
    text = re.sub(r"^bridge_cafile .+$", f"bridge_cafile {ca}", text, flags=re.M)
    text = re.sub(r"^restart_timeout .+$", "restart_timeout 1 1", text, flags=re.M)
    (vdir / "conf.d" / "van-bridge.conf").write_text(text)
    (vdir / "mosquitto.conf").write_text(AS_USER + debian_main(vdir) + "log_type all\n")
    van = Mosquitto(vdir / "mosquitto.conf", vport)
    yield van, central, ca
    van.stop()
    central.stop()


def client(port: int, cid: str, *, ca: Path | None = None, clean: bool = True, **auth):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, clean_session=clean)
    if ca:
        c.tls_set(ca_certs=str(ca))
    if auth:
        c.username_pw_set(auth["username"], auth["password"])
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    return c


class Collector:
    def __init__(self) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()

    def on_message(self, client, userdata, msg) -> None:
        with self.cond:
            self.got.append((msg.topic, msg.payload))
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 30.0) -> list[tuple[str, bytes]]:
        return self.wait_until(lambda got: len(got) >= n, timeout)

    def wait_until(self, pred, timeout: float = 30.0) -> list[tuple[str, bytes]]:
        with self.cond:
            self.cond.wait_for(lambda: pred(self.got), timeout)
            return list(self.got)


def subscriber(port: int, ca: Path, col: Collector, topic: str) -> mqtt.Client:
    """The hub: a persistent-session subscriber at the central broker."""
    auth = {"username": HUB[0], "password": HUB[1]}
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="central-reader", clean_session=False)
    c.tls_set(ca_certs=str(ca))
    c.username_pw_set(**auth)
    c.on_message = col.on_message
    subscribed = threading.Event()
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    assert subscribed.wait(10), "subscription at the central broker not acknowledged"
    return c


def van_id() -> str:
    return shipped_value("notification_topic").split("/")[1]


def van_topic() -> str:
    return f"vanbox/{van_id()}/#"


def test_shipped_config_starts_and_bridges(brokers):
    """Central under Debian's stock main config; the bridge forwards exactly the van's
    event topics out, the hub's ack and plan in, and announces itself on .../bridge."""
    van, central, ca = brokers
    central.start()
    van.start()
    assert van.proc.poll() is None and central.proc.poll() is None
    col = Collector()
    sub = subscriber(central.port, ca, col, van_topic())
    pub = client(van.port, "box")
    box_got = Collector()
    pub.on_message = box_got.on_message
    pub.subscribe([(f"vanbox/{van_id()}/ack", 1), (f"vanbox/{van_id()}/plan", 1)])
    try:
        base = van_topic().rstrip("#")
        deadline = time.monotonic() + 20
        # the bridge connects within restart_timeout; publish until the status arrives
        while (base + "status", b"online") not in col.got and time.monotonic() < deadline:
            pub.publish(base + "status", b"online", qos=1, retain=True).wait_for_publish(5)
            col.wait_until(lambda g: (base + "status", b"online") in g, timeout=0.5)
        assert (base + "status", b"online") in col.got
        assert (base + "bridge", b"1") in col.got  # the bridge's notification
        # only the listed topics cross: not other topics, not the van's own ack or plan
        for t in ("private/x", base + "selfie", base + "ack", base + "plan"):
            pub.publish(t, b"local only", qos=1).wait_for_publish(5)
        kinds = ("location", "track", "footfall", "checkin", "stop", "contact", "tally")
        for kind in kinds:
            pub.publish(base + kind, b"after", qos=1).wait_for_publish(5)
        got = col.wait_until(lambda g: all((base + k, b"after") in g for k in kinds))
        assert all((base + k, b"after") in got for k in kinds)
        assert not any(p == b"local only" for _, p in got)
        # the way back: the hub's retained ack and plan reach the box's local broker
        sub.publish(base + "ack", b'{"ack":1}', qos=1, retain=True).wait_for_publish(5)
        sub.publish(base + "plan", b'{"plan":1}', qos=1, retain=True).wait_for_publish(5)
        back = box_got.wait_until(lambda g: len([x for x in g if x[1] != b"local only"]) >= 2)
        assert {(t, p) for t, p in back if p != b"local only"} == {
            (base + "ack", b'{"ack":1}'),
            (base + "plan", b'{"plan":1}'),
        }
    finally:
        pub.loop_stop()
        pub.disconnect()
        sub.loop_stop()
        sub.disconnect()
    log = (van.conf.parent / "mosquitto.log").read_text()
    assert "Error" not in log, log[-2000:]


def test_bridge_queues_while_central_is_down(brokers):
    van, central, ca = brokers
    central.start()
    van.start()
    base = van_topic().rstrip("#")
    # a persistent reader at the central broker, then gone: its session keeps its queue
    col = Collector()
    sub = subscriber(central.port, ca, col, van_topic())
    sub.loop_stop()
    sub.disconnect()

    central.stop()  # the mobile link is down
    n = 300

    def publish(rng: range) -> None:
        pub = client(van.port, "box")
        try:
            for i in rng:
                info = pub.publish(base + "track", f"{i}".encode(), qos=1)
                info.wait_for_publish(5)
                assert info.is_published()  # the local broker acknowledged (PUBACK)
        finally:
            pub.loop_stop()
            pub.disconnect()

    publish(range(0, n // 2))
    van.stop()  # the van's broker restarts meanwhile (its queue is saved and reloaded)
    van.start()
    publish(range(n // 2, n))

    central.start()  # the link is back; the bridge reconnects and drains its queue
    sub = subscriber(central.port, ca, col, van_topic())
    try:
        # (the bridge's own "1" notifications come too: count the track messages)
        got = col.wait_until(lambda g: sum(t == base + "track" for t, _ in g) >= n, timeout=60)
    finally:
        sub.loop_stop()
        sub.disconnect()
    payloads = [int(p) for t, p in got if t == base + "track"]
    assert sorted(set(payloads)) == list(range(n)), (
        f"missing: {sorted(set(range(n)) - set(payloads))[:20]}"
    )
    assert payloads == sorted(payloads)  # in order


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGSTOP"])
def test_a_bridged_vans_power_cut_shows_offline_at_the_hub(brokers, tmp_path, sig):
    """Issue 11 point 5: the box publishes through the van's bridge; the van's broker is
    SIGKILLed (its kernel still closes the TCP connection) or SIGSTOPped (like a real
    power cut: the connection just goes silent, and only the keepalive notices). The
    central broker publishes the bridge's last will "0" on vanbox/<van>/bridge and the
    real hub marks the van offline, although the box's own retained status still says
    online. Keepalive 3 s here (60 s shipped: within 90 s)."""
    from hub.ingest import Hub
    from telemetry.publisher import Publisher
    from telemetry.store import Store

    van, central, ca = brokers
    bridge_conf = van.conf.parent / "conf.d" / "van-bridge.conf"
    text = bridge_conf.read_text()
    assert re.search(r"^keepalive_interval 60$", text, re.M)
    bridge_conf.write_text(re.sub(r"^keepalive_interval .+$", "keepalive_interval 3", text,
                                  flags=re.M))  # fmt: skip
    central.start()
    van.start()
    pw_file = tmp_path / "hub.password"
    pw_file.write_text(HUB[1])
    hub_store = Store(tmp_path / "hub.db")
    hub = Hub(hub_store, {"host": "127.0.0.1", "port": central.port, "tls": True,
                          "ca_file": str(ca), "username": HUB[0],
                          "password_file": str(pw_file), "keepalive": 10},
              client_id="vanbox-hub")  # fmt: skip
    box_store = Store(tmp_path / "box.db", van=van_id(), tid="JR")
    box = Publisher(box_store, {"host": "127.0.0.1", "port": van.port, "keepalive": 5},
                    van=van_id(), tid="JR")  # fmt: skip

    def state() -> tuple | None:
        row = (
            hub_store.reader()
            .execute("SELECT status, box_status, bridge FROM van_status WHERE van = ?", (van_id(),))
            .fetchone()
        )
        return None if row is None else tuple(row)

    hub.start()
    box.start()
    try:
        assert hub.wait_connected(10)
        deadline = time.monotonic() + 30
        while state() != ("online", "online", "online") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state() == ("online", "online", "online")
        t0 = time.monotonic()
        van.proc.send_signal(getattr(signal, sig))  # the van's power is cut
        while state()[0] != "offline" and time.monotonic() - t0 < 120:
            time.sleep(0.05)
        took = time.monotonic() - t0
        assert state() == ("offline", "online", "offline"), state()
        print(f"\nbridged van offline at the hub {took:.1f} s after {sig} (keepalive 3 s)")
        assert took < 120
        if sig == "SIGSTOP":
            assert took >= 3  # it really was the keepalive, not a closed connection
    finally:
        if van.proc is not None:
            van.proc.send_signal(signal.SIGCONT)
        box.stop(timeout=2)
        hub.stop()
        box_store.close()
        hub_store.close()


# --- reload (SIGHUP) as the mosquitto user --------------------------------------------

INSTALL_SH = ROOT / "deploy" / "install.sh"


def installed_mode_and_group() -> tuple[int, str]:
    """How deploy/install.sh installs van-bridge.conf: (mode, group)."""
    text = INSTALL_SH.read_text()
    m = re.search(r'put_new "\$DEPLOY/mosquitto/van-bridge.conf" \S+ (\d+)', text)
    g = re.search(r"ensure_group /etc/mosquitto/conf.d/van-bridge.conf (\S+)", text)
    assert m and g, "install.sh must install van-bridge.conf with a mode and a group"
    return int(m.group(1), 8), g.group(1)


def mosquitto_user_dir(prefix: str) -> Path:
    """A directory the mosquitto user can enter (pytest's tmp_path is root-only), laid out
    like Debian's: the main config, conf.d, a persistence and a log dir owned by
    mosquitto (the daemon drops root before it writes any of them)."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    d.chmod(0o755)
    (d / "conf.d").mkdir(mode=0o755)
    for sub in ("run", "lib", "log"):
        (d / sub).mkdir()
        shutil.chown(d / sub, "mosquitto", "mosquitto")
    return d


def debian_main_as_mosquitto(d: Path) -> str:
    return "user mosquitto\n" + (
        DEBIAN_MAIN.replace("/run/mosquitto/", f"{d}/run/")
        .replace("/var/lib/mosquitto/", f"{d}/lib/")
        .replace("/var/log/mosquitto/", f"{d}/log/")
        .replace("/etc/mosquitto/conf.d", f"{d}/conf.d")
    )


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid")


def reload_and_read_log(proc: subprocess.Popen, log: Path, timeout: float = 10.0) -> str:
    """SIGHUP, then the log lines the reload wrote (it is done when the next line
    after "Reloading config." arrives or the timeout passes)."""
    before = len(log.read_text())
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = log.read_text()[before:]
        if "Reloading config." in new and ("Error" in new or new.count("\n") >= 2):
            time.sleep(0.2)
            return log.read_text()[before:]
        time.sleep(0.05)
    return log.read_text()[before:]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to the mosquitto user needs root")
def test_the_bridge_config_reloads_with_sighup_as_the_mosquitto_user():
    """Issue 15: logrotate reloads mosquitto daily (SIGHUP); mosquitto has dropped root by
    then and re-reads every config file as the mosquitto user. The shipped van-bridge.conf,
    installed with install.sh's mode and group, reloads cleanly; the old root-only 640
    install fails (the control that shows the test can tell)."""
    mode, group = installed_mode_and_group()
    assert group == "mosquitto" and mode & 0o040 and not mode & 0o007
    d = mosquitto_user_dir("vanbox-bridge-reload-")
    proc = None
    try:
        port = free_port()
        text = SHIPPED.read_text().replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
        text = re.sub(r"^address .+$", f"address 127.0.0.1:{free_port()}", text, flags=re.M)
        ca, _, _ = make_ca(d / "pki")
        for p in (d / "pki", *(d / "pki").iterdir()):
            p.chmod(0o755 if p.is_dir() else 0o644)
        text = re.sub(r"^bridge_cafile .+$", f"bridge_cafile {ca}", text, flags=re.M)
        conf = d / "conf.d" / "van-bridge.conf"
        conf.write_text(text)
        shutil.chown(conf, "root", group)
        conf.chmod(mode)
        (d / "mosquitto.conf").write_text(debian_main_as_mosquitto(d) + "log_type all\n")
        log = d / "log" / "mosquitto.log"
        with open(d / "stderr.log", "wb") as err:
            proc = subprocess.Popen([MOSQUITTO, "-c", str(d / "mosquitto.conf")], stdout=err,
                                    stderr=err, start_new_session=True)  # fmt: skip
        wait_port(port, proc, d / "stderr.log")
        assert uid_of(proc.pid) == pwd_uid("mosquitto")
        out = reload_and_read_log(proc, log)
        assert "Reloading config." in out, out
        assert "Unable to open config file" not in out and "Error found at" not in out, out
        # the control: root-only (as install.sh did before), the reload fails
        shutil.chown(conf, "root", "root")
        out = reload_and_read_log(proc, log)
        assert "Unable to open config file" in out, out
        assert proc.poll() is None  # mosquitto keeps running on its old config
    finally:
        if proc is not None:
            terminate(proc)
        shutil.rmtree(d, ignore_errors=True)


def pwd_uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid
