"""A link emulator in user space: two TUN devices and a forwarder between them.

Used by ``deploy/netbed.py`` where the kernel has no ``sch_netem`` (``tc qdisc add ...
netem`` answers "Specified qdisc kind is unknown", as on many CI and cloud kernels).
Each namespace gets one end of the link, a point-to-point TUN device; this process
reads every IP packet one side sends and writes it to the other side after the
profile's delay, or drops, duplicates or reorders it, like netem on both ends of a veth
pair. The kernels' TCP stacks on both sides see real loss, delay and silence: a
blackout drops every packet both ways and sends nothing back (no RST, no ICMP), so an
established connection stays half-open until a timer on one side notices.

Counters: bytes and packets each side sent (the IP packets, retransmissions included,
before any loss: what the radio transmits) and delivered.
"""

from __future__ import annotations

import fcntl
import heapq
import os
import random
import select
import struct
import threading
import time
from dataclasses import dataclass

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


@dataclass(frozen=True)
class Profile:
    """One direction's shaping, applied to both directions (like netem on both veth ends).

    ``delay_ms`` ± ``jitter_ms`` (uniform, so packets reorder when the jitter exceeds
    their spacing), ``loss``/``dup``/``reorder`` as fractions (reordered packets go out
    at once, as netem's ``reorder``)."""

    name: str
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.delay_ms <= 60_000 and 0 <= self.jitter_ms <= self.delay_ms):
            raise ValueError(f"profile {self.name}: delay 0..60000 ms, jitter 0..delay")
        for what in ("loss", "dup", "reorder"):
            if not 0.0 <= getattr(self, what) <= 1.0:
                raise ValueError(f"profile {self.name}: {what} must be a fraction 0..1")

    def netem_args(self) -> list[str]:
        """The same profile as arguments of ``tc qdisc ... netem``."""
        args = ["delay", f"{self.delay_ms:g}ms"]
        if self.jitter_ms:
            args.append(f"{self.jitter_ms:g}ms")
        if self.reorder:
            args += ["reorder", f"{self.reorder * 100:g}%"]
        if self.loss:
            args += ["loss", f"{self.loss * 100:g}%"]
        if self.dup:
            args += ["duplicate", f"{self.dup * 100:g}%"]
        return args


PROFILES = {
    "clean": Profile("clean"),
    "lte": Profile("lte", 80, 40, loss=0.01),
    "bad": Profile("bad", 600, 300, loss=0.05, dup=0.01, reorder=0.05),
}


def open_tun(name: str) -> int:
    """Create TUN device ``name`` (lives as long as the returned fd) in this namespace."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


class TunLink:
    """Forwards packets between two TUN fds (``a`` = the van, ``b`` = the centre)."""

    def __init__(self, fd_a: int, fd_b: int, profile: Profile, seed: int = 0) -> None:
        self.fds = {"a": fd_a, "b": fd_b}
        self.profile = profile
        self.down = False
        self.rng = random.Random(seed)
        self.sent = {"a": [0, 0], "b": [0, 0]}  # side -> [bytes, packets] it sent
        self.delivered = {"a": [0, 0], "b": [0, 0]}  # side -> [bytes, packets] it got
        self.dropped = 0
        self._heap: list[tuple[float, int, str, bytes]] = []
        self._n = 0
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._read, name="netbed-read", daemon=True),
            threading.Thread(target=self._write, name="netbed-write", daemon=True),
        ]

    def start(self) -> TunLink:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        for t in self._threads:
            t.join(2)

    def set_down(self, down: bool) -> None:
        """Drop everything both ways (also what is still on its way), or stop dropping."""
        with self._cv:
            self.down = down
            if down:
                self.dropped += len(self._heap)
                self._heap.clear()

    def _schedule(self, to: str, pkt: bytes, now: float) -> None:
        p = self.profile
        if self.rng.random() < p.loss:
            self.dropped += 1
            return
        copies = 2 if self.rng.random() < p.dup else 1
        for _ in range(copies):
            if p.reorder and self.rng.random() < p.reorder:
                delay = 0.0
            else:
                delay = (p.delay_ms + self.rng.uniform(-p.jitter_ms, p.jitter_ms)) / 1000
            self._n += 1
            heapq.heappush(self._heap, (now + max(0.0, delay), self._n, to, pkt))

    def _read(self) -> None:
        other = {"a": "b", "b": "a"}
        by_fd = {fd: side for side, fd in self.fds.items()}
        while not self._stop.is_set():
            r, _, _ = select.select(list(by_fd), [], [], 0.2)
            now = time.monotonic()
            for fd in r:
                try:
                    pkt = os.read(fd, 65536)
                except OSError:
                    continue
                side = by_fd[fd]
                with self._cv:
                    self.sent[side][0] += len(pkt)
                    self.sent[side][1] += 1
                    if self.down:
                        self.dropped += 1
                        continue
                    self._schedule(other[side], pkt, now)
                    self._cv.notify()

    def _write(self) -> None:
        while not self._stop.is_set():
            with self._cv:
                while not self._stop.is_set():
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        _, _, to, pkt = heapq.heappop(self._heap)
                        break
                    wait = self._heap[0][0] - now if self._heap else 0.5
                    self._cv.wait(min(wait, 0.5))
                else:
                    return
            try:
                os.write(self.fds[to], pkt)
                self.delivered[to][0] += len(pkt)
                self.delivered[to][1] += 1
            except OSError:
                self.dropped += 1
