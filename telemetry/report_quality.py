"""The data quality report builder (:mod:`telemetry.report_tables`): per day, the time
without GPS fix, offline and with the sensor blocked, and the counts outside stops."""

from __future__ import annotations

from collections import defaultdict

from .report_model import Opts, Period, Table, _int, _table
from .report_sums import _QUALITY, _sums


def _quality(conn, p: Period, van, o: Opts) -> Table:
    per_day: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (metric, day), n in sorted(_sums(conn, p, van, o, "day").items()):
        if metric in _QUALITY:
            per_day[day][metric] += n
    rows = []
    for day in sorted(per_day):
        d = per_day[day]
        rows.append(
            [
                day,
                round(d["no_fix_s"] / 60, 1),
                round(d["offline_s"] / 60, 1),
                round(d["blocked_s"] / 60, 1),
                _int(d["blocked_n"]),
                _int(d["outside_n"]),
            ]
        )
    total = ["Total"] + [
        round(sum(r[c] for r in rows), 1) if c < 4 else sum(r[c] for r in rows) for c in range(1, 6)
    ]
    note = (
        "Per stop visit: offline = more than 10 min with no record at all; without GPS fix ="
        " more than 10 min between fixes, less offline time; sensor blocked = from"
        " sensor_blocked to sensor_ok. Counts outside stops are door counts not in any visit."
        " Only days with a finding are listed."
    )
    return _table(
        "quality",
        (
            "Day",
            "Without GPS fix (min)",
            "Offline (min)",
            "Sensor blocked (min)",
            "Blocked periods",
            "Counts outside stops",
        ),
        rows,
        "none",
        [note],
        total,
    )
