"""Bytes written to the SD card per 8-hour service day.

    sudo .venv/bin/python benchmarks/bench_sd_writes.py

A simulated service day (the demo tour stretched to 8 hours: GPS at 1 Hz through the
real deadband, stop visits, door counts, check-ins; deploy/netbed/netbed_van.py) goes through
the box's real record path (:class:`firmware.box_record.Recorder`), its heartbeat, and
the publisher's acknowledgements (``Store.mark_sent_relaxed`` as the publisher batches
them, the broker acking each message 0.2 s after it was committed), at full speed on a
simulated clock. The database lives on its own ext4 file system in a loop device
(``/sys/block/loopN/stat``: what the card sees, file system journal included); without
root, in a temporary folder (``/proc/<pid>/io`` only). Under ``strace`` (if installed)
it also splits the bytes per file: database, WAL, logs.

Prints the figures of the old write pattern (a heartbeat write every 5 s,
acknowledgements flushed every 0.25 s, every track point its own transaction), then of
each change in turn, the last being the current code, all measured in the same run, and
the expected life of a 32 GB card.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DAY_S = 8 * 3600
ACK_AFTER_S = 0.2

# The card (assumptions, stated in docs/mobile-link.md): 32 GB of TLC flash rated for
# about 1,000 program/erase cycles (a consumer card; "endurance" cards are rated higher,
# e.g. by hours of video); the card's controller writes more than it is given, more so
# for small synced writes: write amplification 4 for a good card, 32 for a cheap one
# with large allocation units and little cache.
CARD_GB = 32
PE_CYCLES = 1000
WRITE_AMP = {"good card (write amplification 4)": 4.0, "cheap card (32)": 32.0}
DAYS_PER_YEAR = 250  # service days a year; the box is off otherwise


class SimTime:
    """A stand-in for the ``time`` module whose clocks are the simulated day's."""

    def __init__(self, t: float) -> None:
        self.t = t

    def monotonic(self) -> float:
        return self.t

    def time(self) -> float:
        return self.t

    def __getattr__(self, name):
        import time

        return getattr(time, name)


