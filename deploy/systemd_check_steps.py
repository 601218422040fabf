"""deploy/systemd-check.py's checks, in the order they run on one installed box: the
install with simulated hardware, READY, GPS, journald, the prune timer, SIGKILL, the
watchdog, a box that cannot start; then the uninstall and purge and what they left.
Each raises CheckError when it fails and puts its figures in ``Session.figures``.
Standard library only.
"""

from __future__ import annotations

import json
import re
import time

from systemd_check_cache import CheckError
from systemd_check_container import Session, files, wait_for

WATCHDOG_S = 4

SIM_DROPIN = f"""[Service]
# systemd-check: no GPIO hardware in the container; a short watchdog for a short test
Environment=GPIOZERO_PIN_FACTORY=mock
WatchdogSec={WATCHDOG_S}
"""
PRUNE_DROPIN = """[Timer]
# systemd-check: fire every 5 s instead of once a night
OnCalendar=
OnCalendar=*:*:0/5
RandomizedDelaySec=0
AccuracySec=1s
"""
GPS_SIM = """import signal
from datetime import UTC, datetime
from firmware.simulator import NmeaFeeder, demo_day
from telemetry.clock import Clock
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
feeder = NmeaFeeder(demo_day(datetime.now(UTC)), Clock(), "/run/gps-sim/gps", cold_start_s=0)
feeder.start()
signal.sigwait({signal.SIGTERM, signal.SIGINT})
feeder.stop()
"""
GPS_UNIT = """[Unit]
Description=systemd-check: simulated GPS receiver (NMEA into a pty)
[Service]
User=vanbox
RuntimeDirectory=gps-sim
ExecStart=/opt/vanbox/.venv/bin/python /usr/local/lib/gps-sim.py
"""


def install(s: Session, src: str = "/mnt/src", wheels: str = "/mnt/wheels") -> str:
    """Simulated hardware, then install.sh as on a Pi (pip from the cached wheels)."""
    box = s.box
    s.before_files = files(box)
    box.write("/etc/systemd/system/vanbox.service.d/50-simulated-hardware.conf", SIM_DROPIN)
    box.write("/etc/systemd/system/vanbox-prune.timer.d/50-every-5s.conf", PRUNE_DROPIN)
    t0 = time.monotonic()
    r = box.run(
        f"bash {src}/deploy/install.sh --no-kiosk --bridge 2>&1",
        timeout=600,
        check=False,
        env={"PIP_INSTALL_ARGS": f"--no-index --find-links={wheels}"},
    )
    s.figures["install_s"] = time.monotonic() - t0
    s.install_log = r.stdout
    if r.returncode != 0:
        journal = box.run("journalctl -u vanbox -n 40 --no-pager", check=False).stdout
        raise CheckError(f"install.sh exit {r.returncode}:\n{r.stdout}\n{journal}")
    return r.stdout


def check_ready(s: Session) -> None:
    """Type=notify: "active" only after READY=1; StatusText only comes by sd_notify."""
    p = s.box.show(
        "vanbox",
        "Type",
        "ActiveState",
        "SubState",
        "StatusText",
        "WatchdogUSec",
        "ExecMainStartTimestampMonotonic",
        "ActiveEnterTimestampMonotonic",
    )
    if p["Type"] != "notify" or p["ActiveState"] != "active" or not p["StatusText"]:
        raise CheckError(f"vanbox.service is not active through sd_notify: {p}")
    if p["WatchdogUSec"] != f"{WATCHDOG_S}s":
        raise CheckError(f"the test's watchdog drop-in did not apply: {p}")
    start = int(p["ExecMainStartTimestampMonotonic"])
    s.figures["ready_s"] = (int(p["ActiveEnterTimestampMonotonic"]) - start) / 1e6


def check_gps(s: Session) -> None:
    """The box reads the simulated receiver (a pty like a USB puck's /dev/ttyACM0)."""
    box = s.box
    box.write("/usr/local/lib/gps-sim.py", GPS_SIM)
    box.write("/etc/systemd/system/gps-sim.service", GPS_UNIT)
    box.run("systemctl daemon-reload && systemctl start gps-sim.service")
    wait_for(
        "the GPS simulator's pty",
        lambda: box.run("test -e /run/gps-sim/gps", check=False).returncode == 0,
        20,
    )
    box.run(
        'sed -i \'s|^port = "/dev/serial0"|port = "/run/gps-sim/gps"|\' /etc/vanbox/vanbox.toml'
        " && grep -q '^port = \"/run/gps-sim/gps\"' /etc/vanbox/vanbox.toml"
        " && systemctl restart vanbox.service"
    )
    t0 = time.monotonic()
    seen: list[str] = []

    def fixes() -> bool:
        """The running box's own count of fixes read (``vanbox status`` asks it)."""
        seen[:] = [box.run("vanbox status --json", check=False).stdout]
        try:
            gps = (json.loads(seen[0]).get("box") or {}).get("gps") or {}
        except ValueError:
            return False
        return gps.get("port") == "/run/gps-sim/gps" and gps.get("fixes", 0) > 0

    try:
        wait_for("the box to read fixes from the simulated GPS", fixes, 30, every=0.5)
    except CheckError as e:
        journal = box.run("journalctl -u vanbox -u gps-sim -n 30 --no-pager", check=False).stdout
        raise CheckError(f"{e}\nvanbox status --json: {seen[0]}\n{journal}") from None
    s.figures["first_fix_s"] = time.monotonic() - t0


