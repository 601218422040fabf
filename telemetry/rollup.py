"""The fleet rollup: the folded aggregates summed over all vans, per day, month and year,
so a whole-fleet report page reads a few thousand rows instead of millions.

A hub with 1,000 vans holds about 8 million aggregate rows a year (22 per van and day);
summing a month of them for the fleet's month page took 0.7 s on PostgreSQL, a year 8 s.
The rollup (``migrations/0013_rollup.sql``) keeps those sums ready:

=========  ======================  =================================================
grouping   grains                  rows (one period)
=========  ======================  =================================================
``day``    day                     ``(metric, value)``: every metric summed over vans
                                   and keys, and ``visits``: the stop visits that day
``key``    day, month, year        ``(metric, key, value)``: the metrics whose key is
                                   not a stop visit (hours, topics, age groups, first)
``stop``   month, year             ``(metric, stop, value)``: the per-visit metrics
                                   summed by stop (``name, municipality, planned``;
                                   NULL: not at a stop), and ``visits`` per stop
=========  ======================  =================================================

Keeping it true. Only the daily fold (:func:`telemetry.retention.fold`) changes the
aggregates. Each fold transaction marks the day, month and year it folds as out of date
(:func:`mark`, ``rollup_periods.state = 0``), and at the end of the fold :func:`refresh`
recomputes every out-of-date period: days from ``aggregates``, months' keys from their
days and their stops from ``aggregates`` joined with the stop visits, years from their
months. Both run in ``Store.transaction()``, which is serialized with every other one
(SQLite's write lock; an advisory lock on PostgreSQL, across processes), so no fold can
change a period while it is being summed; each refresh transaction checks again that
its period is still out of date.

Reading (:func:`cover`). A period is read from the rollup only if it is current and no
van has a stale day in it (``agg_days.state = 0``: a late event or stop visit arrived
after the fold); a stale day is always computed from the raw rows, as before, and the
rest of its month or year then comes from the finer grains or from ``aggregates``. So a
report gives the same figures with and without the rollup (tests/telemetry/test_rollup.py
compares every report of every period kind); the rollup only makes them faster. The
rollup serves the whole fleet only: one van's pages read its own aggregates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import date, timedelta

from .metrics import _cur, stop_sums

PER_VISIT = ("visit_visitors", "visit_checkins", "visit_first")  # key: stop visit id
VISITS = "visits"  # the pseudo-metric: stop visits counted by arrival day
GRAINS = {"day": ("day",), "key": ("day", "month", "year"), "stop": ("month", "year")}


def _periods(day: str) -> tuple[str, str, str]:
    return day, day[:7], day[:4]


def mark(conn: sqlite3.Connection, days: Iterable[str]) -> None:
    """Mark the rollup of these days (and their months and years) out of date, inside the
    fold's write transaction that changes their aggregates."""
    periods = sorted({p for d in days for p in _periods(d)})
    conn.executemany(
        "INSERT INTO rollup_periods (period, state) VALUES (?, 0)"
        " ON CONFLICT (period) DO UPDATE SET state = 0",
        [(p,) for p in periods],
    )


def mark_all(store) -> int:
    """Mark every period with folded days out of date (a rebuild: after a bulk load that
    bypassed the fold). Returns the number of periods marked."""
    with store.transaction() as conn:
        days = [r[0] for r in conn.execute("SELECT DISTINCT day FROM agg_days WHERE state > 0")]
        mark(conn, days)
    return len({p for d in days for p in _periods(d)})


_NOT_PER_VISIT = f"metric NOT IN ({', '.join(repr(m) for m in PER_VISIT)})"
_PER_VISIT_IN = f"a.metric IN ({', '.join(repr(m) for m in PER_VISIT)})"
_INSERT = "INSERT INTO rollup_sums (period, grp, metric, key, name, municipality, planned, value)"


