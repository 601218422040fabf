"""The soak test: one simulated day with every fault, against real mosquitto and hub."""

import json
import subprocess
import sys

from firmware.soak import FAULT_KINDS, rss_by_day, schedule

STOPS = [(1000.0 + i * 2500, 2500.0 + i * 2500) for i in range(7)]


def test_schedule_is_reproducible_and_has_every_kind():
    a = schedule(7, 3, 19_800, STOPS)
    assert a == schedule(7, 3, 19_800, STOPS)
    assert a != schedule(7, 4, 19_800, STOPS)
    assert {f.kind for f in a} == set(FAULT_KINDS)
    outages = [f.duration for f in a if f.kind == "broker_outage"]
    assert min(outages) < 120 and max(outages) >= 1800  # seconds to hours
    blocked = [f for f in a if f.kind == "beam_blocked"]
    assert len(blocked) == 1 and blocked[0].duration == 3600
    assert all(0 <= f.at < 19_800 for f in a)


def test_rss_by_day_takes_the_longest_run(tmp_path):
    log = tmp_path / "rss.log"
    lines = [f"0 11 {t} {50_000 + t}" for t in range(3)]  # a short run before a power cut
    lines += [f"0 12 {t} {60_000 + t * 10}" for t in range(20)]
    log.write_text("\n".join(lines) + "\n")
    assert rss_by_day(log) == {0: {"quarter": 60_050, "end": 60_190, "samples": 20}}


def test_one_day_with_every_fault_loses_nothing(tmp_path):
    work = tmp_path / "soak"
    proc = subprocess.run(
        [sys.executable, "-m", "firmware", "soak", "--days", "1", "--seed", "2",
         "--minutes-per-day", "0.8", "--workdir", str(work)],
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    result = json.loads((work / "result.json").read_text())
    assert result["ok"] and all(result["checks"].values()), result["checks"]
    assert result["created"]["footfall"] > 10 and result["created"]["checkins"] > 3
    assert result["created"] == result["delivered"]
    assert result["faults"]["power_cut"] == 2 and result["faults"]["broker_outage"] == 2
    assert result["public_samples"] > 100
    assert "RESULT: all checks passed" in out
