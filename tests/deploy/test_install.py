"""deploy/install.sh: --dry-run changes nothing; an install into a throwaway root works,
a second run changes nothing; --uninstall keeps config and data, --purge removes them.

The throwaway root is ``install.sh --root DIR``: every file goes under DIR (a real venv
with vanbox pip-installed from a snapshot of this checkout, units, udev rule, config,
the GPS HAT's config.txt edits), while what needs the running system (apt-get, useradd,
chown, systemctl, udevadm) is printed and skipped. A debootstrap chroot would take far
longer than the test budget. As a safety net, every system command the script could
run is shadowed on PATH by a stub that records its call: the tests assert it recorded
nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"
SYSTEM_COMMANDS = [
    "apt-get",
    "systemctl",
    "useradd",
    "usermod",
    "userdel",
    "udevadm",
    "raspi-config",
    "chown",
    "chgrp",
]
ON_THE_PI = [
    "/opt/vanbox",
    "/etc/vanbox",
    "/var/lib/vanbox",
    "/usr/local/bin/vanbox",
    "/etc/systemd/system/vanbox.service",
    "/etc/udev/rules.d/99-vanbox-gps.rules",
]


@pytest.fixture(scope="module")
def stubs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("stubs")
    log = d / "calls.log"
    for cmd in SYSTEM_COMMANDS:
        p = d / cmd
        p.write_text(
            "#!/bin/sh\n"
            # read-only queries answer "no" (or nothing) and are not changes
            'case "$1" in is-enabled|is-active|is-failed|get-default|show) exit 1;; esac\n'
            f'echo "$(basename "$0") $*" >> {log}\n'
            "exit 0\n"
        )
        p.chmod(0o755)
    return d


def run(stubs: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{stubs}:{os.environ['PATH']}", PIP_INSTALL_ARGS="--no-deps")
    r = subprocess.run(
        ["bash", str(INSTALL), *args], capture_output=True, text=True, env=env, timeout=300
    )
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def calls(stubs: Path) -> list[str]:
    log = stubs / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def tree_hash(root: Path) -> str:
    """Paths, types, modes, contents, link targets and modification times of a tree."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        h.update(f"{p.relative_to(root)}|{stat.filemode(st.st_mode)}|{st.st_mtime_ns}|".encode())
        if p.is_symlink():
            h.update(os.readlink(p).encode())
        elif p.is_file():
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def installed_packages() -> list[str]:
    """The packages install.sh copies and installs (its PACKAGES=(...) line)."""
    m = re.search(r"^PACKAGES=\(([^)]*)\)", INSTALL.read_text(), re.M)
    assert m, "no PACKAGES=(...) in install.sh"
    return m.group(1).split()


