"""The report builders of the check-in answers (:mod:`telemetry.report_tables`): topics,
age groups and first visits, with their labels and shares of all check-ins."""

from __future__ import annotations

from .report_model import Opts, Period, Table, _int, _share, _table
from .report_sums import _of, _sums


def _categories(name, metric, label, order, conn, p: Period, van, o: Opts) -> Table:
    per_key = _sums(conn, p, van, o, "key")
    counts = _of(per_key, metric)
    checkins = sum(_of(per_key, "first").values())
    keys = [k for k in order if k in counts] + sorted(
        (k for k in counts if k not in order), key=lambda k: (-counts[k], k)
    )
    rows = [[_label(metric, k), _int(counts[k]), _share(counts[k], checkins)] for k in keys]
    notes = []
    if metric == "topic":
        notes.append("A check-in may name several topics; shares are of all check-ins.")
    return _table(
        name,
        (label, "Check-ins", "Share of check-ins (%)"),
        rows,
        "pie" if metric != "topic" else "bar",
        notes,
    )


AGE_LABELS = {"under-15": "under 15", "over-27": "over 27"}


def _label(metric: str, key: str) -> str:
    if metric == "first":
        return {"1": "First visit", "0": "Returning", "": "Not said"}.get(key, key)
    if metric == "age":
        return AGE_LABELS.get(key, key)
    return key


def _topics(conn, p: Period, van, o: Opts) -> Table:
    return _categories("topics", "topic", "Topic", (), conn, p, van, o)


def _age_groups(conn, p: Period, van, o: Opts) -> Table:
    order = ("under-15", "15-17", "18-20", "21-24", "25-27", "over-27")
    return _categories("age_groups", "age", "Age group", order, conn, p, van, o)


def _first_visits(conn, p: Period, van, o: Opts) -> Table:
    return _categories("first_visits", "first", "Answer", ("1", "0", ""), conn, p, van, o)
