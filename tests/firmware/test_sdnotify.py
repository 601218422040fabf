"""sd_notify over a real AF_UNIX datagram socket, as systemd provides it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from firmware import sdnotify


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch):
    path = tmp_path / "notify.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield s
    s.close()


def drain(s: socket.socket) -> list[bytes]:
    out = []
    s.setblocking(False)
    try:
        while True:
            out.append(s.recv(4096))
    except BlockingIOError:
        pass
    finally:
        s.settimeout(5)
    return out


def test_ready_status_watchdog(notify_socket):
    assert sdnotify.ready("gps waiting for fix")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=gps waiting for fix"
    assert sdnotify.status("running")
    assert notify_socket.recv(4096) == b"STATUS=running"
    assert sdnotify.watchdog()
    assert notify_socket.recv(4096) == b"WATCHDOG=1"
    assert sdnotify.stopping()
    assert notify_socket.recv(4096) == b"STOPPING=1"


def test_noop_without_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.watchdog() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/path")  # not a valid address
    assert sdnotify.ready() is False


def test_socket_gone_is_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sdnotify.watchdog() is False


def test_abstract_namespace(monkeypatch):
    name = f"vanbox-test-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(5)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.watchdog()
        assert s.recv(4096) == b"WATCHDOG=1"
    finally:
        s.close()


def test_watchdog_interval_from_env(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sdnotify.watchdog_interval(7.0) == 7.0
    monkeypatch.setenv("WATCHDOG_USEC", "junk")
    assert sdnotify.watchdog_interval(3.0) == 3.0


def test_watchdog_beats_only_while_all_checks_pass(notify_socket):
    alive = {"gps": True, "publisher": True, "web": True}
    wd = sdnotify.Watchdog({k: (lambda k=k: alive[k]) for k in alive}, interval=60)
    assert wd.tick()
    assert drain(notify_socket) == [b"WATCHDOG=1"]

    alive["publisher"] = False  # a hung publisher thread
    assert not wd.tick()
    assert wd.failing == ("publisher",)
    assert drain(notify_socket) == [b"STATUS=unhealthy: publisher"]
    assert not wd.tick()
    assert drain(notify_socket) == []  # no heartbeat, no repeated status

    alive["publisher"] = True
    assert wd.tick()
    assert drain(notify_socket) == [b"STATUS=running", b"WATCHDOG=1"]


def test_a_check_that_raises_counts_as_failed(notify_socket):
    def broken() -> bool:
        raise RuntimeError("thread state unreadable")

    wd = sdnotify.Watchdog({"gps": lambda: True, "web": broken}, interval=60)
    assert not wd.tick()
    assert wd.failing == ("web",)
    assert drain(notify_socket) == [b"STATUS=unhealthy: web"]


def test_watchdog_thread_sends_heartbeats(notify_socket):
    wd = sdnotify.Watchdog({"gps": lambda: True}, interval=0.01).start()
    try:
        got = [notify_socket.recv(4096) for _ in range(3)]
    finally:
        wd.stop()
    assert got == [b"WATCHDOG=1"] * 3
    assert wd.beats >= 3
