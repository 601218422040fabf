"""The GPS reader thread on a real pty (``os.openpty``), exactly as it reads a port on the Pi.

Every recording of the corpus goes through a pty: no exception, no fix at 0,0, no fix
where the receiver reports none, and the same fixes whether the recording arrives at the
receiver's own pace (time deltas between epochs, scaled down) or as fast as possible.
The port vanishing (pty closed, symlink removed, like a USB receiver unplugged) and
coming back is survived.
"""

from __future__ import annotations

import logging
import os
import time
import tty
from collections.abc import Callable
from pathlib import Path

import pynmea2
import pytest

from firmware.gps import Fix, GpsReader, read_file
from tests.conftest import CORPUS

LOGS = sorted(p.name for p in CORPUS.glob("*.log")) if CORPUS.is_dir() else []
WAIT_S = 30.0  # generous: the machine is shared; this bounds a hang, it times nothing


def wait_for(cond: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


class Pty:
    """A pty pair; the reader opens the slave by its path, the test writes the master."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo back to the master, no line editing
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def recording_lines(name: str) -> list[bytes]:
    """The receiver's output: the recording without its '#' comment header."""
    raw = (CORPUS / name).read_bytes().split(b"\n")
    return [line + b"\n" for line in raw if line.strip() and not line.startswith(b"#")]


def _tod(line: bytes) -> float | None:
    """Receiver time of day of a line, for pacing (any parse problem: no time)."""
    f = line.split(b"*")[0].split(b",")
    idx = {b"GGA": 1, b"RMC": 1, b"GNS": 1, b"ZDA": 1, b"GLL": 5}.get(f[0][-3:])
    try:
        s = f[idx].decode()
        return int(s[0:2]) * 3600 + int(s[2:4]) * 60 + float(s[4:])
    except (TypeError, IndexError, ValueError, UnicodeDecodeError):
        return None


class Run:
    def __init__(self, url: str, **kw) -> None:
        self.fixes: list[Fix] = []
        self.reader = GpsReader(
            url, 9600, on_fix=self.fixes.append, reopen_s=0.2, idle_flush_s=0.2, **kw
        )


def feed_through_pty(name: str, *, paced_total_s: float | None) -> tuple[list[Fix], GpsReader]:
    lines = recording_lines(name)
    pty = Pty()
    run = Run(pty.path)
    run.reader.start()
    try:
        # opening a port discards what waits in its input buffer (pyserial, like any
        # serial program): start the receiver's stream once the port is open
        wait_for(lambda: run.reader.port_open, "the port to be opened")
        if paced_total_s is None:
            pty.write(b"".join(lines))
        else:
            tods = [_tod(x) for x in lines]
            known = [t for t in tods if t is not None]
            span = max(known) - min(known) if known else 0.0
            scale = paced_total_s / span if span > 0 else 0.0
            last = None
            for line, t in zip(lines, tods, strict=True):
                if t is not None:
                    if last is not None and t > last:
                        time.sleep(min(t - last, 2.0) * scale)  # clamp receiver time jumps
                    last = t
                pty.write(line)
        wait_for(
            lambda: run.reader.lines_read == len(lines) and run.reader.settled(),
            f"{name}: all {len(lines)} lines decoded",
        )
        assert run.reader.is_alive(), "the reader thread died"
    finally:
        run.reader.stop()
        pty.close()
    return run.fixes, run.reader


def receiver_says_no_fix(name: str) -> set[int]:
    """Centisecond times of day at which the receiver itself said "no fix" (RMC status V
    or GGA quality 0), read with pynmea2 as an independent parser."""
    out: set[int] = set()
    for raw in (CORPUS / name).read_bytes().split(b"\n"):
        line = raw.decode("latin-1").strip()
        if not line.startswith("$") or line.count("$") != 1:
            continue
        try:
            msg = pynmea2.parse(line, check=True)
        except (pynmea2.ParseError, ValueError, AttributeError, TypeError):
            continue
        kind = getattr(msg, "sentence_type", "")
        if kind == "RMC" and msg.status == "V" or kind == "GGA" and msg.gps_qual in ("0", 0):
            t = msg.timestamp
            if t is not None:
                out.add(
                    round((t.hour * 3600 + t.minute * 60 + t.second) * 100 + t.microsecond / 1e4)
                )
    return out


@pytest.mark.parametrize("name", LOGS)
def test_recording_through_a_pty(name: str, caplog) -> None:
    caplog.set_level(logging.WARNING)
    fast, reader = feed_through_pty(name, paced_total_s=None)
    paced, _ = feed_through_pty(name, paced_total_s=0.4)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text

    # the pty path is the file path: same decoder, same epochs
    assert fast == list(read_file(CORPUS / name))
    # the receiver's own pace (scaled) and as fast as possible give identical fixes
    assert paced == fast
    assert reader.lines_read == len(recording_lines(name))
    assert not reader.port_open  # stopped

    for fix in fast:
        if fix.mode >= 2:
            assert fix.lat is not None and fix.lon is not None
            assert not (fix.lat == 0 and fix.lon == 0), fix
            assert -90 <= fix.lat <= 90 and -180 <= fix.lon <= 180
        else:
            assert fix.lat is None and fix.lon is None
    no_fix = receiver_says_no_fix(name)
    wrong = [
        f for f in fast if f.mode >= 2 and f.time_of_day is not None
        and round(f.time_of_day * 100) in no_fix
    ]  # fmt: skip
    assert wrong == [], "a fix at a time the receiver reported no fix"


def test_no_fix_recording_really_has_no_fix_epochs_checked():
    """The check above is not vacuous: these recordings have receiver no-fix reports."""
    for name in ("eXplorist110.log", "garmin-10x.log", "sl869.log", "beidou-gb.log"):
        assert receiver_says_no_fix(name), name


def test_port_vanishes_and_comes_back(tmp_path: Path, caplog) -> None:
    """USB receiver unplugged: the port's path disappears, later a new device appears there."""
    caplog.set_level(logging.INFO)
    link = tmp_path / "gps0"
    lines = recording_lines("bu353s4.log")
    cut = next(i for i in range(30, len(lines)) if lines[i].startswith(b"$GPGGA"))  # epoch edge
    first, second = b"".join(lines[:cut]), b"".join(lines[cut:])
    run = Run(str(link))
    run.reader.start()  # nothing there yet: the reader keeps trying
    try:
        wait_for(lambda: run.reader.last_error is not None, "a failed first open")
        assert not run.reader.port_open and run.reader.is_alive()

        pty1 = Pty()
        link.symlink_to(pty1.path)
        wait_for(lambda: run.reader.port_open, "the port to be opened")
        pty1.write(first)
        wait_for(lambda: any(f.mode == 3 for f in run.fixes), "fixes from the first port")
        n_before = len(run.fixes)

        pty1.close()  # unplugged
        link.unlink()
        wait_for(lambda: not run.reader.port_open, "the reader to notice the lost port")
        time.sleep(0.5)  # a few failed reopen attempts
        assert run.reader.is_alive() and not run.reader.port_open

        pty2 = Pty()  # plugged in again: a new device node behind the same path
        link.symlink_to(pty2.path)
        try:
            wait_for(lambda: run.reader.port_open, "the port to be reopened")
            pty2.write(second)
            wait_for(
                lambda: run.reader.lines_read == len(lines) and run.reader.settled(),
                "lines from the second port",
            )
        finally:
            run.reader.stop()
            pty2.close()
    finally:
        run.reader.stop()
    later = run.fixes[n_before:]
    assert later and all(f.time > run.fixes[n_before - 1].time for f in later if f.time)
    assert run.reader.reconnects >= 1
    assert "lost" in caplog.text and "open again" in caplog.text
    # nothing lost or doubled across the gap, compared with the recording read whole
    assert run.fixes == list(read_file(CORPUS / "bu353s4.log"))


def test_on_fix_exception_does_not_stop_the_reader(caplog) -> None:
    pty = Pty()
    seen: list[Fix] = []

    def boom(fix: Fix) -> None:
        seen.append(fix)
        raise RuntimeError("consumer bug")

    reader = GpsReader(pty.path, on_fix=boom, idle_flush_s=0.2)
    reader.start()
    try:
        wait_for(lambda: reader.port_open, "the port to be opened")
        lines = recording_lines("mt3339.log")
        pty.write(b"".join(lines))
        wait_for(lambda: reader.lines_read == len(lines) and reader.settled(), "all lines")
        assert reader.is_alive()
    finally:
        reader.stop()
        pty.close()
    assert len(seen) == 30
    assert "consumer bug" in caplog.text


def test_current_position_is_the_last_good_fix_until_stale() -> None:
    pty = Pty()
    reader = GpsReader(pty.path, on_fix=lambda f: None, idle_flush_s=0.2)
    reader.start()
    try:
        wait_for(lambda: reader.port_open, "the port to be opened")
        lines = recording_lines("bu353s4.log")
        pty.write(b"".join(lines))
        wait_for(lambda: reader.lines_read == len(lines) and reader.settled(), "all lines")
    finally:
        reader.stop()
        pty.close()
    pos = reader.current_position()
    assert pos is not None and pos == reader.last_fix and pos.mode == 3
    at = reader.last_position_monotonic
    assert reader.current_position(now_monotonic=at + 9.0) == pos
    assert reader.current_position(now_monotonic=at + 11.0) is None  # stale after 10 s
    assert reader.bad_lines == 0 and reader.lines_read == len(lines)


def test_noise_lines_are_counted_not_raised() -> None:
    pty = Pty()
    reader = GpsReader(pty.path, on_fix=lambda f: None, idle_flush_s=0.2)
    reader.start()
    noise = [
        b"\x00\x00\xff\xfe garbage\n",
        b"$GPGGA,123*00\n",
        os.urandom(300).replace(b"\n", b"") + b"\n",
    ]
    try:
        wait_for(lambda: reader.port_open, "the port to be opened")
        pty.write(b"".join(noise))
        wait_for(lambda: reader.lines_read == 3 and reader.settled(), "noise lines")
        assert reader.is_alive()
    finally:
        reader.stop()
        pty.close()
    assert reader.bad_lines == 3 and reader.last_fix is None


def test_stop_is_prompt_and_idempotent() -> None:
    reader = GpsReader("/nonexistent/tty", on_fix=lambda f: None, reopen_s=0.1)
    reader.start()
    wait_for(lambda: reader.last_error is not None, "a failed open")
    reader.stop()
    assert not reader.is_alive() and not reader.port_open
    reader.stop()
    assert not reader.is_alive()


def test_reads_a_network_receiver_over_socket_url() -> None:
    """``socket://host:port`` (a receiver behind a serial-to-TCP bridge) reads the same."""
    import socket

    lines = recording_lines("et-332.log")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        fixes: list[Fix] = []
        reader = GpsReader(f"socket://127.0.0.1:{port}", on_fix=fixes.append, idle_flush_s=0.2)
        reader.start()
        try:
            conn, _ = server.accept()
            with conn:
                wait_for(lambda: reader.port_open, "the port to be opened")
                conn.sendall(b"".join(lines))
                wait_for(lambda: reader.lines_read == len(lines) and reader.settled(), "all lines")
        finally:
            reader.stop()
    assert fixes == list(read_file(CORPUS / "et-332.log"))
    assert sum(f.mode == 3 for f in fixes) == 19
