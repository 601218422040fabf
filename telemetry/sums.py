"""The sums the report tables are built from: the metric rows of a period summed by the
database, for one van or the whole fleet, and the stop visits counted.

The report builders do not take the metric rows themselves (:mod:`telemetry.metrics`)
but their sums (:func:`sums`, by key, by day or by stop): the database adds up the
folded days (``GROUP BY``), so a page for the whole fleet fetches a few hundred grouped
rows, not one row per van, day and key (a fleet's month of 1,000 vans was 700,000 rows).
For the whole fleet the folded days come from the fleet rollup (:mod:`telemetry.rollup`)
where it is current, so a fleet's year reads thousands of rows, not millions. Only the
raw days (today, stale days) come through Python.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from . import rollup
from .metrics import DEFAULT_CREW, METRICS, _cur, _dirty_days, raw_cached, stop_sums, stops_of
from .metrics import clear_cache as _clear_metrics

Stop = tuple[str, str, bool]  # name, municipality, planned
BY = ("key", "day", "stop")
_CACHE: list[tuple[sqlite3.Connection, tuple, dict]] = []
_CACHE_SIZE = 16
_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget the remembered raw metrics and sums (benchmarks measure the uncached path)."""
    _clear_metrics()
    with _LOCK:
        _CACHE.clear()


def _cached(conn, key: tuple, compute) -> dict:
    """``compute()``, remembered per connection until the database changes (``PRAGMA
    data_version`` counts other connections' commits, ``total_changes`` this one's)."""
    version = _cur(conn).execute("PRAGMA data_version").fetchone()[0]
    ckey = (version, conn.total_changes, *key)
    with _LOCK:
        for c, k, got in _CACHE:
            if c is conn and k == ckey:
                return got
    got = compute()
    with _LOCK:
        _CACHE.insert(0, (conn, ckey, got))
        del _CACHE[_CACHE_SIZE:]
    return got


def _in(days: list[str]) -> str:
    return f"IN ({','.join('?' * len(days))})"


