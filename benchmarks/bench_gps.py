"""GPS reader benchmark: CPU seconds per 100,000 sentences vs bare ``pynmea2.parse``.

Run: ``.venv/bin/python benchmarks/bench_gps.py [--runs N] [--sentences N]``

The input is the real receivers' output in ../shared/nmea-corpus/ (comment lines left
out), repeated until there are 100,000 sentences: the mix of GGA, RMC, GSA, GSV, VTG,
proprietary sentences, bad checksums and noise those receivers really send.

- baseline: ``pynmea2.parse(line)`` on every line (errors caught), nothing else;
- decoder: ``NmeaDecoder.feed`` on every line: checksum check, parsing, epoch grouping,
  building the Fix objects;
- reader over a pty: the ``GpsReader`` thread reading the same bytes from a pty: the
  CPU seconds of that thread (its own CPU clock), and for reference the whole process's
  (which adds the pty writer and the waiting loop of this script).

Goal: decoder and reader <= 1.5 x the baseline. Also: how long the reader takes to read
again after a vanished port comes back (goal <= 5 s with the default ``reopen_s=1``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tty
from pathlib import Path

import pynmea2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firmware.gps import GpsReader, NmeaDecoder  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "nmea-corpus"


def corpus_lines(n: int) -> list[bytes]:
    base: list[bytes] = []
    for log in sorted(CORPUS.glob("*.log")):
        for line in log.read_bytes().split(b"\n"):
            if line.strip() and not line.startswith(b"#"):
                base.append(line + b"\n")
    out: list[bytes] = []
    while len(out) < n:
        out.extend(base[: n - len(out)])
    return out


def cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def run_pynmea2(lines: list[bytes]) -> None:
    parse = pynmea2.parse
    for raw in lines:
        try:
            parse(raw.decode("latin-1").strip())
        except (pynmea2.ParseError, ValueError, TypeError, AttributeError):
            pass


def run_decoder(lines: list[bytes]) -> None:
    dec = NmeaDecoder()
    feed = dec.feed
    for raw in lines:
        feed(raw)
    dec.flush()


def run_reader_pty(data: bytes, n_lines: int) -> tuple[float, float]:
    """(CPU seconds of the reader thread, CPU seconds of the whole process) for ``data``."""
    master, slave = os.openpty()
    tty.setraw(slave)
    epochs = []
    reader = GpsReader(os.ttyname(slave), 115200, on_fix=epochs.append, idle_flush_s=0.05)
    reader.start()
    while not reader.port_open:
        time.sleep(0.005)
    clock = time.pthread_getcpuclockid(reader._thread.ident)  # the reader thread's own CPU
    t0, p0 = time.clock_gettime(clock), time.process_time()
    view = memoryview(data)
    while view:
        view = view[os.write(master, view[:65536]) :]
    while not (reader.lines_read >= n_lines and reader.settled()):
        time.sleep(0.01)
    spent, process = time.clock_gettime(clock) - t0, time.process_time() - p0
    reader.stop()
    os.close(master)
    os.close(slave)
    return spent, process


def reconnect_latency(rounds: int) -> list[float]:
    """Seconds from the port's path reappearing to the reader reading a line from it."""
    out = []
    with tempfile.TemporaryDirectory() as d:
        link = Path(d) / "gps0"
        reader = GpsReader(str(link), on_fix=lambda f: None)  # default reopen_s = 1.0
        reader.start()
        line = b"$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33\r\n"
        for _ in range(rounds):
            master, slave = os.openpty()
            tty.setraw(slave)
            before = reader.lines_read
            time.sleep(0.37)  # the port is away for a while, not aligned with the retries
            t0 = time.monotonic()
            link.symlink_to(os.ttyname(slave))
            while reader.lines_read == before:
                if reader.port_open:
                    os.write(master, line)
                time.sleep(0.01)
            out.append(time.monotonic() - t0)
            os.close(master)
            os.close(slave)
            link.unlink()
            while reader.port_open:
                time.sleep(0.01)
        reader.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sentences", type=int, default=100_000)
    args = ap.parse_args()
    lines = corpus_lines(args.sentences)
    data = b"".join(lines)
    scale = 100_000 / len(lines)
    print(
        f"input: {len(lines)} lines from {CORPUS.name} ({len(data) / 1e6:.1f} MB), "
        f"{args.runs} runs each, CPU seconds per 100,000 sentences (median)"
    )

    base, dec, rdr, proc = [], [], [], []
    for _ in range(args.runs):
        base.append(cpu(lambda: run_pynmea2(lines)) * scale)
        dec.append(cpu(lambda: run_decoder(lines)) * scale)
        thread_s, process_s = run_reader_pty(data, len(lines))
        rdr.append(thread_s * scale)
        proc.append(process_s * scale)
    mb, md, mr, mp = (statistics.median(x) for x in (base, dec, rdr, proc))
    runs = ", ".join(f"{x:.3f}" for x in base)
    print(f"  baseline  pynmea2.parse                 {mb:6.3f} s   (runs: {runs})")
    print(f"  vanbox    NmeaDecoder.feed              {md:6.3f} s   ratio {md / mb:.2f} x")
    print(f"  vanbox    GpsReader thread, pty         {mr:6.3f} s   ratio {mr / mb:.2f} x")
    print(f"  (whole process incl. pty writer: {mp:.3f} s, ratio {mp / mb:.2f} x)   goal <= 1.5 x")

    lat = reconnect_latency(5)
    print(
        f"reconnect after the port returns (reopen_s=1.0, 5 rounds): "
        f"median {statistics.median(lat):.2f} s, max {max(lat):.2f} s  (goal <= 5 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
