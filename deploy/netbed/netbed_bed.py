"""The two namespaces of the network test bed and the shaped link between them.

:class:`Bed` makes ``vbnb-<run>-van`` and ``vbnb-<run>-hub`` (``ip netns``), joins them
with a veth pair shaped by ``tc netem`` where the kernel has it, else with two TUN
devices and the user-space forwarder of :mod:`netbed_shaper`, and removes it all again.
:func:`unavailable` says why it cannot run here. Used by ``deploy/netbed.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from netbed_shaper import Profile, TunLink, open_tun


class NetbedError(Exception):
    """The test bed cannot be set up (or a part of it did not start)."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise NetbedError(f"{' '.join(argv)}: {p.stderr.strip() or p.returncode}")
    return p


def unavailable() -> str | None:
    """Why the test bed cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces): run it with sudo"
    if shutil.which("ip") is None:
        return "needs iproute2 (apt-get install iproute2)"
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        return "needs mosquitto (apt-get install mosquitto)"
    name = f"vbnb-probe-{os.getpid()}-{secrets.token_hex(2)}"
    p = _run("ip", "netns", "add", name, check=False)
    if p.returncode != 0:
        return f"network namespaces are not allowed here ({p.stderr.strip()})"
    _run("ip", "netns", "del", name, check=False)
    if not has_netem() and not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return "the kernel has neither sch_netem nor /dev/net/tun"
    return None


def has_netem() -> bool:
    """Whether ``tc qdisc ... netem`` works on this kernel (tried on a throwaway veth)."""
    if shutil.which("tc") is None:
        return False
    a = f"vbq{secrets.token_hex(3)}"
    if _run("ip", "link", "add", a, "type", "veth", "peer", "name", a + "p",
            check=False).returncode:  # fmt: skip
        return False
    try:
        return _run("tc", "qdisc", "add", "dev", a, "root", "netem", "delay", "1ms",
                    check=False).returncode == 0  # fmt: skip
    finally:
        _run("ip", "link", "del", a, check=False)


class Bed:
    """Two namespaces (``van``, ``hub``) and the shaped link between them."""

    def __init__(self, profile: Profile, shaper: str = "auto", seed: int = 0) -> None:
        self.profile = profile
        self.seed = seed
        tag = f"{os.getpid() % 100000:05d}{secrets.token_hex(2)}"
        self.ns = {"van": f"vbnb-{tag}-van", "hub": f"vbnb-{tag}-hub"}
        self.dev = {"van": f"vb{tag}v", "hub": f"vb{tag}h"}
        r = secrets.randbelow(250 * 64)
        base = f"10.{200 + r // (64 * 50) % 50}.{r % 250}"
        self.addr = {"van": f"{base}.1", "hub": f"{base}.2"}
        self.kind = shaper if shaper != "auto" else ("netem" if has_netem() else "tun")
        self.link: TunLink | None = None
        self._fds: list[int] = []
        self._made: list[str] = []
        self.down = False

    def exec(self, side: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns[side], *argv]

    def start(self) -> Bed:
        for side in ("van", "hub"):
            _run("ip", "netns", "add", self.ns[side])
            self._made.append(self.ns[side])
            _run("ip", "-n", self.ns[side], "link", "set", "lo", "up")
        if self.kind == "netem":
            _run("ip", "link", "add", self.dev["van"], "type", "veth", "peer", "name",
                 self.dev["hub"])  # fmt: skip
        else:
            for side in ("van", "hub"):
                self._fds.append(open_tun(self.dev[side]))
        for side, other in (("van", "hub"), ("hub", "van")):
            ns, dev = self.ns[side], self.dev[side]
            _run("ip", "link", "set", dev, "netns", ns)
            _run("ip", "-n", ns, "addr", "add", self.addr[side], "peer", self.addr[other] + "/32",
                 "dev", dev)  # fmt: skip
            _run("ip", "-n", ns, "link", "set", dev, "up")
        if self.kind == "netem":
            self._netem("add", self.profile)
        else:
            self.link = TunLink(self._fds[0], self._fds[1], self.profile, self.seed).start()
        return self

    def _netem(self, verb: str, p: Profile, loss_all: bool = False) -> None:
        args = ["loss", "100%"] if loss_all else p.netem_args()
        for side in ("van", "hub"):
            _run("ip", "netns", "exec", self.ns[side], "tc", "qdisc", verb, "dev",
                 self.dev[side], "root", "netem", *args)  # fmt: skip

    def set_down(self, down: bool) -> None:
        """A silent blackout: every packet dropped both ways, nothing sent back."""
        self.down = down
        if self.link is not None:
            self.link.set_down(down)
        else:
            self._netem("change", self.profile, loss_all=down)

    def counters(self) -> dict[str, int]:
        """Bytes and packets each side put on the link (IP packets; with netem, the
        veth's frames as counted after the netem loss)."""
        if self.link is not None:
            (ub, up), (db, dp) = self.link.sent["a"], self.link.sent["b"]
            return {"up_bytes": ub, "up_pkts": up, "down_bytes": db, "down_pkts": dp}
        out = {}
        for side, what in (("van", "up"), ("hub", "down")):
            j = json.loads(_run("ip", "-n", self.ns[side], "-s", "-j", "link", "show", "dev",
                                self.dev[side]).stdout)  # fmt: skip
            tx = j[0]["stats64"]["tx"]
            out[f"{what}_bytes"], out[f"{what}_pkts"] = tx["bytes"], tx["packets"]
        return out

    def close(self) -> None:
        if self.link is not None:
            self.link.stop()
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()
        for ns in self._made:
            _run("ip", "netns", "del", ns, check=False)
        self._made.clear()
