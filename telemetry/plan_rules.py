"""The rules every tour plan keeps (see telemetry/plan.py), checked on every change and
on every plan read (:func:`validate_plan`; used as :meth:`telemetry.plan.Plan.validate`):
the limits of :mod:`telemetry.plan_limits`, places inside the Landkreis, unique keys and
ids, a visit ending after it starts, validity ranges not ending before they start, no
two visits of a day overlapping, at most one cancel and one delay or move per visit.
The first broken rule raises :class:`~telemetry.errors.PlanError` naming the field.
"""

from __future__ import annotations

import math
import unicodedata
from collections import defaultdict
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

from .config import WEEKDAYS
from .errors import PlanError
from .plan_limits import (
    DELAY_MAX,
    DELAY_MIN,
    KEY_RE,
    KINDS,
    MAX_CLOSED_DAYS,
    MAX_EXCEPTIONS,
    MAX_STOPS,
    NAME_MAX,
    RADIUS_M,
    REASON_MAX,
    VAN_RE,
    YEARS,
    in_landkreis,
)

if TYPE_CHECKING:
    from .plan_model import Plan, PlanStop


def field_error(path: str, value: Any, why: str) -> PlanError:
    """A PlanError naming the field ``path``, its value (shortened) and what is wrong."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return PlanError(f"{path} = {shown}: {why}")


def clean_text(v: Any, path: str, limit: int, *, empty: bool = True) -> str:
    """A public text: a string of at most ``limit`` characters without control characters."""
    if not isinstance(v, str):
        raise field_error(path, v, "expected text")
    v = v.strip()
    if not v and not empty:
        raise field_error(path, v, "must not be empty")
    if len(v) > limit:
        raise field_error(path, v, f"at most {limit} characters")
    if not v.isprintable():  # rare (a no-break space, a joiner): look at each character
        for c in v:
            if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") or c in "\u2028\u2029":
                raise field_error(path, v, "no control characters")
    return v


def hhmm(t: dtime | None) -> str | None:
    """A time of day as "HH:MM" (None stays None)."""
    return None if t is None else t.strftime("%H:%M")


def _hours(a: dtime, b: dtime) -> str:
    return f"{a:%H:%M}–{b:%H:%M}"


def _check_place(s: PlanStop, path: str) -> None:
    if not KEY_RE.fullmatch(s.key):
        raise field_error(f"{path}.key", s.key, "a key of a-z, 0-9 and '-' (at most 40)")
    clean_text(s.name, f"{path}.name", NAME_MAX, empty=False)
    clean_text(s.municipality, f"{path}.municipality", NAME_MAX, empty=False)
    for k, v, lim in (("lat", s.lat, 90), ("lon", s.lon, 180)):
        if not isinstance(v, int | float) or not math.isfinite(v) or not -lim <= v <= lim:
            raise field_error(f"{path}.{k}", v, f"decimal degrees from -{lim} to {lim}")
    if not in_landkreis(s.lat, s.lon):
        raise field_error(
            f"{path}.lat/lon", (round(s.lat, 5), round(s.lon, 5)),
            f"{s.name!r} is outside the Landkreis Peine (Haltestelle außerhalb des Landkreises)",
        )  # fmt: skip
    if not RADIUS_M[0] <= s.radius_m <= RADIUS_M[1]:
        raise field_error(f"{path}.radius_m", s.radius_m, "metres from 10 to 5000")


def _overlap(a: tuple[dtime, dtime], b: tuple[dtime, dtime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _same_time(a: PlanStop, b: PlanStop, weekdays: set[int]) -> bool:
    """Do the validity ranges of two weekly stops share a day that is one of their common
    ``weekdays`` (open ends: always)? A stop ending on a Tuesday and its successor
    starting that Tuesday, both on Mondays, never meet."""
    lo = max((d for d in (a.valid_from, b.valid_from) if d is not None), default=None)
    hi = min((d for d in (a.valid_to, b.valid_to) if d is not None), default=None)
    if lo is None or hi is None:
        return True
    if hi < lo:
        return False
    days = (hi - lo).days + 1
    return days >= 7 or any((lo + timedelta(days=i)).weekday() in weekdays for i in range(days))


def _check_range(s: PlanStop, path: str) -> None:
    """``valid_from`` and ``valid_to``: dates in the years allowed, the end not before the
    start."""
    for k in ("valid_from", "valid_to"):
        v = getattr(s, k)
        if v is None:
            continue
        if not isinstance(v, date) or isinstance(v, datetime):
            raise field_error(f"{path}.{k}", v, 'a date "YYYY-MM-DD" or none')
        if not YEARS[0] <= v.year <= YEARS[1]:
            raise field_error(f"{path}.{k}", v.isoformat(), f"a year from {YEARS[0]} to {YEARS[1]}")
    if s.valid_from is not None and s.valid_to is not None and s.valid_to < s.valid_from:
        raise field_error(
            f"{path}.valid_to", s.valid_to.isoformat(),
            f"{s.name!r} ends before it starts ({s.valid_from.isoformat()}); "
            "gültig bis vor gültig ab",
        )  # fmt: skip


def validate_plan(plan: Plan) -> None:
    """Every rule a plan keeps; the first broken one raises PlanError naming the field."""
    if not isinstance(plan.van, str) or not VAN_RE.fullmatch(plan.van):
        raise field_error("van", plan.van, "a van id (a-z, 0-9, '-', '_'; at most 40)")
    if len(plan.stops) > MAX_STOPS:
        raise field_error("stops", len(plan.stops), f"at most {MAX_STOPS} stops")
    if len(plan.exceptions) > MAX_EXCEPTIONS:
        raise field_error("exceptions", len(plan.exceptions), f"at most {MAX_EXCEPTIONS}")
    keys: set[str] = set()
    for i, s in enumerate(plan.stops):
        path = f"stops[{i}]"
        _check_place(s, path)
        if s.key in keys:
            raise field_error(f"{path}.key", s.key, "two stops with the same key")
        keys.add(s.key)
        if not s.weekdays or any(d not in range(7) for d in s.weekdays):
            raise field_error(f"{path}.weekdays", s.weekdays, "at least one weekday")
        if s.end <= s.start:
            raise field_error(
                f"{path}.end", hhmm(s.end),
                f"{s.name!r} ends before it starts ({hhmm(s.start)}); Ende vor Beginn",
            )  # fmt: skip
        _check_range(s, path)
    # Two template stops on the same weekday (and in force at the same time) must not overlap.
    for i, a in enumerate(plan.stops):
        for b in plan.stops[i + 1 :]:
            common = set(a.weekdays) & set(b.weekdays)
            if common and _same_time(a, b, common) and _overlap((a.start, a.end), (b.start, b.end)):
                day = WEEKDAYS[min(common)]
                raise PlanError(
                    f"stops: {a.name!r} ({_hours(a.start, a.end)}) and {b.name!r} "
                    f"({_hours(b.start, b.end)}) overlap on {day} (Termine überschneiden sich)"
                )
    # A stop and those that follow it share their visits' calendar key (UID): they must
    # never be in force on the same weekday (the hub's own changes never are).
    for i, a in enumerate(plan.stops):
        for j, b in enumerate(plan.stops[i + 1 :], start=i + 1):
            common = set(a.weekdays) & set(b.weekdays)
            if (a.follows or a.key) == (b.follows or b.key) and common and _same_time(a, b, common):
                raise field_error(
                    f"stops[{j}].follows", b.follows,
                    f"continues {a.follows or a.key!r} while {a.key!r} is in force on the same"
                    " days (die Termine hätten dieselbe Kalender-UID)",
                )  # fmt: skip
    ids: set[str] = set()
    extra_keys: dict[str, list[date]] = defaultdict(list)
    for e in plan.exceptions:
        if e.kind == "extra" and e.stop is not None:
            extra_keys[e.stop.key].append(e.date)
    one_per: set[tuple[str, str, date]] = set()
    for i, e in enumerate(plan.exceptions):
        path = f"exceptions[{i}]"
        if e.kind not in KINDS:
            raise field_error(f"{path}.kind", e.kind, f"one of {', '.join(KINDS)}")
        if e.id in ids:
            raise field_error(f"{path}.id", e.id, "two exceptions with the same id")
        ids.add(e.id)
        clean_text(e.reason, f"{path}.reason", REASON_MAX)
        if not YEARS[0] <= e.date.year <= YEARS[1]:
            raise field_error(
                f"{path}.date", e.date.isoformat(), f"a year from {YEARS[0]} to {YEARS[1]}"
            )
        if e.kind in ("cancel", "delay", "move"):
            if e.stop_key not in keys and e.stop_key not in extra_keys:
                raise field_error(
                    f"{path}.stop", e.stop_key, "unknown stop key (kein solcher Halt)"
                )
            group = "cancel" if e.kind == "cancel" else "shift"
            if (group, e.stop_key, e.date) in one_per:
                raise field_error(
                    f"{path}.date", e.date.isoformat(),
                    f"a second {e.kind} for {e.stop_key!r} on that day; edit the first one",
                )  # fmt: skip
            one_per.add((group, e.stop_key, e.date))
        if e.kind == "delay":
            if isinstance(e.delay_min, bool) or not isinstance(e.delay_min, int):
                raise field_error(f"{path}.delay_min", e.delay_min, "whole minutes")
            if not DELAY_MIN <= e.delay_min <= DELAY_MAX:
                raise field_error(
                    f"{path}.delay_min", e.delay_min,
                    f"minutes from {DELAY_MIN} to {DELAY_MAX} (Verspätung 1 bis 600 Minuten)",
                )  # fmt: skip
            st, en = _hours_of(plan, e.stop_key, e.date)
            if st is not None and en is not None:
                mins = (en.hour * 60 + en.minute) - (st.hour * 60 + st.minute)
                if e.delay_min >= mins:
                    raise field_error(
                        f"{path}.delay_min", e.delay_min,
                        f"the visit ({_hours(st, en)}) would start at or after its end",
                    )  # fmt: skip
        if e.kind in ("move", "extra"):
            if e.start is None or e.end is None:
                raise field_error(f"{path}.start", e.start, "start and end are needed")
            if e.end <= e.start:
                raise field_error(
                    f"{path}.end", hhmm(e.end),
                    f"ends before it starts ({hhmm(e.start)}); Ende vor Beginn",
                )  # fmt: skip
        if e.kind == "move":
            if e.new_date is None or not YEARS[0] <= e.new_date.year <= YEARS[1]:
                raise field_error(f"{path}.new_date", e.new_date, "the new date is needed")
        if e.kind == "extra":
            if e.stop is None:
                raise field_error(f"{path}.place", None, "an extra visit needs a place")
            _check_place(e.stop, f"{path}.place")
        if e.kind == "closed":
            if e.date_to is None or e.date_to < e.date:
                raise field_error(
                    f"{path}.date_to", e.date_to.isoformat() if e.date_to else None,
                    f"the closed period ends before it starts ({e.date.isoformat()})",
                )  # fmt: skip
            if (e.date_to - e.date).days >= MAX_CLOSED_DAYS:
                raise field_error(f"{path}.date_to", e.date_to.isoformat(), "at most a year")
    _check_dated_overlaps(plan)


def _hours_of(plan: Plan, key: str, day: date) -> tuple[dtime | None, dtime | None]:
    """Start and end of the visit of ``key`` on ``day`` (template stop or extra)."""
    s = plan.stop(key)
    if s is not None:
        return s.start, s.end
    for x in plan.exceptions:
        if x.kind == "extra" and x.stop is not None and x.stop.key == key and x.date == day:
            return x.start, x.end
    return None, None


def _check_dated_overlaps(plan: Plan) -> None:
    """Visits that an extra or a move puts on a day must not overlap that day's others."""
    from zoneinfo import ZoneInfo

    from .plan_visits import visits_on_days

    days = {e.date for e in plan.exceptions if e.kind == "extra"}
    days |= {e.new_date for e in plan.exceptions if e.kind == "move" and e.new_date}
    if not days:
        return
    utc = ZoneInfo("UTC")  # the local zone does not matter for same-day comparisons
    by_day: dict[date, list] = defaultdict(list)
    for v in visits_on_days(plan, days, utc):
        if not v.cancelled:
            by_day[v.start.date()].append(v)
    for day in sorted(by_day):
        vs = by_day[day]  # sorted by start: each needs checking against the next only...
        for i, a in enumerate(vs):
            for b in vs[i + 1 :]:
                if b.start >= a.end:
                    continue  # ...but a long visit may cover several later ones
                raise PlanError(
                    f"exceptions: on {day.isoformat()} {a.name!r} "
                    f"({a.start:%H:%M}–{a.end:%H:%M}) and {b.name!r} "
                    f"({b.start:%H:%M}–{b.end:%H:%M}) overlap (Termine überschneiden sich)"
                )
