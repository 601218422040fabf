"""The sums the report builders read (:mod:`telemetry.report_tables`): the metrics each
grouping (by stop, by key, by day) asks :func:`telemetry.sums.sums` for, and
:func:`_of`, one metric of them (the split of the last few sums is remembered)."""

from __future__ import annotations

from collections import defaultdict

from .report_model import Opts, Period
from .sums import sums

# Every builder asks for the same few sums (the same names per grouping), so the ten
# reports of a page run three summing queries, remembered by telemetry.sums.
_PER_STOP = ("visit_visitors", "visit_checkins", "visit_first")
_PER_KEY = ("hour_visitors", "hour_checkins", "topic", "age", "first")
_QUALITY = ("no_fix_s", "offline_s", "blocked_s", "blocked_n", "outside_n")
_PER_DAY = ("visit_visitors", "visit_checkins", *_QUALITY)


def _sums(conn, p: Period, van, o: Opts, by: str) -> dict[tuple, float]:
    names = {"stop": _PER_STOP, "key": _PER_KEY, "day": _PER_DAY}[by]
    return sums(conn, p.start, p.end, by, van=van, names=names, crew=o.crew)


_SPLIT: list[tuple[dict, dict[str, dict]]] = []  # the last few sums, split by metric


def _of(got: dict[tuple, float], metric: str) -> dict:
    """``{key: value}`` of one metric of :func:`_sums` (not to be changed: the split of
    the last few sums is remembered, as a fleet's year by stop has 40,000 entries)."""
    for g, split in list(_SPLIT):
        if g is got:
            return split.get(metric, {})
    split: dict[str, dict] = defaultdict(dict)
    for (m, k), n in got.items():
        split[m][k] = n
    _SPLIT.insert(0, (got, split))
    del _SPLIT[4:]
    return split.get(metric, {})