def load_van():
    spec = importlib.util.spec_from_file_location(
        "netbed_van", ROOT / "deploy/netbed/netbed_van.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def child(db: str, v: dict) -> dict:
    """One service day into ``db`` with the write pattern ``v`` (see :data:`VARIANTS`);
    returns this process's /proc/self/io figures and what it did."""
    from firmware import box_record
    from telemetry.store import Store

    van = load_van()
    tz = ZoneInfo("Europe/Berlin")
    day = datetime.now(tz).date() - timedelta(days=1)
    start = datetime(day.year, day.month, day.day, 8, 30, tzinfo=tz)
    clock = SimTime(start.timestamp())
    box_record.time = clock  # the heartbeat's clock
    logf = Path(db).with_name("box.log")
    logging.basicConfig(filename=logf, level=logging.INFO)
    store = Store(db, van="sd", tz="Europe/Berlin", tid="SD")
    rec = box_record.Recorder(store)
    before = v["heartbeat"] == "always"
    hb_every = 5.0
    ack_flush = v["ack_flush_s"]
    track_s = v["track_commit_s"]
    if v.get("checkpoint_pages"):
        store._conn.execute(f"PRAGMA wal_autocheckpoint = {v['checkpoint_pages']}")
    acked: list[int] = []
    acked_since = None
    pending: list = []  # (ack time, seq)
    track: list = []
    track_since = None
    last_hb = last_tick = -1e18
    seq_seen = 0
    counts = defaultdict(int)

    def advance(to: float) -> None:
        nonlocal acked_since, last_hb, last_tick, track
        t = clock.t
        while t < to:
            t = min(to, t + 1.0)
            clock.t = t
            if track and t - track_since >= track_s:  # the box's retry loop commits them
                commit(track)
                track = []
            if t - last_tick >= box_record.RETRY_EVERY_S:  # the retry loop's tick
                last_tick = t
                if before and t - last_hb >= hb_every:
                    last_hb = t
                    rec.heartbeat(force=True)
                    counts["heartbeats"] += 1
                elif not before:
                    rec.heartbeat()
            while pending and pending[0][0] <= t:
                acked.append(pending.pop(0)[1])
                if acked_since is None:
                    acked_since = t
            if acked and (t - acked_since >= ack_flush or len(acked) >= 1000):
                store.mark_sent_relaxed(acked)
                counts["ack_flushes"] += 1
                acked.clear()
                acked_since = None

    def commit(evs: list) -> None:
        nonlocal seq_seen
        rec.record_many(evs)
        counts["commits"] += 1
        rows = store.reader().execute("SELECT seq FROM outbox WHERE seq > ?", (seq_seen,))
        for (s,) in rows.fetchall():
            pending.append((clock.t + ACK_AFTER_S, s))
            seq_seen = max(seq_seen, s)

    for t, ev in van.service_day(start, DAY_S, 1):
        advance(t)
        counts[type(ev).__name__] += 1
        if type(ev).__name__ == "Position" and track_s and (ev.speed or 0) >= 2.0:
            if not track:
                track_since = t
            track.append(ev)
            continue
        commit([*track, ev])
        track = []
    if track:
        commit(track)
    advance(clock.t + 60)
    store.close()
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return {"io_write_bytes": int(io["write_bytes"]), "counts": dict(counts)}


def variants() -> dict[str, dict]:
    """The old write pattern, then the changes one by one; the last is the current code."""
    from firmware import box

    old = {"heartbeat": "always", "ack_flush_s": 0.25, "track_commit_s": 0.0}
    hb = {**old, "heartbeat": "idle"}
    ack = {**hb, "ack_flush_s": box.ACK_FLUSH_S}
    now = {**ack, "track_commit_s": box.TRACK_COMMIT_S}
    return {"before (5 s heartbeat)": old, "+ heartbeat when idle": hb,
            "+ acks flushed together": ack, "+ track points batched": now}  # fmt: skip


def loop_device(size_mb: int = 512) -> tuple[str, str, Path] | None:
    """(image, /dev/loopN, mount point) of a fresh ext4, or None without root/loop."""
    if os.geteuid() != 0 or not shutil.which("losetup"):
        return None
    img = Path(tempfile.mkstemp(prefix="vanbox-sd-", suffix=".img")[1])
    mnt = Path(tempfile.mkdtemp(prefix="vanbox-sd-"))
    try:
        subprocess.run(["truncate", "-s", f"{size_mb}M", str(img)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)  # Raspberry Pi OS
        dev = subprocess.run(["losetup", "-f", "--show", str(img)], check=True,
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
        subprocess.run(["mount", "-o", "noatime", dev, str(mnt)], check=True)
        return str(img), dev, mnt
    except (subprocess.CalledProcessError, OSError):
        img.unlink(missing_ok=True)
        return None


def sectors_written(dev: str) -> int:
    return int(Path(f"/sys/block/{Path(dev).name}/stat").read_text().split()[6])


def per_file(trace: Path) -> dict[str, int]:
    """Bytes written per file from ``strace -y`` (pwrite64/write with their paths)."""
    out: dict[str, int] = defaultdict(int)
    pat = re.compile(r"(?:pwrite64|write)\(\d+<([^>]+)>.*\)\s+=\s+(\d+)")
    for line in trace.read_text(errors="replace").splitlines():
        m = pat.search(line)
        if not m:
            continue
        name = m[1]
        kind = ("WAL" if name.endswith("-wal") else "shm" if name.endswith("-shm") else
                "log" if name.endswith(".log") else "database" if name.endswith(".db") else
                None)  # fmt: skip
        if kind:
            out[kind] += int(m[2])
    return dict(out)


def measure(v: dict) -> dict:
    loop = loop_device()
    where = loop[2] if loop else Path(tempfile.mkdtemp(prefix="vanbox-sd-"))
    db = where / "vanbox.db"
    out_json = where / "child.json"
    cmd = [sys.executable, __file__, "--child", str(db), str(out_json), json.dumps(v)]
    trace = where.parent / f"{where.name}.strace"
    if shutil.which("strace"):
        cmd = ["strace", "-f", "-qq", "-y", "-e", "trace=pwrite64,write", "-o", str(trace), *cmd]
    try:
        if loop:
            subprocess.run(["sync"], check=True)
            s0 = sectors_written(loop[1])
        subprocess.run(cmd, check=True)
        r = json.loads(out_json.read_text())
        if loop:
            subprocess.run(["sync", "-f", str(db)], check=True)
            subprocess.run(["umount", str(where)], check=True)  # flush everything
            r["device_bytes"] = (sectors_written(loop[1]) - s0) * 512
        if trace.exists():
            r["files"] = per_file(trace)
        return r
    finally:
        if loop:
            subprocess.run(["umount", str(where)], capture_output=True)
            subprocess.run(["losetup", "-d", loop[1]], capture_output=True)
            Path(loop[0]).unlink(missing_ok=True)
        trace.unlink(missing_ok=True)
        shutil.rmtree(where, ignore_errors=True)


def life_years(bytes_per_day: float) -> dict[str, float]:
    """Years until the card's rated writes are used up by the box's writes alone."""
    return {
        name: round(CARD_GB * 1e9 * PE_CYCLES / (bytes_per_day * wa) / DAYS_PER_YEAR, 1)
        for name, wa in WRITE_AMP.items()
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--only", help="run the variants whose name contains this")
    a = ap.parse_args()
    if a.child:
        Path(a.child[1]).write_text(json.dumps(child(a.child[0], json.loads(a.child[2]))))
        return 0
    rows = {n: measure(v) for n, v in variants().items() if not a.only or a.only in n}
    print("SD card writes per 8-hour service day (MB = 10^6 bytes)")
    print(f"{'':<26}{'device':>9}{'proc io':>9}{'database':>10}{'WAL':>8}{'log':>6}"
          f"{'commits':>9}{'ack txns':>9}")  # fmt: skip
    for name, r in rows.items():
        f = r.get("files", {})
        dev = r.get("device_bytes")
        print(f"{name:<26}{(dev or 0) / 1e6:>9.1f}{r['io_write_bytes'] / 1e6:>9.1f}"
              f"{f.get('database', 0) / 1e6:>10.1f}{f.get('WAL', 0) / 1e6:>8.1f}"
              f"{f.get('log', 0) / 1e6:>6.2f}{r['counts'].get('commits', 0):>9}"
              f"{r['counts'].get('ack_flushes', 0):>9}")  # fmt: skip
    first, last = next(iter(rows.values())), list(rows.values())[-1]
    b = first.get("device_bytes") or first["io_write_bytes"]
    n = last.get("device_bytes") or last["io_write_bytes"]
    print(f"{list(rows)[-1]} / {list(rows)[0]}: {n / b:.2f}")
    print(f"events: {last['counts']}")
    for label, per_day in (("before", b), ("now", n)):
        life = ", ".join(f"{k}: {v:g} years" for k, v in life_years(per_day).items())
        print(f"32 GB card, {PE_CYCLES} cycles, {DAYS_PER_YEAR} days a year, {label}: {life}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
