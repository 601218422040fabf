#!/usr/bin/env python3
"""Boot Debian bookworm under systemd, install vanbox with deploy/install.sh, watch the units.

    sudo deploy/systemd-check.py              every check below; prints figures; exit 1 on a failure
    sudo deploy/systemd-check.py --keep       ... and leave the container running to look around
    deploy/systemd-check.py wheels [--arch aarch64]   do pyproject's dependencies install on a
                                              Pi from wheels only (nothing compiles there)?

What it does (as root, with ``debootstrap`` and ``systemd-nspawn``, Debian packages
``debootstrap`` and ``systemd-container``):

1. A Debian bookworm root made with debootstrap, cached in ``/var/cache/vanbox-test/``
   (``$VANBOX_TEST_CACHE``) under a hash of its package list, so only the first run
   downloads it (about a minute). The wheels of pyproject's dependencies are downloaded
   on this machine into the same cache, keyed by the dependency list.
2. ``systemd-nspawn --boot --volatile=overlay --private-network``: systemd is PID 1, every
   change goes to a tmpfs over the cached root (which stays clean), and the container has
   only its own loopback (its mosquitto never meets this machine's).
3. ``deploy/install.sh --no-kiosk --bridge`` inside, from a snapshot of this checkout,
   pip installing from the cached wheels. Simulated hardware: a drop-in sets
   ``GPIOZERO_PIN_FACTORY=mock`` (and ``WatchdogSec=4`` to keep the run short), and a GPS
   simulator (firmware.simulator's NmeaFeeder) writes NMEA into a pty named in
   ``gps.port``.
4. The checks: the box gets active through sd_notify READY=1; it reads the simulated GPS;
   a SIGSTOPped box is killed by the watchdog and restarted; a SIGKILLed one is restarted;
   the prune timer fires (a drop-in makes it fire every 5 s) and the prune succeeds;
   journald runs with vanbox's limits; ``--uninstall`` keeps config and data, ``--uninstall
   --purge`` leaves nothing of vanbox (files, user, groups, units, drop-ins).

tests/deploy/test_systemd_boot.py runs the same steps, one test per check. Standard
library only: it runs with the system's python3.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = "bookworm"
MIRROR = os.environ.get("VANBOX_TEST_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("VANBOX_TEST_CACHE", "/var/cache/vanbox-test"))
# What install.sh --no-kiosk --bridge wants from apt (so it installs nothing: the container
# has no network), plus systemd to boot and procps for pgrep.
PACKAGES = (
    "systemd,systemd-sysv,dbus,procps,python3,python3-venv,python3-pip,sqlite3,curl,"
    "mosquitto-clients,mosquitto,ca-certificates"
)
RECIPE = 1  # bump when the root's making changes
# What install.sh needs of the checkout (its PACKAGES, deploy/, pyproject.toml, README.md)
SOURCE_PARTS = ("firmware", "telemetry", "kiosk", "hub", "deploy", "pyproject.toml", "README.md")
PY = "3.11"  # bookworm's Python, and Raspberry Pi OS bookworm's
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WATCHDOG_S = 4
# Requirements to add to pyproject's dependencies for this run only, e.g. one a change
# needs before pyproject.toml lists it: VANBOX_CHECK_EXTRA_DEPS="fpdf2>=2.7 pypdf"
EXTRA_DEPS = os.environ.get("VANBOX_CHECK_EXTRA_DEPS", "").split()

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


class CheckError(Exception):
    """A check failed, or the container could not be made or booted."""


# --- can it run here? ----------------------------------------------------------------


def why_not(cache: Path = CACHE) -> str | None:
    """Why the boot check cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "needs root (debootstrap, systemd-nspawn, nsenter)"
    for tool, pkg in [("systemd-nspawn", "systemd-container"), ("nsenter", "util-linux")]:
        if not shutil.which(tool):
            return f"{tool} missing: apt-get install {pkg}"
    if not (root_dir(cache) / ".complete").exists():
        if not shutil.which("debootstrap"):
            return "no cached root and debootstrap missing: apt-get install debootstrap"
        if not reachable(MIRROR):
            return f"no cached root in {cache} and no network to {MIRROR} for debootstrap"
    return None


