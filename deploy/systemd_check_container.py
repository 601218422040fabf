"""deploy/systemd-check.py's container: a booted systemd-nspawn machine, commands run
inside it through nsenter, and the session (a container with vanbox installed) the checks
share. Standard library only.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from systemd_check_cache import CheckError

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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
# looked for everywhere anyway (see systemd_check_steps.leftovers).
IGNORED = re.compile(
    r"^/(proc|sys|dev|run|tmp|mnt|var/tmp|var/log|var/cache/apt|var/lib/dbus"
    r"|etc/(passwd|group|shadow|gshadow)-|var/lib/mosquitto/mosquitto\.db)(/|$)"
)
LIST_FILES = (
    "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /mnt \\) -prune -o -print"
)


def files(box: Container) -> list[str]:
    return sorted(p for p in box.run(LIST_FILES).stdout.splitlines() if not IGNORED.match(p))
