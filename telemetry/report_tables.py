"""The report tables (see :mod:`telemetry.reports` for how every figure is counted):
periods, the :class:`Table` and one builder per report, all with the full figures.
Public versions are made from these by :mod:`telemetry.report_privacy`.

Here: :func:`build` and which builder makes which report. The names, periods, table
and options are in :mod:`telemetry.report_model` (importable from here too), the sums
the builders read in :mod:`telemetry.report_sums`, and the builders by kind of table in
:mod:`telemetry.report_places` (summary, stops, municipalities, rural),
:mod:`telemetry.report_times` (hours, weekdays), :mod:`telemetry.report_checkins`
(topics, age groups, first visits) and :mod:`telemetry.report_quality` (data quality)."""

from __future__ import annotations

import sqlite3

from .report_checkins import AGE_LABELS as AGE_LABELS
from .report_checkins import _age_groups, _first_visits, _topics
from .report_model import NOT_AT_STOP as NOT_AT_STOP
from .report_model import REPORTS as REPORTS
from .report_model import SUPPRESSED as SUPPRESSED
from .report_model import WEEKDAY_NAMES as WEEKDAY_NAMES
from .report_model import Opts as Opts
from .report_model import Period as Period
from .report_model import Table as Table
from .report_model import _int as _int
from .report_model import _sum_by as _sum_by
from .report_model import period as period
from .report_places import _municipalities, _rural, _stops, _summary
from .report_quality import _quality
from .report_sums import _sums as _sums
from .report_times import _hours, _weekdays

# --- the reports ---------------------------------------------------------------------


def build(conn: sqlite3.Connection, name: str, p: Period, van: str | None, opts: Opts) -> Table:
    """One report with its full figures (see :data:`REPORTS` for the names)."""
    if name not in REPORTS:
        raise ValueError(f"unknown report {name!r}; use one of {', '.join(REPORTS)}")
    return _BUILDERS[name](conn, p, van, opts)


_BUILDERS = {
    "summary": _summary,
    "stops": _stops,
    "municipalities": _municipalities,
    "rural": _rural,
    "hours": _hours,
    "weekdays": _weekdays,
    "topics": _topics,
    "age_groups": _age_groups,
    "first_visits": _first_visits,
    "quality": _quality,
}
