"""Data quality per stop visit (see :mod:`telemetry.raw_days`): gaps over :data:`GAP_S` in
the fixes (``no_fix_s``) and in all records (``offline_s``) inside each visit, computed
incrementally for the visits seen before.

The gaps of a visit are one loop over its points in order of time (:func:`gap_run`) and
the tail up to the visit's end (:func:`gap_close`). Per visit the loop's state is
remembered (:class:`_State`: for the fixes without the suspect ones, and for the fixes
plus door events and sensor states), with what each table held in the visit's window
(rows, first and last time stamp; the positions counted with their suspect fixes). A
call asks one statement per table for all its visits: for a remembered visit its count,
first and last time stamp in the window and its rows after the last one seen; for any
other visit all its rows. A remembered visit whose count grew by exactly the rows after
its last point, whose first point is the same and whose new points (both tables
together) do not come before the loop's last point continues the same loop with the new
points (the same additions in the same order as a loop over all of them: the figures are
identical); any other visit (rows deleted, a row that arrived out of order, a changed
window: ``left`` set, a next visit) is computed again from all its rows.

Remembered per database (a SQLite file, or a PostgreSQL store's URL; nothing for an
in-memory database) and visit id, the :data:`CACHE_VISITS` most recently used, safe
across threads; :func:`clear_cache` (called by :func:`telemetry.metrics.clear_cache`)
forgets them.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

GAP_S = 600.0
CACHE_VISITS = 16384


class VisitLike(Protocol):
    id: str
    van: str
    arrived: float
    left: float | None
    end: float
    day: str


def gap_run(points: Iterable[float], total: float, prev: float) -> tuple[float, float]:
    """The gap loop over ``points`` (in order of time) from ``(total, prev)``."""
    for t in points:
        if t > prev:
            if t - prev > GAP_S:
                total += t - prev
            prev = t
    return total, prev


def gap_close(total: float, prev: float, hi: float) -> float:
    """The loop's total with the tail from its last point to ``hi``."""
    if hi - prev > GAP_S:
        total += hi - prev
    return total


def gaps(points: Iterable[float], lo: float, hi: float) -> float:
    """The time in gaps over :data:`GAP_S` between ``lo``, the points and ``hi``."""
    return gap_close(*gap_run(sorted(points), 0.0, lo), hi)


@dataclass(frozen=True)
class _Seen:
    """What one table held in a visit's window: rows, first and last time stamp."""

    n: int
    first: float | None
    last: float | None


@dataclass(frozen=True)
class _State:
    window: tuple  # (van, arrived, window end, left)
    pos: _Seen  # all fixes, the suspect ones too
    ff: _Seen
    fix: tuple[float, float]  # (total, prev) of the loop over the fixes (not suspect)
    all: tuple[float, float]  # the same over the fixes and the footfall rows


_CACHE: OrderedDict[tuple, _State] = OrderedDict()
_LOCK = threading.Lock()
_STATS = {"extended": 0, "computed": 0}  # visits continued from their state, or not


def clear_cache() -> None:
    """Forget every remembered visit."""
    with _LOCK:
        _CACHE.clear()


def cached_visits() -> int:
    """How many visits are remembered (for tests)."""
    with _LOCK:
        return len(_CACHE)


def stats() -> dict[str, int]:
    """Visits continued from their remembered state (``extended``) and computed from all
    their rows (``computed``) since the start (for tests and benchmarks)."""
    with _LOCK:
        return dict(_STATS)


def database_key(conn: Any) -> tuple | None:
    """What identifies the database behind ``conn``: a SQLite file (with its device and
    inode), a PostgreSQL store's URL; None for an in-memory or unknown database."""
    if isinstance(conn, sqlite3.Connection):
        cur = conn.cursor()
        cur.row_factory = None
        for _seq, name, file in cur.execute("PRAGMA database_list").fetchall():
            if name == "main":
                if not file:
                    return None
                try:
                    st = os.stat(file)
                except OSError:
                    return None
                return ("sqlite", file, st.st_dev, st.st_ino)
        return None
    url = getattr(getattr(conn, "_store", None), "url", None)
    return ("postgresql", url) if isinstance(url, str) and url else None


