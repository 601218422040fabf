"""Storage of the balanced scorecard's targets (migration 0012): yearly targets per van
(``""`` = all vans together), the monthly actuals of custom targets, and the change log.

A target is versioned by year: each year has its own rows, and a change to one year never
touches another (:func:`copy_year` starts a year from the previous one). Every change is
written together with its log rows (who, when, which field, old -> new) in one
transaction; the log is never changed afterwards.

The text of staff's input is checked once, by the ``parse_*`` functions: a bad value
raises :class:`TargetError` with a German message naming the field (the staff page shows
it as it is), and nothing is stored.

This module is the one to import; it holds no code of its own. The target and its limits
are in :mod:`telemetry.targets_model`, the parsing and formatting of staff's input in
:mod:`telemetry.targets_input`, reading in :mod:`telemetry.targets_read` and writing
(with the change log) in :mod:`telemetry.targets_write`.
"""

from __future__ import annotations

from .targets_input import custom_code as custom_code
from .targets_input import fmt_number as fmt_number
from .targets_input import fmt_profile as fmt_profile
from .targets_input import parse_number as parse_number
from .targets_input import parse_profile as parse_profile
from .targets_input import parse_text as parse_text
from .targets_input import parse_year as parse_year
from .targets_model import CODE_RE as CODE_RE
from .targets_model import CUSTOM_PREFIX as CUSTOM_PREFIX
from .targets_model import MAX_CUSTOM as MAX_CUSTOM
from .targets_model import MAX_VALUE as MAX_VALUE
from .targets_model import MAX_WEIGHT as MAX_WEIGHT
from .targets_model import MONTHS_SHORT as MONTHS_SHORT
from .targets_model import NAME_MAX as NAME_MAX
from .targets_model import UNIT_MAX as UNIT_MAX
from .targets_model import YEARS as YEARS
from .targets_model import LogEntry as LogEntry
from .targets_model import Target as Target
from .targets_model import TargetError as TargetError
from .targets_read import actuals as actuals
from .targets_read import log as log
from .targets_read import targets as targets
from .targets_read import years_with_targets as years_with_targets
from .targets_write import copy_year as copy_year
from .targets_write import remove as remove
from .targets_write import save as save
from .targets_write import save_actuals as save_actuals

__all__ = [
    "LogEntry",
    "MONTHS_SHORT",
    "Target",
    "TargetError",
    "actuals",
    "copy_year",
    "custom_code",
    "fmt_number",
    "fmt_profile",
    "log",
    "parse_number",
    "parse_profile",
    "parse_text",
    "parse_year",
    "remove",
    "save",
    "save_actuals",
    "targets",
    "years_with_targets",
]
