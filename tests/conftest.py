"""Shared fixtures: a private mosquitto, Debian's Chromium through Playwright, a store.

Never touches the broker on 127.0.0.1:1883: every MQTT test gets its own mosquitto on a
free port with its own config in a temp dir, stopped with SIGTERM.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from firmware.localnet import free_port, terminate, wait_port  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
# gpsd's receiver recordings with gpsd's own output (byte copies, BSD-2-Clause: see
# tests/data/nmea-corpus/README.md), or wherever VANBOX_NMEA_CORPUS points.
CORPUS = Path(
    os.environ.get("VANBOX_NMEA_CORPUS") or ROOT / "tests" / "data" / "nmea-corpus"
).resolve()
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@dataclass
class Broker:
    """A private mosquitto. ``stop()`` sends SIGTERM; ``start()`` runs it again on the
    same port with the same config (and persistence file, if ``persistence=True``)."""

    dir: Path
    port: int
    extra_config: str = ""
    persistence: bool = False
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def conf(self) -> Path:
        return self.dir / "mosquitto.conf"

    def write_config(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.dir}/",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            self.extra_config,
        ]
        if not any(line.startswith("user ") for line in self.extra_config.splitlines()):
            # As root, mosquitto switches to its own user, which could not write the
            # persistence file here.
            lines.append(f"user {getpass.getuser()}")
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        if self.proc and self.proc.poll() is None:
            return
        self.write_config()
        log = open(self.dir / "mosquitto.log", "ab")
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        try:
            wait_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError((self.dir / "mosquitto.log").read_text()[-2000:]) from None

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator:
    """Make private brokers: ``broker_factory(extra_config="", persistence=False)``."""
    made: list[Broker] = []

    def make(extra_config: str = "", persistence: bool = False) -> Broker:
        d = tmp_path / f"mosquitto-{len(made)}"
        d.mkdir()
        b = Broker(d, free_port(), extra_config, persistence)
        b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def broker(broker_factory) -> Broker:
    """One private mosquitto on a free port, anonymous access, no persistence."""
    return broker_factory()


@pytest.fixture(scope="session")
def playwright_session():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (the tests need it)")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    yield pw
    pw.stop()


@pytest.fixture(scope="session")
def browser(playwright_session):
    """Debian's Chromium, headless, with the flags this closed network needs."""
    b = playwright_session.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )
    yield b
    b.close()


@pytest.fixture
def touch_page(browser):
    """A fresh page at 800x480 (the official 7-inch Pi display) with touch enabled.
    Use ``touch_page.set_viewport_size(...)`` for other sizes."""
    ctx = browser.new_context(
        viewport={"width": 800, "height": 480}, has_touch=True, is_mobile=False, locale="de-DE"
    )
    page = ctx.new_page()
    yield page
    ctx.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def store(tmp_path: Path):
    from telemetry.store import Store

    s = Store(tmp_path / "vanbox.db", van="testvan", tid="TV")
    yield s
    s.close()


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"NMEA corpus not found at {CORPUS}")
    return CORPUS


def pytest_collection_modifyitems(config, items) -> None:
    """With several workers (``pytest -n N --dist loadgroup``, see deploy/test.sh) every
    browser test runs on one worker, one after another (one Chromium at a time); other tests
    stay together by file, as with ``--dist loadfile``."""
    for item in items:
        group = "browser" if item.get_closest_marker("browser") else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
