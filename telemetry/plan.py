"""Each van's tour plan: a weekly template of stops plus dated exceptions, versioned.

The hub is the system of record: staff edit a van's plan there (``kiosk/staff_plan.py``),
every saved change is a new version (``plans`` table, migration 0006), and the plan's
JSON (:meth:`Plan.to_json`) is published retained on ``<prefix>/<van>/plan``. The box
stores each newer version it receives and uses the newest one for the kiosk's next stops,
stop detection and the public map; without any, the ``[[tour.stops]]`` of the TOML are the
initial plan (:meth:`Plan.from_tour`).

Exceptions (:class:`PlanException`), all for one dated visit of a stop unless noted:

- ``cancel``: the visit does not take place (``reason`` is public);
- ``delay``: it starts ``delay_min`` minutes late (1..600; the end stays);
- ``move``: it takes place on ``new_date`` from ``start`` to ``end`` instead;
- ``extra``: a one-off visit (festival, school day) at ``stop`` on ``date``;
- ``closed``: no visits from ``date`` to ``date_to`` (holidays), with a public reason.

:meth:`Plan.visits_between` applies them and gives :class:`PlannedVisit` s with stable
uids (for iCalendar) and a ``sequence`` raised whenever a visit changes. Cancelled visits
are included (status ``"cancelled"``) so the public can read "fällt aus".

A weekly stop may have a validity range (``valid_from``/``valid_to``, both optional:
without them it is in force always, as in plans written before they existed). Staff
changes of a stop's weekdays or times, and its removal, end the stop the day before they
take effect and (for a change) start a successor (:meth:`Plan.with_stop_from`,
:meth:`Plan.without_stop_from`), so past weeks stay as they were planned.

Bad input raises :class:`~telemetry.errors.PlanError` naming the field; nothing is saved.
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .config import MUNICIPALITIES, WEEKDAYS, TourStop
from .errors import PlanError

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("vanbox.plan")

KINDS = ("cancel", "delay", "move", "extra", "closed")
STATUSES = ("planned", "cancelled", "delayed", "moved", "extra")
VAN_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
KEY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
REASON_MAX = 200
NAME_MAX = 80
MAX_STOPS = 100
MAX_EXCEPTIONS = 1000
MAX_JSON = 1024 * 1024  # a full plan (100 stops, 1000 exceptions) is about 600 KB
KEEP_PAST_DAYS = 90  # exceptions whose days all ended longer ago are dropped on a change
DELAY_MIN, DELAY_MAX = 1, 600
MAX_CLOSED_DAYS = 366
MAX_SPAN_DAYS = 800  # visits_between looks at most this far
YEARS = (2000, 2099)
RADIUS_M = (10.0, 5000.0)
MARGIN_KM = 15.0


def _bbox(margin_km: float = MARGIN_KM) -> tuple[float, float, float, float]:
    """(south, west, north, east) around the seven municipality centres plus a margin."""
    lats = [p[0] for p in MUNICIPALITIES.values()]
    lons = [p[1] for p in MUNICIPALITIES.values()]
    dlat = margin_km / 111.32
    dlon = margin_km / (111.32 * math.cos(math.radians(sum(lats) / len(lats))))
    return min(lats) - dlat, min(lons) - dlon, max(lats) + dlat, max(lons) + dlon


LANDKREIS_BBOX = _bbox()


# --- the model ------------------------------------------------------------------------


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
    """One dated change to the plan (see the module docstring for the kinds)."""

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
        keeping the past as it was planned.

        A new stop is valid from ``effective``. A stop whose weekdays or times change
        and which has visits before ``effective`` ends the day before (``valid_to``), and
        a new stop (a new key, the given place and hours, the old end) starts on
        ``effective``; the old stop's exceptions from that day on go to the new stop
        where it has that visit. Any other change (the name, the place, or a stop
        without earlier visits) is made in place, a stop without earlier visits then
        starting no earlier than ``effective``."""
        old = self.stop(stop.key)
        if old is None:
            return self.with_stop(replace(stop, valid_from=effective, valid_to=None), now=now)
        if old.valid_to is not None and old.valid_to < effective:
            raise PlanError(
                f"valid_to: {old.name!r} ended on {old.valid_to.isoformat()}, before "
                f"{effective.isoformat()} (Haltestelle schon beendet)"
            )
        kept = replace(stop, valid_from=old.valid_from, valid_to=old.valid_to)
        if replace(kept, version=old.version) == old:
            return self.changed(now=now)  # saved unchanged: no visit's SEQUENCE rises
        schedule = (stop.weekdays, stop.start, stop.end) != (old.weekdays, old.start, old.end)
        if not old.has_visits_before(effective):
            start = effective if old.valid_from is None else max(old.valid_from, effective)
            return self.with_stop(replace(kept, valid_from=start), now=now)
        if not schedule:
            return self.with_stop(kept, now=now)
        v = self.version + 1
        key = unique_key(old.key, self._keys())
        new = replace(kept, key=key, valid_from=effective, version=v)
        ended = replace(old, valid_to=effective - timedelta(days=1))  # its version stays
        stops: list[PlanStop] = []
        for s in self.stops:
            stops += [ended, new] if s.key == old.key else [s]
        exc: list[PlanException] = []
        for e in self.exceptions:
            if e.stop_key != old.key or e.kind == "extra" or e.date < effective:
                exc.append(e)
            elif e.date.weekday() in new.weekdays and new.valid_on(e.date):
                exc.append(replace(e, stop_key=key, version=v))
            # else: that visit no longer exists; its change goes with it
        return self.changed(stops=stops, exceptions=exc, now=now)

    def without_stop_from(self, key: str, effective: date, *, now: float | None = None) -> Plan:
        """Remove a weekly stop from ``effective`` on. A stop with visits before that day
        ends the day before (``valid_to``; the past stays as it was planned) and its
        exceptions from that day on are dropped; any other is removed
        (:meth:`without_stop`)."""
        old = self.stop(key)
        if old is None:
            raise PlanError(f"stop: no stop {key!r} in the plan of {self.van}")
        if old.valid_to is not None and old.valid_to < effective:
            raise PlanError(
                f"valid_to: {old.name!r} ended on {old.valid_to.isoformat()}, before "
                f"{effective.isoformat()} (Haltestelle schon beendet)"
            )
        if not old.has_visits_before(effective):
            return self.without_stop(key, now=now)
        ended = replace(old, valid_to=effective - timedelta(days=1))
        stops = [ended if s.key == key else s for s in self.stops]
        exc = [
            e
            for e in self.exceptions
            if e.stop_key != key or e.kind == "extra" or e.date < effective
        ]
        return self.changed(stops=stops, exceptions=exc, now=now)

    def _keys(self) -> set[str]:
        """Every key in use: the weekly stops' and the extra visits' places."""
        return {s.key for s in self.stops} | {
            e.stop.key for e in self.exceptions if e.kind == "extra" and e.stop is not None
        }

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
        (they change nothing any more; keeps the retained plan small), and without the
        weekly stops that ended before ``stops_before`` (if given) and that no exception
        refers to."""

        def last_day(e: PlanException) -> date:
            days = [e.date, e.new_date or e.date, e.date_to or e.date]
            return max(days)

        keep = tuple(e for e in self.exceptions if last_day(e) >= before)
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


# --- helpers --------------------------------------------------------------------------

_TRANS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def slug(text: str) -> str:
    """A stable key from a stop name: "Peine, Marktplatz" -> "peine-marktplatz"."""
    s = unicodedata.normalize("NFKD", text.lower().translate(_TRANS))
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")[:40].strip("-")
    return s or "halt"


def unique_key(key: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    if key not in taken:
        return key
    for i in range(2, 10_000):
        cand = f"{key[:36]}-{i}"
        if cand not in taken:
            return cand
    raise PlanError("stops: too many stops with the same name")


def new_id() -> str:
    return str(uuid.uuid4())


def in_landkreis(lat: float, lon: float) -> bool:
    s, w, n, e = LANDKREIS_BBOX
    return s <= lat <= n and w <= lon <= e


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
    from .plan_json import validate_plan

    validate_plan(plan)


# --- storage (table ``plans``, migration 0006) ----------------------------------------


def _conn_of(store_or_conn: Store | sqlite3.Connection) -> sqlite3.Connection:
    if isinstance(store_or_conn, sqlite3.Connection):
        return store_or_conn
    return store_or_conn.reader()


def stored_plan(store_or_conn: Store | sqlite3.Connection, van: str) -> Plan | None:
    """The newest stored plan of ``van`` (the one stored last), or None."""
    conn = _conn_of(store_or_conn)
    try:
        r = conn.execute(
            "SELECT body FROM plans WHERE van = ? ORDER BY rowid DESC LIMIT 1", (van,)
        ).fetchone()
    except sqlite3.OperationalError:  # no plans table (an old schema)
        return None
    if r is None:
        return None
    return _parsed(van, r[0])


_CACHE: dict[tuple[str, int], tuple[str, Plan]] = {}
_CACHE_MAX = 64
_CACHE_LOCK = threading.Lock()


def _parsed(van: str, body: str) -> Plan:
    """``Plan.from_json(body)``, remembered: pages read the same plan on every request."""
    key = (van, hash(body))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0] == body:
        return hit[1]
    plan = Plan.from_json(body, van=van)
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (body, plan)
    return plan


def current_plan(
    store_or_conn: Store | sqlite3.Connection,
    van: str,
    fallback_tour: Iterable[TourStop] = (),
    tz: Any = None,
) -> Plan:
    """The newest stored plan of ``van``, else the plan from the TOML tour (version 0)."""
    return stored_plan(store_or_conn, van) or Plan.from_tour(van, fallback_tour)


def stored_version(conn: sqlite3.Connection, van: str) -> int:
    r = conn.execute("SELECT max(version) FROM plans WHERE van = ?", (van,)).fetchone()
    return int(r[0]) if r and r[0] is not None else 0


CLOCK_SLACK_S = 300.0  # a hub clock stepped back by less than this still counts as newer


def is_newer(plan: Plan, than: tuple[int, float] | None) -> bool:
    """Does ``plan`` replace the one stored as (version, updated)? Saved later on the
    hub's clock, or a higher version saved (about) as late. A hub restored from a backup
    starts again at a lower version, but its next change is saved later than anything
    the box has, so the box takes it; an old plan the broker still held is not taken
    back."""
    if than is None:
        return True
    version, updated = than
    if plan.updated > updated:
        return True
    return plan.version > version and plan.updated >= updated - CLOCK_SLACK_S


def save_plan(store: Store, plan: Plan) -> bool:
    """Store ``plan`` if it is newer than the stored one (:func:`is_newer`; the box, on
    receipt). Returns whether it was stored."""
    plan.validate()
    body = _body(plan)
    with store.transaction() as conn:
        r = conn.execute(
            "SELECT version, updated FROM plans WHERE van = ? ORDER BY rowid DESC LIMIT 1",
            (plan.van,),
        ).fetchone()
        if not is_newer(plan, (int(r[0]), float(r[1])) if r else None):
            return False
        # A restored hub's version may already be here: the new text replaces it, and as
        # the row stored last it is the current plan.
        conn.execute("DELETE FROM plans WHERE van = ? AND version = ?", (plan.van, plan.version))
        conn.execute(
            "INSERT INTO plans (van, version, updated, body) VALUES (?, ?, ?, ?)",
            (plan.van, plan.version, plan.updated, body),
        )
    return True


def change_plan(
    store: Store,
    van: str,
    edit: Callable[[Plan], Plan],
    *,
    fallback_tour: Iterable[TourStop] = (),
    known_vans: Iterable[str] | None = None,
) -> Plan:
    """Apply one staff change atomically: read the newest plan of ``van``, ``edit`` it
    (one of the ``Plan.with_*``/``without_*`` methods), store the result as the next
    version. A PlanError from ``edit`` leaves the stored plan unchanged."""
    if known_vans is not None and van not in set(known_vans):
        raise PlanError(f"van: unknown van {van!r}")
    if not VAN_RE.fullmatch(van):
        raise PlanError(f"van: {van!r} is not a van id")
    with store.transaction() as conn:
        base = current_plan(conn, van, fallback_tour)
        top = stored_version(conn, van)
        if base.version < top:  # cannot happen with one writer; be safe
            raise PlanError("version: the plan changed meanwhile; reload and try again")
        new = edit(base)
        if new.van != van or new.version != base.version + 1:
            raise PlanError("version: an edit must give the next version of the same van")
        day = date.fromtimestamp(new.updated)
        new = new.pruned(
            day - timedelta(days=KEEP_PAST_DAYS), stops_before=date(day.year - 1, 1, 1)
        )  # an ended stop stays for this year's and last year's reports
        new.validate()
        body = _body(new)
        conn.execute(
            "INSERT INTO plans (van, version, updated, body) VALUES (?, ?, ?, ?)",
            (new.van, new.version, new.updated, body),
        )
    return new


def _body(plan: Plan) -> str:
    body = plan.to_json()
    if len(body.encode("utf-8")) > MAX_JSON:
        raise PlanError(
            f"plan: {len(body)} characters, at most {MAX_JSON}; remove old exceptions first"
        )
    return body


def plan_vans(store_or_conn: Store | sqlite3.Connection) -> list[str]:
    """Every van with a stored plan."""
    conn = _conn_of(store_or_conn)
    try:
        return [r[0] for r in conn.execute("SELECT DISTINCT van FROM plans ORDER BY van")]
    except sqlite3.OperationalError:
        return []


__all__ = [
    "KINDS", "LANDKREIS_BBOX", "Plan", "PlanException", "PlanStop", "PlannedVisit",
    "STATUSES", "WEEKDAYS", "change_plan", "current_plan", "in_landkreis", "new_id",
    "is_newer", "plan_vans", "receive_plan", "save_plan", "slug", "stored_plan",
    "unique_key", "validate",
]  # fmt: skip


# --- the box: a plan received from the hub ---------------------------------------------


def receive_plan(store: Store, van: str, payload: bytes | str, *, topic: str = "") -> Plan | None:
    """Store a plan received on ``<prefix>/<van>/plan`` if it is newer than the stored
    one; returns it then, else None. A malformed plan (or one for another van) is logged
    and kept as a dead letter (source "mqtt"); the stored plan stays as it was. An empty
    payload (a cleared retained message) is ignored."""
    from . import deadletter

    if not payload:
        return None
    try:
        plan = Plan.from_json(payload, van=van)
    except PlanError as e:
        deadletter.add(store, "mqtt", f"plan: {e}", payload=payload, van=van, topic=topic)
        return None
    if not save_plan(store, plan):
        log.debug("plan %s v%d: not newer than the stored one", van, plan.version)
        return None
    log.info("plan %s: version %d stored", van, plan.version)
    return plan
