"""deploy/systemd-check.py's Debian root and wheels: where they are cached, how they are
made, and whether the boot check can run on this machine at all.

The root (debootstrap, bookworm) and the wheels of pyproject's dependencies live in
``/var/cache/vanbox-test/`` (``$VANBOX_TEST_CACHE``), each under a hash of what went into
it, so only the first run downloads them; :func:`snapshot_source` copies what install.sh
needs of the checkout. Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
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
# Requirements to add to pyproject's dependencies for this run only, e.g. one a change
# needs before pyproject.toml lists it: VANBOX_CHECK_EXTRA_DEPS="fpdf2>=2.7 pypdf"
EXTRA_DEPS = os.environ.get("VANBOX_CHECK_EXTRA_DEPS", "").split()


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
