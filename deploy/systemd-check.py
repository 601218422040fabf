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

The parts, next to this script (it puts its own folder on ``sys.path``, so they import
the same when it runs as a script and when tests/deploy loads it from its path):
systemd_check_cache.py (the cached root and wheels, can it run here),
systemd_check_container.py (the nspawn container, the session) and
systemd_check_steps.py (the checks). Every name the tests use is importable from here.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from systemd_check_cache import CACHE as CACHE  # noqa: E402
from systemd_check_cache import EXTRA_DEPS as EXTRA_DEPS  # noqa: E402
from systemd_check_cache import MIRROR as MIRROR  # noqa: E402
from systemd_check_cache import PACKAGES as PACKAGES  # noqa: E402
from systemd_check_cache import PY as PY  # noqa: E402
from systemd_check_cache import REPO as REPO  # noqa: E402
from systemd_check_cache import SUITE as SUITE  # noqa: E402
from systemd_check_cache import CheckError as CheckError  # noqa: E402
from systemd_check_cache import build_requires as build_requires  # noqa: E402
from systemd_check_cache import canonical as canonical  # noqa: E402
from systemd_check_cache import dependencies as dependencies  # noqa: E402
from systemd_check_cache import ensure_root as ensure_root  # noqa: E402
from systemd_check_cache import ensure_wheels as ensure_wheels  # noqa: E402
from systemd_check_cache import pip_download as pip_download  # noqa: E402
from systemd_check_cache import reachable as reachable  # noqa: E402
from systemd_check_cache import root_dir as root_dir  # noqa: E402
from systemd_check_cache import snapshot_source as snapshot_source  # noqa: E402
from systemd_check_cache import why_not as why_not  # noqa: E402
from systemd_check_container import Container as Container  # noqa: E402
from systemd_check_container import Session as Session  # noqa: E402
from systemd_check_container import files as files  # noqa: E402
from systemd_check_container import wait_for as wait_for  # noqa: E402
from systemd_check_steps import WATCHDOG_S as WATCHDOG_S  # noqa: E402
from systemd_check_steps import check_failed_start as check_failed_start  # noqa: E402
from systemd_check_steps import check_gps as check_gps  # noqa: E402
from systemd_check_steps import check_journald as check_journald  # noqa: E402
from systemd_check_steps import check_prune_timer as check_prune_timer  # noqa: E402
from systemd_check_steps import check_ready as check_ready  # noqa: E402
from systemd_check_steps import check_sigkill as check_sigkill  # noqa: E402
from systemd_check_steps import check_watchdog as check_watchdog  # noqa: E402
from systemd_check_steps import install as install  # noqa: E402
from systemd_check_steps import leftovers as leftovers  # noqa: E402
from systemd_check_steps import uninstall as uninstall  # noqa: E402

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