def reachable(url: str, timeout: float = 5.0) -> bool:
    m = re.match(r"(\w+)://([^/:]+)(?::(\d+))?", url)
    if not m:
        return False
    port = int(m.group(3) or (443 if m.group(1) == "https" else 80))
    try:
        socket.create_connection((m.group(2), port), timeout).close()
        return True
    except OSError:
        return False


# --- the cached root and wheels -----------------------------------------------------


def _key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def root_dir(cache: Path = CACHE) -> Path:
    return cache / f"root-{SUITE}-{_key(SUITE, PACKAGES, str(RECIPE))}"


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_root(cache: Path = CACHE, log=print) -> tuple[Path, float]:
    """The cached Debian root (made now if missing) and the seconds it took."""
    root = root_dir(cache)
    t0 = time.monotonic()
    with locked(cache):
        if (root / ".complete").exists():
            return root, time.monotonic() - t0
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"debootstrap {SUITE} into {root} (once; about a minute)")
        cmd = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, str(tmp), MIRROR]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            raise CheckError(f"debootstrap failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        # What every installed Debian has and minbase lacks: localhost in /etc/hosts.
        (tmp / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")
        (tmp / "etc/machine-id").write_text("")  # a new one at every boot
        shutil.rmtree(tmp / "var/cache/apt/archives", ignore_errors=True)
        (tmp / "var/cache/apt/archives/partial").mkdir(parents=True)
        (tmp / ".complete").write_text(f"{SUITE} {PACKAGES}\n")
        tmp.rename(root)
        drop_others(root, f"root-{SUITE}-")
    return root, time.monotonic() - t0


def drop_others(keep: Path, prefix: str) -> None:
    """Remove the cache's older roots or wheels (other package or dependency lists)."""
    for old in keep.parent.glob(prefix + "*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def dependencies(repo: Path = REPO, extra: list[str] = EXTRA_DEPS) -> list[str]:
    with open(repo / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)
    return list(project["project"]["dependencies"]) + list(extra)


def build_requires(repo: Path = REPO) -> list[str]:
    with open(repo / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["build-system"]["requires"])


def canonical(requirement: str) -> str:
    """The project name of a requirement or a wheel's file name, normalized (PEP 503)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    return re.sub(r"[-_.]+", "-", name.group(0) if name else requirement).lower()


def pip_download(reqs: list[str], dest: Path, arch: str, timeout: float = 600) -> list[str]:
    """Download ``reqs`` and their dependencies as wheels only, for CPython 3.11 on Linux
    ``arch`` (x86_64, aarch64). Raises CheckError naming what has no wheel."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--dest",
        str(dest),
        "--only-binary=:all:",
        "--python-version",
        PY,
        "--implementation",
        "cp",
        "--platform",
        f"manylinux2014_{arch}",
        "--platform",
        f"manylinux_2_17_{arch}",
        *reqs,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if "No module named pip" in r.stderr:
        raise CheckError(f"{sys.executable} has no pip: apt-get install python3-pip")
    if r.returncode != 0:
        raise CheckError(f"no wheels for {arch}: {r.stderr.strip()[-2000:]}")
    return sorted(p.name for p in dest.glob("*.whl"))


def ensure_wheels(cache: Path = CACHE, repo: Path = REPO) -> Path:
    reqs = build_requires(repo) + dependencies(repo)
    arch = platform.machine()
    d = cache / f"wheels-{arch}-{_key(PY, arch, *reqs)}"
    with locked(cache):
        if not (d / ".complete").exists():
            tmp = d.with_name(d.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            pip_download(reqs, tmp, arch)
            (tmp / ".complete").write_text("\n".join(reqs) + "\n")
            tmp.rename(d)
            drop_others(d, f"wheels-{arch}-")
    return d


def snapshot_source(dest: Path, repo: Path = REPO) -> Path:
    """What install.sh needs of the checkout, copied (others may edit it meanwhile)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in SOURCE_PARTS:
        src = repo / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=ignore)
        else:
            shutil.copy2(src, dest / part)
    if EXTRA_DEPS:
        pp = dest / "pyproject.toml"
        added = "".join(f"\n    {d!r}," for d in EXTRA_DEPS).replace("'", '"')
        pp.write_text(pp.read_text().replace("dependencies = [", "dependencies = [" + added, 1))
        if sorted(dependencies(dest, [])) != sorted(dependencies(repo)):
            raise CheckError(f"could not add {EXTRA_DEPS} to pyproject.toml's dependencies")
    return dest


# --- the container ---------------------------------------------------------------------


class Container:
    """A booted systemd-nspawn container over a read-only root with a tmpfs overlay."""

    def __init__(self, root: Path, binds: dict[Path, str], name: str | None = None) -> None:
        self.root = root
        self.binds = binds
        self.name = name or f"vanbox-check-{os.getpid()}"
        self.proc: subprocess.Popen | None = None
        self.leader = 0
        self.console = tempfile.TemporaryFile()

    def start(self, timeout: float = 60) -> float:
        """Boot; return the seconds until systemd reported the system running."""
        t0 = time.monotonic()
        cmd = [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            f"--machine={self.name}",
            f"--directory={self.root}",
            "--volatile=overlay",
            "--private-network",
            "--console=passive",
            "--boot",
        ]
        cmd[-1:-1] = [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT
        )
        while not self.leader:
            if self.proc.poll() is not None or time.monotonic() - t0 > timeout:
                raise CheckError(f"the container did not start: {self.console_text()}")
            self.leader = self._child_of(self.proc.pid)
            time.sleep(0.05)
        state = ""
        while time.monotonic() - t0 < timeout:
            r = self.run("systemctl is-system-running --wait", check=False, timeout=timeout)
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.2)  # the bus may not be up yet
        if state != "running":
            failed = self.run("systemctl --failed --no-legend", check=False).stdout
            raise CheckError(f"the container's systemd is {state!r}; failed units:\n{failed}")
        return time.monotonic() - t0

    @staticmethod
    def _child_of(pid: int) -> int:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                return int(stat.parent.name)
        return 0

    def run(
        self, script: str, *, check: bool = True, timeout: float = 120, env: dict | None = None
    ):
        """Run a bash script inside as root; CheckError when it fails and ``check``."""
        envs = [
            f"{k}={v}"
            for k, v in {
                "PATH": PATH,
                "LANG": "C.UTF-8",
                "HOME": "/root",
                "SYSTEMD_PAGER": "",
                **(env or {}),
            }.items()
        ]
        cmd = [
            "nsenter",
            f"--target={self.leader}",
            "--all",
            "--root",
            "--wd",
            "env",
            "-i",
            *envs,
            "bash",
            "-c",
            script,
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise CheckError(
                f"in the container: {script}\nexit {r.returncode}\n{r.stdout}{r.stderr}"
            )
        return r

    def write(self, path: str, text: str) -> None:
        self.run(
            f"mkdir -p {shlex.quote(os.path.dirname(path))} && cat > {shlex.quote(path)} "
            f"<<'EOF_SYSTEMD_CHECK'\n{text}EOF_SYSTEMD_CHECK"
        )

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run(f"systemctl show {unit} -p {','.join(props)}").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def console_text(self) -> str:
        self.console.seek(0)
        return self.console.read().decode(errors="replace")[-3000:]

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # nspawn: a clean poweroff of the container
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.console.close()


def wait_for(what: str, probe, timeout: float, every: float = 0.2):
    """Call ``probe()`` until it returns something true; return that, or raise."""
    end = time.monotonic() + timeout
    while True:
        v = probe()
        if v:
            return v
        if time.monotonic() > end:
            raise CheckError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


# --- the checks (each returns figures for the report) ----------------------------------


@dataclass
class Session:
    """A booted container with vanbox installed, and what was seen before the install."""

    box: Container
    before_files: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    install_log: str = ""


# Not what install.sh leaves behind: where the container changes by itself (logs, /run,
# /tmp), apt's own caches (install.sh asks apt-cache), /etc/*- (shadow-utils' backups of
# the previous passwd/group/shadow: they name the removed user until the next change),
# and mosquitto's persistence file, written whenever Debian's mosquitto stops (the
# package stays, like every package install.sh installed). Anything named vanbox is
# looked for everywhere anyway (see leftovers).
IGNORED = re.compile(
    r"^/(proc|sys|dev|run|tmp|mnt|var/tmp|var/log|var/cache/apt|var/lib/dbus"
    r"|etc/(passwd|group|shadow|gshadow)-|var/lib/mosquitto/mosquitto\.db)(/|$)"
)
LIST_FILES = (
    "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /mnt \\) -prune -o -print"
)


def files(box: Container) -> list[str]:
    return sorted(p for p in box.run(LIST_FILES).stdout.splitlines() if not IGNORED.match(p))


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
    # (journald may take a moment to file the dying process's stderr)
    def dumped() -> str:
        log = s.box.run(f"journalctl -u vanbox --since '{since}' --no-pager -o cat").stdout
        return log if "Fatal Python error: Aborted" in log and "Current thread" in log else ""

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


# --- the whole run -----------------------------------------------------------------------


@contextlib.contextmanager
def session(cache: Path = CACHE, repo: Path = REPO, log=print) -> Iterator[Session]:
    """A booted container with vanbox installed; stopped and thrown away at the end."""
    root, root_s = ensure_root(cache, log)
    t0 = time.monotonic()
    wheels = ensure_wheels(cache, repo)
    wheels_s = time.monotonic() - t0
    with tempfile.TemporaryDirectory(prefix="vanbox-check-src-") as tmp:
        src = snapshot_source(Path(tmp), repo)
        box = Container(root, {src: "/mnt/src", wheels: "/mnt/wheels"})
        try:
            boot_s = box.start()
            s = Session(box, figures={"root_s": root_s, "wheels_s": wheels_s, "boot_s": boot_s})
            yield s
        finally:
            box.stop()


def run_all(cache: Path, keep: bool) -> int:
    steps = [
        ("install", install),
        ("ready", check_ready),
        ("gps", check_gps),
        ("journald", check_journald),
        ("prune-timer", check_prune_timer),
        ("sigkill", check_sigkill),
        ("watchdog", check_watchdog),
        ("failed-start", check_failed_start),
    ]
    t0 = time.monotonic()
    failed = 0
    with session(cache) as s:
        for name, fn in steps:
            try:
                fn(s)
                print(f"ok    {name}")
            except CheckError as e:
                failed += 1
                print(f"FAIL  {name}: {e}")
                if name == "install":
                    break
        if keep:
            print(
                f"the container runs; inside: nsenter -t {s.box.leader} -a -r -w bash  "
                "(Enter ends it)"
            )
            input()
        elif not failed:
            try:
                uninstall(s)
                left = leftovers(s)
                if left:
                    raise CheckError("left after --uninstall --purge:\n  " + "\n  ".join(left))
                print("ok    uninstall, purge: nothing of vanbox left")
            except CheckError as e:
                failed += 1
                print(f"FAIL  uninstall/purge: {e}")
        figures = s.figures
    figures["total_s"] = time.monotonic() - t0
    print("\nfigures (seconds):")
    for k, v in figures.items():
        print(f"  {k:20} {v:7.1f}")
    return 1 if failed else 0


def wheels_only(arch: str, extra: list[str]) -> int:
    reqs = dependencies() + extra
    with tempfile.TemporaryDirectory() as d:
        try:
            names = pip_download(reqs, Path(d), arch)
        except CheckError as e:
            print(e)
            return 1
    binary = [n for n in names if not n.endswith("-none-any.whl")]
    print(f"{len(names)} wheels for CPython {PY} on {arch}, {len(binary)} with compiled code:")
    for n in names:
        print(f"  {n}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", nargs="?", choices=["boot", "wheels"], default="boot")
    p.add_argument("--cache", type=Path, default=CACHE, help=f"cache folder (default {CACHE})")
    p.add_argument("--keep", action="store_true", help="keep the container running at the end")
    p.add_argument("--arch", default="aarch64", help="wheels: the platform (default aarch64)")
    p.add_argument("--extra", nargs="*", default=[], help="wheels: more requirements to check")
    args = p.parse_args(argv)
    if args.what == "wheels":
        return wheels_only(args.arch, args.extra)
    reason = why_not(args.cache)
    if reason:
        print(f"systemd-check: cannot run here: {reason}", file=sys.stderr)
        return 2
    return run_all(args.cache, args.keep)


if __name__ == "__main__":
    sys.exit(main())
