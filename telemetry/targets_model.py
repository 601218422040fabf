"""The balanced scorecard's targets as stored (:mod:`telemetry.targets`): the limits of a
target's fields, a yearly :class:`Target`, a :class:`LogEntry` of the change log, and
:class:`TargetError`, the error staff see when a value is not valid."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import VanboxError

YEARS = (2000, 2100)
MAX_VALUE = 1e9
MAX_WEIGHT = 1e6
NAME_MAX = 60
UNIT_MAX = 20
MAX_CUSTOM = 30  # custom targets per year and van
CODE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
CUSTOM_PREFIX = "custom-"
MONTHS_SHORT = ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez")


class TargetError(VanboxError):
    """A target or an actual figure is not valid: the (German) message names the field."""


@dataclass(frozen=True)
class Target:
    year: int
    van: str  # a van id, or "" for all vans together
    code: str
    value: float
    profile: tuple[float, ...] | None = None  # 12 monthly weights; None = pro rata by days
    label: str = ""  # custom targets: name
    unit: str = ""  # custom targets: unit
    lower_better: bool = False
    updated: float = 0.0
    updated_by: str = ""

    @property
    def custom(self) -> bool:
        return self.code.startswith(CUSTOM_PREFIX)


@dataclass(frozen=True)
class LogEntry:
    id: int
    ts: float
    user: str
    year: int
    van: str
    code: str
    field: str
    old: str | None
    new: str | None