def test_install_copies_every_python_package_of_pyproject():
    """`vanbox` imports every subcommand's module (hub.server too) before it runs one: a
    package missing from the Pi's venv stops `vanbox run` with ModuleNotFoundError."""
    with open(REPO / "pyproject.toml", "rb") as f:
        include = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]
    top = {pat.rstrip("*") for pat in include}
    assert top == set(installed_packages())
    assert all((REPO / p / "__init__.py").exists() for p in top)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A snapshot of the checkout (others keep committing to it while tests run)."""
    d = tmp_path_factory.mktemp("src")
    for name in installed_packages():
        shutil.copytree(REPO / name, d / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, d / name)
    return d


def test_dry_run_on_this_machine_changes_nothing(stubs):
    present = [p for p in ON_THE_PI if os.path.lexists(p)]
    if present:
        pytest.skip(f"vanbox is installed on this machine ({present})")
    before = calls(stubs)
    out = run(stubs, "--dry-run", "--bridge", "--gps-hat").stdout
    for action in [
        "would   run: useradd --system",
        "would   create the venv /opt/vanbox/.venv",
        f"would   pip install {REPO} into /opt/vanbox/.venv",
        "would   ln -sfn /opt/vanbox/.venv/bin/vanbox /usr/local/bin/vanbox",
        "would   write /etc/vanbox/vanbox.toml",
        "would   mkdir -m 750 /var/lib/vanbox",
        "would   run: chown -R vanbox:vanbox /var/lib/vanbox",
        "would   write /etc/systemd/system/vanbox.service",
        "would   write /etc/systemd/system/vanbox-kiosk-browser.service",
        "would   write /etc/systemd/system/vanbox-prune.timer",
        "would   write /etc/systemd/journald.conf.d/vanbox.conf",
        "would   write /etc/udev/rules.d/99-vanbox-gps.rules",
        "would   write /etc/mosquitto/conf.d/van-bridge.conf",
        "would   run: systemctl daemon-reload",
        "would   run: systemctl enable vanbox.service",
        "would   run: systemctl start vanbox.service",
        "would   run: udevadm control --reload-rules",
        "nothing was changed",
    ]:
        assert action in out, f"{action!r} missing from:\n{out}"
    assert calls(stubs) == before  # no system command ran
    assert not [p for p in ON_THE_PI if os.path.lexists(p)]


def test_dry_run_into_root_and_uninstall_dry_run(stubs, tmp_path):
    root = tmp_path / "root"
    out = run(stubs, "--dry-run", "--root", str(root)).stdout
    assert "would   write /etc/systemd/system/vanbox.service" in out
    assert not root.exists()
    out = run(stubs, "--dry-run", "--uninstall", "--purge").stdout
    assert "nothing was changed" in out
    assert calls(stubs) == []


def test_bad_options(stubs):
    r = run(stubs, "--frobnicate", check=False)
    assert r.returncode == 2 and "unknown option" in r.stderr
    r = run(stubs, "--purge", check=False)
    assert r.returncode == 2 and "--uninstall" in r.stderr


def test_install_twice_then_uninstall_then_purge(stubs, source, tmp_path):
    root = tmp_path / "root"
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("dtparam=audio=on\n")
    (boot / "cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=x rootwait\n"
    )
    args = ["--root", str(root), "--gps-hat", "--bridge", "--source", str(source)]

    # first run: everything is installed
    out = run(stubs, *args).stdout
    venv = root / "opt/vanbox/.venv"
    version = subprocess.run(
        [venv / "bin/python", "-c", "import importlib.metadata as m; print(m.version('vanbox'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version and (venv / "bin/vanbox").exists()
    site = next(venv.glob("lib/python3*/site-packages"))
    assert all((site / p / "__init__.py").exists() for p in installed_packages())
    assert os.readlink(root / "usr/local/bin/vanbox") == "/opt/vanbox/.venv/bin/vanbox"
    for src, dest in [
        ("deploy/systemd/vanbox.service", "etc/systemd/system/vanbox.service"),
        (
            "deploy/systemd/vanbox-kiosk-browser.service",
            "etc/systemd/system/vanbox-kiosk-browser.service",
        ),
        ("deploy/systemd/vanbox-prune.service", "etc/systemd/system/vanbox-prune.service"),
        ("deploy/systemd/vanbox-prune.timer", "etc/systemd/system/vanbox-prune.timer"),
        (
            "deploy/systemd/mosquitto.service.d/vanbox.conf",
            "etc/systemd/system/mosquitto.service.d/vanbox.conf",
        ),
        ("deploy/systemd/journald.conf.d/vanbox.conf", "etc/systemd/journald.conf.d/vanbox.conf"),
        ("deploy/udev/99-vanbox-gps.rules", "etc/udev/rules.d/99-vanbox-gps.rules"),
        ("deploy/mosquitto/van-bridge.conf", "etc/mosquitto/conf.d/van-bridge.conf"),
        ("deploy/vanbox.example.toml", "etc/vanbox/vanbox.toml"),
        ("deploy/kiosk-browser.sh", "opt/vanbox/bin/kiosk-browser.sh"),
    ]:
        assert (root / dest).read_bytes() == (REPO / src).read_bytes(), dest
    assert os.access(root / "opt/vanbox/bin/kiosk-browser.sh", os.X_OK)
    assert stat.S_IMODE((root / "var/lib/vanbox").stat().st_mode) == 0o750
    assert "enable_uart=1" in (boot / "config.txt").read_text()
    assert (boot / "cmdline.txt").read_text() == "console=tty1 root=PARTUUID=x rootwait\n"
    assert "Now edit /etc/vanbox/vanbox.toml" in out
    assert "skip    (--root) useradd --system" in out
    assert "skip    (--root) systemctl enable vanbox.service" in out
    assert "Reboot once" in out

    # second run: nothing changes
    before = tree_hash(root)
    out = run(stubs, *args).stdout
    assert tree_hash(root) == before
    assert "nothing to change" in out
    assert "  do " not in out and "Now edit" not in out

    # the installer never overwrites an edited config
    cfg = root / "etc/vanbox/vanbox.toml"
    cfg.write_text(cfg.read_text().replace('id = "jungregio-1"', 'id = "van-2"'))
    (root / "var/lib/vanbox/vanbox.db").write_bytes(b"precious data")
    run(stubs, *args)
    assert 'id = "van-2"' in cfg.read_text()

    # a drop-in made with `systemctl edit vanbox`, and the timer's stamp (Persistent=yes)
    dropin = root / "etc/systemd/system/vanbox.service.d/override.conf"
    dropin.parent.mkdir()
    dropin.write_text("[Service]\nEnvironment=X=1\n")
    stamp = root / "var/lib/systemd/timers/stamp-vanbox-prune.timer"
    stamp.parent.mkdir(parents=True)
    stamp.touch()

    # --uninstall: program, units, drop-ins, rules gone; config and data kept
    out = run(stubs, "--root", str(root), "--uninstall").stdout
    for gone in [
        "opt/vanbox",
        "usr/local/bin/vanbox",
        "etc/systemd/system/vanbox.service",
        "etc/systemd/system/vanbox-kiosk-browser.service",
        "etc/systemd/system/vanbox-prune.timer",
        "etc/systemd/system/mosquitto.service.d",
        "etc/udev/rules.d/99-vanbox-gps.rules",
        "etc/systemd/journald.conf.d",
        "etc/systemd/system/vanbox.service.d",
        "etc/udev",
        "var/lib/systemd/timers/stamp-vanbox-prune.timer",
    ]:
        assert not os.path.lexists(root / gone), gone
    assert 'id = "van-2"' in cfg.read_text()
    assert (root / "var/lib/vanbox/vanbox.db").read_bytes() == b"precious data"
    assert (root / "etc/mosquitto/conf.d/van-bridge.conf").exists()
    assert "skip    (--root) userdel vanbox" in out
    assert "skip    (--root) systemctl disable --now vanbox.service" in out
    assert "kept /var/lib/vanbox" in out

    # --purge: config and data gone too; only the boot files remain
    run(stubs, "--root", str(root), "--uninstall", "--purge")
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())
    assert files == ["boot/firmware/cmdline.txt", "boot/firmware/config.txt"]
    assert calls(stubs) == []
