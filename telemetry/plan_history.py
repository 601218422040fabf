"""Plan changes from a day on that keep the past as it was planned (see telemetry/plan.py).

A weekly stop may have a validity range (``valid_from``/``valid_to``, both optional:
without them it is in force always, as in plans written before they existed). Staff
changes of a stop's weekdays or times, and its removal, end the stop the day before they
take effect and (for a change) start a successor (:func:`stop_from`,
:func:`stop_ended_from`; used as :meth:`Plan.with_stop_from` and
:meth:`Plan.without_stop_from`), so past weeks stay as they were planned.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

from .errors import PlanError
from .plan_keys import unique_key

if TYPE_CHECKING:
    from .plan_model import Plan, PlanException, PlanStop


def stop_from(plan: Plan, stop: PlanStop, effective: date, *, now: float | None = None) -> Plan:
    """Add a weekly stop, or change the one with the same key, from ``effective`` on,
    keeping the past as it was planned.

    A new stop is valid from ``effective``. A stop whose weekdays, times or place
    (coordinates, radius, municipality) change and which has visits before
    ``effective`` ends the day before (``valid_to``), and a new stop (a new key, the
    given place and hours, the old end) starts on ``effective``; the old stop's
    exceptions from that day on go to the new stop where it has that visit. A change of
    the name alone (a typo) and any change of a stop without earlier visits are made in
    place, a stop without earlier visits then starting no earlier than ``effective``."""
    old = plan.stop(stop.key)
    if old is None:
        return plan.with_stop(replace(stop, valid_from=effective, valid_to=None), now=now)
    if old.valid_to is not None and old.valid_to < effective:
        raise PlanError(
            f"valid_to: {old.name!r} ended on {old.valid_to.isoformat()}, before "
            f"{effective.isoformat()} (Haltestelle schon beendet)"
        )
    kept = replace(stop, valid_from=old.valid_from, valid_to=old.valid_to, follows=old.follows)
    if replace(kept, version=old.version) == old:
        return plan.changed(now=now)  # saved unchanged: no visit's SEQUENCE rises

    def where_when(s: PlanStop) -> tuple:
        return (s.weekdays, s.start, s.end, s.lat, s.lon, s.radius_m, s.municipality)

    schedule = where_when(stop) != where_when(old)
    if schedule:
        _delays_fit(plan, old.key, stop, effective if old.has_visits_before(effective) else None)
    if not old.has_visits_before(effective):
        start = effective if old.valid_from is None else max(old.valid_from, effective)
        return plan.with_stop(replace(kept, valid_from=start), now=now)
    if not schedule:
        return plan.with_stop(kept, now=now)
    v = plan.version + 1
    # the successor of "foo-2" is "foo-3", not "foo-2-2"
    key = unique_key(re.sub(r"-\d+$", "", old.key) or old.key, keys_in_use(plan))
    new = replace(kept, key=key, valid_from=effective, version=v, follows=old.follows or old.key)
    ended = replace(old, valid_to=effective - timedelta(days=1))  # its version stays
    stops: list[PlanStop] = []
    for s in plan.stops:
        stops += [ended, new] if s.key == old.key else [s]
    exc: list[PlanException] = []
    for e in plan.exceptions:
        if e.stop_key != old.key or e.kind == "extra" or e.date < effective:
            exc.append(e)
        elif e.date.weekday() in new.weekdays and new.valid_on(e.date):
            exc.append(replace(e, stop_key=key, version=v))
        # else: that visit no longer exists; its change goes with it
    return plan.changed(stops=stops, exceptions=exc, now=now)


def stop_ended_from(plan: Plan, key: str, effective: date, *, now: float | None = None) -> Plan:
    """Remove a weekly stop from ``effective`` on. A stop with visits before that day
    ends the day before (``valid_to``; the past stays as it was planned) and its
    exceptions from that day on are dropped; any other is removed with its exceptions.
    Its successors (the stops that continue it, ``follows``: a change of its hours or
    place that takes effect later) go with it: the stop is gone from ``effective`` on,
    not back with new hours."""
    old = plan.stop(key)
    if old is None:
        raise PlanError(f"stop: no stop {key!r} in the plan of {plan.van}")
    if old.valid_to is not None and old.valid_to < effective:
        raise PlanError(
            f"valid_to: {old.name!r} ended on {old.valid_to.isoformat()}, before "
            f"{effective.isoformat()} (Haltestelle schon beendet)"
        )
    gone = {s.key for s in _successors(plan, old)}
    ended: PlanStop | None = None
    if old.has_visits_before(effective):
        ended = replace(old, valid_to=effective - timedelta(days=1))
    else:
        gone.add(key)
    stops = [ended if s.key == key and ended is not None else s for s in plan.stops]
    exc = [
        e
        for e in plan.exceptions
        if e.kind == "extra"
        or (e.stop_key != key and e.stop_key not in gone)
        or (ended is not None and e.stop_key == key and e.date < effective)
    ]
    return plan.changed(stops=[s for s in stops if s.key not in gone], exceptions=exc, now=now)


def _delays_fit(plan: Plan, key: str, new: PlanStop, since: date | None) -> None:
    """A delay of the stop ``key`` (from ``since`` on, or all) that the new hours of
    ``new`` could not take: the visit would start at or after its end. Said in the staff's
    words, before the plan's own check says it in field names."""
    mins = (new.end.hour * 60 + new.end.minute) - (new.start.hour * 60 + new.start.minute)
    if mins <= 0:
        return  # hours that end before they start: the plan's own check says so
    for e in plan.exceptions:
        if e.kind != "delay" or e.stop_key != key or (since is not None and e.date < since):
            continue
        if e.date.weekday() in new.weekdays and e.delay_min >= mins:
            raise PlanError(
                f"Die Verspätung am {e.date:%d.%m.%Y} ({e.delay_min} Minuten) passt nicht in die"
                f" neuen Zeiten {new.start:%H:%M}–{new.end:%H:%M} Uhr. Bitte zuerst die"
                " Verspätung ändern oder löschen."
            )


def _successors(plan: Plan, stop: PlanStop) -> list[PlanStop]:
    """The stops that continue ``stop`` after later changes of its hours or place: those
    that ``follow`` the same first stop and begin after ``stop`` ends."""
    if stop.valid_to is None:
        return []
    first = stop.follows or stop.key
    return sorted(
        (s for s in plan.stops
         if s.follows == first and s.valid_from is not None and s.valid_from > stop.valid_to),
        key=lambda s: s.valid_from or stop.valid_to,
    )  # fmt: skip


def keys_in_use(plan: Plan) -> set[str]:
    """Every key in use: the weekly stops' and the extra visits' places, and the keys
    stops still follow (their visits' calendar UIDs), even once the first stop is gone."""
    return (
        {s.key for s in plan.stops}
        | {s.follows for s in plan.stops if s.follows}
        | {e.stop.key for e in plan.exceptions if e.kind == "extra" and e.stop is not None}
    )
