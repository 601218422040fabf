"""What surrounds the box in ``vanbox soak`` (:mod:`firmware.soak`): a private mosquitto
(:class:`Broker`, persistence on, so the hub's queued session survives restarts) and
visitors tapping through the box's real kiosk over HTTP (:class:`Kiosk`).
"""

from __future__ import annotations

import getpass
import html
import os
import random
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from telemetry.errors import VanboxError

from .localnet import free_port, terminate, wait_port


class Broker:
    def __init__(self, work: Path) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(exe):
            raise VanboxError("mosquitto is not installed (apt-get install mosquitto)")
        self.exe, self.port, self.dir = exe, free_port(), work / "mosquitto"
        self.dir.mkdir()
        (self.dir / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.dir}/\nmax_queued_messages 0\n"
            "max_inflight_messages 0\nlog_dest stderr\nlog_type error\n"
            # Run as root, mosquitto would switch to its own user, which may not write
            # the persistence file in our folder; then sessions would not survive.
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if self.proc is not None:
            return
        with open(self.dir / "log", "ab") as logf:
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(self.dir / "mosquitto.conf")], stdout=logf, stderr=logf
            )
        try:
            wait_port(self.port, 15)
        except TimeoutError:
            raise VanboxError("the soak test's mosquitto did not start") from None

    def stop(self) -> None:
        terminate(self.proc, 15)
        self.proc = None


class Kiosk:
    """Posts check-ins to the box's real kiosk, as a visitor tapping through would."""

    def __init__(self, port: int, rng: random.Random) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.rng = rng

    def checkin(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        lang = self.rng.choice(["de", "de", "de", "en", "tr", "ar", "uk", "ru", "fa"])
        try:
            page = opener.open(f"{self.base}/{lang}/checkin", timeout=3).read().decode()
            token = html.unescape(re.search(r'name="csrf_token" value="([^"]+)"', page)[1])
            flow = re.search(r'name="flow" value="([^"]+)"', page)[1]
            first = self.rng.choice(["yes", "no", "no"])
            form = [
                ("csrf_token", token),
                ("flow", flow),
                ("step", "heard" if first == "yes" else "visit"),
                ("age", self.rng.choice(["15-17", "18-20", "21-24", "25-27", "unsaid"])),
                ("first_visit", first),
            ]
            topics = ["school", "training", "job", "money", "housing", "family", "health"]
            form += [("topic", t) for t in self.rng.sample(topics, self.rng.randint(1, 3))]
            if first == "yes":
                form.append(("heard_from", self.rng.choice(["friends", "school", "poster"])))
            body = urllib.parse.urlencode(form).encode()
            r = opener.open(f"{self.base}/{lang}/checkin", data=body, timeout=3)
            return r.status == 200 and "/thanks" in r.geturl()
        except (OSError, TypeError, AttributeError):
            return False  # the box is off (power cut) or the page is not there