def _restarted(s: Session, sig: str, journal_line: str, timeout: float) -> float:
    box = s.box
    before = box.show("vanbox", "MainPID", "NRestarts")
    pid = before["MainPID"]
    if pid == "0":
        raise CheckError(f"vanbox.service has no main process: {before}")
    since = box.run("date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    t0 = time.monotonic()
    box.run(f"kill -{sig} {pid}")

    def back() -> bool:
        p = box.show("vanbox", "MainPID", "NRestarts", "ActiveState")
        return p["ActiveState"] == "active" and p["MainPID"] not in ("0", pid) and p

    after = wait_for(f"vanbox to come back after SIG{sig}", back, timeout)
    took = time.monotonic() - t0
    if int(after["NRestarts"]) != int(before["NRestarts"]) + 1:
        raise CheckError(f"not one restart after SIG{sig}: before {before}, after {after}")
    log = box.run(f"journalctl -u vanbox --since '{since}' --no-pager -o cat").stdout
    if journal_line not in log:
        raise CheckError(f"{journal_line!r} not in vanbox's journal:\n{log[-3000:]}")
    return took


def check_watchdog(s: Session) -> None:
    """SIGSTOP: no more WATCHDOG=1; systemd kills the box after WatchdogSec and restarts it."""
    since = s.box.run("date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    s.figures["watchdog_restart_s"] = _restarted(s, "STOP", "Watchdog timeout", 60)

    # SIGABRT (WatchdogSignal=) reached the box: faulthandler wrote where its threads were
    # (journald may take a moment to file the dying process's stderr). The dump walks the
    # other threads while they run on, so it can itself crash part-way (seen once in CI:
    # a SIGSEGV inside werkzeug's frames); at least one thread's stack must be there.
    def dumped() -> str:
        log = s.box.run(f"journalctl -u vanbox --since '{since}' --no-pager -o cat").stdout
        started = log.find("Fatal Python error: Aborted")
        return log if started >= 0 and "(most recent call first)" in log[started:] else ""

    try:
        wait_for("the thread dump in the journal", dumped, 15)
    except CheckError:
        log = s.box.run(f"journalctl -u vanbox --since '{since}' --no-pager -o cat").stdout
        raise CheckError(
            f"no thread dump from the watchdog's SIGABRT in the journal:\n{log[-3000:]}"
        ) from None


def check_sigkill(s: Session) -> None:
    s.figures["sigkill_restart_s"] = _restarted(
        s, "KILL", "Main process exited, code=killed, status=9/KILL", 30
    )


FAILED_PRUNE = "vanbox-prune.service: Failed with result"


def check_prune_timer(s: Session) -> None:
    """The timer (every 5 s by the drop-in) starts vanbox-prune.service, which succeeds."""
    box = s.box
    t0 = time.monotonic()
    since = box.run("date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    box.run("systemctl restart vanbox-prune.timer")

    def ran() -> bool:
        log = box.run(
            f"journalctl -u vanbox-prune.service --since '{since}' --no-pager -o cat", check=False
        ).stdout
        done = "Finished vanbox-prune.service" in log or FAILED_PRUNE in log
        return log if done else ""

    log = wait_for("vanbox-prune.service to run", ran, 30)
    p = box.show("vanbox-prune.service", "Result", "ExecMainStatus")
    # (not any "Failed": under nspawn systemd logs a harmless "Failed to kill control group
    # ..., ignoring" after the service has ended)
    if p != {"Result": "success", "ExecMainStatus": "0"} or FAILED_PRUNE in log:
        raise CheckError(f"vanbox-prune.service did not succeed: {p}\n{log[-3000:]}")
    s.figures["prune_fired_s"] = time.monotonic() - t0


def check_journald(s: Session) -> None:
    """journald read vanbox's drop-in: persistent, at most 64 MB (journald's own words)."""
    box = s.box
    cfg = box.run("systemd-analyze cat-config systemd/journald.conf").stdout
    if "/etc/systemd/journald.conf.d/vanbox.conf" not in cfg or "SystemMaxUse=64M" not in cfg:
        raise CheckError(f"vanbox's journald drop-in is not in the effective config:\n{cfg}")
    said = box.run(
        "journalctl -b -u systemd-journald -t systemd-journald --no-pager -o cat "
        "| grep 'System Journal' | tail -1"
    ).stdout
    if not re.search(r"System Journal \(/var/log/journal/\w+\) is .*, max 64\.0M", said):
        raise CheckError(f"journald does not use SystemMaxUse=64M: {said!r}")
    header = box.run("journalctl --header | grep '^File path:'").stdout
    if "/var/log/journal/" not in header:
        raise CheckError(f"the journal is not persistent: {header}")


def check_failed_start(s: Session, src: str = "/mnt/src") -> None:
    """A box that cannot start (a wrong config value): install.sh says so and exits 3
    after its summary, instead of stopping half-way through."""
    box = s.box
    box.run(
        "systemctl stop vanbox && cp -p /etc/vanbox/vanbox.toml /root/vanbox.toml.good"
        " && sed -i 's/^baud = 9600/baud = 9601/' /etc/vanbox/vanbox.toml"
    )
    try:
        r = box.run(f"bash {src}/deploy/install.sh --no-kiosk --bridge 2>&1", check=False)
    finally:
        box.run("mv /root/vanbox.toml.good /etc/vanbox/vanbox.toml && systemctl restart vanbox")
    if r.returncode != 3 or "NOT RUNNING: vanbox.service" not in r.stdout:
        raise CheckError(
            f"install.sh with a box that cannot start: exit {r.returncode}\n{r.stdout}"
        )
    if "Check:  sudo vanbox doctor" not in r.stdout:
        raise CheckError(f"install.sh stopped before its summary:\n{r.stdout}")


def uninstall(s: Session, src: str = "/mnt/src") -> tuple[str, str]:
    """Take the test's own GPS simulator away, then --uninstall and --uninstall --purge."""
    box = s.box
    box.run(
        "systemctl disable --now gps-sim.service; rm -f /etc/systemd/system/gps-sim.service "
        "/usr/local/lib/gps-sim.py && systemctl daemon-reload"
    )
    first = box.run(f"bash {src}/deploy/install.sh --uninstall 2>&1").stdout
    kept = box.run("ls -d /etc/vanbox/vanbox.toml /var/lib/vanbox/vanbox.db", check=False)
    if kept.returncode != 0:
        raise CheckError(f"--uninstall did not keep config and data: {kept.stderr}\n{first}")
    gone = box.run(
        "getent passwd vanbox; systemctl list-unit-files --no-legend 'vanbox*'; "
        "ls /opt/vanbox /usr/local/bin/vanbox /etc/systemd/system/vanbox*",
        check=False,
    )
    if gone.stdout.strip():
        raise CheckError(f"--uninstall left the user, units or program: {gone.stdout}\n{first}")
    second = box.run(f"bash {src}/deploy/install.sh --uninstall --purge 2>&1").stdout
    return first, second


def leftovers(s: Session) -> list[str]:
    """Everything of vanbox still in the container after --purge (empty: all gone)."""
    box = s.box
    left = [f"new file {p}" for p in sorted(set(files(box)) - set(s.before_files))]
    # (/run and /tmp are mounts of their own: named, since -xdev stops at them)
    found = box.run(
        "find / /run /tmp -xdev -iname '*vanbox*' -not -path '/mnt/*' -not -path '/proc/*'"
        " -not -path '/var/log/journal/*'"
    ).stdout
    left += [f"file {p}" for p in found.split()]
    left += [
        f"account line {ln}"
        for ln in box.run(
            "grep -h vanbox /etc/passwd /etc/group /etc/shadow /etc/gshadow", check=False
        ).stdout.splitlines()
    ]

    def units() -> str:
        return box.run(
            "systemctl list-units --all --plain --no-legend 'vanbox*'; "
            "systemctl list-unit-files --no-legend 'vanbox*'",
            check=False,
        ).stdout.strip()

    # A removed unit's object ("not-found inactive dead") is dropped by systemd's garbage
    # collection, which runs after the command that removed it: give it a few seconds.
    deadline = time.monotonic() + 10
    while units() and time.monotonic() < deadline:
        time.sleep(0.5)
    # What stays listed after that is systemd's memory of a name, "not-found": no file, no
    # process (both checked above and below); anything installed would be "loaded".
    left += [f"unit {ln}" for ln in units().splitlines() if ln.strip() and " not-found " not in ln]
    procs = box.run(
        "ps -eo user:20,args --no-headers | grep -E '^(vanbox|9[0-9]{2}) |vanbox' | grep -v grep",
        check=False,
    ).stdout
    left += [f"process {ln}" for ln in procs.splitlines()]
    dropin = box.run("systemctl show mosquitto -p DropInPaths").stdout.strip()
    if "vanbox" in dropin:
        left.append(f"mosquitto drop-in {dropin}")
    return sorted(set(left))