def _window(v: VisitLike) -> tuple:
    return (v.van, v.arrived, v.end if v.left is None else v.left, v.left)


def _add(acc, v: VisitLike, fix: tuple[float, float], all_: tuple[float, float]) -> None:
    hi = v.left
    if hi is None:  # still open: up to the last sign of life (the loop's last point)
        hi = all_[1]
    offline = gap_close(*all_, hi)
    no_fix = gap_close(*fix, hi) - offline
    if offline:
        acc[v.van][("offline_s", v.day, "")] += offline
    if no_fix > 0:
        acc[v.van][("no_fix_s", v.day, "")] += no_fix


def visit_quality(conn: Any, q: Any, acc, visits: Sequence[VisitLike]) -> None:
    """Quality per visit into ``acc[van]``: gaps in the fixes and in all records, inside
    the visit (up to its departure; an open one up to its last sign of life). ``q``: a
    cursor of ``conn`` returning tuples. Remembered per visit (module docstring); without
    a database to key by, computed as :func:`visit_quality_uncached`."""
    if not visits:
        return
    db = database_key(conn)
    if db is None:
        visit_quality_uncached(q, acc, visits)
        return
    with _LOCK:
        known = {}
        for v in visits:
            st = _CACHE.get((db, v.id))
            if st is not None and st.window == _window(v):
                known[v.id] = st
    done = _extend(q, acc, visits, known)
    redo = [v for v in visits if v.id not in done]
    if redo:
        done.update(_extend(q, acc, redo, {}))
    with _LOCK:
        _STATS["extended"] += len(known) - len(redo)
        _STATS["computed"] += len(visits) - len(known) + len(redo)
        for vid, st in done.items():
            _CACHE[(db, vid)] = st
            _CACHE.move_to_end((db, vid))
        while len(_CACHE) > CACHE_VISITS:
            _CACHE.popitem(last=False)


@dataclass(frozen=True)
class _Rows:
    """One table's answer for a chunk of visits."""

    agg: dict[str, tuple[int, float]]  # remembered visit: rows in its window, first ts
    ok: defaultdict[str, list[float]]  # rows fetched: fixes (not suspect), footfall rows
    suspect: defaultdict[str, list[float]]  # suspect fixes fetched


_SUSPECT = "CASE WHEN r.suspect = 0 THEN -1 ELSE -2 END"


def _fetch(q, table: str, kind: str, visits, known, into: _Rows) -> None:
    """One statement: per remembered visit (``w = 1``) its count and first time stamp in
    the window (second column >= 0); per visit its rows from ``f`` (after the last one
    seen, or all), the second column -1 (a point) or -2 (a suspect fix)."""
    cte = "WITH vis(van, id, a, e, f, w) AS (VALUES " + ",".join(["(?,?,?,?,?,?)"] * len(visits))
    args: list = []
    for v in visits:
        van, a, e, _left = _window(v)
        st = known.get(v.id)
        seen = None if st is None else (st.pos if table == "positions" else st.ff)
        f = a if seen is None or seen.last is None else math.nextafter(seen.last, math.inf)
        args += (van, v.id, a, e, f, int(st is not None))
    join = " FROM vis CROSS JOIN {} r ON r.van = vis.van AND r.ts >= vis.{} AND r.ts <= vis.e"
    rows = q.execute(
        cte + ") SELECT vis.id, count(*), min(r.ts)" + join.format(table, "a")
        + f" WHERE vis.w = 1 GROUP BY vis.id UNION ALL SELECT vis.id, {kind}, r.ts"
        + join.format(table, "f"),
        args,
    ).fetchall()  # fmt: skip
    ok, sus, agg = into.ok, into.suspect, into.agg
    for vid, k, ts in rows:
        if k == -1:
            ok[vid].append(ts)
        elif k == -2:
            sus[vid].append(ts)
        else:
            agg[vid] = (int(k), ts)


