"""``vanbox doctor`` against broken setups: each prints the expected finding and fix.

Real parts: the GPS port is a pty fed by a thread (a pty has no real baud rate, so the
"receiver at 4800 baud" feeder reads the line speed the doctor set on the pty and sends
valid NMEA only at 4800, random high-bit bytes otherwise, which is what a UART at the
wrong rate delivers); brokers are private mosquittos with password files and TLS; pins
come from gpiozero's MockFactory; databases are real SQLite files. Only the disk usage
and the clock state are injected.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import random
import socket
import sqlite3
import subprocess
import termios
import threading
from collections import namedtuple
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gpiozero import DigitalInputDevice
from gpiozero.pins.mock import MockFactory

from firmware import doctor
from firmware.doctor import FAIL, OK, SKIP, WARN, Probes, analyse_nmea, run_checks

AS_ROOT = os.geteuid() == 0


# --- helpers -------------------------------------------------------------------------


def nmea(body: str) -> bytes:
    cs = 0
    for ch in body.encode():
        cs ^= ch
    return f"${body}*{cs:02X}\r\n".encode()


FIX_EPOCH = (
    nmea("GPGGA,101500.00,5219.2000,N,01014.0400,E,1,08,0.9,70.0,M,46.0,M,,")
    + nmea("GPRMC,101500.00,A,5219.2000,N,01014.0400,E,0.1,0.0,261126,,,A")
    + nmea("GPGSA,A,3,01,02,03,04,05,06,07,08,,,,,1.5,0.9,1.2")
)
NOFIX_EPOCH = nmea("GPGGA,101500.00,,,,,0,00,99.9,,,,,,") + nmea(
    "GPRMC,101500.00,V,,,,,,,261126,,,N"
)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def write_config(tmp: Path, **sections) -> Path:
    """A config file: defaults, with the sections given as dicts laid over."""
    sections.setdefault("database", {"path": str(tmp / "db" / "vanbox.db")})
    sections.setdefault("mqtt", {"enabled": False})
    lines = []
    for sec, values in sections.items():
        lines.append(f"[{sec}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    p = tmp / "vanbox.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


def probes(**kw) -> Probes:
    base = dict(
        serial_seconds=1.5,
        pin_factory=MockFactory(),
        disk_usage=lambda p: namedtuple("du", "total used free")(64e9, 10e9, 54e9),
        clock_synchronized=lambda: True,
        box_running=lambda: False,
        timeout=5.0,
        service_user=pwd.getpwuid(os.getuid()).pw_name,  # who owns the test's files
    )
    base.update(kw)
    return Probes(**base)


def by_check(findings, check):
    return [f for f in findings if f.check == check]


def one(findings, check):
    got = by_check(findings, check)
    assert len(got) == 1, got
    return got[0]


class Receiver:
    """A GPS receiver on a pty: ``speed`` None sends at any rate; else valid NMEA only
    at that line speed and garbage otherwise; ``silent`` sends nothing."""

    def __init__(self, epoch: bytes = FIX_EPOCH, speed: int | None = None, silent=False):
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.epoch, self.silent = epoch, silent
        self.speed = None if speed is None else getattr(termios, f"B{speed}")
        self.stop = threading.Event()
        self.rng = random.Random(7)
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.05):
            if self.silent:
                continue
            ispeed = termios.tcgetattr(self.master)[4]
            if self.speed is None or ispeed == self.speed:
                data = self.epoch
            else:
                data = bytes(self.rng.choice(range(128, 256)) for _ in range(len(self.epoch)))
            try:
                os.write(self.master, data)
            except OSError:
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        os.close(self.master)
        os.close(self.slave)


# --- NMEA analysis (pure) ------------------------------------------------------------


def test_analyse_nmea():
    s = analyse_nmea(FIX_EPOCH * 2)
    assert (s.valid, s.bad, s.fix, s.talkers) == (6, 0, True, ("GP",))
    assert s.garbage == 0
    assert not analyse_nmea(NOFIX_EPOCH).fix
    broken = FIX_EPOCH.replace(b"5219.2000", b"5219.2001", 1)  # one wrong checksum
    s = analyse_nmea(broken)
    assert (s.valid, s.bad) == (2, 1)
    noise = bytes(range(128, 256)) * 4
    s = analyse_nmea(noise + b"\x00garbage" + FIX_EPOCH[:40])
    assert s.valid == 0 and s.garbage > 0.5
    # a run-together line (a lost CR/LF) still yields the complete sentence behind it
    assert analyse_nmea(b"$GPGGA,1012" + FIX_EPOCH).valid == 3
    assert analyse_nmea(b"").nbytes == 0


# --- config --------------------------------------------------------------------------


def test_missing_config_fails_and_checks_go_on_with_defaults(tmp_path):
    f = run_checks(tmp_path / "nope.toml", probes())
    c = one(f, "config")
    assert c.status == FAIL and "no such file" in c.message and "vanbox.example.toml" in c.fix
    assert {x.check for x in f} >= {"serial", "gpio", "broker", "clock", "disk", "database"}
    assert doctor.exit_status(f) == 1


def test_unreadable_config_says_sudo(tmp_path, monkeypatch):
    cfg = write_config(tmp_path)
    if not AS_ROOT:
        cfg.chmod(0)
    else:  # root reads every file: make load_config meet the error a user would
        real = doctor.load_config

        def denied(path):
            real(path)
            raise doctor.ConfigError(f"{path}: cannot read (Permission denied)")

        monkeypatch.setattr(doctor, "load_config", denied)
    c = one(run_checks(cfg, probes()), "config")
    assert c.status == FAIL and "cannot read" in c.message and "sudo vanbox doctor" in c.fix


def test_invalid_config_names_key_and_fix(tmp_path):
    cfg = write_config(tmp_path, gps={"baud": 9601})
    c = one(run_checks(cfg, probes()), "config")
    assert c.status == FAIL and "gps.baud = 9601" in c.message and "4800" in c.message


# --- serial --------------------------------------------------------------------------


def test_no_port(tmp_path):
    cfg = write_config(tmp_path, gps={"port": str(tmp_path / "ttyNOPE")})
    s = one(run_checks(cfg, probes()), "serial")
    assert s.status == FAIL and "no such port" in s.message
    assert "--gps-hat" in s.fix and "/dev/vanbox-gps" in s.fix


def test_good_receiver(tmp_path):
    with Receiver() as rx:
        cfg = write_config(tmp_path, gps={"port": rx.path, "baud": 9600})
        s = doctor.check_serial(doctor.load_config(cfg), probes())
    assert s.status == OK, s
    assert "valid NMEA" in s.message and "fix" in s.message


def test_receiver_without_fix_warns(tmp_path):
    with Receiver(NOFIX_EPOCH) as rx:
        cfg = write_config(tmp_path, gps={"port": rx.path})
        s = doctor.check_serial(doctor.load_config(cfg), probes())
    assert s.status == WARN and "no position fix" in s.message and "sky" in s.fix


def test_wrong_baud_names_the_right_one(tmp_path):
    with Receiver(speed=4800) as rx:
        cfg = write_config(tmp_path, gps={"port": rx.path, "baud": 9600})
        s = doctor.check_serial(doctor.load_config(cfg), probes(rate_seconds=0.6))
    assert s.status == FAIL, s
    assert "garbage at 9600 baud" in s.message and "valid NMEA at 4800" in s.message
    assert "try baud 4800" in s.fix and "gps.baud = 4800" in s.fix


def test_rare_baud_found_after_the_common_ones(tmp_path):
    with Receiver(speed=57600) as rx:
        cfg = write_config(tmp_path, gps={"port": rx.path, "baud": 9600})
        s = doctor.check_serial(
            doctor.load_config(cfg), probes(serial_seconds=0.5, rate_seconds=0.4)
        )
    assert s.status == FAIL and "valid NMEA at 57600" in s.message


def test_garbage_at_every_rate(tmp_path):
    with Receiver(speed=230400) as rx:  # a rate vanbox does not offer
        cfg = write_config(tmp_path, gps={"port": rx.path, "baud": 9600})
        s = doctor.check_serial(
            doctor.load_config(cfg), probes(serial_seconds=0.5, rate_seconds=0.3)
        )
    assert s.status == FAIL and "no valid NMEA at 9600 baud" in s.message
    assert "wrong baud rate" in s.message and "try baud 4800 or 9600" in s.fix


def test_silent_port(tmp_path):
    with Receiver(silent=True) as rx:
        cfg = write_config(tmp_path, gps={"port": rx.path})
        s = doctor.check_serial(doctor.load_config(cfg), probes(serial_seconds=0.5))
    assert s.status == FAIL and "no data" in s.message and "powered" in s.fix


def test_text_but_no_nmea_at_any_rate(tmp_path):
    class Port:  # a port (e.g. socket://) that sends text without checksums, no baud
        def read(self, n):
            return b"hello, this is not NMEA\r\n"

        @property
        def baudrate(self):
            return 9600

        @baudrate.setter
        def baudrate(self, v):
            raise ValueError("no baud on this port")

        def close(self):
            pass

    cfg = doctor.default_config()
    s = doctor.check_serial(cfg, probes(open_serial=lambda u, b: Port(), serial_seconds=0.3))
    assert s.status == FAIL and "no valid NMEA" in s.message and "text" in s.message
    assert "try baud 4800 or 9600" in s.fix


def test_serial_skipped_while_box_runs(tmp_path):
    s = doctor.check_serial(doctor.default_config(), probes(box_running=lambda: True))
    assert s.status == SKIP and "systemctl stop vanbox" in s.fix


# --- GPIO ----------------------------------------------------------------------------


def test_gpio_pins_free():
    f = doctor.check_gpio(doctor.default_config(), probes())
    assert [x.status for x in f] == [OK, OK]
    assert "GPIO17 is free" in f[0].message and "GPIO27 is free" in f[1].message


def test_gpio_pin_in_use():
    factory = MockFactory()
    held = DigitalInputDevice(27, pin_factory=factory)  # another program holds GPIO27
    try:
        f = doctor.check_gpio(doctor.default_config(), probes(pin_factory=factory))
    finally:
        held.close()
    assert [x.status for x in f] == [OK, FAIL]
    assert "GPIO27 is in use" in f[1].message


def test_gpio_conflicts_with_gps_hat_uart_and_i2c():
    cfg = doctor.default_config({"sensor": {"pin": 15, "pin_b": 2}})
    f = doctor.check_gpio(cfg, probes())
    assert f[0].status == FAIL and "UART" in f[0].message and "GPIO 17" in f[0].fix
    assert f[1].status == WARN and "I2C" in f[1].message


def test_gpio_without_pins_or_with_box_running():
    cfg = doctor.default_config({"sensor": {"kind": "none"}})
    assert [x.status for x in doctor.check_gpio(cfg, probes())] == [SKIP]
    f = doctor.check_gpio(doctor.default_config(), probes(box_running=lambda: True))
    assert [x.status for x in f] == [SKIP]


# --- broker and TLS ------------------------------------------------------------------


def openssl(*args):
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", d / f"{ca}.key", "-out", d / f"{ca}.pem",
                "-days", "365", "-subj", f"/CN=vanbox test {ca}")  # fmt: skip
    for name, days in (("srv", 365), ("short", 10)):
        openssl("req", *ec, "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr",
                "-subj", "/CN=localhost")  # fmt: skip
        openssl("x509", "-req", "-in", d / f"{name}.csr", "-CA", d / "ca.pem",
                "-CAkey", d / "ca.key", "-CAcreateserial", "-out", d / f"{name}.pem",
                "-days", days, "-extfile", d / "san.ext")  # fmt: skip
    return {p.stem: p for p in d.glob("*.pem")}


def private_broker(broker_factory, tmp_path, *, tls_cert: str | None = None, pki=None):
    """A private mosquitto with a password file (user van1), optionally TLS only."""
    pw = tmp_path / "passwd"
    if not pw.exists():
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "van1", "right-secret"],
                       check=True, capture_output=True)  # fmt: skip
        pw.chmod(0o600)
    extra = ["user root"] if AS_ROOT else []  # else mosquitto cannot read the temp dir
    extra += ["allow_anonymous false", f"password_file {pw}"]
    if tls_cert:  # these apply to the fixture's listener, which becomes TLS-only
        key = pki[tls_cert].with_suffix(".key")
        extra += [f"cafile {pki['ca']}", f"certfile {pki[tls_cert]}", f"keyfile {key}"]
    return broker_factory(extra_config="\n".join(extra))


def mqtt_cfg(tmp_path, port, password="right-secret", **kw):
    pwf = tmp_path / "mqtt.password"
    pwf.write_text(password + "\n")
    m = {"enabled": True, "host": "127.0.0.1", "port": port, "username": "van1",
         "password_file": str(pwf)}  # fmt: skip
    m.update(kw)
    # no running box on the kiosk port (a demo on 8080 would answer for the broker)
    return doctor.default_config({"mqtt": m, "kiosk": {"port": free_port()}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.mqtt
def test_broker_login_ok_and_refused(broker_factory, tmp_path):
    b = private_broker(broker_factory, tmp_path)
    good = doctor.check_broker(mqtt_cfg(tmp_path, b.port), probes())
    assert good.status == OK and "accepts the login as 'van1'" in good.message
    bad = doctor.check_broker(mqtt_cfg(tmp_path, b.port, "wrong"), probes())
    assert bad.status == FAIL and "refused the login" in bad.message
    assert "password_file" in bad.fix


def test_broker_unreachable(tmp_path):
    f = doctor.check_broker(mqtt_cfg(tmp_path, free_port()), probes())
    assert f.status == FAIL and "unreachable" in f.message and "refused" in f.message
    cfg = doctor.default_config(
        {"mqtt": {"host": "no-such-host.invalid"}, "kiosk": {"port": free_port()}}
    )  # no running box on the kiosk port: a demo on 8080 would answer for the broker
    f = doctor.check_broker(cfg, probes())
    assert f.status == FAIL and "unknown host" in f.message


def test_broker_password_file_unreadable(tmp_path):
    cfg = doctor.default_config(
        {"mqtt": {"username": "van1", "password_file": str(tmp_path / "missing")}}
    )
    f = doctor.check_broker(cfg, probes())
    assert f.status == FAIL and "cannot read" in f.message


@pytest.mark.mqtt
def test_tls_ok_and_login_over_tls(broker_factory, tmp_path, pki):
    b = private_broker(broker_factory, tmp_path, tls_cert="srv", pki=pki)
    cfg = mqtt_cfg(tmp_path, b.port, tls=True, ca_file=str(pki["ca"]))
    tls = doctor.check_tls(cfg, probes())
    assert [x.status for x in tls] == [OK], tls
    assert "certificate verifies" in tls[0].message
    f = doctor.check_broker(cfg, probes())
    assert f.status == OK and "over TLS" in f.message


@pytest.mark.mqtt
def test_tls_wrong_ca_is_a_tls_failure(broker_factory, tmp_path, pki):
    b = private_broker(broker_factory, tmp_path, tls_cert="srv", pki=pki)
    cfg = mqtt_cfg(tmp_path, b.port, tls=True, ca_file=str(pki["other-ca"]))
    tls = doctor.check_tls(cfg, probes())
    assert tls[-1].status == FAIL and "TLS failure" in tls[-1].message
    assert "ca_file" in tls[-1].fix
    f = doctor.check_broker(cfg, probes())
    assert f.status == FAIL and "TLS failure" in f.message  # not "unreachable", not "login"


@pytest.mark.mqtt
def test_tls_certificate_expiring_soon(broker_factory, tmp_path, pki):
    b = private_broker(broker_factory, tmp_path, tls_cert="short", pki=pki)
    cfg = mqtt_cfg(tmp_path, b.port, tls=True, ca_file=str(pki["ca"]))
    tls = doctor.check_tls(cfg, probes())
    assert [x.status for x in tls] == [WARN], tls
    assert "expires in" in tls[0].message and "renew" in tls[0].fix
    # and a month later it has expired
    later = datetime.now(UTC).replace(microsecond=0) + (datetime(2000, 2, 1) - datetime(2000, 1, 1))
    tls = doctor.check_tls(cfg, probes(now=lambda: later))
    assert any(x.status == FAIL and "expired" in x.message for x in tls), tls


@pytest.mark.mqtt
def test_tls_client_against_plain_port(broker_factory, tmp_path, pki):
    b = private_broker(broker_factory, tmp_path)
    cfg = mqtt_cfg(tmp_path, b.port, tls=True, ca_file=str(pki["ca"]))
    tls = doctor.check_tls(cfg, probes())
    assert tls[-1].status == FAIL and "TLS failure" in tls[-1].message
    assert "8883" in tls[-1].fix
    f = doctor.check_broker(cfg, probes())
    assert f.status == FAIL and "TLS failure" in f.message
    # and the other way round: plain MQTT against a TLS-only port
    tb = private_broker(broker_factory, tmp_path, tls_cert="srv", pki=pki)
    f = doctor.check_broker(mqtt_cfg(tmp_path, tb.port), probes())
    assert f.status == FAIL and "no MQTT answer" in f.message and "mqtt.tls = true" in f.message


def test_ca_file_broken(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    for ca, words in ((bad, "not a PEM"), (tmp_path / "none.pem", "no such file")):
        cfg = doctor.default_config({"mqtt": {"tls": True, "ca_file": str(ca)}})
        f = doctor.check_tls(cfg, probes())
        assert f[0].status == FAIL and words in f[0].message


# --- clock ---------------------------------------------------------------------------


def test_clock(tmp_path):
    cfg = doctor.default_config()
    stamp = tmp_path / "clock-from-gps"
    p = probes(clock_synchronized=lambda: False, gps_clock_stamp=stamp)
    f = doctor.check_clock(cfg, p)
    assert f.status == FAIL and "gps.set_clock" in f.fix and "timedatectl" in f.fix
    f = doctor.check_clock(doctor.default_config({"gps": {"set_clock": True}}), p)
    assert f.status == WARN and "from GPS" in f.message
    stamp.write_text("2026-11-26T10:00:00+00:00\n")
    assert doctor.check_clock(cfg, p).status == OK
    assert doctor.check_clock(cfg, probes(clock_synchronized=lambda: True)).status == OK
    past = probes(now=lambda: datetime(2019, 4, 7, tzinfo=UTC))
    assert doctor.check_clock(cfg, past).status == FAIL


# --- disk ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free_mb", "status"), [(50, FAIL), (99, FAIL), (300, WARN), (499, WARN), (5000, OK)]
)
def test_disk_nearly_full(tmp_path, free_mb, status):
    seen = []

    def usage(path):
        seen.append(path)
        return namedtuple("du", "total used free")(16e9, 16e9 - free_mb * 1e6, free_mb * 1e6)

    cfg = doctor.load_config(write_config(tmp_path))  # database under tmp_path/db (missing)
    f = doctor.check_disk(cfg, probes(disk_usage=usage))
    assert f.status == status and f"{free_mb:,} MB free" in f.message
    assert seen == [str(tmp_path)]  # measured where the database will be
    if status != OK:
        assert "vacuum" in f.fix


# --- database ------------------------------------------------------------------------


def make_db(path: Path, rows: int = 3000) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE INDEX t_v ON t (v)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(f"value {i:06d}",) for i in range(rows)])
    conn.commit()
    conn.close()  # checkpoints the WAL into the file


def db_finding(tmp_path, db: Path):
    cfg = doctor.default_config({"database": {"path": str(db)}})
    return doctor.check_database(cfg, probes())


def test_database_ok_and_missing(tmp_path, store):
    store.close()
    f = db_finding(tmp_path, store.path)
    assert f.status == OK and "integrity ok, WAL mode" in f.message
    f = db_finding(tmp_path, tmp_path / "new.db")
    assert f.status == OK and "not created yet" in f.message
    f = db_finding(tmp_path, tmp_path / "no" / "dir" / "x.db")
    assert f.status == WARN and "install.sh" in f.fix


def test_database_owned_by_someone_else(tmp_path):
    db = tmp_path / "vanbox.db"
    make_db(db, rows=10)
    owner = pwd.getpwuid(db.stat().st_uid).pw_name
    other = "nobody" if owner != "nobody" else "root"
    cfg = doctor.default_config({"database": {"path": str(db)}})
    f = doctor.check_database(cfg, probes(service_user=other))
    assert f.status == FAIL and f"not owned by {other}" in f.message
    assert f.fix == f"sudo chown -R {other}: {tmp_path}"
    assert doctor.check_database(cfg, probes(service_user=owner)).status == OK


def test_service_user_groups():
    cfg = doctor.default_config()
    f = doctor.check_user(cfg, probes(service_user="no-such-user-here"))
    assert f.status == SKIP and "install.sh" in f.message
    nobody = pwd.getpwnam("nobody")
    if (
        any("nobody" in g.gr_mem for g in grp.getgrall())
        or nobody.pw_gid == grp.getgrnam("dialout").gr_gid
    ):
        pytest.skip("nobody is in a group here")
    f = doctor.check_user(cfg, probes(service_user="nobody"))
    assert f.status == FAIL and "dialout" in f.message and "usermod -aG dialout" in f.fix
    # with no serial device and no sensor, no group is needed
    cfg = doctor.default_config(
        {"gps": {"port": "socket://127.0.0.1:1"}, "sensor": {"kind": "none"}}
    )
    assert doctor.check_user(cfg, probes(service_user="nobody")).status == OK


def test_database_corrupt(tmp_path):
    db = tmp_path / "vanbox.db"
    make_db(db)
    with open(db, "r+b") as fh:  # scribble over an index page in the middle of the file
        size = fh.seek(0, 2)
        fh.seek((size // 4096 // 2) * 4096 + 8)
        fh.write(os.urandom(2000))
    f = db_finding(tmp_path, db)
    assert f.status == FAIL, f
    assert ("integrity check failed" in f.message) or ("malformed" in f.message)
    assert ".recover" in f.fix


def test_not_a_database_and_not_wal(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is no sqlite file" * 100)
    f = db_finding(tmp_path, junk)
    assert f.status == FAIL and "not a readable SQLite database" in f.message
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.close()
    f = db_finding(tmp_path, plain)
    assert f.status == WARN and "journal_mode is delete" in f.message


# --- the command ---------------------------------------------------------------------


def test_cli_json_and_exit_status(tmp_path, capsys, monkeypatch):
    from firmware.cli import main

    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    cfg = write_config(tmp_path, gps={"port": str(tmp_path / "ttyNOPE"), "set_clock": True})
    rc = main(["doctor", "--config", str(cfg), "--json", "--seconds", "0.2"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["ok"] is False
    checks = {f["check"]: f for f in out["findings"]}
    assert checks["config"]["status"] == OK
    assert checks["serial"]["status"] == FAIL and checks["serial"]["fix"]
    assert checks["broker"]["status"] == SKIP  # mqtt.enabled = false in this config
    assert set(checks) == {
        "config", "user", "serial", "gpio", "tls", "broker", "clock", "disk", "database"
    }  # fmt: skip


def test_cli_text_all_ok_exits_0(tmp_path, capsys, monkeypatch):
    with Receiver() as rx:
        cfg = write_config(tmp_path, gps={"port": rx.path})
        f = run_checks(cfg, probes())
    assert doctor.exit_status(f) == 0, doctor.render(f, cfg)
    text = doctor.render(f, cfg)
    assert text.splitlines()[0] == f"vanbox doctor: {cfg}"
    assert "0 failed" in text.splitlines()[-1]


@pytest.mark.mqtt
def test_broker_check_does_not_take_over_a_running_boxs_session(broker_factory, tmp_path):
    """With client ids tied to logins on the central broker, a login of the doctor's as
    the van would kick the running box off (and fire its last will). With a box
    answering on the kiosk port and connected, the doctor asks it instead."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Box(BaseHTTPRequestHandler):
        state = {"host": "x", "connected": True}

        def do_GET(self):  # noqa: N802
            body = json.dumps({"mqtt": Box.state}).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    b = private_broker(broker_factory, tmp_path)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Box)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        pwf = tmp_path / "mqtt.password"
        pwf.write_text("wrong\n")  # a login would be refused: only asking the box is OK
        cfg = doctor.default_config(
            {"mqtt": {"enabled": True, "host": "127.0.0.1", "port": b.port,
                      "username": "van1", "password_file": str(pwf)},
             "kiosk": {"port": srv.server_port}}
        )  # fmt: skip
        f = doctor.check_broker(cfg, probes())
        assert f.status == OK and "running box is connected" in f.message
        Box.state = {"host": "x", "connected": False}  # not connected: the doctor logs in
        f = doctor.check_broker(cfg, probes())
        assert f.status == FAIL and "refused the login" in f.message
    finally:
        srv.shutdown()
        srv.server_close()
