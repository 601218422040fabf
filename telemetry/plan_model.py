"""The tour plan's data: the weekly stops (:class:`PlanStop`), the dated exceptions
(:class:`PlanException`; the kinds: telemetry/plan.py), a visit on a real date
(:class:`PlannedVisit`) and the versioned plan itself (:class:`Plan`) with its editing
methods, each giving the next, validated version.

The work is done elsewhere and reached through :class:`Plan`: JSON in
:mod:`telemetry.plan_json`, the rules in :mod:`telemetry.plan_rules`, changes from a
day on that keep the past (``with_stop_from``/``without_stop_from``) in
:mod:`telemetry.plan_history`, the visits on real dates in :mod:`telemetry.plan_visits`;
stop keys and exception ids come from :mod:`telemetry.plan_keys`. Storing and reading
plans: :mod:`telemetry.plan_store`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from .config import TourStop
from .errors import PlanError
from .plan_history import stop_ended_from, stop_from
from .plan_keys import slug, unique_key
from .plan_rules import validate_plan


@dataclass(frozen=True)
class PlanStop:
    """A stop of the weekly template (like :class:`~telemetry.config.TourStop`, plus a
    stable ``key``). An extra visit's place is a PlanStop with no weekdays."""

    key: str
    name: str
    municipality: str
    lat: float
    lon: float
    radius_m: float = 150.0
    weekdays: tuple[int, ...] = ()  # 0 = Monday
    start: dtime = dtime(0, 0)
    end: dtime = dtime(0, 0)
    version: int = 0  # the plan version at which this stop was last changed
    valid_from: date | None = None  # first day with visits; None: always (an older plan)
    valid_to: date | None = None  # last day with visits; None: open-ended
    # the first stop of the chain this one continues (changes of hours or place): its
    # visits keep that stop's calendar UIDs
    follows: str | None = None

    def valid_on(self, day: date) -> bool:
        """Is the stop in force on ``day`` (its validity range, both ends included)?"""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day <= self.valid_to

    def has_visits_before(self, day: date) -> bool:
        """Does the stop have a weekly visit on some day before ``day`` (its range
        applied)? An open start means it always had (if it has weekdays at all)."""
        if not self.weekdays:
            return False
        if self.valid_from is None:
            return True
        last = day - timedelta(days=1)
        if self.valid_to is not None:
            last = min(last, self.valid_to)
        span = (last - self.valid_from).days
        if span < 0:
            return False
        return span >= 6 or any(
            (self.valid_from + timedelta(days=i)).weekday() in self.weekdays
            for i in range(span + 1)
        )

    def tour_stop(self) -> TourStop:
        return TourStop(
            self.name, self.municipality, self.lat, self.lon, self.radius_m,
            self.weekdays, self.start, self.end,
        )  # fmt: skip


@dataclass(frozen=True)
class PlanException:
    """One dated change to the plan (the kinds: see telemetry/plan.py)."""

    id: str
    kind: str
    date: date  # the visit's date; for "closed" the first day
    stop_key: str = ""  # cancel, delay, move
    reason: str = ""  # public text
    delay_min: int = 0  # delay
    new_date: date | None = None  # move
    start: dtime | None = None  # move (new start), extra
    end: dtime | None = None  # move (new end), extra
    stop: PlanStop | None = None  # extra: where
    date_to: date | None = None  # closed: the last day
    version: int = 0  # the plan version at which this exception was last changed

    def __post_init__(self) -> None:
        if self.kind == "extra" and self.stop is not None and self.stop_key != self.stop.key:
            object.__setattr__(self, "stop_key", self.stop.key)  # one spelling, one equality

    @property
    def date_from(self) -> date:
        return self.date

    @property
    def last_day(self) -> date:
        """The last day this exception changes (a move's new date, a closed period's end)."""
        return max(self.date, self.new_date or self.date, self.date_to or self.date)


def exception_groups(
    exceptions: Iterable[PlanException],
) -> list[tuple[date, tuple[PlanException, ...]]]:
    """The exceptions in the groups that are kept or dropped together, each with its
    last day: an extra visit with the changes of it (a cancel, delay or move of its
    one-off key; without the extra they would name an unknown stop), every other
    exception alone. In the order of their first member."""
    exceptions = tuple(exceptions)
    extras = {e.stop_key for e in exceptions if e.kind == "extra"}
    groups: dict[str, list[PlanException]] = {}
    for e in exceptions:
        key = f"extra:{e.stop_key}" if e.stop_key in extras else f"id:{e.id}"
        groups.setdefault(key, []).append(e)
    return [(max(e.last_day for e in g), tuple(g)) for g in groups.values()]


@dataclass(frozen=True)
class PlannedVisit:
    """One visit of the plan on one date, exceptions applied."""

    uid: str
    van: str
    stop_key: str
    name: str
    municipality: str
    lat: float
    lon: float
    radius_m: float
    start: datetime  # aware, local; a delay is included
    end: datetime
    status: str = "planned"
    delay_min: int = 0
    reason: str = ""
    sequence: int = 0
    planned_start: datetime | None = None  # before any delay or move

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    def is_open(self, now: datetime) -> bool:
        return not self.cancelled and self.start <= now < self.end


