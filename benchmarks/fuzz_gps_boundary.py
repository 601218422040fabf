"""Fuzz the GPS boundary through the box's record path, and time the bounds checks.

Run: ``.venv/bin/python benchmarks/fuzz_gps_boundary.py [--inputs N] [--seed S]``

Each input is one NMEA sentence (GGA, RMC, GNS, VTG, GSA or ZDA, correct checksum) with
one field replaced by an absurd number (1e308, 25 digits, -1e999, a long decimal...).
Every input goes through ``NmeaDecoder.feed`` and each resulting fix through
``Box.on_fix`` into a real SQLite store; after every input a door count is recorded
and must be stored at once (nothing waits in the retry queue). Printed: inputs tried,
sentences and fields rejected (by field), exceptions escaping the decoder (goal 0),
good events stored / expected (goal all), dead letters.

Timing: median microseconds per sentence for clean sentences (baseline) and for the
absurd ones, measured in the same run, and their ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from functools import reduce
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firmware.box import Box  # noqa: E402
from firmware.nmea import NmeaDecoder  # noqa: E402
from telemetry import deadletter  # noqa: E402
from telemetry.config import default_config  # noqa: E402
from telemetry.events import Footfall, utcnow  # noqa: E402

ABSURD = ["1e308", "-1e308", "1e999", "-1e999", "9" * 25, "-" + "9" * 25, "1" + "0" * 40,
          "123456789.123456789", "0.000000000000000001", "99999", "-1", "360.0001"]  # fmt: skip
FIELDS = {
    "GGA": ["{t}", "5219.2000", "N", "01014.0400", "E", "1", "08", "0.9", "70.0", "M"],
    "RMC": [
        "{t}",
        "A",
        "5219.2000",
        "N",
        "01014.0400",
        "E",
        "10.0",
        "90.0",
        "260326",
        "",
        "",
        "A",
    ],  # fmt: skip
    "GNS": ["{t}", "5219.2000", "N", "01014.0400", "E", "AA", "08", "0.9", "70.0", "46.9"],
    "VTG": ["90.0", "T", "", "M", "10.0", "N", "18.5", "K", "A"],
    "GSA": ["A", "3", *["01"] * 12, "1.5", "0.9", "1.2"],
    "ZDA": ["{t}", "26", "03", "2026", "00", "00"],
}
NUMERIC = {k: [i for i, v in enumerate(f) if v and (v[0].isdigit() or v == "{t}")]
           for k, f in FIELDS.items()}  # fmt: skip


def nmea(body: str) -> str:
    cs = reduce(lambda a, c: a ^ ord(c), body, 0)
    return f"${body}*{cs:02X}\r\n"


def sentence(rng: random.Random, i: int, absurd: bool) -> str:
    kind = rng.choice(list(FIELDS))
    t = f"{12 + i // 3600 % 10:02d}{i // 60 % 60:02d}{i % 60:02d}.00"
    f = [v.replace("{t}", t) for v in FIELDS[kind]]
    if absurd:
        f[rng.choice(NUMERIC[kind])] = rng.choice(ABSURD)
    return nmea(f"GP{kind}," + ",".join(f))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = default_config({"database": {"path": f"{tmp}/box.db"}, "sensor": {"kind": "none"}})
        box = Box(cfg, gps_url=f"{tmp}/no-gps", mqtt=False, web=False)
        dec = NmeaDecoder()
        escaped: Counter[str] = Counter()
        stored = expected = 0
        dec.feed(nmea("GPRMC,115959.00,A,5219.2000,N,01014.0400,E,1.0,9.0,260326,,,A"))  # a date
        t_abs: list[float] = []
        for i in range(1, args.inputs + 1):
            line = sentence(rng, i, True)
            t0 = time.perf_counter()
            try:
                fixes = dec.feed(line)
            except Exception as e:  # noqa: BLE001 - counted: the goal is none
                escaped[type(e).__name__] += 1
                fixes = []
            t_abs.append(time.perf_counter() - t0)
            for fix in fixes:
                box.on_fix(fix)
            before = box.store.count("footfall")
            box.record(Footfall(time=utcnow(), kind="pass"))
            expected += 1
            stored += box.store.count("footfall") - before
        clean = NmeaDecoder()
        t_clean: list[float] = []
        for i in range(args.inputs):
            line = sentence(rng, i, False)
            t0 = time.perf_counter()
            clean.feed(line)
            t_clean.append(time.perf_counter() - t0)
        dead = deadletter.count(box.store)
        box.store.close()
    print(f"GPS boundary fuzz: {args.inputs:,} absurd sentences (seed {args.seed})")
    print(f"  sentences rejected:    {dec.bad:,}")
    print(f"  fields rejected:       {sum(dec.rejected.values()):,}  {dict(dec.rejected)}")
    print(f"  partial cycles:        {dec.partial:,}")
    print(f"  exceptions escaped:    {sum(escaped.values())}  {dict(escaped)}  (goal 0)")
    print(f"  good events stored:    {stored:,} of {expected:,}  (goal all)")
    print(f"  retry queue at end:    {box.retry_depth}  dead letters: {dead}")
    mc, ma = statistics.median(t_clean) * 1e6, statistics.median(t_abs) * 1e6
    print(f"  decode median: clean {mc:.1f} us, absurd {ma:.1f} us, ratio {ma / mc:.2f}")
    return 0 if not escaped and stored == expected else 1


if __name__ == "__main__":
    sys.exit(main())