def sums(
    conn: sqlite3.Connection,
    start: date,
    end: date,
    by: str,
    *,
    van: str | None = None,
    names: Iterable[str] = METRICS,
    crew: int = DEFAULT_CREW,
) -> dict[tuple, float]:
    """The metric rows of the days ``[start, end)`` (as :func:`telemetry.metrics.metrics`
    gives them) summed over vans and, by ``by``:

    - ``"key"``: ``{(metric, key): value}``, summed over days;
    - ``"day"``: ``{(metric, day): value}``, summed over keys;
    - ``"stop"``: ``{(metric, stop): value}`` for the per-visit metrics (key: stop
      visit id), summed over the visits of one stop: ``stop`` is the visit's
      :data:`Stop` ``(name, municipality, planned)``, ``None`` for "not at a stop" (key
      ``""`` or no such visit).

    Folded days are summed by the database (from the fleet rollup where it serves, else
    ``GROUP BY`` over ``aggregates``); raw days (today, stale days) are added from
    :func:`telemetry.raw_days.raw_metrics`. The sums are the same as summing the metric
    rows in Python (the counts are whole numbers)."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}, not {by!r}")
    names = tuple(sorted(set(names)))
    return _cached(
        conn,
        ("sums", start, end, by, van, names, crew),
        lambda: _sums(conn, start.isoformat(), end.isoformat(), start, end, by, van, names, crew),
    )


def _sums(conn, s, e, start, end, by, van, names, crew) -> dict[tuple, float]:
    out: dict[tuple, float] = defaultdict(float)
    dirty = _dirty_days(conn, s, e, van)
    stale = sorted({d for days in dirty.values() for d in days})
    plain: list[str] | None = None  # None: every day of the range that is not stale
    if van is None and rollup.serves(by, names):
        periods, plain = rollup.cover(conn, start, end, set(stale), by)
        _add(out, by, rollup.read(conn, by, names, periods))
    marks = ",".join("?" * len(names))
    # Every aggregates row has its agg_days row, in state > 0 unless the day went stale
    # (telemetry.retention writes both in one transaction): a day without any stale van
    # needs no join with agg_days, which halves the time of a fleet's year.
    for join in (False, True):
        if (join and not stale) or (not join and plain == []):
            continue
        joins, where, args = "", f"a.metric IN ({marks})", list(names)
        if join:  # the same days on agg_days: PostgreSQL does not carry them over the join
            joins = " JOIN agg_days d ON d.van = a.van AND d.day = a.day AND d.state > 0"
            where += f" AND a.day {_in(stale)} AND d.day {_in(stale)}"
            args += stale + stale
            lo, hi = stale[0], stale[-1]
        elif plain is not None:
            where += f" AND a.day {_in(plain)}"
            args += plain
            lo, hi = plain[0], plain[-1]
        else:
            where += " AND a.day >= ? AND a.day < ?"
            args += [s, e]
            lo, hi = s, e
            if stale:
                where += f" AND a.day NOT {_in(stale)}"
                args += stale
        if van is not None:
            where += " AND a.van = ?"
            args.append(van)
        if by == "stop":
            _add(out, by, stop_sums(conn, joins, where, args, lo, hi))
        else:
            col = {"key": "a.key", "day": "a.day"}[by]
            sql = (
                f"SELECT a.metric, {col}, sum(a.value) FROM aggregates a{joins}"
                f" WHERE {where} GROUP BY a.metric, {col}"
            )
            _add(out, by, _cur(conn).execute(sql, args).fetchall())
    raw = [m for rows in raw_cached(conn, dirty, crew).values() for m in rows if m[0] in names]
    if by == "stop":
        where = stops_of(conn, {m[3] for m in raw})
        for m in raw:
            st = where.get(m[3])
            out[(m[0], None if st is None else (st[0], st[1], bool(st[2])))] += m[4]
    else:
        for m in raw:
            out[(m[0], m[3] if by == "key" else m[1])] += m[4]
    return dict(out)


def _add(out: dict, by: str, rows: list[tuple]) -> None:
    """Add grouped rows: ``(metric, group, value)``, or ``(metric, name, municipality,
    planned, value)`` by stop (a NULL name: not at a stop)."""
    if by == "stop":
        for m, name, muni, planned, v in rows:
            out[(m, None if name is None else (name, muni, bool(planned)))] += v
    else:
        for m, k, v in rows:
            out[(m, k)] += v


def visit_counts(
    conn: sqlite3.Connection, start: date, end: date, by: str, *, van: str | None = None
) -> dict:
    """The stop visits that arrived on the days ``[start, end)``, counted in SQL:
    ``by="stop"``: ``{stop: n}``; ``by="day"``: ``{day: n}``. Remembered like the sums."""
    if by not in ("stop", "day"):
        raise ValueError(f"by must be stop or day, not {by!r}")
    return _cached(conn, ("visits", start, end, by, van),
                   lambda: _visit_counts(conn, start, end, by, van))  # fmt: skip


def _visit_counts(conn, start: date, end: date, by: str, van: str | None) -> dict:
    col = {"stop": "name, municipality, planned", "day": "day"}[by]
    out: dict = defaultdict(int)
    sql = f"SELECT {col}, count(*) FROM stop_visits WHERE"
    args: list = []
    if van is None:
        s, e = start.isoformat(), end.isoformat()
        stale = {d for days in _dirty_days(conn, s, e, None).values() for d in days}
        periods, rest = rollup.cover(conn, start, end, stale, by)
        for r in rollup.read(conn, by, (rollup.VISITS,), periods):
            out[(r[1], r[2], bool(r[3])) if by == "stop" else r[1]] += int(r[-1])
        days = sorted({*rest, *stale})
        if not days:
            return dict(out)
        sql += f" day {_in(days)}"
        args += days
    else:
        sql += " day >= ? AND day < ? AND van = ?"
        args += [start.isoformat(), end.isoformat(), van]
    for r in _cur(conn).execute(sql + f" GROUP BY {col}", args).fetchall():
        out[(r[0], r[1], bool(r[2])) if by == "stop" else r[0]] += r[-1]
    return dict(out)