@dataclass(frozen=True)
class Plan:
    van: str
    version: int = 0
    updated: float = 0.0  # UTC epoch seconds
    stops: tuple[PlanStop, ...] = ()
    exceptions: tuple[PlanException, ...] = field(default=())

    # --- construction -----------------------------------------------------------------

    @classmethod
    def from_tour(cls, van: str, tour: Iterable[TourStop]) -> Plan:
        """The initial plan (version 0) from the TOML ``[[tour.stops]]``."""
        stops: list[PlanStop] = []
        keys: set[str] = set()
        for s in tour:
            key = unique_key(slug(s.name), keys)
            keys.add(key)
            stops.append(
                PlanStop(
                    key,
                    s.name,
                    s.municipality,
                    s.lat,
                    s.lon,
                    s.radius_m,
                    tuple(s.weekdays),
                    s.start,
                    s.end,
                )  # fmt: skip
            )
        return cls(van=van, stops=tuple(stops))

    @classmethod
    def from_json(cls, text: str | bytes, *, van: str | None = None) -> Plan:
        """Parse and validate a plan (``van``: the van it must be for)."""
        from .plan_json import plan_from_json

        plan = plan_from_json(text)
        if van is not None and plan.van != van:
            raise PlanError(f"van: plan is for {plan.van!r}, expected {van!r}")
        return plan

    def to_json(self) -> str:
        from .plan_json import plan_to_json

        return plan_to_json(self)

    def validate(self) -> Plan:
        """Check every rule (see :func:`validate`); returns the plan itself."""
        validate(self)
        return self

    # --- editing: each returns a new, validated version -------------------------------

    def changed(
        self,
        *,
        stops: Iterable[PlanStop] | None = None,
        exceptions: Iterable[PlanException] | None = None,
        now: float | None = None,
    ) -> Plan:
        nxt = replace(
            self,
            version=self.version + 1,
            updated=time.time() if now is None else float(now),
            stops=self.stops if stops is None else tuple(stops),
            exceptions=self.exceptions if exceptions is None else tuple(exceptions),
        )
        return nxt.validate()

    def stop(self, key: str) -> PlanStop | None:
        return next((s for s in self.stops if s.key == key), None)

    def exception(self, ex_id: str) -> PlanException | None:
        return next((e for e in self.exceptions if e.id == ex_id), None)

    def with_stop(self, stop: PlanStop, *, now: float | None = None) -> Plan:
        """Add the stop, or replace the one with the same key."""
        stop = replace(stop, version=self.version + 1)
        stops = [s for s in self.stops if s.key != stop.key]
        at = next((i for i, s in enumerate(self.stops) if s.key == stop.key), len(stops))
        stops.insert(at, stop)
        return self.changed(stops=stops, now=now)

    def without_stop(self, key: str, *, now: float | None = None) -> Plan:
        """Remove a template stop and the exceptions that refer to it."""
        if self.stop(key) is None:
            raise PlanError(f"stop: no stop {key!r} in the plan of {self.van}")
        stops = [s for s in self.stops if s.key != key]
        exc = [e for e in self.exceptions if e.stop_key != key or e.kind == "extra"]
        return self.changed(stops=stops, exceptions=exc, now=now)

    def with_stop_from(self, stop: PlanStop, effective: date, *, now: float | None = None) -> Plan:
        """Add a weekly stop, or change the one with the same key, from ``effective`` on,
        keeping the past as it was planned (:func:`telemetry.plan_history.stop_from`)."""
        return stop_from(self, stop, effective, now=now)

    def without_stop_from(self, key: str, effective: date, *, now: float | None = None) -> Plan:
        """Remove a weekly stop from ``effective`` on, keeping the past as it was planned
        (:func:`telemetry.plan_history.stop_ended_from`)."""
        return stop_ended_from(self, key, effective, now=now)

    def with_exception(self, ex: PlanException, *, now: float | None = None) -> Plan:
        """Add an exception (or replace the one with the same id). A cancel replaces an
        earlier cancel of the same visit; a delay or move an earlier delay or move."""
        ex = replace(ex, version=self.version + 1)
        if ex.kind in ("cancel", "delay", "move") and _visit_stop(self, ex) is None:
            raise PlanError(
                f"date: {self.stop_name(ex.stop_key)} has no visit on {ex.date.isoformat()}"
            )
        group = {"cancel": ("cancel",), "delay": ("delay", "move"), "move": ("delay", "move")}
        same = group.get(ex.kind, ())
        exc = [
            e
            for e in self.exceptions
            if e.id != ex.id
            and not (e.kind in same and e.stop_key == ex.stop_key and e.date == ex.date)
        ]
        exc.append(ex)
        return self.changed(exceptions=exc, now=now)

    def without_exception(self, ex_id: str, *, now: float | None = None) -> Plan:
        """Remove an exception. The visits it touched get a higher sequence (their stop's
        or extra's version is raised), so calendars see the change."""
        ex = self.exception(ex_id)
        if ex is None:
            raise PlanError(f"exception: no exception {ex_id!r} in the plan of {self.van}")
        v = self.version + 1
        stops = [replace(s, version=v) if s.key == ex.stop_key else s for s in self.stops]
        exc = [
            replace(e, version=v) if e.kind == "extra" and e.stop and e.stop.key == ex.stop_key
            else e
            for e in self.exceptions
            if e.id != ex_id
        ]  # fmt: skip
        if ex.kind == "closed":
            stops = [replace(s, version=v) for s in self.stops]
        if ex.kind == "extra" and self.stop(ex.stop_key) is None:
            # the changes to that one-off visit go with it
            exc = [e for e in exc if not (e.stop_key == ex.stop_key and e.date == ex.date)]
        return self.changed(stops=stops, exceptions=exc, now=now)

    def pruned(self, before: date, *, stops_before: date | None = None) -> Plan:
        """The same version without the exceptions whose every day is before ``before``
        (they change nothing any more; keeps the retained plan small; an extra visit and
        its changes go together, :func:`exception_groups`), and without the
        weekly stops that ended before ``stops_before`` (if given) and that no exception
        refers to."""
        kept = {e.id for last, g in exception_groups(self.exceptions) if last >= before for e in g}
        keep = tuple(e for e in self.exceptions if e.id in kept)
        stops = self.stops
        if stops_before is not None:
            used = {e.stop_key for e in keep}
            stops = tuple(
                s
                for s in self.stops
                if s.valid_to is None or s.valid_to >= stops_before or s.key in used
            )
        if len(keep) == len(self.exceptions) and len(stops) == len(self.stops):
            return self
        return replace(self, exceptions=keep, stops=stops)

    def stop_name(self, key: str) -> str:
        s = self.stop(key) or next(
            (e.stop for e in self.exceptions if e.kind == "extra" and e.stop and e.stop.key == key),
            None,
        )
        return s.name if s is not None else key

    # --- reading ----------------------------------------------------------------------

    def tour(self, around: date | None = None) -> tuple[TourStop, ...]:
        """The places of the plan as TourStops (for stop detection): the template stops
        (those in force on ``around``, or with a visit a day before or after; or all),
        plus the extra visits' places (those within a day of ``around``, or all)."""
        if around is None:
            out = [s.tour_stop() for s in self.stops]
        else:
            # The stops in force that day first; then those with a visit the day before
            # or after (late in the evening), unless the same place is already in.
            out = [s.tour_stop() for s in self.stops if s.valid_on(around)]
            seen = {(t.name, t.lat, t.lon) for t in out}
            for d in (around - timedelta(days=1), around + timedelta(days=1)):
                for s in self.stops:
                    if s.valid_on(d) and d.weekday() in s.weekdays and not s.valid_on(around):
                        if (s.name, s.lat, s.lon) not in seen:
                            seen.add((s.name, s.lat, s.lon))
                            out.append(s.tour_stop())
        for e in self.exceptions:
            if e.kind == "extra" and e.stop is not None:
                if around is None or abs((e.date - around).days) <= 1:
                    out.append(e.stop.tour_stop())
        return tuple(out)

    def visits_between(self, start: date, end: date, tz: ZoneInfo) -> list[PlannedVisit]:
        """Every visit from ``start`` to ``end`` (both included), by start time, with the
        exceptions applied; cancelled visits are included."""
        from .plan_visits import visits_between

        return visits_between(self, start, end, tz)

    def visits_on(self, day: date, tz: ZoneInfo) -> list[PlannedVisit]:
        return self.visits_between(day, day, tz)

    def next_visits(
        self, now: datetime, tz: ZoneInfo, n: int = 3, *, days: int = 14
    ) -> list[PlannedVisit]:
        """The visit open at ``now`` (if any) and the next ones, ``n`` in all; cancelled
        ones included (so the public sees "fällt aus")."""
        local = now.astimezone(tz)
        vs = self.visits_between(local.date(), local.date() + timedelta(days=days), tz)
        return [v for v in vs if v.end > local][:n]

    def open_visit(self, now: datetime, tz: ZoneInfo) -> PlannedVisit | None:
        """The visit in service at ``now`` (not cancelled; a delay shifts the start)."""
        local = now.astimezone(tz)
        for v in self.visits_on(local.date(), tz):
            if v.is_open(local):
                return v
        return None


def _visit_stop(plan: Plan, ex: PlanException) -> PlanStop | None:
    """The stop (template or extra) whose visit on ``ex.date`` the exception changes."""
    s = plan.stop(ex.stop_key)
    if s is not None and ex.date.weekday() in s.weekdays and s.valid_on(ex.date):
        return s
    for e in plan.exceptions:
        if e.kind == "extra" and e.stop is not None and e.stop.key == ex.stop_key:
            if e.date == ex.date:
                return e.stop
    return None


def validate(plan: Plan) -> None:
    """Every rule a plan keeps (:func:`telemetry.plan_rules.validate_plan`)."""
    validate_plan(plan)