def _refresh_day(conn, day: str) -> None:
    conn.execute(
        f"{_INSERT} SELECT ?, 'day', metric, '', NULL, NULL, NULL, sum(value)"
        " FROM aggregates WHERE day = ? GROUP BY metric",
        (day, day),
    )
    conn.execute(
        f"{_INSERT} SELECT ?, 'day', '{VISITS}', '', NULL, NULL, NULL, count(*)"
        " FROM stop_visits WHERE day = ? HAVING count(*) > 0",
        (day, day),
    )
    conn.execute(
        f"{_INSERT} SELECT ?, 'key', metric, key, NULL, NULL, NULL, sum(value)"
        f" FROM aggregates WHERE day = ? AND {_NOT_PER_VISIT} GROUP BY metric, key",
        (day, day),
    )


def _last_day(month: str) -> str:
    """The last day of ``"YYYY-MM"``."""
    y, m = int(month[:4]), int(month[5:7])
    return (date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)).isoformat()


def _refresh_month(conn, month: str) -> None:
    lo, hi = f"{month}-01", f"{month}-31"
    conn.execute(
        f"{_INSERT} SELECT ?, 'key', metric, key, NULL, NULL, NULL, sum(value)"
        " FROM rollup_sums WHERE grp = 'key' AND period >= ? AND period <= ?"
        " GROUP BY metric, key",
        (month, lo, hi),
    )
    conn.executemany(
        f"{_INSERT} VALUES (?, 'stop', ?, '', ?, ?, ?, ?)",
        [
            (month, *r)
            for r in stop_sums(
                conn, "", f"{_PER_VISIT_IN} AND a.day >= ? AND a.day <= ?", (lo, hi), lo,
                _last_day(month),
            )
        ],
    )  # fmt: skip
    conn.execute(
        f"{_INSERT} SELECT ?, 'stop', '{VISITS}', '', name, municipality, planned, count(*)"
        " FROM stop_visits WHERE day >= ? AND day <= ? GROUP BY name, municipality, planned",
        (month, lo, hi),
    )


def _refresh_year(conn, year: str) -> None:
    conn.execute(
        f"{_INSERT} SELECT ?, grp, metric, key, name, municipality, planned, sum(value)"
        " FROM rollup_sums WHERE grp IN ('key', 'stop') AND period >= ? AND period <= ?"
        " AND length(period) = 7 GROUP BY grp, metric, key, name, municipality, planned",
        (year, f"{year}-01", f"{year}-12"),
    )


_REFRESH = {10: _refresh_day, 7: _refresh_month, 4: _refresh_year}


def refresh(store) -> int:
    """Recompute every out-of-date period: days first, then months (from their days),
    then years (from their months); one transaction per period. Returns how many were
    made current."""
    with store._lock:
        todo = store._conn.execute(
            "SELECT period FROM rollup_periods WHERE state = 0 ORDER BY length(period) DESC, period"
        ).fetchall()
    lock = store.row_lock  # " FOR UPDATE" on PostgreSQL
    n = 0
    for (period,) in todo:
        with store.transaction() as conn:
            n += _refresh(conn, period, lock)
    return n


def _refresh(conn, period: str, lock: str) -> int:
    """Sum ``period`` again if it is still out of date (another refresh, a second
    `vanbox prune`, may have been first), after the out-of-date days of a month or months
    of a year it is summed from: a fold that marked a day again after that day's own
    refresh makes its month wait for it, in this transaction. The period's row is locked
    first (PostgreSQL: ingest is not serialized with the daily job, and a stop visit
    arriving meanwhile marks the period: the trigger waits, then marks it again).
    Returns how many periods were made current."""
    row = conn.execute(
        f"SELECT state FROM rollup_periods WHERE period = ?{lock}", (period,)
    ).fetchone()
    if row is None or row[0] != 0:
        return 0
    n = 0
    if len(period) < 10:  # a month's days, a year's months
        parts = conn.execute(
            "SELECT period FROM rollup_periods WHERE state = 0 AND period >= ? AND period <= ?"
            " AND length(period) = ? ORDER BY period",
            (f"{period}-01", f"{period}-31" if len(period) == 7 else f"{period}-12",
             len(period) + 3),
        ).fetchall()  # fmt: skip
        for (p,) in parts:
            n += _refresh(conn, p, lock)
    conn.execute("DELETE FROM rollup_sums WHERE period = ?", (period,))
    _REFRESH[len(period)](conn, period)
    conn.execute("UPDATE rollup_periods SET state = 1 WHERE period = ?", (period,))
    return n + 1


