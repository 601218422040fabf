"""The publisher's settings for a mobile link and the test bed's profiles (no root)."""

from __future__ import annotations

import random
import socket
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry import publisher as P

sys.path.insert(0, str(Path(__file__).parent))
from netbed_import import load  # noqa: E402


@pytest.mark.parametrize(
    ("keepalive", "expected"), [(5, 5.0), (10, 10.0), (20, 10.0), (30, 15.0), (60, 30.0)]
)
def test_user_timeout(keepalive, expected):
    assert P.user_timeout_s(keepalive) == expected


@given(st.integers(5, 3600))
def test_user_timeout_notices_within_the_budget(keepalive):
    ut = P.user_timeout_s(keepalive)
    probe_every = max(1, int(keepalive / 10))
    # noticed after at most the user timeout plus one probe interval: below 1.5 keepalives
    assert ut + probe_every <= 1.5 * keepalive
    assert ut >= min(keepalive, 10)


def test_tune_socket_sets_the_kernel_options():
    with socket.socket() as s:
        P.tune_socket(s, 60)
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 30_000
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 6


@pytest.mark.parametrize(
    ("err", "silent"),
    [
        (TimeoutError("timed out"), True),
        (socket.gaierror(-3, "Temporary failure in name resolution"), True),
        (OSError(113, "No route to host"), True),
        (OSError(101, "Network is unreachable"), True),
        (ConnectionRefusedError(111, "Connection refused"), False),
        (ConnectionResetError(104, "reset"), False),
        (ValueError("bad host"), False),
    ],
)
def test_silent_failures(err, silent):
    assert P.silent_failure(err) is silent


class _Refusing:
    """A paho client stand-in whose connect fails with ``err``."""

    def __init__(self, err):
        self.err = err

    def __getattr__(self, name):
        return lambda *a, **k: None

    def connect(self, *a, **k):
        raise self.err


@pytest.mark.parametrize(
    ("err", "lo", "hi"),
    [
        (TimeoutError("timed out"), 0.0, P.SILENT_RETRY_S),  # the link: look again soon
        (ConnectionRefusedError(111, "refused"), 30.0, 60.0),  # the broker: back off
    ],
)
def test_retry_delay_after_a_failed_connect(store, err, lo, hi):
    pub = P.Publisher(store, {"reconnect_max_s": 60.0}, van="v", tid="V",
                      client_factory=lambda _id: _Refusing(err))  # fmt: skip
    pub._attempt = 10  # many failures already: the backoff is at its cap
    pub._rng = random.Random(1)
    before = P.time.monotonic()
    pub._open()
    delay = pub._next_attempt - before
    assert lo <= delay <= hi + 0.1
    assert pub._conn is None


def test_profiles():
    nb = load()
    lte, bad = nb.PROFILES["lte"], nb.PROFILES["bad"]
    assert (lte.delay_ms, lte.jitter_ms, lte.loss) == (80, 40, 0.01)
    assert (bad.delay_ms, bad.jitter_ms, bad.loss, bad.dup) == (600, 300, 0.05, 0.01)
    assert bad.reorder > 0
    assert lte.netem_args() == ["delay", "80ms", "40ms", "loss", "1%"]


@given(
    delay=st.floats(-10, 70_000, allow_nan=False),
    jitter=st.floats(-10, 70_000, allow_nan=False),
    loss=st.floats(-1, 2, allow_nan=False),
)
def test_profile_bounds(delay, jitter, loss):
    nb = load()
    ok = 0 <= delay <= 60_000 and 0 <= jitter <= delay and 0 <= loss <= 1
    if ok:
        assert nb.Profile("x", delay, jitter, loss=loss).loss == loss
    else:
        with pytest.raises(ValueError, match="profile x"):
            nb.Profile("x", delay, jitter, loss=loss)


def test_unavailable_says_why(monkeypatch):
    nb = load()
    g = nb.unavailable.__globals__  # deploy/netbed/netbed_bed.py
    monkeypatch.setattr(g["os"], "geteuid", lambda: 1000)
    assert "root" in nb.unavailable()
    monkeypatch.setattr(g["os"], "geteuid", lambda: 0)
    monkeypatch.setattr(g["shutil"], "which", lambda name: None)
    assert "iproute2" in nb.unavailable()
