"""Fuzz the hub's MQTT boundary with many examples and print the counts per topic kind.

    .venv/bin/python benchmarks/fuzz_hub_ingest.py [EXAMPLES_PER_KIND]   (default 2000)

Runs ``tests/hub/test_ingest_fuzz.py`` (Hypothesis, in process against the hub's decode
and store path; after every fuzzed message a good event of another van must be stored)
and prints, per topic kind, the inputs tried, how many were refused (kept as dead letters;
a retained message kept aside before is counted but not kept twice), and the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as d:
        report = Path(d) / "counts.jsonl"
        env = {**os.environ, "VANBOX_FUZZ_EXAMPLES": str(n), "VANBOX_FUZZ_REPORT": str(report)}
        t0 = time.perf_counter()
        rc = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/hub/test_ingest_fuzz.py"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        elapsed = time.perf_counter() - t0
        rows = (
            [json.loads(line) for line in report.read_text().splitlines()]
            if report.exists()
            else []
        )
    print(f"\nhub MQTT boundary fuzz, {n} examples per kind, {elapsed:.1f} s in all")
    print(f"{'kind':<10} {'tried':>7} {'refused':>14} {'accepted':>10}")
    for r in rows:
        print(f"{r['kind']:<10} {r['tried']:>7} {r['dead']:>14} {r['tried'] - r['dead']:>10}")
    total = sum(r["tried"] for r in rows)
    print(f"{'all':<10} {total:>7} {sum(r['dead'] for r in rows):>14}")
    print("result:", "every good event after a fuzzed one was stored" if rc == 0 else "FAILED")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