# --- reading -----------------------------------------------------------------------------


def cover(
    conn: sqlite3.Connection, start: date, end: date, stale: set[str], grouping: str
) -> tuple[list[str], list[str]]:
    """Split the days ``[start, end)`` for one grouping: the rollup periods to read and the
    days left over, neither covered nor stale, to be read from ``aggregates`` (see
    :func:`plan`); the current periods are looked up here."""
    s, e = start.isoformat(), end.isoformat()
    current = {
        r[0]
        for r in _cur(conn)
        .execute(
            "SELECT period FROM rollup_periods WHERE state = 1 AND period >= ? AND period < ?",
            (s[:4], e),
        )
        .fetchall()
    }
    return plan(start, end, stale, current, GRAINS[grouping])


def plan(
    start: date, end: date, stale: set[str], current: set[str], grains: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """The rollup periods that cover the days ``[start, end)``, each as coarse as the
    ``grains`` allow, inside the range, ``current`` and free of ``stale`` days; and the
    days left over, neither covered nor stale. Every day of the range is in exactly one
    period, in the days left over, or in ``stale``."""
    stale_in = {p for d in stale for p in _periods(d)}
    periods: list[str] = []
    rest: list[str] = []
    d = start
    while d < end:
        iso = d.isoformat()
        year_end = date(d.year + 1, 1, 1)
        month_end = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        if (
            "year" in grains
            and iso[5:] == "01-01"
            and year_end <= end
            and _usable(iso[:4], current, stale_in)
        ):
            periods.append(iso[:4])
            d = year_end
        elif (
            "month" in grains
            and d.day == 1
            and month_end <= end
            and _usable(iso[:7], current, stale_in)
        ):
            periods.append(iso[:7])
            d = month_end
        else:
            if iso not in stale:
                (periods if "day" in grains and iso in current else rest).append(iso)
            d += timedelta(days=1)
    return periods, rest


def _usable(period: str, current: set[str], stale_in: set[str]) -> bool:
    return period in current and period not in stale_in


def read(
    conn: sqlite3.Connection, grouping: str, names: Iterable[str], periods: list[str]
) -> list[tuple]:
    """The rollup's sums over these periods: ``(metric, value)`` rows for ``day`` is
    ``(metric, day, value)``; ``key``: ``(metric, key, value)``; ``stop``: ``(metric,
    name, municipality, planned, value)``."""
    if not periods:
        return []
    names = tuple(names)
    cols = {"day": "period", "key": "key", "stop": "name, municipality, planned"}[grouping]
    out: list[tuple] = []
    for i in range(0, len(periods), 400):
        chunk = periods[i : i + 400]
        sql = (
            f"SELECT metric, {cols}, sum(value) FROM rollup_sums WHERE grp = ?"
            f" AND metric IN ({','.join('?' * len(names))})"
            f" AND period IN ({','.join('?' * len(chunk))}) GROUP BY metric, {cols}"
        )
        out += _cur(conn).execute(sql, (grouping, *names, *chunk)).fetchall()
    return out


def serves(grouping: str, names: Iterable[str]) -> bool:
    """Whether the rollup holds these metrics in this grouping."""
    names = set(names)
    if grouping == "key":
        return not names & set(PER_VISIT)
    if grouping == "stop":
        return names <= {*PER_VISIT, VISITS}
    return grouping == "day"
