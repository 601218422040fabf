"""The report builders by time (:mod:`telemetry.report_tables`): visitors and check-ins
by hour of day and by weekday."""

from __future__ import annotations

from datetime import date

from .report_model import WEEKDAY_NAMES, Opts, Period, Table, _int, _table
from .report_sums import _of, _sums
from .sums import visit_counts


def _hours(conn, p: Period, van, o: Opts) -> Table:
    per_key = _sums(conn, p, van, o, "key")
    vis, chk = _of(per_key, "hour_visitors"), _of(per_key, "hour_checkins")
    hours = sorted({int(h) for h in vis} | {int(h) for h in chk})
    rows = []
    if hours:
        for h in range(hours[0], hours[-1] + 1):
            k = f"{h:02d}"
            rows.append([f"{h:02d}:00", _int(vis.get(k, 0)), _int(chk.get(k, 0))])
    return _table(
        "hours",
        ("Hour", "Visitors", "Check-ins"),
        rows,
        "bar",
        ["Check-in times are rounded down to the hour."],
    )


def _weekdays(conn, p: Period, van, o: Opts) -> Table:
    per_day = _sums(conn, p, van, o, "day")
    vis = [0.0] * 7
    chk = [0.0] * 7
    for (metric, day), n in sorted(per_day.items()):
        wd = date.fromisoformat(day).weekday()
        if metric == "visit_visitors":
            vis[wd] += n
        elif metric == "visit_checkins":
            chk[wd] += n
    nvis = [0] * 7
    for day, n in visit_counts(conn, p.start, p.end, "day", van=van).items():
        nvis[date.fromisoformat(day).weekday()] += n
    rows = [[WEEKDAY_NAMES[i], nvis[i], _int(vis[i]), _int(chk[i])] for i in range(7)]
    return _table(
        "weekdays",
        ("Weekday", "Stop visits", "Visitors", "Check-ins"),
        rows,
        "bar",
        [],
    )
