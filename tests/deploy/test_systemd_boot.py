"""The units under a real systemd: Debian bookworm booted with systemd-nspawn, vanbox
installed inside by deploy/install.sh, and the units watched at work.

One container for the module (deploy/systemd-check.py makes, boots and throws it away;
the Debian root is cached in /var/cache/vanbox-test/, so only the first run on a machine
runs debootstrap, about a minute). The tests run in file order on that one installed box:
install and READY, GPS, journald, prune timer, SIGKILL, watchdog, and last the uninstall
and purge. With simulated hardware: gpiozero's mock pins and a GPS simulator writing NMEA
into a pty (see the script's docstring).

Skips with the reason where it cannot run: not root, no systemd-nspawn, or neither a
cached root nor debootstrap with network. The arm64 wheel check needs only network.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("systemd_check", REPO / "deploy/systemd-check.py")
sc = importlib.util.module_from_spec(_spec)
sys.modules["systemd_check"] = sc
_spec.loader.exec_module(sc)


@pytest.fixture(scope="module")
def box():
    reason = sc.why_not()
    if reason:
        pytest.skip(f"systemd boot check: {reason}")
    with sc.session(log=lambda _msg: None) as s:
        sc.install(s)
        yield s
    print("systemd boot check, seconds:", {k: round(v, 1) for k, v in s.figures.items()})


def test_install_starts_the_box_through_sd_notify_ready(box):
    assert "NOT RUNNING" not in box.install_log
    assert "run     useradd --system" in box.install_log
    sc.check_ready(box)
    # a second run changes nothing and leaves the running box alone
    pid = box.box.show("vanbox", "MainPID")["MainPID"]
    again = box.box.run("bash /mnt/src/deploy/install.sh --no-kiosk --bridge 2>&1").stdout
    assert "vanbox is installed; nothing to change." in again, again
    assert box.box.show("vanbox", "MainPID")["MainPID"] == pid


def test_box_reads_the_simulated_gps(box):
    sc.check_gps(box)


def test_journald_runs_with_vanbox_limits(box):
    sc.check_journald(box)


def test_prune_timer_fires_and_prune_succeeds(box):
    sc.check_prune_timer(box)


def test_sigkilled_box_is_restarted(box):
    sc.check_sigkill(box)


def test_stopped_box_is_killed_by_the_watchdog_and_restarted(box):
    sc.check_watchdog(box)
    # ... and it is healthy again: READY came again through sd_notify
    sc.check_ready(box)


def test_install_reports_a_box_that_does_not_start(box):
    sc.check_failed_start(box)
    sc.check_ready(box)


def test_uninstall_keeps_data_and_purge_leaves_nothing(box):
    """Last: it takes the box away. --uninstall keeps config and data (checked inside);
    --purge leaves no file, account, unit, drop-in or process of vanbox."""
    _, purge = sc.uninstall(box)
    assert "vanbox removed" in purge
    assert sc.leftovers(box) == []


def test_dependencies_install_on_arm64_from_wheels_only():
    """Nothing compiles on the Pi: every dependency (and theirs) has a CPython 3.11
    manylinux aarch64 wheel or a pure-Python one."""
    if not sc.reachable("https://pypi.org"):
        pytest.skip("no network to pypi.org")
    with tempfile.TemporaryDirectory() as d:
        names = sc.pip_download(sc.dependencies(), Path(d), "aarch64")
    wanted = {sc.canonical(r) for r in sc.dependencies()}
    got = {sc.canonical(n.split("-")[0]) for n in names}
    assert wanted <= got, wanted - got
    compiled = [n for n in names if not n.endswith("-none-any.whl")]
    assert all("aarch64" in n and "cp311" in n for n in compiled), compiled