def _seen(old: _Seen | None, agg, ok: list[float], sus: list[float]) -> _Seen | None:
    """The table's rows in the window now (``ok`` and ``sus`` fetched), or None if they
    are not the old ones plus those fetched (all after the old last one)."""
    n = len(ok) + len(sus)
    if not n:
        return _Seen(0, None, None) if old is None else old if _holds(old, agg, 0) else None
    last = max(max(ok, default=-math.inf), max(sus, default=-math.inf))
    if old is None:
        return _Seen(n, min(min(ok, default=math.inf), min(sus, default=math.inf)), last)
    if not _holds(old, agg, n):
        return None
    return _Seen(old.n + n, old.first if old.n else agg[1], last)


def _holds(old: _Seen, agg, n: int) -> bool:
    """Whether the window holds the old rows and the ``n`` fetched after them: the count
    grew by ``n`` and the first row is the same."""
    total, first = agg if agg is not None else (0, None)
    return total == old.n + n and (not old.n or first == old.first)


def _extend(q, acc, visits, known: dict[str, _State]) -> dict[str, _State]:
    """The visits' quality into ``acc``, from their states in ``known`` where they hold,
    else from all their rows; returns the new states (not those that did not hold)."""
    out: dict[str, _State] = {}
    got = {t: _Rows({}, defaultdict(list), defaultdict(list)) for t in ("positions", "footfall")}
    for i in range(0, len(visits), 2000):  # 6 parameters each; PostgreSQL takes 65,535
        chunk = visits[i : i + 2000]
        _fetch(q, "positions", _SUSPECT, chunk, known, got["positions"])
        _fetch(q, "footfall", "-1", chunk, known, got["footfall"])
    pos_rows, ff_rows = got["positions"], got["footfall"]
    empty: list[float] = []
    for v in visits:
        st = known.get(v.id)
        p = sorted(pos_rows.ok.get(v.id, empty))
        f = ff_rows.ok.get(v.id, empty)
        pos = _seen(st and st.pos, pos_rows.agg.get(v.id), p, pos_rows.suspect.get(v.id, empty))
        ff = _seen(st and st.ff, ff_rows.agg.get(v.id), f, ff_rows.suspect.get(v.id, empty))
        if pos is None or ff is None:
            continue
        both = sorted(p + f)
        if st is None:
            fix = gap_run(p, 0.0, v.arrived)
            all_ = gap_run(both, 0.0, v.arrived)
        else:
            if both and both[0] < st.all[1]:  # arrived out of order (the other table's)
                continue
            fix = gap_run(p, *st.fix)
            all_ = gap_run(both, *st.all)
        out[v.id] = _State(_window(v), pos, ff, fix, all_)
        _add(acc, v, fix, all_)
    return out


def visit_quality_uncached(q: Any, acc, visits: Sequence[VisitLike]) -> None:
    """:func:`visit_quality` from all the rows of every visit, remembering nothing (the
    reference the cached one is tested and measured against). One query per table."""
    if not visits:
        return
    cte = "WITH vis(van, id, a, e) AS (VALUES " + ",".join(["(?,?,?,?)"] * len(visits)) + ") "
    args = [
        x for v in visits for x in (v.van, v.id, v.arrived, v.end if v.left is None else v.left)
    ]
    pos: dict[str, list[float]] = defaultdict(list)  # fixes (not the suspect ones)
    ff: dict[str, list[float]] = defaultdict(list)  # door events and sensor states
    for table, only, into in (("positions", " AND r.suspect = 0", pos), ("footfall", "", ff)):
        for vid, ts in q.execute(
            cte + f"SELECT vis.id, r.ts FROM vis CROSS JOIN {table} r ON r.van = vis.van"
            f" AND r.ts >= vis.a AND r.ts <= vis.e{only}",
            args,
        ).fetchall():
            into[vid].append(ts)
    for v in visits:
        p, f = pos[v.id], ff[v.id]
        hi = v.left
        if hi is None:  # still open: up to the last sign of life
            hi = max(p + f + [v.arrived])
        offline = gaps(p + f, v.arrived, hi)
        no_fix = gaps(p, v.arrived, hi) - offline
        if offline:
            acc[v.van][("offline_s", v.day, "")] += offline
        if no_fix > 0:
            acc[v.van][("no_fix_s", v.day, "")] += no_fix
