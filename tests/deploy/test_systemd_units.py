"""Every shipped systemd unit passes ``systemd-analyze verify`` without a warning.

The units name programs that exist only after ``install.sh`` ran on the Pi
(``/opt/vanbox/.venv/bin/vanbox``, ``/opt/vanbox/bin/kiosk-browser.sh``), and
``systemd-analyze verify`` rejects a unit whose ``ExecStart`` is missing. So the test
builds a throwaway root: this machine's unit files (``/usr/lib/systemd/system``, for
the targets and sockets the units refer to), the shipped units and drop-ins where
install.sh puts them, and stand-in executables at the paths the units name. Then it runs
``systemd-analyze verify --root=ROOT`` on each unit: the units are checked unchanged,
with their real paths. ``verify`` reports unknown keys and bad values only as warnings
(exit status 0), so any output at all fails the test.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
SHIPPED = sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))

pytestmark = pytest.mark.skipif(
    not shutil.which("systemd-analyze"), reason="systemd-analyze missing: apt-get install systemd"
)


def exec_paths(unit: Path) -> list[str]:
    out = []
    for line in unit.read_text().splitlines():
        m = re.match(r"^Exec\w+=[-@:+!]*(\S+)", line)
        if m:
            out.append(m.group(1))
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("root")
    shutil.copytree(SYSTEM_UNITS, r / "usr/lib/systemd/system", symlinks=True)
    (r / "lib").symlink_to("usr/lib")
    etc = r / "etc/systemd/system"
    etc.mkdir(parents=True)
    for unit in SHIPPED:
        shutil.copy(unit, etc / unit.name)
    shutil.copytree(UNITS / "mosquitto.service.d", etc / "mosquitto.service.d")
    # Stand-ins for the programs the units start (and those of the units they extend).
    programs = {p for u in SHIPPED for p in exec_paths(u)}
    programs |= set(exec_paths(SYSTEM_UNITS / "mosquitto.service"))
    assert "/opt/vanbox/.venv/bin/vanbox" in programs
    for prog in programs:
        dest = r / prog.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("#!/bin/sh\nexit 0\n")
        dest.chmod(0o755)
    return r


def verify(root: Path, unit: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "--generators=no", f"--root={root}", unit],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("unit", [u.name for u in SHIPPED])
def test_unit_verifies_clean(root, unit):
    r = verify(root, unit)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def test_mosquitto_dropin_verifies_clean(root):
    r = verify(root, "mosquitto.service")
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def test_verify_catches_a_broken_unit(root):
    """The check above can fail: a typo and a missing program are reported."""
    etc = root / "etc/systemd/system"
    bad = (UNITS / "vanbox.service").read_text()
    bad = bad.replace("WatchdogSec=30", "WatchdogSecs=30").replace(
        "/opt/vanbox/.venv/bin/vanbox", "/opt/vanbox/missing/vanbox"
    )
    (etc / "vanbox-broken.service").write_text(bad)
    try:
        r = verify(root, "vanbox-broken.service")
    finally:
        (etc / "vanbox-broken.service").unlink()
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "WatchdogSecs" in out and "/opt/vanbox/missing/vanbox" in out


def ini(path: Path) -> configparser.ConfigParser:
    c = configparser.ConfigParser(strict=False, interpolation=None)
    c.optionxform = str  # keys are case-sensitive
    c.read(path)
    return c


def test_self_healing_settings():
    box = ini(UNITS / "vanbox.service")
    assert box["Service"]["Type"] == "notify"
    assert int(box["Service"]["WatchdogSec"]) > 0
    assert box["Unit"]["StartLimitIntervalSec"] == "0"
    for unit in ("vanbox.service", "vanbox-kiosk-browser.service"):
        c = ini(UNITS / unit)
        assert c["Service"]["Restart"] == "always", unit
        assert shlex.split(c["Service"]["ExecStart"])[0].startswith("/opt/vanbox/")
    dropin = ini(UNITS / "mosquitto.service.d" / "vanbox.conf")
    assert dropin["Service"]["Restart"] == "always"
    timer = ini(UNITS / "vanbox-prune.timer")
    assert timer["Timer"]["Persistent"] == "yes"  # a prune missed at night runs at boot
    assert shlex.split(ini(UNITS / "vanbox-prune.service")["Service"]["ExecStart"])[1:] == ["prune"]


def test_journald_dropin_uses_known_keys_and_bounds_size():
    """journald has no verifier; every key must be one Debian's journald.conf documents."""
    known = set(re.findall(r"^#?(\w+)=", Path("/etc/systemd/journald.conf").read_text(), re.M))
    c = ini(UNITS / "journald.conf.d" / "vanbox.conf")
    assert c.sections() == ["Journal"]
    keys = set(c["Journal"])
    assert keys <= known, keys - known
    assert {"SystemMaxUse", "SystemKeepFree", "RuntimeMaxUse"} <= keys


def test_udev_rule_lines():
    """Each rule matches a USB id (4 hex digits) and names the device /dev/vanbox-gps."""
    text = (ROOT / "deploy/udev/99-vanbox-gps.rules").read_text()
    rules = [ln for ln in text.splitlines() if ln.startswith("ATTRS{idVendor}")]
    assert len(rules) >= 8
    ids = set()
    for ln in rules:
        assert 'SYMLINK+="vanbox-gps"' in ln and 'GROUP="dialout"' in ln, ln
        m = re.match(
            r'ATTRS\{idVendor\}=="([0-9a-f]{4})"(?:, ATTRS\{idProduct\}=="([0-9a-f]{4})")?', ln
        )
        assert m, ln
        ids.add(m.groups())
    for want in [("1546", None), ("067b", "2303"), ("10c4", "ea60"), ("0403", "6001")]:
        assert want in ids
    assert 'SUBSYSTEM!="tty", GOTO="vanbox_gps_end"' in text and 'LABEL="vanbox_gps_end"' in text
