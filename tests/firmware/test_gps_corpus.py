"""``vanbox nmea`` against gpsd on every real-receiver recording of the corpus.

For each recording, gpsd's output is its ``.chk`` file. gpsd may report one epoch several
times (during its first cycle, after every sentence); its *fix epochs* are the UTC times
whose last TPV has mode >= 2. For each of them vanbox must have a fix with the same UTC
time, lat/lon within 1e-6 degrees and the same mode; vanbox must have no fix at a time
(or, for gpsd reports without a date, at a time of day) where gpsd reports no fix; and
vanbox's fix epochs that gpsd does not have are "extra". Every remaining difference is
listed below with its reason, so the test fails when the behaviour changes either way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from firmware.nmea_dump import file_fixes
from telemetry.events import iso_utc
from tests.conftest import CORPUS

LOGS = sorted(p.name for p in CORPUS.glob("*.log")) if CORPUS.is_dir() else []

GSA_2D = (
    "the receiver's GSA says 2D for this epoch (few satellites, altitude held); gpsd "
    "reports 3D because GGA carries an altitude; vanbox takes the dimension from GSA"
)

# recording -> {"missing": {time: reason}, "extra": {time: reason}}; absent = no difference
EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "beidou-gb.log": {
        "extra": {
            "2034-10-16T05:32:32.438Z": "first fix of the file: gpsd reported it (mode 3) "
            "after the GNGNS, before the cycle's GNRMC brought the first date, so its TPV "
            "has no time; the GNRMC of the same epoch is valid (A) and vanbox dates it"
        }
    },
    "garmin-10x.log": {
        "missing": {
            "2030-03-03T16:50:09.000Z": GSA_2D,
            "2030-03-03T16:50:44.000Z": GSA_2D,
        }
    },
    "sl869.log": {
        "missing": {
            "2032-07-11T10:21:43.990Z": GSA_2D,
            "2032-07-11T10:21:44.000Z": GSA_2D,
        }
    },
}

_TOD_FIELD = {"GGA": 1, "RMC": 1, "GNS": 1, "ZDA": 1, "GLL": 5}


@dataclass
class Gpsd:
    fixes: dict[str, dict] = field(default_factory=dict)  # time -> last TPV, mode >= 2
    nofix_times: set[str] = field(default_factory=set)  # time -> last TPV mode < 2
    nofix_tods: set[int] = field(default_factory=set)  # centiseconds of day, last TPV mode < 2


def _tod_key(s: str) -> int:
    return round((int(s[0:2]) * 3600 + int(s[2:4]) * 60 + float(s[4:])) * 100)


def load_gpsd(chk: Path) -> Gpsd:
    """gpsd's epochs from a .chk file: the last TPV per UTC time, and the last TPV per time
    of day (from the sentences gpsd echoed before it), for TPVs without a time."""
    by_time: dict[str, dict] = {}
    by_tod: dict[int, int] = {}
    tod: int | None = None
    for line in chk.read_text(encoding="latin-1").splitlines():
        if line.startswith("$"):
            f = line.split("*")[0].split(",")
            i = _TOD_FIELD.get(f[0][3:])
            if i is not None and len(f) > i and f[i]:
                tod = _tod_key(f[i])
        elif line.startswith("{"):
            d = json.loads(line)
            if d.get("class") != "TPV":
                continue
            if "time" in d:
                by_time[d["time"]] = d
            if tod is not None:
                by_tod[tod] = d["mode"]
    g = Gpsd()
    for t, d in by_time.items():
        if d["mode"] >= 2:
            g.fixes[t] = d
        else:
            g.nofix_times.add(t)
    g.nofix_tods = {k for k, mode in by_tod.items() if mode < 2}
    return g


@dataclass
class Comparison:
    gpsd_fixes: int
    matched: int
    missing: dict[str, str]  # time -> what vanbox had
    extra: set[str]
    fix_where_gpsd_has_none: list[str]
    vanbox_epochs: int


def compare(log: Path) -> Comparison:
    g = load_gpsd(log.with_name(log.name + ".chk"))
    by_time: dict[str, list] = {}
    by_tod: dict[int, list] = {}
    epochs = 0
    for fix in file_fixes(log):
        epochs += 1
        if fix.time is not None:
            by_time.setdefault(iso_utc(fix.time), []).append(fix)
        if fix.time_of_day is not None:
            by_tod.setdefault(round(fix.time_of_day * 100), []).append(fix)
    matched, missing = 0, {}
    for t, d in g.fixes.items():
        ours = by_time.get(t, [])
        if any(
            f.mode == d["mode"] and abs(f.lat - d["lat"]) <= 1e-6 and abs(f.lon - d["lon"]) <= 1e-6
            for f in ours
            if f.mode >= 2
        ):
            matched += 1
        else:
            missing[t] = ", ".join(f"mode {f.mode} {f.lat} {f.lon}" for f in ours) or "nothing"
    extra = {t for t, fs in by_time.items() if t not in g.fixes and any(f.mode >= 2 for f in fs)}
    bad = [t for t in g.nofix_times if any(f.mode >= 2 for f in by_time.get(t, []))]
    bad += [
        f"tod {k / 100:.2f}" for k in g.nofix_tods if any(f.mode >= 2 for f in by_tod.get(k, []))
    ]
    return Comparison(len(g.fixes), matched, missing, extra, bad, epochs)


@pytest.fixture(scope="module")
def results() -> dict[str, Comparison]:
    return {}


def test_corpus_is_there():
    assert CORPUS.is_dir(), f"NMEA corpus not found at {CORPUS}"
    assert len(LOGS) == 15, LOGS
    assert set(EXPECTED) <= set(LOGS)


@pytest.mark.parametrize("name", LOGS)
def test_recording_agrees_with_gpsd(name: str, results: dict[str, Comparison]) -> None:
    c = compare(CORPUS / name)
    results[name] = c
    expected = EXPECTED.get(name, {})
    print(
        f"{name}: gpsd fix epochs {c.gpsd_fixes}, matched {c.matched}, "
        f"extra {len(c.extra)}, vanbox epochs {c.vanbox_epochs}"
    )
    assert c.fix_where_gpsd_has_none == [], "vanbox reports a fix where gpsd reports none"
    assert set(c.missing) == set(expected.get("missing", {})), c.missing
    assert c.extra == set(expected.get("extra", {}))
    assert c.matched == c.gpsd_fixes - len(c.missing)


def test_partial_cycles_are_not_reported():
    """gpsd's epoch rule (issue 12 point 8): neo-m8n's last cycle (RMC, VTG, GGA, without
    its cycle ender) and rst39's partial first cycle (one GGA at 20:41:32.100) used to be
    extra epochs; now neither is reported, and the totals keep every match."""
    neo = compare(CORPUS / "neo-m8n.log")
    assert "2034-11-01T17:19:48.000Z" not in neo.extra and neo.matched == neo.gpsd_fixes == 22
    rst = compare(CORPUS / "rst39.log")
    assert "2033-10-05T20:41:32.100Z" not in rst.extra and rst.matched == rst.gpsd_fixes == 40


def test_corpus_totals(results: dict[str, Comparison]) -> None:
    """Goal over the corpus: >= 99 % of gpsd's fix epochs matched, <= 1 % extra epochs."""
    comps = [results.get(n) or compare(CORPUS / n) for n in LOGS]
    gpsd_fixes = sum(c.gpsd_fixes for c in comps)
    matched = sum(c.matched for c in comps)
    extra = sum(len(c.extra) for c in comps)
    print(f"corpus: gpsd fix epochs {gpsd_fixes}, matched {matched}, extra {extra}")
    assert gpsd_fixes > 400
    assert matched / gpsd_fixes >= 0.99
    assert extra / gpsd_fixes <= 0.01


def test_week_rollover_matches_gpsd():
    """bu353s4 reports 2014-12-31; like gpsd, vanbox moves it 1024 weeks on."""
    first = next(f for f in file_fixes(CORPUS / "bu353s4.log") if f.time is not None)
    assert iso_utc(first.time) == "2034-08-16T03:07:19.000Z"
    # ublox-zed-f9p-nmea is from 2019: no shift
    first = next(f for f in file_fixes(CORPUS / "ublox-zed-f9p-nmea.log") if f.time is not None)
    assert first.time.year == 2019


def test_cli_subprocess_prints_the_same_epochs():
    """The real ``vanbox nmea FILE --json`` prints exactly what the library path yields."""
    log = CORPUS / "ublox-zed-f9p-nmea.log"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "firmware", "nmea", str(log), "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines == [f.to_json() for f in file_fixes(log)]
    assert len(lines) >= 29
    fixes = [d for d in lines if d["mode"] >= 2]
    assert all({"time", "lat", "lon", "mode"} <= set(d) for d in fixes)
    assert fixes[0]["time"].endswith("Z") and len(fixes[0]["time"]) == 24


def test_cli_reports_a_missing_source():
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "firmware", "nmea", "/nonexistent/gps.log"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no such file or port" in proc.stderr
