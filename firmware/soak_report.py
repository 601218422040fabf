"""The end of ``vanbox soak`` (:mod:`firmware.soak`): what the harness saw during the run
(:class:`Stats`), the comparison of the box's database with the hub's once the box has
drained (:func:`compare`), the box's memory per day (:func:`rss_by_day`) and the summary
printed (:func:`print_summary`).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path


@dataclass
class Stats:
    """What the harness saw during the run (faults injected, outbox, check-ins, public API)."""

    faults: Counter = field(default_factory=Counter)
    max_outbox: int = 0
    max_delay_s: float = 0.0
    checkins_posted: int = 0
    checkins_refused: int = 0
    public_samples: int = 0
    public_violations: list = field(default_factory=list)


def compare(
    work: Path,
    hub,
    hub_store,
    stats: Stats,
    *,
    van: str,
    first_day: datetime,
    days: int,
    speed: float,
) -> dict:
    """Count and compare, after the box has drained: every event on the hub exactly once,
    the same per-stop report on both sides, no public position outside service hours,
    both databases intact and the box's memory not growing. ``work`` holds the box's
    ``box.db`` and ``rss.log``."""
    from telemetry import reports

    last_day = first_day + timedelta(days=days - 1)
    box = sqlite3.connect(work / "box.db")
    hubc = hub_store.reader()
    result: dict = {"checks": {}}
    created, delivered = {}, {}
    for table in ("footfall", "checkins", "stop_visits", "positions"):
        b = {r[0] for r in box.execute(f"SELECT id FROM {table}")}
        h = {r[0] for r in hubc.execute(f"SELECT id FROM {table} WHERE van = ?", (van,))}
        created[table], delivered[table] = len(b), len(h & b)
        if table in ("footfall", "checkins"):
            result["checks"][f"every {table} event on the hub exactly once"] = b == h
    period = reports.Period("year", first_day.date(), (last_day + timedelta(days=1)).date(), "soak")
    per_stop_box = reports.report(box, "stops", period)
    per_stop_hub = reports.report(hubc, "stops", period, van=van)
    result["checks"]["per-stop counts on the hub equal the box's"] = (
        per_stop_box.rows == per_stop_hub.rows
    )
    result["checks"]["no public position outside service hours"] = (
        not stats.public_violations and stats.public_samples > 0
    )
    result["checks"]["box database integrity ok"] = (
        box.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    )
    result["checks"]["hub database integrity ok"] = hub_store.integrity_check() == "ok"
    s = stats
    rss = rss_by_day(work / "rss.log")
    result["checks"]["box memory did not keep growing"] = bool(rss) and all(
        d["end"] <= d["quarter"] * 1.25 + 4096 for d in rss.values()
    )
    box.close()
    result.update(
        created=created,
        delivered=delivered,
        duplicates_suppressed=hub.stats.get("duplicates", 0)
        if isinstance(hub.stats, dict)
        else getattr(hub.stats, "duplicates", 0),
        faults=dict(s.faults),
        max_outbox=s.max_outbox,
        max_delay_s=round(s.max_delay_s, 1),
        speed=round(speed),
        checkins_posted=s.checkins_posted,
        checkins_refused=s.checkins_refused,
        public_samples=s.public_samples,
        public_violations=s.public_violations[:5],
        rss_kb={f"day {d + 1}": v for d, v in rss.items() if d in (0, days - 1)},
        per_stop=[list(r) for r in per_stop_box.rows],
    )
    result["ok"] = all(result["checks"].values())
    return result


def rss_by_day(path: Path) -> dict[int, dict[str, int]]:
    """RSS of the box (kB) per day from ``rss.log``: a quarter into the day (after the
    start-up) and at its end, from the longest-running box process of that day."""
    runs: dict[tuple[int, str], list[int]] = {}
    if not path.exists():
        return {}
    for line in path.read_text().splitlines():
        day, pid, _t, kb = line.split()
        runs.setdefault((int(day), pid), []).append(int(kb))
    out: dict[int, dict[str, int]] = {}
    for (day, _pid), kbs in sorted(runs.items()):
        if len(kbs) >= 8 and len(kbs) > out.get(day, {}).get("samples", 0):
            out[day] = {"quarter": kbs[len(kbs) // 4], "end": kbs[-1], "samples": len(kbs)}
    return out


def print_summary(r: dict, days: int, seed: int) -> None:
    print(f"\nvanbox soak: {days} day(s), seed {seed}, {r['speed']}x real time")
    print(f"{'events':<14}{'created':>10}{'on hub':>10}")
    for t in ("footfall", "checkins", "stop_visits", "positions"):
        print(f"{t:<14}{r['created'][t]:>10}{r['delivered'][t]:>10}")
    print(f"duplicates suppressed on the hub: {r['duplicates_suppressed']}")
    print(f"check-ins posted to the kiosk: {r['checkins_posted']} "
          f"(refused while the box was off: {r['checkins_refused']})")  # fmt: skip
    print("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())))
    sim_min = r["max_delay_s"] * r["speed"] / 60
    print(f"largest outbox depth: {r['max_outbox']}; longest wait in the outbox: "
          f"{r['max_delay_s']} s real (~{sim_min:.0f} min simulated)")  # fmt: skip
    rss = ", ".join(f"{k}: {v['quarter']} kB a quarter in, {v['end']} kB at the end"
                    for k, v in r["rss_kb"].items())  # fmt: skip
    print(f"RSS of the box: {rss}")
    print(f"public API samples checked: {r['public_samples']}")
    for name, ok in r["checks"].items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    print("RESULT: " + ("all checks passed" if r["ok"] else "FAILED"))
